/* pubsub-memory-engine.c: the engine of one process alone
 *
 * The default: the broker's own topics are the truth, every call is
 * answered at once, and a publish costs what it cost before there was an
 * engine — a hash lookup and pubsub_topic_publish().
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <string.h>

#include "pubsub-broker.h"
#include "pubsub-error.h"
#include "pubsub-memory-engine.h"

struct _PubsubMemoryEngine {
  GObject        parent_instance;

  PubsubBroker  *broker;     /* unowned: the broker owns its engine */
  /* The topic of the last publish: clients publish to few topics, and a
   * name comparison is cheaper than hashing it again. Forgotten when a
   * topic is deleted. */
  PubsubTopic   *last_topic;   /* owned, nullable */
  char          *node_id;    /* owned */
};

static void pubsub_memory_engine_iface_init (PubsubEngineInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (PubsubMemoryEngine, pubsub_memory_engine, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (PUBSUB_TYPE_ENGINE,
                                                      pubsub_memory_engine_iface_init))

static void
pubsub_memory_engine_finalize (GObject *object)
{
  PubsubMemoryEngine *self = PUBSUB_MEMORY_ENGINE (object);

  g_free (self->node_id);
  g_clear_object (&self->last_topic);

  G_OBJECT_CLASS (pubsub_memory_engine_parent_class)->finalize (object);
}

static void
pubsub_memory_engine_class_init (PubsubMemoryEngineClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = pubsub_memory_engine_finalize;
}

static void
pubsub_memory_engine_init (PubsubMemoryEngine *self)
{
}

/**
 * pubsub_memory_engine_new:
 * @node_id: (nullable): the name the node goes by; the host name if %NULL
 */
PubsubEngine *
pubsub_memory_engine_new (const char *node_id)
{
  PubsubMemoryEngine *self = g_object_new (PUBSUB_TYPE_MEMORY_ENGINE, NULL);

  self->node_id = g_strdup (node_id != NULL ? node_id : g_get_host_name ());
  return PUBSUB_ENGINE (self);
}

static void
memory_start (PubsubEngine *engine,
              PubsubBroker *broker)
{
  PUBSUB_MEMORY_ENGINE (engine)->broker = broker;
}

static void
memory_stop (PubsubEngine *engine)
{
  PUBSUB_MEMORY_ENGINE (engine)->broker = NULL;
  g_clear_object (&PUBSUB_MEMORY_ENGINE (engine)->last_topic);
}

static gboolean
memory_is_available (PubsubEngine *engine)
{
  return TRUE;
}

static gboolean
memory_create_topic (PubsubEngine         *engine,
                     const char           *name,
                     PubsubEngineReply    *reply,
                     GObject              *owner,
                     PubsubEngineCallback  callback)
{
  PubsubMemoryEngine *self = PUBSUB_MEMORY_ENGINE (engine);
  guint max_topics = pubsub_broker_get_max_topics (self->broker);

  if (pubsub_broker_lookup_topic (self->broker, name) != NULL)
    pubsub_set_topic_exists_error (&reply->error, name);
  else if (pubsub_broker_get_topic_count (self->broker) >= max_topics)
    pubsub_set_topic_limit_error (&reply->error, name, max_topics);
  else
    {
      pubsub_epoch_generate (reply->epoch);
      pubsub_broker_apply_created (self->broker, name, reply->epoch);
    }
  return TRUE;
}

static gboolean
memory_delete_topic (PubsubEngine         *engine,
                     const char           *name,
                     PubsubEngineReply    *reply,
                     GObject              *owner,
                     PubsubEngineCallback  callback)
{
  PubsubMemoryEngine *self = PUBSUB_MEMORY_ENGINE (engine);

  g_clear_object (&self->last_topic);
  if (!pubsub_broker_apply_deleted (self->broker, name))
    pubsub_set_topic_not_found_error (&reply->error, name);
  return TRUE;
}

static gboolean
memory_publish (PubsubEngine         *engine,
                const char           *name,
                const char           *id,
                const char           *payload,
                gsize                 payload_len,
                PubsubEngineReply    *reply,
                GObject              *owner,
                PubsubEngineCallback  callback)
{
  /* A plain cast: this runs once per publish and the type is final. */
  PubsubMemoryEngine *self = (PubsubMemoryEngine *) engine;
  PubsubTopic *topic = self->last_topic;
  PubsubMessage *message;

  if (topic == NULL || strcmp (pubsub_topic_get_name (topic), name) != 0)
    {
      topic = pubsub_broker_lookup_topic (self->broker, name);
      g_set_object (&self->last_topic, topic);
    }

  if (G_UNLIKELY (topic == NULL))
    {
      pubsub_set_topic_not_found_error (&reply->error, name);
      return TRUE;
    }
  message = pubsub_topic_publish (topic, id, payload, payload_len,
                                  pubsub_broker_get_encoder (self->broker), &reply->duplicate);
  reply->seq = pubsub_message_get_seq (message);
  pubsub_message_unref (message);
  return TRUE;
}

/* One process: what is stored is in the broker already. */
static gboolean
memory_sync (PubsubEngine         *engine,
             PubsubEngineReply    *reply,
             GObject              *owner,
             PubsubEngineCallback  callback)
{
  return TRUE;
}

static guint
memory_get_remote_subscribers (PubsubEngine *engine,
                               const char   *topic)
{
  return 0;
}

static guint
memory_get_nodes (PubsubEngine *engine)
{
  return 1;
}

static const char *
memory_get_node_id (PubsubEngine *engine)
{
  return PUBSUB_MEMORY_ENGINE (engine)->node_id;
}

static const char *
memory_get_cluster (PubsubEngine *engine)
{
  return "";
}

static void
pubsub_memory_engine_iface_init (PubsubEngineInterface *iface)
{
  iface->start = memory_start;
  iface->stop = memory_stop;
  iface->is_available = memory_is_available;
  iface->create_topic = memory_create_topic;
  iface->delete_topic = memory_delete_topic;
  iface->publish = memory_publish;
  iface->sync = memory_sync;
  iface->get_remote_subscribers = memory_get_remote_subscribers;
  iface->get_nodes = memory_get_nodes;
  iface->get_node_id = memory_get_node_id;
  iface->get_cluster = memory_get_cluster;
}
