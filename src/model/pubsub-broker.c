/* pubsub-broker.c: the registry of topics and the publish path
 *
 * Every publish, whether it comes from a WebSocket client, REST or D-Bus,
 * goes through pubsub_broker_publish(): one serialization (by the encoder the
 * broker was built with: the model does not know the wire format), history,
 * counters, fan-out.
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <string.h>

#include "pubsub-broker.h"
#include "pubsub-error.h"
#include "pubsub-memory-engine.h"
#include "pubsub-settings.h"

struct _PubsubBroker {
  GObject     parent_instance;

  GHashTable *topics;         /* owned: name → owned PubsubTopic */
  PubsubEngine *engine;       /* owned */
  PubsubEngineInterface *engine_iface;  /* looked up once: publish runs per message */
  PubsubMessageEncoder encode;
  guint       history_size;
  guint       max_topics;
  gint64      start_time;     /* µs since the epoch */
  gint64      start_monotonic;
};

G_DEFINE_FINAL_TYPE (PubsubBroker, pubsub_broker, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_ENGINE,
  PROP_ENCODER,
  PROP_HISTORY_SIZE,
  PROP_MAX_TOPICS,
  PROP_START_TIME,
  PROP_TOPIC_COUNT,
  PROP_SUBSCRIBER_COUNT,
  PROP_AVAILABLE,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

enum {
  SIGNAL_TOPIC_CREATED,
  SIGNAL_TOPIC_DELETED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static void
pubsub_broker_dispose (GObject *object)
{
  PubsubBroker *self = PUBSUB_BROKER (object);
  GHashTableIter iter;
  gpointer topic;

  /* Subscribers may outlive the broker by a moment during shutdown. */
  if (self->topics != NULL)
    {
      g_hash_table_iter_init (&iter, self->topics);
      while (g_hash_table_iter_next (&iter, NULL, &topic))
        {
          pubsub_topic_set_subscribers_watch (topic, NULL, NULL);
          g_signal_handlers_disconnect_by_data (topic, self);
        }
    }
  g_clear_pointer (&self->topics, g_hash_table_unref);
  if (self->engine != NULL)
    pubsub_engine_stop (self->engine);
  g_clear_object (&self->engine);

  G_OBJECT_CLASS (pubsub_broker_parent_class)->dispose (object);
}

static void
pubsub_broker_get_property (GObject    *object,
                            guint       prop_id,
                            GValue     *value,
                            GParamSpec *pspec)
{
  PubsubBroker *self = PUBSUB_BROKER (object);

  switch (prop_id)
    {
    case PROP_ENGINE:
      g_value_set_object (value, self->engine);
      break;
    case PROP_ENCODER:
      g_value_set_pointer (value, self->encode);
      break;
    case PROP_HISTORY_SIZE:
      g_value_set_uint (value, self->history_size);
      break;
    case PROP_MAX_TOPICS:
      g_value_set_uint (value, self->max_topics);
      break;
    case PROP_START_TIME:
      g_value_set_int64 (value, self->start_time);
      break;
    case PROP_TOPIC_COUNT:
      g_value_set_uint (value, pubsub_broker_get_topic_count (self));
      break;
    case PROP_SUBSCRIBER_COUNT:
      g_value_set_uint (value, pubsub_broker_get_subscriber_count (self));
      break;
    case PROP_AVAILABLE:
      g_value_set_boolean (value, pubsub_broker_is_available (self));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
pubsub_broker_set_property (GObject      *object,
                            guint         prop_id,
                            const GValue *value,
                            GParamSpec   *pspec)
{
  PubsubBroker *self = PUBSUB_BROKER (object);

  switch (prop_id)
    {
    case PROP_ENGINE:
      self->engine = g_value_dup_object (value);
      break;
    case PROP_ENCODER:
      self->encode = g_value_get_pointer (value);
      break;
    case PROP_HISTORY_SIZE:
      self->history_size = g_value_get_uint (value);
      break;
    case PROP_MAX_TOPICS:
      self->max_topics = g_value_get_uint (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
pubsub_broker_constructed (GObject *object)
{
  PubsubBroker *self = PUBSUB_BROKER (object);

  G_OBJECT_CLASS (pubsub_broker_parent_class)->constructed (object);

  g_assert (self->encode != NULL);
  if (self->engine == NULL)
    self->engine = pubsub_memory_engine_new (NULL);
  self->engine_iface = PUBSUB_ENGINE_GET_IFACE (self->engine);
  pubsub_engine_start (self->engine, self);
}

static void
pubsub_broker_class_init (PubsubBrokerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->constructed = pubsub_broker_constructed;
  object_class->dispose = pubsub_broker_dispose;
  object_class->get_property = pubsub_broker_get_property;
  object_class->set_property = pubsub_broker_set_property;

  /* Who decides topics, seq and history: the memory engine when unset. */
  properties[PROP_ENGINE] =
    g_param_spec_object ("engine", NULL, NULL, PUBSUB_TYPE_ENGINE,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  /* A #PubsubMessageEncoder: how a published message becomes bytes. */
  properties[PROP_ENCODER] =
    g_param_spec_pointer ("encoder", NULL, NULL,
                          G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  properties[PROP_HISTORY_SIZE] =
    g_param_spec_uint ("history-size", NULL, NULL,
                       pubsub_setting_get_min (PUBSUB_SETTING_HISTORY_SIZE),
                       pubsub_setting_get_max (PUBSUB_SETTING_HISTORY_SIZE),
                       pubsub_setting_get_default_uint (PUBSUB_SETTING_HISTORY_SIZE),
                       G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  properties[PROP_MAX_TOPICS] =
    g_param_spec_uint ("max-topics", NULL, NULL,
                       pubsub_setting_get_min (PUBSUB_SETTING_MAX_TOPICS),
                       pubsub_setting_get_max (PUBSUB_SETTING_MAX_TOPICS),
                       pubsub_setting_get_default_uint (PUBSUB_SETTING_MAX_TOPICS),
                       G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  properties[PROP_START_TIME] =
    g_param_spec_int64 ("start-time", NULL, NULL, 0, G_MAXINT64, 0,
                        G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  properties[PROP_TOPIC_COUNT] =
    g_param_spec_uint ("topic-count", NULL, NULL, 0, G_MAXUINT, 0,
                       G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  /* The sum over topics of their subscriptions; notified whenever one changes. */
  properties[PROP_SUBSCRIBER_COUNT] =
    g_param_spec_uint ("subscriber-count", NULL, NULL, 0, G_MAXUINT, 0,
                       G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  /* Whether the engine can serve calls (a cluster's Redis is reachable). */
  properties[PROP_AVAILABLE] =
    g_param_spec_boolean ("available", NULL, NULL, TRUE,
                          G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  signals[SIGNAL_TOPIC_CREATED] =
    g_signal_new ("topic-created", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, PUBSUB_TYPE_TOPIC);
  signals[SIGNAL_TOPIC_DELETED] =
    g_signal_new ("topic-deleted", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, PUBSUB_TYPE_TOPIC);
}

static void
pubsub_broker_init (PubsubBroker *self)
{
  self->topics = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_object_unref);
  self->start_time = g_get_real_time ();
  self->start_monotonic = g_get_monotonic_time ();
}

/**
 * pubsub_broker_new:
 * @encode: how a published message becomes the bytes subscribers get
 * @history_size: messages kept per topic for replay
 * @max_topics: how many topics may exist at once
 */
/**
 * pubsub_broker_new:
 * @engine: (nullable): the engine; a #PubsubMemoryEngine when %NULL
 * @encode: how a published message becomes bytes
 */
PubsubBroker *
pubsub_broker_new (PubsubEngine         *engine,
                   PubsubMessageEncoder  encode,
                   guint                 history_size,
                   guint                 max_topics)
{
  return g_object_new (PUBSUB_TYPE_BROKER,
                       "engine", engine,
                       "encoder", encode,
                       "history-size", history_size,
                       "max-topics", max_topics,
                       NULL);
}

static void
on_topic_subscribers_changed (PubsubTopic *topic,
                              gpointer     user_data)
{
  PubsubBroker *self = user_data;

  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_SUBSCRIBER_COUNT]);
}

/**
 * pubsub_broker_create_topic:
 * @name: the new topic's name
 * @reply: the answer, when it comes at once
 * @owner: what the call is made for (kept alive until a later answer)
 * @callback: how a later answer comes
 *
 * Creates a topic with a new epoch, through the engine (SPEC §3, §9): an
 * invalid name, an existing topic (TOPIC_EXISTS), too many topics
 * (LIMIT_EXCEEDED) and an unreachable cluster (UNAVAILABLE) are errors.
 * Once the answer comes, the topic is in the broker.
 *
 * Returns: %TRUE when @reply holds the answer; %FALSE when @callback will
 */
gboolean
pubsub_broker_create_topic (PubsubBroker         *self,
                            const char           *name,
                            PubsubEngineReply    *reply,
                            GObject              *owner,
                            PubsubEngineCallback  callback)
{
  g_return_val_if_fail (PUBSUB_IS_BROKER (self), TRUE);
  g_return_val_if_fail (name != NULL, TRUE);

  if (!pubsub_check_topic_name (name, &reply->error))
    return TRUE;
  return pubsub_engine_create_topic (self->engine, name, reply, owner, callback);
}

/**
 * pubsub_broker_delete_topic:
 *
 * Deletes a topic everywhere (TOPIC_NOT_FOUND, UNAVAILABLE); its
 * subscribers are told. Answered like pubsub_broker_create_topic().
 */
gboolean
pubsub_broker_delete_topic (PubsubBroker         *self,
                            const char           *name,
                            PubsubEngineReply    *reply,
                            GObject              *owner,
                            PubsubEngineCallback  callback)
{
  g_return_val_if_fail (PUBSUB_IS_BROKER (self), TRUE);
  g_return_val_if_fail (name != NULL, TRUE);

  return pubsub_engine_delete_topic (self->engine, name, reply, owner, callback);
}

/**
 * pubsub_broker_publish:
 * @topic: the topic's name
 * @id: a valid UUID
 * @payload: already validated JSON text, forwarded unchanged
 * @payload_len: its length
 *
 * Publishes through the engine (TOPIC_NOT_FOUND, UNAVAILABLE): the reply
 * has the message's seq, or the stored one's with duplicate set when @id
 * was still in the topic's history. Answered like
 * pubsub_broker_create_topic(); the memory engine always answers at once.
 */
gboolean
pubsub_broker_publish (PubsubBroker         *self,
                       const char           *topic,
                       const char           *id,
                       const char           *payload,
                       gsize                 payload_len,
                       PubsubEngineReply    *reply,
                       GObject              *owner,
                       PubsubEngineCallback  callback)
{
  return self->engine_iface->publish (self->engine, topic, id, payload, payload_len,
                                     reply, owner, callback);
}

/**
 * pubsub_broker_sync:
 *
 * Answers once every change stored anywhere before the call is in this
 * broker: a cluster node calls it before reading its replica for a client,
 * so that a client never reads less on one node than it wrote on another.
 */
gboolean
pubsub_broker_sync (PubsubBroker         *self,
                    PubsubEngineReply    *reply,
                    GObject              *owner,
                    PubsubEngineCallback  callback)
{
  return pubsub_engine_sync (self->engine, reply, owner, callback);
}

/**
 * pubsub_broker_apply_created:
 * @name: a valid topic name
 * @epoch: its epoch
 *
 * For the engine: the topic exists with @epoch. A topic of that name with
 * another epoch was deleted and created again meanwhile: its subscribers
 * are told it was deleted.
 *
 * Returns: (transfer none): the topic
 */
PubsubTopic *
pubsub_broker_apply_created (PubsubBroker *self,
                             const char   *name,
                             const char   *epoch)
{
  PubsubTopic *topic;

  g_return_val_if_fail (PUBSUB_IS_BROKER (self), NULL);

  topic = g_hash_table_lookup (self->topics, name);
  if (topic != NULL && strcmp (pubsub_topic_get_epoch (topic), epoch) == 0)
    return topic;
  if (topic != NULL)
    pubsub_broker_apply_deleted (self, name);

  topic = pubsub_topic_new_with_epoch (name, self->history_size, epoch);
  g_hash_table_insert (self->topics, (gpointer) pubsub_topic_get_name (topic), topic);
  /* Not a notify::subscribers handler: a topic with any notify handler
   * pays GLib's full notify path on every publish (notify::messages). */
  pubsub_topic_set_subscribers_watch (topic, on_topic_subscribers_changed, self);
  g_debug ("topic '%s' created", name);

  g_signal_emit (self, signals[SIGNAL_TOPIC_CREATED], 0, topic);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_TOPIC_COUNT]);
  return topic;
}

/**
 * pubsub_broker_apply_deleted:
 *
 * For the engine: the topic is gone; its subscribers are told.
 *
 * Returns: %FALSE if there was no such topic
 */
gboolean
pubsub_broker_apply_deleted (PubsubBroker *self,
                             const char   *name)
{
  g_autoptr(PubsubTopic) topic = NULL;
  gpointer key;
  gpointer value;

  g_return_val_if_fail (PUBSUB_IS_BROKER (self), FALSE);
  g_return_val_if_fail (name != NULL, FALSE);

  if (!g_hash_table_steal_extended (self->topics, name, &key, &value))
    return FALSE;
  topic = value;
  g_debug ("topic '%s' deleted", name);

  pubsub_topic_mark_deleted (topic);
  pubsub_topic_set_subscribers_watch (topic, NULL, NULL);
  g_signal_handlers_disconnect_by_data (topic, self);
  g_signal_emit (self, signals[SIGNAL_TOPIC_DELETED], 0, topic);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_TOPIC_COUNT]);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_SUBSCRIBER_COUNT]);
  return TRUE;
}

/**
 * pubsub_broker_apply_availability:
 *
 * For the engine: it can serve calls again, or no longer can. Every
 * topic's listeners are told (subscribers say cluster_unavailable).
 */
void
pubsub_broker_apply_availability (PubsubBroker *self,
                                  gboolean      available)
{
  GHashTableIter iter;
  gpointer topic;

  g_return_if_fail (PUBSUB_IS_BROKER (self));

  g_hash_table_iter_init (&iter, self->topics);
  while (g_hash_table_iter_next (&iter, NULL, &topic))
    pubsub_topic_apply_availability (topic, available);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_AVAILABLE]);
}

gboolean
pubsub_broker_is_available (PubsubBroker *self)
{
  g_return_val_if_fail (PUBSUB_IS_BROKER (self), FALSE);

  return self->engine != NULL && pubsub_engine_is_available (self->engine);
}

PubsubEngine *
pubsub_broker_get_engine (PubsubBroker *self)
{
  g_return_val_if_fail (PUBSUB_IS_BROKER (self), NULL);

  return self->engine;
}

PubsubMessageEncoder
pubsub_broker_get_encoder (PubsubBroker *self)
{
  return self->encode;
}

guint
pubsub_broker_get_history_size (PubsubBroker *self)
{
  g_return_val_if_fail (PUBSUB_IS_BROKER (self), 0);

  return self->history_size;
}

guint
pubsub_broker_get_max_topics (PubsubBroker *self)
{
  g_return_val_if_fail (PUBSUB_IS_BROKER (self), 0);

  return self->max_topics;
}

/**
 * pubsub_broker_get_topic_subscribers:
 *
 * Returns: the topic's subscriptions on every live node
 */
guint
pubsub_broker_get_topic_subscribers (PubsubBroker *self,
                                     PubsubTopic  *topic)
{
  g_return_val_if_fail (PUBSUB_IS_BROKER (self), 0);

  return pubsub_topic_get_subscribers (topic) +
         pubsub_engine_get_remote_subscribers (self->engine, pubsub_topic_get_name (topic));
}

PubsubTopic *
pubsub_broker_lookup_topic (PubsubBroker *self,
                            const char   *name)
{
  g_return_val_if_fail (PUBSUB_IS_BROKER (self), NULL);

  return g_hash_table_lookup (self->topics, name);
}

/**
 * pubsub_broker_get_topic:
 * @error: TOPIC_NOT_FOUND
 *
 * Returns: (transfer none): the topic called @name
 */
PubsubTopic *
pubsub_broker_get_topic (PubsubBroker  *self,
                         const char    *name,
                         GError       **error)
{
  PubsubTopic *topic = pubsub_broker_lookup_topic (self, name);

  if (topic == NULL)
    pubsub_set_topic_not_found_error (error, name);
  return topic;
}

static gint
compare_topic_names (gconstpointer a,
                     gconstpointer b)
{
  PubsubTopic *topic_a = *(PubsubTopic **) a;
  PubsubTopic *topic_b = *(PubsubTopic **) b;

  return strcmp (pubsub_topic_get_name (topic_a), pubsub_topic_get_name (topic_b));
}

/**
 * pubsub_broker_list_topics:
 *
 * Returns: (transfer container) (element-type PubsubTopic): every topic,
 *   sorted by name (byte order)
 */
GPtrArray *
pubsub_broker_list_topics (PubsubBroker *self)
{
  GPtrArray *list;
  GHashTableIter iter;
  gpointer topic;

  g_return_val_if_fail (PUBSUB_IS_BROKER (self), NULL);

  list = g_ptr_array_new_full (g_hash_table_size (self->topics), g_object_unref);
  g_hash_table_iter_init (&iter, self->topics);
  while (g_hash_table_iter_next (&iter, NULL, &topic))
    g_ptr_array_add (list, g_object_ref (topic));
  g_ptr_array_sort (list, compare_topic_names);
  return list;
}

guint
pubsub_broker_get_topic_count (PubsubBroker *self)
{
  g_return_val_if_fail (PUBSUB_IS_BROKER (self), 0);

  return g_hash_table_size (self->topics);
}

/**
 * pubsub_broker_get_subscriber_count:
 *
 * Returns: the number of subscriptions over all topics, on every live node
 *   (not a hot path: a walk over the topics)
 */
guint
pubsub_broker_get_subscriber_count (PubsubBroker *self)
{
  GHashTableIter iter;
  gpointer topic;
  guint total = 0;

  g_return_val_if_fail (PUBSUB_IS_BROKER (self), 0);

  g_hash_table_iter_init (&iter, self->topics);
  while (g_hash_table_iter_next (&iter, NULL, &topic))
    total += pubsub_broker_get_topic_subscribers (self, topic);
  return total;
}

gint64
pubsub_broker_get_start_time (PubsubBroker *self)
{
  g_return_val_if_fail (PUBSUB_IS_BROKER (self), 0);

  return self->start_time;
}

guint64
pubsub_broker_get_uptime (PubsubBroker *self)
{
  g_return_val_if_fail (PUBSUB_IS_BROKER (self), 0);

  return (guint64) (g_get_monotonic_time () - self->start_monotonic) / G_USEC_PER_SEC;
}
