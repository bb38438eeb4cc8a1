/* pubsub-redis-replica.c: keeping the broker a replica of the cluster
 *
 * Every node hears every change on one channel, P:bus, and keeps every
 * topic and its history, so that reads (subscribe and replay, since,
 * last_n, GET messages, /topics) are answered from memory, at once. The
 * trade-off against a channel per topic (Centrifugo's way): each node
 * receives each publish once, whether it has 0 or 10 000 subscribers to
 * the topic, and every node holds the whole history; in exchange, reads
 * never wait for Redis, ordering across topics is one stream, and a node
 * learns of a gap from the seq alone.
 *
 * A gap (an event whose seq is past the next one) is filled from the
 * topic's stream while the topic's live events wait; history that Redis no
 * longer has becomes a reset (messages_lost), never a silent gap. After a
 * (re)connect the hello script either restores the marker and this node's
 * topics (Redis lost its data) or returns a snapshot this replica is
 * reconciled with (SPEC §9).
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <string.h>

#include "pubsub-event-text.h"
#include "pubsub-redis-private.h"

/* A topic whose gap is being filled from its stream. */
typedef struct {
  PubsubRedisEngine *engine;
  char              *name;
  char               epoch[PUBSUB_EPOCH_LEN + 1];
  guint64            until;      /* the seq Redis had (catch-up), or 0 */
  gboolean           cancelled;  /* the topic changed meanwhile */
  GQueue             waiting;    /* PubsubMessage *: live events, in order */
} Fetch;

static void
fetch_free (Fetch *fetch)
{
  g_queue_clear_full (&fetch->waiting, (GDestroyNotify) pubsub_message_unref);
  g_free (fetch->name);
  g_free (fetch);
}

/* Forgets the fetch of @name, if any; its reply will be dropped. */
static void
fetch_cancel (PubsubRedisEngine *self,
              const char        *name)
{
  Fetch *fetch = g_hash_table_lookup (self->fetches, name);

  if (fetch == NULL)
    return;
  g_hash_table_remove (self->fetches, name);
  fetch->cancelled = TRUE;
  g_queue_clear_full (&fetch->waiting, (GDestroyNotify) pubsub_message_unref);
}

gboolean
pubsub_redis_replica_is_busy (PubsubRedisEngine *self)
{
  return self->n_busy > 0;
}

/**
 * pubsub_redis_replica_reset:
 *
 * The connections are gone: what was waiting for them is dropped (their
 * replies come back NULL and are ignored).
 */
void
pubsub_redis_replica_reset (PubsubRedisEngine *self)
{
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, self->fetches);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      Fetch *fetch = value;

      fetch->cancelled = TRUE;
      g_queue_clear_full (&fetch->waiting, (GDestroyNotify) pubsub_message_unref);
      g_hash_table_iter_remove (&iter);
    }
  g_queue_clear_full (&self->backlog, (GDestroyNotify) g_bytes_unref);
}

/* Applies @message after whatever the topic has, never leaving a silent
 * gap: what cannot be filled any more is a reset. */
static void
apply_in_order (PubsubTopic   *topic,
                const char    *epoch,
                PubsubMessage *message)
{
  guint64 seq = pubsub_message_get_seq (message);
  guint64 last = pubsub_topic_get_messages (topic);

  if (seq <= last)
    return;
  if (seq > last + 1)
    pubsub_topic_apply_reset (topic, epoch, seq - 1);
  pubsub_topic_apply_message (topic, message);
}

/* The live topic @fetch is for, if it is still the same one. */
static PubsubTopic *
fetch_topic (Fetch *fetch)
{
  PubsubTopic *topic;

  if (fetch->cancelled || fetch->engine->broker == NULL)
    return NULL;
  topic = pubsub_broker_lookup_topic (fetch->engine->broker, fetch->name);
  if (topic == NULL || strcmp (pubsub_topic_get_epoch (topic), fetch->epoch) != 0)
    return NULL;
  return topic;
}

/* One stream entry: [id, [field, value, …]]; the event is field "e". */
static void
apply_entry (Fetch            *fetch,
             PubsubTopic      *topic,
             const redisReply *entry)
{
  const redisReply *fields;
  char name[PUBSUB_TOPIC_NAME_MAX + 1];
  char epoch[PUBSUB_EPOCH_LEN + 1];

  if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2 ||
      entry->element[1]->type != REDIS_REPLY_ARRAY)
    return;
  fields = entry->element[1];
  for (gsize i = 0; i + 1 < fields->elements; i += 2)
    {
      g_autoptr(PubsubMessage) message = NULL;
      const redisReply *key = fields->element[i];
      const redisReply *value = fields->element[i + 1];

      if (key->type != REDIS_REPLY_STRING || key->len != 1 || key->str[0] != 'e' ||
          value->type != REDIS_REPLY_STRING)
        continue;
      message = pubsub_event_text_to_message (value->str, value->len, name, epoch, NULL);
      if (message != NULL && strcmp (name, fetch->name) == 0 && strcmp (epoch, fetch->epoch) == 0)
        apply_in_order (topic, fetch->epoch, message);
    }
}

static void
fetch_apply (Fetch            *fetch,
             const redisReply *r)
{
  PubsubTopic *topic = fetch_topic (fetch);
  PubsubMessage *message;

  if (topic == NULL)
    return;
  for (gsize i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++)
    apply_entry (fetch, topic, r->element[i]);
  /* Redis had more than it still stores (trimmed, or history-size 0). */
  if (fetch->until > pubsub_topic_get_messages (topic))
    pubsub_topic_apply_reset (topic, fetch->epoch, fetch->until);
  while ((message = g_queue_pop_head (&fetch->waiting)) != NULL)
    {
      apply_in_order (topic, fetch->epoch, message);
      pubsub_message_unref (message);
    }
}

static void
on_fetch_reply (redisAsyncContext *ac,
                void              *reply,
                void              *privdata)
{
  Fetch *fetch = privdata;
  PubsubRedisEngine *self = fetch->engine;
  redisReply *r = reply;

  if (!fetch->cancelled)
    g_hash_table_remove (self->fetches, fetch->name);
  self->n_busy--;
  if (r == NULL)
    pubsub_redis_engine_lost (self, "connection lost");
  else
    fetch_apply (fetch, r);
  fetch_free (fetch);
  if (r != NULL)
    pubsub_redis_engine_busy_done (self);
}

/* Reads the topic's stream from @from on; live events wait meanwhile. */
static Fetch *
fetch_start (PubsubRedisEngine *self,
             PubsubTopic       *topic,
             guint64            from,
             guint64            until)
{
  Fetch *fetch = g_hash_table_lookup (self->fetches, pubsub_topic_get_name (topic));
  g_autofree char *stream = NULL;
  char start[24];
  const char *argv[4] = { "XRANGE", NULL, start, "+" };
  size_t argvlen[4];

  if (fetch != NULL)
    return fetch;
  fetch = g_new0 (Fetch, 1);
  fetch->engine = self;
  fetch->name = g_strdup (pubsub_topic_get_name (topic));
  memcpy (fetch->epoch, pubsub_topic_get_epoch (topic), sizeof fetch->epoch);
  fetch->until = until;
  g_queue_init (&fetch->waiting);
  stream = pubsub_redis_engine_topic_key (self, "s", fetch->name);
  g_snprintf (start, sizeof start, "%" G_GUINT64_FORMAT, from);
  argv[1] = stream;
  for (guint i = 0; i < 4; i++)
    argvlen[i] = strlen (argv[i]);
  if (!pubsub_redis_engine_command (self, on_fetch_reply, fetch, 4, argv, argvlen))
    {
      fetch_free (fetch);
      pubsub_redis_engine_lost (self, "connection lost");
      return NULL;
    }
  g_hash_table_insert (self->fetches, fetch->name, fetch);
  self->n_busy++;
  return fetch;
}

/* "e" + event text */
static void
on_event (PubsubRedisEngine *self,
          const char        *text,
          gsize              len)
{
  char name[PUBSUB_TOPIC_NAME_MAX + 1];
  char epoch[PUBSUB_EPOCH_LEN + 1];
  g_autoptr(PubsubMessage) message = NULL;
  PubsubTopic *topic;
  Fetch *fetch;
  guint64 last;

  message = pubsub_event_text_to_message (text, len, name, epoch, NULL);
  if (message == NULL)
    {
      g_debug ("cluster: ignoring a malformed event on the bus");
      return;
    }
  topic = pubsub_broker_lookup_topic (self->broker, name);
  /* No such topic, or another incarnation of it: the bus told of that
   * change before this event, so the event is not for this replica. */
  if (topic == NULL || strcmp (pubsub_topic_get_epoch (topic), epoch) != 0)
    return;
  fetch = g_hash_table_lookup (self->fetches, name);
  last = pubsub_topic_get_messages (topic);
  if (fetch == NULL && pubsub_message_get_seq (message) <= last + 1)
    {
      apply_in_order (topic, epoch, message);
      return;
    }
  if (fetch == NULL)
    fetch = fetch_start (self, topic, last + 1, 0);
  if (fetch != NULL)
    g_queue_push_tail (&fetch->waiting, g_steal_pointer (&message));
}

/* RS, which no JSON text holds: it comes before each event of a "b"
 * message. */
#define BATCH_SEPARATOR '\x1e'

/* Whether every RS of a "b" message (after the "b") starts a non-empty
 * event. memchr, not memmem: this runs over every batch on every node. */
static gboolean
batch_is_well_formed (const char *text,
                      gsize       len)
{
  const char *end = text + len;
  const char *p = text;

  if (len < 2 || text[0] != BATCH_SEPARATOR)
    return FALSE;
  while ((p = memchr (p + 1, BATCH_SEPARATOR, (gsize) (end - p - 1))) != NULL)
    if (p[-1] == BATCH_SEPARATOR || p + 1 == end)
      return FALSE;
  return text[len - 1] != BATCH_SEPARATOR;
}

/* "b" + the events of one publish batch, in order, each after an RS and
 * parsed strictly as one "e" is (an RS inside one would fail its JSON
 * check). An empty event is a malformed batch, ignored whole. */
static void
on_batch (PubsubRedisEngine *self,
          const char        *text,
          gsize              len)
{
  const char *end = text + len;
  const char *p = text + 1;

  if (!batch_is_well_formed (text, len))
    {
      g_debug ("cluster: ignoring a malformed batch on the bus");
      return;
    }
  while (p < end)
    {
      const char *sep = memchr (p, BATCH_SEPARATOR, (gsize) (end - p));
      const char *stop = sep != NULL ? sep : end;

      on_event (self, p, (gsize) (stop - p));
      p = stop + 1;
    }
}

/* "name epoch" of a c, d or r message. */
static gboolean
split_name_epoch (const char *text,
                  gsize       len,
                  char       *name,
                  char       *epoch)
{
  const char *space = memchr (text, ' ', len);
  gsize name_len;

  if (space == NULL)
    return FALSE;
  name_len = (gsize) (space - text);
  if (!pubsub_topic_name_is_valid (text, name_len) ||
      len - name_len - 1 != PUBSUB_EPOCH_LEN)
    return FALSE;
  memcpy (name, text, name_len);
  name[name_len] = '\0';
  memcpy (epoch, space + 1, PUBSUB_EPOCH_LEN);
  epoch[PUBSUB_EPOCH_LEN] = '\0';
  return pubsub_epoch_is_valid (epoch);
}

/* The topic goes on at @epoch from seq 0: a new epoch after data was lost
 * (r), or found on reconnect. */
static PubsubTopic *
apply_new_epoch (PubsubRedisEngine *self,
                 const char        *name,
                 const char        *epoch)
{
  PubsubTopic *topic = pubsub_broker_lookup_topic (self->broker, name);

  if (topic == NULL)
    return pubsub_broker_apply_created (self->broker, name, epoch);
  if (strcmp (pubsub_topic_get_epoch (topic), epoch) != 0)
    {
      fetch_cancel (self, name);
      pubsub_topic_apply_reset (topic, epoch, 0);
    }
  return topic;
}

static void
on_topic_change (PubsubRedisEngine *self,
                 char               kind,
                 const char        *text,
                 gsize              len)
{
  char name[PUBSUB_TOPIC_NAME_MAX + 1];
  char epoch[PUBSUB_EPOCH_LEN + 1];
  PubsubTopic *topic;

  if (!split_name_epoch (text, len, name, epoch))
    {
      g_debug ("cluster: ignoring a malformed topic change on the bus");
      return;
    }
  topic = pubsub_broker_lookup_topic (self->broker, name);
  if (kind == 'r')
    apply_new_epoch (self, name, epoch);
  else if (kind == 'c' && (topic == NULL || strcmp (pubsub_topic_get_epoch (topic), epoch) != 0))
    {
      fetch_cancel (self, name);
      pubsub_broker_apply_created (self->broker, name, epoch);
    }
  else if (kind == 'd' && topic != NULL && strcmp (pubsub_topic_get_epoch (topic), epoch) == 0)
    {
      fetch_cancel (self, name);
      pubsub_broker_apply_deleted (self->broker, name);
    }
}

/**
 * pubsub_redis_replica_on_bus:
 *
 * One message of P:bus. Before the hello's answer, kept for after it.
 */
void
pubsub_redis_replica_on_bus (PubsubRedisEngine *self,
                             const char        *text,
                             gsize              len)
{
  if (len == 0 || self->broker == NULL)
    return;
  if (!self->hello_done)
    {
      g_queue_push_tail (&self->backlog, g_bytes_new (text, len));
      return;
    }
  switch (text[0])
    {
    case 'e':
      on_event (self, text + 1, len - 1);
      break;
    case 'b':
      on_batch (self, text + 1, len - 1);
      break;
    case 'c':
    case 'd':
    case 'r':
      on_topic_change (self, text[0], text + 1, len - 1);
      break;
    case 'n':
      {
        g_autofree char *node = g_strndup (text + 1, len - 1);

        pubsub_redis_nodes_on_report (self, node);
      }
      break;
    default:
      g_debug ("cluster: ignoring an unknown message on the bus");
    }
}

/* ---------------------------------------------------------------------- */
/* Re-epoch: Redis has less of a topic than this node delivered           */

typedef struct {
  PubsubRedisEngine *engine;
  char              *name;
  char               old_epoch[PUBSUB_EPOCH_LEN + 1];
} Reepoch;

static void
catch_up (PubsubRedisEngine *self,
          PubsubTopic       *topic,
          guint64            seq)
{
  guint64 last = pubsub_topic_get_messages (topic);

  if (seq > last)
    fetch_start (self, topic, last + 1, seq);
}

static void
reepoch_apply (Reepoch          *req,
               const redisReply *r)
{
  PubsubRedisEngine *self = req->engine;
  PubsubTopic *topic = pubsub_broker_lookup_topic (self->broker, req->name);
  char epoch[PUBSUB_EPOCH_LEN + 1];

  if (topic == NULL || strcmp (pubsub_topic_get_epoch (topic), req->old_epoch) != 0)
    return;
  if (pubsub_redis_script_error_is (r, "NOTFOUND"))
    {
      pubsub_broker_apply_deleted (self->broker, req->name);
      return;
    }
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
      r->element[0]->type != REDIS_REPLY_STRING || r->element[0]->len != PUBSUB_EPOCH_LEN ||
      r->element[1]->type != REDIS_REPLY_INTEGER)
    {
      pubsub_redis_engine_lost (self, "unexpected answer from Redis");
      return;
    }
  memcpy (epoch, r->element[0]->str, PUBSUB_EPOCH_LEN);
  epoch[PUBSUB_EPOCH_LEN] = '\0';
  if (!pubsub_epoch_is_valid (epoch))
    return;
  pubsub_topic_apply_reset (topic, epoch, 0);
  catch_up (self, topic, (guint64) r->element[1]->integer);
}

static void
on_reepoch_reply (redisAsyncContext *ac,
                  void              *reply,
                  void              *privdata)
{
  Reepoch *req = privdata;
  PubsubRedisEngine *self = req->engine;

  self->n_busy--;
  if (reply == NULL)
    pubsub_redis_engine_lost (self, "connection lost");
  else if (self->broker != NULL)
    reepoch_apply (req, reply);
  g_free (req->name);
  g_free (req);
  if (reply != NULL)
    pubsub_redis_engine_busy_done (self);
}

static void
reepoch (PubsubRedisEngine *self,
         PubsubTopic       *topic)
{
  Reepoch *req = g_new0 (Reepoch, 1);
  g_autoptr(GPtrArray) args = g_ptr_array_new_with_free_func (g_free);
  char epoch[PUBSUB_EPOCH_LEN + 1];

  req->engine = self;
  req->name = g_strdup (pubsub_topic_get_name (topic));
  memcpy (req->old_epoch, pubsub_topic_get_epoch (topic), sizeof req->old_epoch);
  pubsub_epoch_generate (epoch);
  g_ptr_array_add (args, g_strdup (self->k_topics));
  g_ptr_array_add (args, g_strdup (self->k_seq));
  g_ptr_array_add (args, pubsub_redis_engine_topic_key (self, "s", req->name));
  g_ptr_array_add (args, pubsub_redis_engine_topic_key (self, "ids", req->name));
  g_ptr_array_add (args, g_strdup (self->k_bus));
  g_ptr_array_add (args, g_strdup (self->k_prev));
  g_ptr_array_add (args, g_strdup (req->name));
  g_ptr_array_add (args, g_strdup (req->old_epoch));
  g_ptr_array_add (args, g_strdup (epoch));
  if (!pubsub_redis_engine_eval (self, PUBSUB_REDIS_SCRIPT_REEPOCH, on_reepoch_reply, req, args, 6))
    {
      g_free (req->name);
      g_free (req);
      pubsub_redis_engine_lost (self, "connection lost");
      return;
    }
  self->n_busy++;
}

/* ---------------------------------------------------------------------- */
/* Hello: after every (re)connect                                         */

typedef struct {
  PubsubRedisEngine *engine;
  char              *generation;
  GPtrArray         *args;       /* 5 keys, prefix, generation, name, epoch, … */
} Hello;

static void
hello_free (Hello *hello)
{
  g_free (hello->generation);
  g_ptr_array_unref (hello->args);
  g_free (hello);
}

/* Marker gone: this node's topics were registered with the new epochs. */
static void
hello_restored (PubsubRedisEngine *self,
                Hello             *hello)
{
  for (guint i = 7; i + 1 < hello->args->len; i += 2)
    apply_new_epoch (self, g_ptr_array_index (hello->args, i),
                     g_ptr_array_index (hello->args, i + 1));
}

static guint64
seq_of (GHashTable *seqs,
        const char *name)
{
  const char *text = g_hash_table_lookup (seqs, name);

  return text != NULL ? g_ascii_strtoull (text, NULL, 10) : 0;
}

/* One topic Redis has; @reset: its epoch changed because messages were
 * lost (Redis lost data, or another node gave it a new epoch), not because
 * it was deleted and created again. */
static void
reconcile_topic (PubsubRedisEngine *self,
                 const char        *name,
                 const char        *epoch,
                 guint64            seq,
                 gboolean           reset)
{
  PubsubTopic *topic = pubsub_broker_lookup_topic (self->broker, name);
  guint64 last;

  if (topic != NULL && strcmp (pubsub_topic_get_epoch (topic), epoch) != 0 && reset)
    topic = apply_new_epoch (self, name, epoch);
  else if (topic == NULL || strcmp (pubsub_topic_get_epoch (topic), epoch) != 0)
    /* Deleted and created again meanwhile: its subscribers are told. */
    topic = pubsub_broker_apply_created (self->broker, name, epoch);
  last = pubsub_topic_get_messages (topic);
  if (seq < last)
    reepoch (self, topic);
  else
    catch_up (self, topic, seq);
}

/* Whether the epoch this node knows for @name is the one Redis's last
 * re-epoch replaced. */
static gboolean
was_reset (PubsubRedisEngine *self,
           GHashTable        *prevs,
           const char        *name)
{
  PubsubTopic *topic = pubsub_broker_lookup_topic (self->broker, name);
  const char *prev = g_hash_table_lookup (prevs, name);

  return topic != NULL && prev != NULL && strcmp (pubsub_topic_get_epoch (topic), prev) == 0;
}

static gboolean
pair_is_strings (const redisReply *array,
                 gsize             i)
{
  return array->element[i]->type == REDIS_REPLY_STRING &&
         array->element[i + 1]->type == REDIS_REPLY_STRING;
}

/* name → value of a HGETALL reply (pointing into it) */
static GHashTable *
pairs_table (const redisReply *pairs)
{
  GHashTable *table = g_hash_table_new (g_str_hash, g_str_equal);

  for (gsize i = 0; i + 1 < pairs->elements; i += 2)
    if (pair_is_strings (pairs, i))
      g_hash_table_insert (table, pairs->element[i]->str, pairs->element[i + 1]->str);
  return table;
}

static void
reconcile (PubsubRedisEngine *self,
           const redisReply  *generation,
           const redisReply  *topics,
           const redisReply  *seq_pairs,
           const redisReply  *prev_pairs)
{
  g_autoptr(GHashTable) seqs = pairs_table (seq_pairs);
  g_autoptr(GHashTable) prevs = pairs_table (prev_pairs);
  g_autoptr(GHashTable) known = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GPtrArray) local = pubsub_broker_list_topics (self->broker);
  gboolean data_lost = self->generation != NULL &&
                       strcmp (self->generation, generation->str) != 0;

  g_free (self->generation);
  self->generation = g_strdup (generation->str);
  for (gsize i = 0; i + 1 < topics->elements; i += 2)
    {
      const char *name = topics->element[i]->str;
      const char *epoch = topics->element[i + 1]->str;

      if (!pair_is_strings (topics, i) ||
          !pubsub_topic_name_is_valid (name, strlen (name)) || !pubsub_epoch_is_valid (epoch))
        continue;
      g_hash_table_add (known, (gpointer) name);
      reconcile_topic (self, name, epoch, seq_of (seqs, name),
                       data_lost || was_reset (self, prevs, name));
    }
  /* Gone from Redis while the marker stayed: deleted meanwhile. */
  for (guint i = 0; i < local->len; i++)
    {
      const char *name = pubsub_topic_get_name (g_ptr_array_index (local, i));

      if (!g_hash_table_contains (known, name))
        pubsub_broker_apply_deleted (self->broker, name);
    }
}

static gboolean
hello_reply_is_valid (const redisReply *r)
{
  if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
      r->element[0]->type != REDIS_REPLY_INTEGER)
    return FALSE;
  if (r->element[0]->integer == 1)
    return TRUE;
  return r->elements == 5 && r->element[1]->type == REDIS_REPLY_STRING &&
         r->element[2]->type == REDIS_REPLY_ARRAY && r->element[3]->type == REDIS_REPLY_ARRAY &&
         r->element[4]->type == REDIS_REPLY_ARRAY;
}

static void
drain_backlog (PubsubRedisEngine *self)
{
  GBytes *bytes;

  while (self->state == STATE_CONNECTING &&
         (bytes = g_queue_pop_head (&self->backlog)) != NULL)
    {
      gsize len;
      const char *text = g_bytes_get_data (bytes, &len);

      pubsub_redis_replica_on_bus (self, text, len);
      g_bytes_unref (bytes);
    }
}

static void
on_hello_reply (redisAsyncContext *ac,
                void              *reply,
                void              *privdata)
{
  Hello *hello = privdata;
  PubsubRedisEngine *self = hello->engine;
  redisReply *r = reply;

  if (r == NULL || !hello_reply_is_valid (r) || self->state != STATE_CONNECTING)
    {
      hello_free (hello);
      pubsub_redis_engine_lost (self, r == NULL ? "connection lost" : "unexpected answer from Redis");
      return;
    }
  if (r->element[0]->integer == 1)
    {
      hello_restored (self, hello);
      g_free (self->generation);
      self->generation = g_steal_pointer (&hello->generation);
    }
  else
    reconcile (self, r->element[1], r->element[2], r->element[3], r->element[4]);
  hello_free (hello);
  self->hello_done = TRUE;
  drain_backlog (self);
  if (self->state == STATE_CONNECTING)
    pubsub_redis_engine_busy_done (self);
}

/**
 * pubsub_redis_replica_hello:
 *
 * Both connections are ready and the bus is heard: reads or restores the
 * cluster's state (the hello script), then brings this replica in line.
 */
void
pubsub_redis_replica_hello (PubsubRedisEngine *self)
{
  g_autoptr(GPtrArray) topics = pubsub_broker_list_topics (self->broker);
  Hello *hello = g_new0 (Hello, 1);
  char generation[PUBSUB_EPOCH_LEN + 1];

  pubsub_epoch_generate (generation);
  hello->engine = self;
  hello->generation = g_strdup (generation);
  hello->args = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (hello->args, g_strdup (self->k_marker));
  g_ptr_array_add (hello->args, g_strdup (self->k_topics));
  g_ptr_array_add (hello->args, g_strdup (self->k_seq));
  g_ptr_array_add (hello->args, g_strdup (self->k_bus));
  g_ptr_array_add (hello->args, g_strdup (self->k_prev));
  g_ptr_array_add (hello->args, g_strdup (self->prefix));
  g_ptr_array_add (hello->args, g_strdup (generation));
  for (guint i = 0; i < topics->len; i++)
    {
      char epoch[PUBSUB_EPOCH_LEN + 1];

      pubsub_epoch_generate (epoch);
      g_ptr_array_add (hello->args, g_strdup (pubsub_topic_get_name (g_ptr_array_index (topics, i))));
      g_ptr_array_add (hello->args, g_strdup (epoch));
    }
  if (!pubsub_redis_engine_eval (self, PUBSUB_REDIS_SCRIPT_HELLO, on_hello_reply, hello,
                                 hello->args, 5))
    {
      hello_free (hello);
      pubsub_redis_engine_lost (self, "connection lost");
    }
}
