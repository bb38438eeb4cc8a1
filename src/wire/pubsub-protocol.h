/* pubsub-protocol.h: the WebSocket JSON protocol, as pure functions
 *
 * Parsing of client frames and building of server frames. Server frames are
 * returned as complete, unmasked WebSocket text frames (header + JSON) so
 * that one buffer can be written unchanged to every subscriber.
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <glib.h>

#include "pubsub-broker.h"
#include "pubsub-json.h"

G_BEGIN_DECLS

#define PUBSUB_TIMESTAMP_LEN  24   /* 2026-11-27T10:00:00.123Z */

typedef enum {
  PUBSUB_REQUEST_SUBSCRIBE,
  PUBSUB_REQUEST_UNSUBSCRIBE,
  PUBSUB_REQUEST_PUBLISH,
  PUBSUB_REQUEST_PING,
} PubsubRequestType;

/* A parsed client frame. Pointers point into the frame's text. */
typedef struct {
  PubsubRequestType  type;
  const char        *request_id;       /* raw JSON string token, or NULL */
  gsize              request_id_len;
  char               topic[PUBSUB_TOPIC_NAME_MAX + 1];
  char              *client_id;        /* owned, decoded */
  guint64            last_n;           /* saturated, 0 when absent */
  gboolean           has_since;
  PubsubPosition     since;            /* epoch "" when it cannot be one */
  char               message_id[PUBSUB_UUID_LEN + 1];
  const char        *payload;          /* raw JSON text of message.payload */
  gsize              payload_len;
} PubsubRequest;

void      pubsub_format_timestamp        (gint64        real_time_us,
                                          char          out[PUBSUB_TIMESTAMP_LEN + 1]);

gboolean  pubsub_request_parse           (const char     *text,
                                          gsize           len,
                                          PubsubRequest  *request,
                                          GError        **error) G_GNUC_WARN_UNUSED_RESULT;
void      pubsub_request_clear           (PubsubRequest  *request);

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (PubsubRequest, pubsub_request_clear)

GBytes   *pubsub_frame_new_event         (const PubsubMessageInfo *info,
                                          gsize                   *out_payload_offset);
GBytes   *pubsub_frame_new_ack           (const PubsubRequest *request,
                                          const char          *topic);
GBytes   *pubsub_frame_new_publish_ack   (const PubsubRequest *request,
                                          guint64              seq,
                                          gboolean             duplicate);
GBytes   *pubsub_frame_new_subscribe_ack (const PubsubRequest *request,
                                          const char          *epoch,
                                          guint64              seq,
                                          gboolean             recovered);
GBytes   *pubsub_frame_new_error         (const PubsubRequest *request,
                                          const GError        *error);
GBytes   *pubsub_frame_new_pong          (const PubsubRequest *request);
GBytes   *pubsub_frame_new_info          (const char   *msg,
                                          const char   *topic);
GBytes   *pubsub_frame_new_messages_lost (const char   *topic,
                                          guint64       seq,
                                          const char   *epoch);

gboolean  pubsub_publish_args_check      (const char       *topic,
                                         const char      **id,
                                         char            **out_fresh_id,
                                         const char       *payload_json,
                                         PubsubJsonValue  *out_payload,
                                         GError          **error);

G_END_DECLS
