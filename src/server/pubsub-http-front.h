/* pubsub-http-front.h: HTTP connections before (or without) a WebSocket
 * upgrade: keep-alive, time limits, head limits, early refusals
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <libsoup/soup.h>

#include "pubsub-listener.h"

G_BEGIN_DECLS

/* A request head: libsoup's own bound (HEADER_SIZE_LIMIT in 3.2.3), and ours
 * on its lines and fields. */
#define PUBSUB_HTTP_MAX_HEAD_BYTES (64 * 1024)
#define PUBSUB_HTTP_MAX_LINE_BYTES (8 * 1024)
#define PUBSUB_HTTP_MAX_HEADER_FIELDS 100

#define PUBSUB_TYPE_HTTP_FRONT (pubsub_http_front_get_type ())

G_DECLARE_FINAL_TYPE (PubsubHttpFront, pubsub_http_front, PUBSUB, HTTP_FRONT, GObject)

PubsubHttpFront *pubsub_http_front_new           (SoupServer         *soup,
                                                  PubsubListener     *listener,
                                                  PubsubMetrics      *metrics,
                                                  guint               header_timeout,
                                                  guint               idle_timeout,
                                                  GError            **error);
gboolean         pubsub_http_front_check_head    (PubsubHttpFront    *self,
                                                  SoupServerMessage  *msg);
void             pubsub_http_front_refuse        (PubsubHttpFront    *self,
                                                  SoupServerMessage  *msg,
                                                  const GError       *error);
GIOStream       *pubsub_http_front_take_upgraded (PubsubHttpFront    *self,
                                                  SoupServerMessage  *msg);
void             pubsub_http_front_shutdown      (PubsubHttpFront    *self);

G_END_DECLS
