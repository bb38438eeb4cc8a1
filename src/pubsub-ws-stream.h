/* pubsub-ws-stream.h: the stream a WebSocket connection is built on
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define PUBSUB_TYPE_WS_STREAM (pubsub_ws_stream_get_type ())

G_DECLARE_FINAL_TYPE (PubsubWsStream, pubsub_ws_stream, PUBSUB, WS_STREAM, GIOStream)

GIOStream *pubsub_ws_stream_new (GIOStream     *base,
                                 GOutputStream *frames);

G_END_DECLS
