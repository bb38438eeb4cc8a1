/* pubsub-listener.h: the listening sockets, the accept loop and the
 * connection budget
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <gio/gio.h>

#include "pubsub-metrics.h"

G_BEGIN_DECLS

#define PUBSUB_TYPE_LISTENER (pubsub_listener_get_type ())

G_DECLARE_FINAL_TYPE (PubsubListener, pubsub_listener, PUBSUB, LISTENER, GObject)

PubsubListener *pubsub_listener_new            (guint            max_connections,
                                                PubsubMetrics   *metrics);
gboolean        pubsub_listener_listen         (PubsubListener  *self,
                                                const char      *host,
                                                guint16          port,
                                                GError         **error) G_GNUC_WARN_UNUSED_RESULT;
const char     *pubsub_listener_get_address    (PubsubListener  *self);
guint           pubsub_listener_get_open_count (PubsubListener  *self);
void            pubsub_listener_release        (PubsubListener  *self);
void            pubsub_listener_close_with     (PubsubListener  *self,
                                                GSocket         *socket,
                                                GObject         *owner,
                                                GBytes          *response,
                                                gboolean         admitted);
void            pubsub_listener_stop           (PubsubListener  *self);

GBytes         *pubsub_http_error_response_new (const GError    *error);

G_END_DECLS
