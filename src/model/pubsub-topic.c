/* pubsub-topic.c: a named topic, its history and its fan-out
 *
 * Fan-out is a list of listeners (PubsubTopicListener), one per
 * subscription, called in turn with the message: neither copied nor
 * referenced per subscriber. The "event" signal is emitted after them for
 * any other observer; with no handler it costs GLib's check only.
 *
 * Subscriptions come and go through the topic too, with who and why
 * ("subscriber-joined", "subscriber-left"), for whoever reports them.
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <string.h>

#include "pubsub-error.h"
#include "pubsub-topic.h"
#include "pubsub-settings.h"

gboolean
pubsub_topic_name_is_valid (const char *name,
                            gsize       len)
{
  if (len == 0 || len > PUBSUB_TOPIC_NAME_MAX)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    {
      char c = name[i];

      if (!g_ascii_isalnum (c) && c != '.' && c != '_' && c != '-' && c != ':')
        return FALSE;
    }
  return TRUE;
}

/**
 * pubsub_check_topic_name:
 * @name: a candidate topic name
 * @error: a %PUBSUB_ERROR_BAD_REQUEST that says which names are allowed
 */
gboolean
pubsub_check_topic_name (const char  *name,
                         GError     **error)
{
  if (pubsub_topic_name_is_valid (name, strlen (name)))
    return TRUE;
  pubsub_set_topic_name_error (error);
  return FALSE;
}

/* The errors about one topic, worded once for every engine and front. */

void
pubsub_set_topic_not_found_error (GError     **error,
                                  const char  *name)
{
  g_set_error (error, PUBSUB_ERROR, PUBSUB_ERROR_TOPIC_NOT_FOUND,
               "topic '%s' does not exist", name);
}

void
pubsub_set_topic_exists_error (GError     **error,
                               const char  *name)
{
  g_set_error (error, PUBSUB_ERROR, PUBSUB_ERROR_TOPIC_EXISTS,
               "topic '%s' already exists", name);
}

void
pubsub_set_topic_limit_error (GError     **error,
                              const char  *name,
                              guint        max_topics)
{
  g_set_error (error, PUBSUB_ERROR, PUBSUB_ERROR_LIMIT_EXCEEDED,
               "cannot create topic '%s': the limit of %u topics is reached",
               name, max_topics);
}

/**
 * pubsub_set_topic_name_error:
 * @error: where to put the BAD_REQUEST that says which names are allowed
 */
void
pubsub_set_topic_name_error (GError **error)
{
  g_set_error (error, PUBSUB_ERROR, PUBSUB_ERROR_BAD_REQUEST,
               "invalid topic name: use 1 to %d characters of A-Z a-z 0-9 . _ - :",
               PUBSUB_TOPIC_NAME_MAX);
}

G_DEFINE_ENUM_TYPE (PubsubLeaveReason, pubsub_leave_reason,
                    G_DEFINE_ENUM_VALUE (PUBSUB_LEAVE_UNSUBSCRIBED, "unsubscribed"),
                    G_DEFINE_ENUM_VALUE (PUBSUB_LEAVE_CLOSED, "closed"),
                    G_DEFINE_ENUM_VALUE (PUBSUB_LEAVE_SLOW_CONSUMER, "slow_consumer"),
                    G_DEFINE_ENUM_VALUE (PUBSUB_LEAVE_TOPIC_DELETED, "topic_deleted"),
                    G_DEFINE_ENUM_VALUE (PUBSUB_LEAVE_SHUTDOWN, "shutdown"))

/**
 * pubsub_leave_reason_to_string:
 *
 * Returns: the reason's nick: "unsubscribed", "closed", "slow_consumer",
 *   "topic_deleted" or "shutdown"
 */
const char *
pubsub_leave_reason_to_string (PubsubLeaveReason reason)
{
  static const char *const names[] = {
    [PUBSUB_LEAVE_UNSUBSCRIBED] = "unsubscribed",
    [PUBSUB_LEAVE_CLOSED] = "closed",
    [PUBSUB_LEAVE_SLOW_CONSUMER] = "slow_consumer",
    [PUBSUB_LEAVE_TOPIC_DELETED] = "topic_deleted",
    [PUBSUB_LEAVE_SHUTDOWN] = "shutdown",
  };

  g_return_val_if_fail ((guint) reason < G_N_ELEMENTS (names), NULL);

  return names[reason];
}

/* ---------------------------------------------------------------------- */
/* The history's ids                                                      */

/* Idempotent publish looks every id up, and every message stored adds one
 * and drops the oldest: a GHashTable with g_str_hash() spent about 1,900
 * instructions per publish on the 36-character ids (callgrind). This is an
 * open-addressing table with linear probing, at most half full, keyed by a
 * hash of the id computed once per publish and seeded per topic. */
typedef struct {
  guint64        hash;
  PubsubMessage *message;   /* NULL: empty */
} IdSlot;

typedef struct {
  IdSlot  *slots;      /* owned, capacity entries */
  guint    capacity;   /* 0 or a power of two */
  guint    count;
  guint64  seed;
} IdIndex;

/* A UUID's text, 36 bytes, in five loads. */
static guint64
id_hash (const IdIndex *index,
         const char    *id)
{
  const guint64 k = G_GUINT64_CONSTANT (0x9E3779B97F4A7C15);
  guint64 words[4];
  guint32 tail;
  guint64 h = index->seed;

  memcpy (words, id, sizeof words);
  memcpy (&tail, id + sizeof words, sizeof tail);
  for (guint i = 0; i < G_N_ELEMENTS (words); i++)
    h = (h ^ words[i]) * k;
  h = (h ^ tail) * k;
  return h ^ (h >> 32);
}

static PubsubMessage *
id_index_lookup (const IdIndex *index,
                 const char    *id,
                 guint64        hash)
{
  guint mask = index->capacity - 1;

  if (index->count == 0)
    return NULL;
  for (guint i = (guint) hash & mask; index->slots[i].message != NULL; i = (i + 1) & mask)
    if (index->slots[i].hash == hash &&
        memcmp (pubsub_message_get_id (index->slots[i].message), id, PUBSUB_UUID_LEN) == 0)
      return index->slots[i].message;
  return NULL;
}

static void
id_index_put (IdIndex       *index,
              guint64        hash,
              PubsubMessage *message)
{
  guint mask = index->capacity - 1;
  guint i = (guint) hash & mask;

  while (index->slots[i].message != NULL)
    i = (i + 1) & mask;
  index->slots[i] = (IdSlot) { hash, message };
  index->count++;
}

/* @message's id must not be in the index yet. */
static void
id_index_insert (IdIndex       *index,
                 guint64        hash,
                 PubsubMessage *message)
{
  if (2 * (index->count + 1) > index->capacity)
    {
      IdSlot *old = index->slots;
      guint old_capacity = index->capacity;

      index->capacity = MAX (16, 2 * old_capacity);
      index->slots = g_new0 (IdSlot, index->capacity);
      index->count = 0;
      for (guint i = 0; i < old_capacity; i++)
        if (old[i].message != NULL)
          id_index_put (index, old[i].hash, old[i].message);
      g_free (old);
    }
  id_index_put (index, hash, message);
}

/* Drops @message if the index has it (backward-shift deletion: no
 * tombstones, so lookups never get longer). */
static void
id_index_remove (IdIndex       *index,
                 PubsubMessage *message)
{
  guint mask = index->capacity - 1;
  guint i;

  if (index->count == 0)
    return;
  i = (guint) id_hash (index, pubsub_message_get_id (message)) & mask;
  while (index->slots[i].message != message)
    {
      if (index->slots[i].message == NULL)
        return;
      i = (i + 1) & mask;
    }
  for (guint j = (i + 1) & mask; index->slots[j].message != NULL; j = (j + 1) & mask)
    {
      guint home = (guint) index->slots[j].hash & mask;

      /* The entry at j may fill the hole at i unless its home lies
       * cyclically in (i, j]. */
      if (((j - home) & mask) >= ((j - i) & mask))
        {
          index->slots[i] = index->slots[j];
          i = j;
        }
    }
  index->slots[i] = (IdSlot) { 0, NULL };
  index->count--;
}

/* ---------------------------------------------------------------------- */

struct _PubsubTopic {
  GObject         parent_instance;

  char           *name;            /* owned */
  char            epoch[PUBSUB_EPOCH_LEN + 1];
  PubsubMessage **history;         /* owned ring of history_size entries */
  IdIndex         ids;             /* the ids of the messages in history */
  guint           history_size;
  guint           history_start;   /* index of the oldest entry */
  guint           history_length;
  guint           subscribers;
  guint64         messages;        /* also the last seq */
  PubsubTopicWatchFunc subscribers_watch;   /* nullable: the owner's */
  gpointer        subscribers_watch_data;

  /* The fan-out: a doubly linked list of listeners, oldest first. */
  PubsubTopicListener *listeners;
  PubsubTopicListener *last_listener;
  guint64         listener_serial;  /* the next listener's */
  struct ListenerWalk *walks;       /* in progress, innermost first */
};

/* A walk over the listeners in progress: removing the listener it is about
 * to visit moves it on. */
typedef struct ListenerWalk {
  PubsubTopicListener *next;
  struct ListenerWalk *outer;
} ListenerWalk;

G_DEFINE_FINAL_TYPE (PubsubTopic, pubsub_topic, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_NAME,
  PROP_HISTORY_SIZE,
  PROP_EPOCH,
  PROP_SUBSCRIBERS,
  PROP_MESSAGES,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

enum {
  SIGNAL_EVENT,
  SIGNAL_DELETED,
  SIGNAL_SUBSCRIBER_JOINED,
  SIGNAL_SUBSCRIBER_LEFT,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static void
pubsub_topic_finalize (GObject *object)
{
  PubsubTopic *self = PUBSUB_TOPIC (object);

  for (guint i = 0; i < self->history_length; i++)
    pubsub_message_unref (self->history[(self->history_start + i) % self->history_size]);
  g_free (self->history);
  g_free (self->ids.slots);
  g_free (self->name);

  G_OBJECT_CLASS (pubsub_topic_parent_class)->finalize (object);
}

static void
pubsub_topic_constructed (GObject *object)
{
  PubsubTopic *self = PUBSUB_TOPIC (object);

  G_OBJECT_CLASS (pubsub_topic_parent_class)->constructed (object);

  if (self->history_size > 0)
    self->history = g_new0 (PubsubMessage *, self->history_size);
}

static void
pubsub_topic_get_property (GObject    *object,
                           guint       prop_id,
                           GValue     *value,
                           GParamSpec *pspec)
{
  PubsubTopic *self = PUBSUB_TOPIC (object);

  switch (prop_id)
    {
    case PROP_NAME:
      g_value_set_string (value, self->name);
      break;
    case PROP_HISTORY_SIZE:
      g_value_set_uint (value, self->history_size);
      break;
    case PROP_EPOCH:
      g_value_set_string (value, self->epoch);
      break;
    case PROP_SUBSCRIBERS:
      g_value_set_uint (value, self->subscribers);
      break;
    case PROP_MESSAGES:
      g_value_set_uint64 (value, self->messages);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
pubsub_topic_set_property (GObject      *object,
                           guint         prop_id,
                           const GValue *value,
                           GParamSpec   *pspec)
{
  PubsubTopic *self = PUBSUB_TOPIC (object);

  switch (prop_id)
    {
    case PROP_NAME:
      self->name = g_value_dup_string (value);
      break;
    case PROP_HISTORY_SIZE:
      self->history_size = g_value_get_uint (value);
      break;
    case PROP_EPOCH:
      if (g_value_get_string (value) != NULL)
        {
          g_return_if_fail (pubsub_epoch_is_valid (g_value_get_string (value)));
          memcpy (self->epoch, g_value_get_string (value), sizeof self->epoch);
        }
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
pubsub_topic_class_init (PubsubTopicClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->constructed = pubsub_topic_constructed;
  object_class->finalize = pubsub_topic_finalize;
  object_class->get_property = pubsub_topic_get_property;
  object_class->set_property = pubsub_topic_set_property;

  properties[PROP_NAME] =
    g_param_spec_string ("name", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  properties[PROP_HISTORY_SIZE] =
    g_param_spec_uint ("history-size", NULL, NULL,
                       pubsub_setting_get_min (PUBSUB_SETTING_HISTORY_SIZE),
                       pubsub_setting_get_max (PUBSUB_SETTING_HISTORY_SIZE),
                       pubsub_setting_get_default_uint (PUBSUB_SETTING_HISTORY_SIZE),
                       G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  /* Chosen by the engine (a cluster's is shared); random when unset. */
  properties[PROP_EPOCH] =
    g_param_spec_string ("epoch", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  properties[PROP_SUBSCRIBERS] =
    g_param_spec_uint ("subscribers", NULL, NULL, 0, G_MAXUINT, 0,
                       G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  properties[PROP_MESSAGES] =
    g_param_spec_uint64 ("messages", NULL, NULL, 0, G_MAXUINT64, 0,
                         G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * PubsubTopic::event:
   * @message: the message just published
   *
   * The fan-out: emitted once per publish, after the history is updated.
   */
  signals[SIGNAL_EVENT] =
    g_signal_new ("event", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL,
                  G_TYPE_NONE, 1, PUBSUB_TYPE_MESSAGE | G_SIGNAL_TYPE_STATIC_SCOPE);

  /**
   * PubsubTopic::deleted:
   *
   * Emitted when the broker removes the topic; subscribers drop it.
   */
  signals[SIGNAL_DELETED] =
    g_signal_new ("deleted", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 0);

  /**
   * PubsubTopic::subscriber-joined:
   * @client_id: the client's name for itself
   *
   * Emitted after a subscription was added (and counted).
   */
  signals[SIGNAL_SUBSCRIBER_JOINED] =
    g_signal_new ("subscriber-joined", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL,
                  G_TYPE_NONE, 1, G_TYPE_STRING | G_SIGNAL_TYPE_STATIC_SCOPE);

  /**
   * PubsubTopic::subscriber-left:
   * @client_id: the client's name for itself
   * @reason: a #PubsubLeaveReason
   *
   * Emitted after a subscription was removed (and no longer counted).
   */
  signals[SIGNAL_SUBSCRIBER_LEFT] =
    g_signal_new ("subscriber-left", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL,
                  G_TYPE_NONE, 2, G_TYPE_STRING | G_SIGNAL_TYPE_STATIC_SCOPE,
                  PUBSUB_TYPE_LEAVE_REASON);
}

static void
pubsub_topic_init (PubsubTopic *self)
{
  pubsub_epoch_generate (self->epoch);
  self->ids.seed = ((guint64) g_random_int () << 32) | g_random_int ();
}

PubsubTopic *
pubsub_topic_new (const char *name,
                  guint       history_size)
{
  return pubsub_topic_new_with_epoch (name, history_size, NULL);
}

/**
 * pubsub_topic_new_with_epoch:
 * @epoch: (nullable): PUBSUB_EPOCH_LEN lowercase hex digits, or %NULL for
 *   a random one
 */
PubsubTopic *
pubsub_topic_new_with_epoch (const char *name,
                             guint       history_size,
                             const char *epoch)
{
  return g_object_new (PUBSUB_TYPE_TOPIC,
                       "name", name,
                       "history-size", history_size,
                       "epoch", epoch,
                       NULL);
}

/**
 * pubsub_epoch_generate:
 * @out: room for PUBSUB_EPOCH_LEN + 1 characters
 *
 * A new random epoch: a topic created again under the same name, or by a
 * restarted server, never looks like the one a client knew.
 */
void
pubsub_epoch_generate (char *out)
{
  g_snprintf (out, PUBSUB_EPOCH_LEN + 1, "%08x%08x", g_random_int (), g_random_int ());
}

gboolean
pubsub_epoch_is_valid (const char *epoch)
{
  gsize i;

  for (i = 0; epoch[i] != '\0'; i++)
    if (!g_ascii_isxdigit (epoch[i]) || g_ascii_isupper (epoch[i]))
      return FALSE;
  return i == PUBSUB_EPOCH_LEN;
}

const char *
pubsub_topic_get_name (PubsubTopic *self)
{
  g_return_val_if_fail (PUBSUB_IS_TOPIC (self), NULL);

  return self->name;
}

guint
pubsub_topic_get_subscribers (PubsubTopic *self)
{
  g_return_val_if_fail (PUBSUB_IS_TOPIC (self), 0);

  return self->subscribers;
}

guint64
pubsub_topic_get_messages (PubsubTopic *self)
{
  g_return_val_if_fail (PUBSUB_IS_TOPIC (self), 0);

  return self->messages;
}

guint
pubsub_topic_get_history_length (PubsubTopic *self)
{
  g_return_val_if_fail (PUBSUB_IS_TOPIC (self), 0);

  return self->history_length;
}

/**
 * pubsub_topic_get_history_item:
 * @index: 0 for the oldest stored message
 *
 * Returns: (transfer none): the message
 */
PubsubMessage *
pubsub_topic_get_history_item (PubsubTopic *self,
                               guint        index)
{
  g_return_val_if_fail (PUBSUB_IS_TOPIC (self), NULL);
  g_return_val_if_fail (index < self->history_length, NULL);

  return self->history[(self->history_start + index) % self->history_size];
}

static void
history_forget (PubsubTopic   *self,
                PubsubMessage *message)
{
  id_index_remove (&self->ids, message);
  pubsub_message_unref (message);
}

static void
history_append (PubsubTopic   *self,
                PubsubMessage *message,
                guint64        id_hash)
{
  guint slot;

  if (self->history_size == 0)
    return;

  if (self->history_length == self->history_size)
    {
      slot = self->history_start;
      history_forget (self, self->history[slot]);
      self->history_start = (self->history_start + 1) % self->history_size;
    }
  else
    {
      slot = (self->history_start + self->history_length) % self->history_size;
      self->history_length++;
    }
  self->history[slot] = pubsub_message_ref (message);
  id_index_insert (&self->ids, id_hash, message);
}

/* Calls every listener there was when the walk began, oldest first. The
 * list may change under the walk: a listener that turns slow drops every
 * subscription of its client, this topic's included. */
static void fan_out (PubsubTopic *self, PubsubMessage *message);

static void
store_and_fan_out (PubsubTopic   *self,
                   PubsubMessage *message,
                   guint64        hash)
{
  history_append (self, message, hash);
  self->messages++;
  fan_out (self, message);
  /* For other observers than subscribers; g_signal_has_handler_pending()
   * would cost more (~180 instructions) than emitting to nobody (~135). */
  g_signal_emit (self, signals[SIGNAL_EVENT], 0, message);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_MESSAGES]);
}

static void
fan_out (PubsubTopic   *self,
         PubsubMessage *message)
{
  guint64 end = self->listener_serial;
  ListenerWalk walk = { self->listeners, self->walks };

  self->walks = &walk;
  while (walk.next != NULL && walk.next->serial < end)
    {
      PubsubTopicListener *listener = walk.next;

      walk.next = listener->next;
      listener->event (self, message, listener->user_data);
    }
  self->walks = walk.outer;
}

typedef enum {
  LISTENER_DELETED,
  LISTENER_LOST,
  LISTENER_UNAVAILABLE,
  LISTENER_AVAILABLE,
} ListenerCall;

/* Like fan_out(), for the rare calls. */
static void
walk_listeners (PubsubTopic  *self,
                ListenerCall  call)
{
  guint64 end = self->listener_serial;
  ListenerWalk walk = { self->listeners, self->walks };

  self->walks = &walk;
  while (walk.next != NULL && walk.next->serial < end)
    {
      PubsubTopicListener *listener = walk.next;

      walk.next = listener->next;
      switch (call)
        {
        case LISTENER_DELETED:
          listener->deleted (self, listener->user_data);
          break;
        case LISTENER_LOST:
          if (listener->lost != NULL)
            listener->lost (self, listener->user_data);
          break;
        case LISTENER_UNAVAILABLE:
        case LISTENER_AVAILABLE:
          if (listener->availability != NULL)
            listener->availability (self, call == LISTENER_AVAILABLE, listener->user_data);
          break;
        default:
          g_assert_not_reached ();
        }
    }
  self->walks = walk.outer;
}

/**
 * pubsub_topic_add_listener:
 * @listener: with its event, deleted and user_data set; it must stay where
 *   it is until removed
 *
 * Adds a subscription's listener to the fan-out, last.
 */
void
pubsub_topic_add_listener (PubsubTopic         *self,
                           PubsubTopicListener *listener)
{
  g_return_if_fail (PUBSUB_IS_TOPIC (self));
  g_return_if_fail (listener->event != NULL && listener->deleted != NULL);

  listener->serial = self->listener_serial++;
  listener->next = NULL;
  listener->prev = self->last_listener;
  if (self->last_listener != NULL)
    self->last_listener->next = listener;
  else
    self->listeners = listener;
  self->last_listener = listener;
}

/**
 * pubsub_topic_remove_listener:
 * @listener: one added to this topic
 *
 * Safe from inside a listener's call, for any listener.
 */
void
pubsub_topic_remove_listener (PubsubTopic         *self,
                              PubsubTopicListener *listener)
{
  g_return_if_fail (PUBSUB_IS_TOPIC (self));

  for (ListenerWalk *walk = self->walks; walk != NULL; walk = walk->outer)
    if (walk->next == listener)
      walk->next = listener->next;
  if (listener->prev != NULL)
    listener->prev->next = listener->next;
  else
    self->listeners = listener->next;
  if (listener->next != NULL)
    listener->next->prev = listener->prev;
  else
    self->last_listener = listener->prev;
  listener->prev = listener->next = NULL;
}

/**
 * pubsub_topic_publish:
 * @id: a valid UUID
 * @payload: validated JSON text, forwarded unchanged
 * @payload_len: its length
 * @encode: how the message becomes bytes (once)
 * @out_duplicate: (out) (optional): whether @id was already in the history
 *
 * Gives the message the next seq, stores it in the history, counts it and
 * fans it out. A message whose id is still in the history is not published
 * again: the stored one is returned, so a client can retry a publish whose
 * ack it never saw. Single-threaded like the rest of the daemon, so a
 * subscriber replaying the history can never miss or repeat a message
 * published around its subscription.
 *
 * Returns: (transfer full): the message published, or the stored duplicate
 */
PubsubMessage *
pubsub_topic_publish (PubsubTopic          *self,
                      const char           *id,
                      const char           *payload,
                      gsize                 payload_len,
                      PubsubMessageEncoder  encode,
                      gboolean             *out_duplicate)
{
  PubsubMessage *message;
  guint64 hash;
  PubsubMessageInfo info = {
    .topic = self->name,
    .epoch = self->epoch,
    .id = id,
    .payload = payload,
    .payload_len = payload_len,
  };

  g_return_val_if_fail (PUBSUB_IS_TOPIC (self), NULL);

  hash = id_hash (&self->ids, id);
  message = id_index_lookup (&self->ids, id, hash);
  if (out_duplicate != NULL)
    *out_duplicate = message != NULL;
  if (message != NULL)
    return pubsub_message_ref (message);

  info.seq = self->messages + 1;
  info.time_us = g_get_real_time ();
  message = pubsub_message_new (&info, encode);
  store_and_fan_out (self, message, hash);
  return message;
}

/**
 * pubsub_topic_apply_message:
 * @message: a message the engine stored, with the seq it gave it
 *
 * For an engine that decides seq elsewhere (a cluster): appends @message
 * to the replica and fans it out, like a local publish.
 *
 * Returns: %FALSE, doing nothing, unless @message's seq is the next one
 */
gboolean
pubsub_topic_apply_message (PubsubTopic   *self,
                            PubsubMessage *message)
{
  g_return_val_if_fail (PUBSUB_IS_TOPIC (self), FALSE);

  if (pubsub_message_get_seq (message) != self->messages + 1)
    return FALSE;
  store_and_fan_out (self, message, id_hash (&self->ids, pubsub_message_get_id (message)));
  return TRUE;
}

static void
history_clear (PubsubTopic *self)
{
  for (guint i = 0; i < self->history_length; i++)
    history_forget (self, self->history[(self->history_start + i) % self->history_size]);
  self->history_start = 0;
  self->history_length = 0;
}

/**
 * pubsub_topic_apply_reset:
 * @epoch: the epoch from now on (the same one when only messages were lost)
 * @last_seq: the seq before the next message the topic will get
 *
 * Messages were lost (SPEC §9): the engine could not give this replica
 * every message after its last one, or the topic got a new epoch. The
 * history is emptied and every listener told, so that no subscriber sees
 * a silent gap.
 */
void
pubsub_topic_apply_reset (PubsubTopic *self,
                          const char  *epoch,
                          guint64      last_seq)
{
  g_return_if_fail (PUBSUB_IS_TOPIC (self));
  g_return_if_fail (pubsub_epoch_is_valid (epoch));

  history_clear (self);
  memcpy (self->epoch, epoch, sizeof self->epoch);
  self->messages = last_seq;
  g_debug ("topic '%s': messages lost, continuing at epoch %s seq %" G_GUINT64_FORMAT,
           self->name, epoch, last_seq + 1);
  walk_listeners (self, LISTENER_LOST);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_MESSAGES]);
}

/**
 * pubsub_topic_apply_availability:
 * @available: whether the engine can serve the topic
 *
 * Tells every listener that the cluster went away or came back.
 */
void
pubsub_topic_apply_availability (PubsubTopic *self,
                                 gboolean     available)
{
  g_return_if_fail (PUBSUB_IS_TOPIC (self));

  walk_listeners (self, available ? LISTENER_AVAILABLE : LISTENER_UNAVAILABLE);
}

/**
 * pubsub_topic_get_epoch:
 *
 * Returns: the PUBSUB_EPOCH_LEN lowercase hex digits chosen at creation
 */
const char *
pubsub_topic_get_epoch (PubsubTopic *self)
{
  g_return_val_if_fail (PUBSUB_IS_TOPIC (self), NULL);

  return self->epoch;
}

/**
 * pubsub_topic_get_first_seq:
 *
 * Returns: the seq of the oldest stored message; the last seq + 1 when
 *   nothing is stored
 */
guint64
pubsub_topic_get_first_seq (PubsubTopic *self)
{
  g_return_val_if_fail (PUBSUB_IS_TOPIC (self), 0);

  return self->messages - self->history_length + 1;
}

/**
 * pubsub_topic_get_message:
 * @seq: a seq between the first stored and the last
 *
 * Returns: (transfer none): the stored message with that seq
 */
PubsubMessage *
pubsub_topic_get_message (PubsubTopic *self,
                          guint64      seq)
{
  guint64 first = pubsub_topic_get_first_seq (self);

  g_return_val_if_fail (seq >= first && seq <= self->messages, NULL);

  return pubsub_topic_get_history_item (self, (guint) (seq - first));
}

/**
 * pubsub_topic_replay_start:
 * @since: (nullable): where the client says it stopped
 * @last_n: how many stored messages to replay when @since cannot be honoured
 * @out_recovered: (out): whether @since was honoured
 *
 * Where a new subscription's replay begins (SPEC §8): right after
 * @since->seq when it names this epoch and every message after it is still
 * stored; otherwise the last min(@last_n, stored) messages.
 *
 * Returns: the seq of the last message *not* replayed (the replay is
 *   everything after it, up to the last seq)
 */
guint64
pubsub_topic_replay_start (PubsubTopic          *self,
                           const PubsubPosition *since,
                           guint64               last_n,
                           gboolean             *out_recovered)
{
  g_return_val_if_fail (PUBSUB_IS_TOPIC (self), 0);

  *out_recovered = since != NULL &&
                   strcmp (since->epoch, self->epoch) == 0 &&
                   since->seq <= self->messages &&
                   since->seq + 1 >= pubsub_topic_get_first_seq (self);
  if (*out_recovered)
    return since->seq;
  return self->messages - MIN (last_n, (guint64) self->history_length);
}

/**
 * pubsub_topic_add_subscriber:
 * @client_id: the subscribing client's name for itself
 *
 * Counts a subscription and announces it ("subscriber-joined").
 */
void
pubsub_topic_add_subscriber (PubsubTopic *self,
                             const char  *client_id)
{
  g_return_if_fail (PUBSUB_IS_TOPIC (self));
  g_return_if_fail (client_id != NULL);

  self->subscribers++;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_SUBSCRIBERS]);
  if (self->subscribers_watch != NULL)
    self->subscribers_watch (self, self->subscribers_watch_data);
  g_signal_emit (self, signals[SIGNAL_SUBSCRIBER_JOINED], 0, client_id);
}

/**
 * pubsub_topic_remove_subscriber:
 * @client_id: the client's name for itself, as it subscribed
 * @reason: why the subscription ends
 *
 * Stops counting a subscription and announces it ("subscriber-left").
 */
void
pubsub_topic_remove_subscriber (PubsubTopic       *self,
                                const char        *client_id,
                                PubsubLeaveReason  reason)
{
  g_return_if_fail (PUBSUB_IS_TOPIC (self));
  g_return_if_fail (client_id != NULL);
  g_return_if_fail (self->subscribers > 0);

  self->subscribers--;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_SUBSCRIBERS]);
  if (self->subscribers_watch != NULL)
    self->subscribers_watch (self, self->subscribers_watch_data);
  g_signal_emit (self, signals[SIGNAL_SUBSCRIBER_LEFT], 0, client_id, reason);
}

/**
 * pubsub_topic_set_subscribers_watch:
 * @func: (nullable): called after every change of the subscriber count,
 *   or %NULL to stop
 *
 * For the topic's owner (the broker), which sums the counts. A plain
 * callback rather than a notify::subscribers handler: GLib 2.74 skips most
 * of g_object_notify() for an object without any notify handler, and every
 * publish notifies "messages" (about 160 instructions instead of 770).
 */
void
pubsub_topic_set_subscribers_watch (PubsubTopic          *self,
                                    PubsubTopicWatchFunc  func,
                                    gpointer              user_data)
{
  g_return_if_fail (PUBSUB_IS_TOPIC (self));

  self->subscribers_watch = func;
  self->subscribers_watch_data = user_data;
}

/**
 * pubsub_topic_mark_deleted:
 *
 * Called by the broker when it drops the topic: tells every subscriber.
 */
void
pubsub_topic_mark_deleted (PubsubTopic *self)
{
  g_return_if_fail (PUBSUB_IS_TOPIC (self));

  /* Each listener usually removes itself. */
  walk_listeners (self, LISTENER_DELETED);
  g_signal_emit (self, signals[SIGNAL_DELETED], 0);
}
