/* pubsub-frame-output-stream.h: libsoup's output, routed into a subscriber
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <gio/gio.h>

#include "pubsub-subscriber.h"

G_BEGIN_DECLS

#define PUBSUB_TYPE_FRAME_OUTPUT_STREAM (pubsub_frame_output_stream_get_type ())

G_DECLARE_FINAL_TYPE (PubsubFrameOutputStream, pubsub_frame_output_stream,
                      PUBSUB, FRAME_OUTPUT_STREAM, GOutputStream)

GOutputStream *pubsub_frame_output_stream_new (PubsubSubscriber *subscriber);

G_END_DECLS
