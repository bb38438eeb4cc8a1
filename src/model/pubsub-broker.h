/* pubsub-broker.h: the registry of topics and the publish path
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <glib-object.h>

#include "pubsub-message.h"
#include "pubsub-topic.h"

G_BEGIN_DECLS

#define PUBSUB_TYPE_BROKER (pubsub_broker_get_type ())

G_DECLARE_FINAL_TYPE (PubsubBroker, pubsub_broker, PUBSUB, BROKER, GObject)

PubsubBroker   *pubsub_broker_new                  (PubsubMessageEncoder encode,
                                                    guint          history_size,
                                                    guint          max_topics);
PubsubTopic    *pubsub_broker_create_topic         (PubsubBroker  *self,
                                                    const char    *name,
                                                    GError       **error);
gboolean        pubsub_broker_delete_topic         (PubsubBroker  *self,
                                                    const char    *name,
                                                    GError       **error) G_GNUC_WARN_UNUSED_RESULT;
PubsubTopic    *pubsub_broker_lookup_topic         (PubsubBroker  *self,
                                                    const char    *name);
PubsubTopic    *pubsub_broker_get_topic            (PubsubBroker  *self,
                                                    const char    *name,
                                                    GError       **error);
GPtrArray      *pubsub_broker_list_topics          (PubsubBroker  *self);
guint           pubsub_broker_get_topic_count      (PubsubBroker  *self);
guint           pubsub_broker_get_subscriber_count (PubsubBroker  *self);
gint64          pubsub_broker_get_start_time       (PubsubBroker  *self);
guint64         pubsub_broker_get_uptime           (PubsubBroker  *self);
PubsubMessage  *pubsub_broker_publish              (PubsubBroker  *self,
                                                    const char    *topic,
                                                    const char    *id,
                                                    const char    *payload,
                                                    gsize          payload_len,
                                                    gboolean      *out_duplicate,
                                                    GError       **error);

G_END_DECLS
