/* pubsub-http.h: the HTTP side: REST routes, the WebSocket upgrade,
 * heartbeats and graceful shutdown
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <gio/gio.h>

#include "pubsub-broker.h"
#include "pubsub-config.h"

G_BEGIN_DECLS

#define PUBSUB_TYPE_HTTP_SERVER (pubsub_http_server_get_type ())

G_DECLARE_FINAL_TYPE (PubsubHttpServer, pubsub_http_server, PUBSUB, HTTP_SERVER, GObject)

PubsubHttpServer *pubsub_http_server_new                  (PubsubBroker       *broker,
                                                           const PubsubConfig *config);
gboolean          pubsub_http_server_listen               (PubsubHttpServer   *self,
                                                           GError            **error) G_GNUC_WARN_UNUSED_RESULT;
const char       *pubsub_http_server_get_address          (PubsubHttpServer   *self);
void              pubsub_http_server_shutdown             (PubsubHttpServer   *self);

G_END_DECLS
