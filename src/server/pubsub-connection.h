/* pubsub-connection.h: one WebSocket client and the protocol it speaks
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <gio/gio.h>

#include "pubsub-broker.h"
#include "pubsub-io-loop.h"
#include "pubsub-metrics.h"

G_BEGIN_DECLS

#define PUBSUB_TYPE_CONNECTION (pubsub_connection_get_type ())

G_DECLARE_FINAL_TYPE (PubsubConnection, pubsub_connection, PUBSUB, CONNECTION, GObject)

PubsubConnection *pubsub_connection_new        (PubsubIoLoop     *io,
                                                PubsubBroker     *broker,
                                                PubsubMetrics    *metrics,
                                                GIOStream        *stream,
                                                guint             queue_size,
                                                gsize             max_message_bytes,
                                                GError          **error);
void              pubsub_connection_heartbeat  (PubsubConnection *self,
                                                GBytes           *info_ping,
                                                gint64            idle_limit_us);
void              pubsub_connection_shutdown   (PubsubConnection *self);

G_END_DECLS
