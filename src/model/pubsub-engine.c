/* pubsub-engine.c: where topics, seq and history are decided
 *
 * The seam between what one process does alone and what a cluster shares
 * (SPEC §9): the topic registry, giving a message its seq (or finding it a
 * duplicate) and storing it, and telling the node's replica — the broker
 * and its topics — what changed. The memory engine is one implementation,
 * the Redis engine the other; nothing above the broker knows which runs.
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include "pubsub-engine.h"

G_DEFINE_INTERFACE (PubsubEngine, pubsub_engine, G_TYPE_OBJECT)

static void
pubsub_engine_default_init (PubsubEngineInterface *iface)
{
}

/**
 * pubsub_engine_reply_clear:
 *
 * Frees what a reply answered at once holds.
 */
void
pubsub_engine_reply_clear (PubsubEngineReply *reply)
{
  g_clear_error (&reply->error);
}

void
pubsub_engine_start (PubsubEngine *self,
                     PubsubBroker *broker)
{
  g_return_if_fail (PUBSUB_IS_ENGINE (self));

  PUBSUB_ENGINE_GET_IFACE (self)->start (self, broker);
}

void
pubsub_engine_stop (PubsubEngine *self)
{
  g_return_if_fail (PUBSUB_IS_ENGINE (self));

  PUBSUB_ENGINE_GET_IFACE (self)->stop (self);
}

gboolean
pubsub_engine_is_available (PubsubEngine *self)
{
  g_return_val_if_fail (PUBSUB_IS_ENGINE (self), FALSE);

  return PUBSUB_ENGINE_GET_IFACE (self)->is_available (self);
}

gboolean
pubsub_engine_create_topic (PubsubEngine         *self,
                            const char           *name,
                            PubsubEngineReply    *reply,
                            GObject              *owner,
                            PubsubEngineCallback  callback)
{
  g_return_val_if_fail (PUBSUB_IS_ENGINE (self), FALSE);

  return PUBSUB_ENGINE_GET_IFACE (self)->create_topic (self, name, reply, owner, callback);
}

gboolean
pubsub_engine_delete_topic (PubsubEngine         *self,
                            const char           *name,
                            PubsubEngineReply    *reply,
                            GObject              *owner,
                            PubsubEngineCallback  callback)
{
  g_return_val_if_fail (PUBSUB_IS_ENGINE (self), FALSE);

  return PUBSUB_ENGINE_GET_IFACE (self)->delete_topic (self, name, reply, owner, callback);
}

/* Not g_return_if_fail()-checked: it runs once per publish. */
gboolean
pubsub_engine_publish (PubsubEngine         *self,
                       const char           *topic,
                       const char           *id,
                       const char           *payload,
                       gsize                 payload_len,
                       PubsubEngineReply    *reply,
                       GObject              *owner,
                       PubsubEngineCallback  callback)
{
  return PUBSUB_ENGINE_GET_IFACE (self)->publish (self, topic, id, payload, payload_len,
                                                  reply, owner, callback);
}

gboolean
pubsub_engine_sync (PubsubEngine         *self,
                    PubsubEngineReply    *reply,
                    GObject              *owner,
                    PubsubEngineCallback  callback)
{
  g_return_val_if_fail (PUBSUB_IS_ENGINE (self), FALSE);

  return PUBSUB_ENGINE_GET_IFACE (self)->sync (self, reply, owner, callback);
}

guint
pubsub_engine_get_remote_subscribers (PubsubEngine *self,
                                      const char   *topic)
{
  g_return_val_if_fail (PUBSUB_IS_ENGINE (self), 0);

  return PUBSUB_ENGINE_GET_IFACE (self)->get_remote_subscribers (self, topic);
}

guint
pubsub_engine_get_nodes (PubsubEngine *self)
{
  g_return_val_if_fail (PUBSUB_IS_ENGINE (self), 0);

  return PUBSUB_ENGINE_GET_IFACE (self)->get_nodes (self);
}

const char *
pubsub_engine_get_node_id (PubsubEngine *self)
{
  g_return_val_if_fail (PUBSUB_IS_ENGINE (self), NULL);

  return PUBSUB_ENGINE_GET_IFACE (self)->get_node_id (self);
}

const char *
pubsub_engine_get_cluster (PubsubEngine *self)
{
  g_return_val_if_fail (PUBSUB_IS_ENGINE (self), NULL);

  return PUBSUB_ENGINE_GET_IFACE (self)->get_cluster (self);
}
