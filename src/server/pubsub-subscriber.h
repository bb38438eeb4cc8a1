/* pubsub-subscriber.h: one client connection's subscriptions and its
 * bounded outgoing queue
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <gio/gio.h>

#include "pubsub-io-loop.h"
#include "pubsub-metrics.h"
#include "pubsub-topic.h"

G_BEGIN_DECLS

#define PUBSUB_TYPE_SUBSCRIBER (pubsub_subscriber_get_type ())

G_DECLARE_FINAL_TYPE (PubsubSubscriber, pubsub_subscriber, PUBSUB, SUBSCRIBER, GObject)

PubsubSubscriber *pubsub_subscriber_new                (PubsubIoLoop     *io,
                                                        GOutputStream    *output,
                                                        guint             queue_size,
                                                        PubsubMetrics    *metrics);
gboolean          pubsub_subscriber_send               (PubsubSubscriber *self,
                                                        GBytes           *frame);
void              pubsub_subscriber_send_final         (PubsubSubscriber *self,
                                                        GBytes           *frame);
gboolean          pubsub_subscriber_subscribe          (PubsubSubscriber *self,
                                                        PubsubTopic      *topic,
                                                        const char       *client_id,
                                                        guint64           replay_after);
gboolean          pubsub_subscriber_unsubscribe        (PubsubSubscriber *self,
                                                        const char       *topic);
void              pubsub_subscriber_unsubscribe_all    (PubsubSubscriber *self,
                                                        PubsubLeaveReason reason);
guint             pubsub_subscriber_get_subscription_count (PubsubSubscriber *self);
guint             pubsub_subscriber_get_queue_length   (PubsubSubscriber *self);
gboolean          pubsub_subscriber_is_slow            (PubsubSubscriber *self);
void              pubsub_subscriber_flush              (PubsubSubscriber *self);

/**
 * PubsubSubscriberDrainedFunc:
 * @subscriber: whose queue a flush just emptied
 * @user_data: as given
 */
typedef void (*PubsubSubscriberDrainedFunc) (PubsubSubscriber *subscriber,
                                             gpointer          user_data);

void              pubsub_subscriber_set_drained_func   (PubsubSubscriber *self,
                                                        PubsubSubscriberDrainedFunc func,
                                                        gpointer          user_data);
void              pubsub_subscriber_close              (PubsubSubscriber *self);

G_END_DECLS
