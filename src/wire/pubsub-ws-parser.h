/* pubsub-ws-parser.h: RFC 6455 frames from a client, parsed in place
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

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

G_END_DECLS
