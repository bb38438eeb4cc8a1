/* pubsub-broker.h: the registry of topics and the publish path
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <glib-object.h>

#include "pubsub-engine.h"
#include "pubsub-message.h"
#include "pubsub-topic.h"

G_BEGIN_DECLS

#define PUBSUB_TYPE_BROKER (pubsub_broker_get_type ())

G_DECLARE_FINAL_TYPE (PubsubBroker, pubsub_broker, PUBSUB, BROKER, GObject)

PubsubBroker   *pubsub_broker_new                  (PubsubEngine  *engine,
                                                    PubsubMessageEncoder encode,
                                                    guint          history_size,
                                                    guint          max_topics);

/* What goes through the engine: answered at once (TRUE, @reply filled) or
 * later through @callback (FALSE). */
gboolean        pubsub_broker_create_topic         (PubsubBroker  *self,
                                                    const char    *name,
                                                    PubsubEngineReply *reply,
                                                    GObject       *owner,
                                                    PubsubEngineCallback callback);
gboolean        pubsub_broker_delete_topic         (PubsubBroker  *self,
                                                    const char    *name,
                                                    PubsubEngineReply *reply,
                                                    GObject       *owner,
                                                    PubsubEngineCallback callback);
gboolean        pubsub_broker_publish              (PubsubBroker  *self,
                                                    const char    *topic,
                                                    const char    *id,
                                                    const char    *payload,
                                                    gsize          payload_len,
                                                    PubsubEngineReply *reply,
                                                    GObject       *owner,
                                                    PubsubEngineCallback callback);
gboolean        pubsub_broker_sync                 (PubsubBroker  *self,
                                                    PubsubEngineReply *reply,
                                                    GObject       *owner,
                                                    PubsubEngineCallback callback);

/* The node's replica, read at once. */
PubsubTopic    *pubsub_broker_lookup_topic         (PubsubBroker  *self,
                                                    const char    *name);
PubsubTopic    *pubsub_broker_get_topic            (PubsubBroker  *self,
                                                    const char    *name,
                                                    GError       **error);
GPtrArray      *pubsub_broker_list_topics          (PubsubBroker  *self);
guint           pubsub_broker_get_topic_count      (PubsubBroker  *self);
guint           pubsub_broker_get_subscriber_count (PubsubBroker  *self);
guint           pubsub_broker_get_topic_subscribers (PubsubBroker *self,
                                                    PubsubTopic   *topic);
gint64          pubsub_broker_get_start_time       (PubsubBroker  *self);
guint64         pubsub_broker_get_uptime           (PubsubBroker  *self);
gboolean        pubsub_broker_is_available         (PubsubBroker  *self);
PubsubEngine   *pubsub_broker_get_engine           (PubsubBroker  *self);
PubsubMessageEncoder pubsub_broker_get_encoder     (PubsubBroker  *self);
guint           pubsub_broker_get_history_size     (PubsubBroker  *self);
guint           pubsub_broker_get_max_topics       (PubsubBroker  *self);

/* For the engine: how it keeps the replica up to date. */
PubsubTopic    *pubsub_broker_apply_created        (PubsubBroker  *self,
                                                    const char    *name,
                                                    const char    *epoch);
gboolean        pubsub_broker_apply_deleted        (PubsubBroker  *self,
                                                    const char    *name);
void            pubsub_broker_apply_availability   (PubsubBroker  *self,
                                                    gboolean       available);

G_END_DECLS
