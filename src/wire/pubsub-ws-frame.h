/* pubsub-ws-frame.h: RFC 6455 framing, both ways: client frames parsed in
 * place, server frames (unmasked) built; opcodes, limits and close codes are
 * named here and nowhere else
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Opcodes of RFC 6455 §5.2. */
typedef enum {
  PUBSUB_WS_OPCODE_CONTINUATION = 0x0,
  PUBSUB_WS_OPCODE_TEXT         = 0x1,
  PUBSUB_WS_OPCODE_BINARY       = 0x2,
  PUBSUB_WS_OPCODE_CLOSE        = 0x8,
  PUBSUB_WS_OPCODE_PING         = 0x9,
  PUBSUB_WS_OPCODE_PONG         = 0xA,
} PubsubWsOpcode;

/* A control frame's body is at most this long (RFC 6455 §5.5). */
#define PUBSUB_WS_MAX_CONTROL_PAYLOAD 125
/* The longest header of an unmasked server frame. */
#define PUBSUB_WS_MAX_HEADER_LEN      10

/* Close codes of RFC 6455 §7.4.1 the parser and the broker use. */
#define PUBSUB_WS_CLOSE_NORMAL          1000
#define PUBSUB_WS_CLOSE_GOING_AWAY      1001
#define PUBSUB_WS_CLOSE_PROTOCOL_ERROR  1002
#define PUBSUB_WS_CLOSE_NO_STATUS       1005
#define PUBSUB_WS_CLOSE_BAD_DATA        1007
#define PUBSUB_WS_CLOSE_POLICY          1008
#define PUBSUB_WS_CLOSE_TOO_BIG         1009

typedef enum {
  PUBSUB_WS_NEED_MORE,   /* no complete frame in the input yet */
  PUBSUB_WS_CONTINUE,    /* a frame was consumed, nothing to deliver yet */
  PUBSUB_WS_TEXT,        /* a complete text message (valid UTF-8) */
  PUBSUB_WS_BINARY,      /* a complete binary message */
  PUBSUB_WS_PING,
  PUBSUB_WS_PONG,
  PUBSUB_WS_CLOSE,       /* the client's close frame: close_code, payload = reason */
  PUBSUB_WS_FAIL,        /* fail the connection with close_code (and say why) */
} PubsubWsEvent;

typedef struct {
  gsize         max_message;     /* larger messages fail with 1009 */

  /* The event just returned. The payload points into the caller's buffer
   * (unmasked in place) or into the reassembled message; it stays valid
   * until the next call. */
  const guint8 *payload;
  gsize         payload_len;
  gushort       close_code;
  const char   *problem;         /* static English text, for FAIL */
  guint64       skip;            /* for FAIL on a frame too big: its whole size,
                                  * to step over it; 0 when the stream cannot
                                  * be followed any more */

  /* A fragmented message being reassembled. */
  GByteArray   *fragments;       /* owned, nullable */
  guint8        fragments_opcode;
  gboolean      fragments_done;
} PubsubWsParser;

void           pubsub_ws_parser_init  (PubsubWsParser *parser,
                                       gsize           max_message);
void           pubsub_ws_parser_clear (PubsubWsParser *parser);
PubsubWsEvent  pubsub_ws_parser_next  (PubsubWsParser *parser,
                                       guint8         *data,
                                       gsize           len,
                                       gsize          *consumed);

/* Building server frames */

gsize          pubsub_ws_frame_header_len      (gsize           payload_len);
void           pubsub_ws_frame_write_header    (guint8         *out,
                                                gsize           payload_len,
                                                PubsubWsOpcode  opcode);
gsize          pubsub_ws_frame_payload_offset  (GBytes         *frame);
GBytes        *pubsub_ws_frame_new_ping        (void);
GBytes        *pubsub_ws_frame_new_pong        (const guint8   *payload,
                                                gsize           len);
GBytes        *pubsub_ws_frame_new_close       (gushort         code,
                                                const char     *reason);

G_END_DECLS
