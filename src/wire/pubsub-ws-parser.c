/* pubsub-ws-parser.c: RFC 6455 frames from a client, parsed in place
 *
 * The broker reads client frames itself rather than through
 * SoupWebsocketConnection: libsoup 3.2 allocates, formats two debug
 * messages and emits a libffi-marshalled signal per frame, re-creates its
 * input source on every read, and has no limit on a message reassembled
 * from fragments. Here a frame is unmasked where it lies in the read buffer
 * and handed over without a copy; only fragmented messages are assembled,
 * under the same max-message-bytes limit as single frames.
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <string.h>

#include "pubsub-ws-parser.h"

#define OPCODE_CONTINUATION 0x0
#define OPCODE_TEXT         0x1
#define OPCODE_BINARY       0x2
#define OPCODE_CLOSE        0x8
#define OPCODE_PING         0x9
#define OPCODE_PONG         0xA

#define MAX_CONTROL_PAYLOAD 125

void
pubsub_ws_parser_init (PubsubWsParser *parser,
                       gsize           max_message)
{
  memset (parser, 0, sizeof *parser);
  parser->max_message = max_message;
}

void
pubsub_ws_parser_clear (PubsubWsParser *parser)
{
  g_clear_pointer (&parser->fragments, g_byte_array_unref);
}

static PubsubWsEvent
fail (PubsubWsParser *parser,
      gushort         code,
      const char     *problem)
{
  parser->close_code = code;
  parser->problem = problem;
  parser->payload = NULL;
  parser->payload_len = 0;
  parser->skip = 0;
  return PUBSUB_WS_FAIL;
}

/* Eight bytes at a time while they are ASCII, then GLib's full check. */
static gboolean
utf8_is_valid (const guint8 *data,
               gsize         len)
{
  gsize i = 0;

  for (; i + 8 <= len; i += 8)
    {
      guint64 word;

      memcpy (&word, data + i, sizeof word);
      if (word & G_GUINT64_CONSTANT (0x8080808080808080))
        break;
    }
  return g_utf8_validate_len ((const char *) data + i, len - i, NULL);
}

static void
unmask (guint8       *payload,
        gsize         len,
        const guint8  key[4])
{
  guint32 key32;
  guint64 key64;
  gsize i = 0;

  memcpy (&key32, key, 4);
  key64 = ((guint64) key32 << 32) | key32;
  for (; i + 8 <= len; i += 8)
    {
      guint64 word;

      memcpy (&word, payload + i, 8);
      word ^= key64;
      memcpy (payload + i, &word, 8);
    }
  for (; i < len; i++)
    payload[i] ^= key[i & 3];
}

static PubsubWsEvent
deliver_message (PubsubWsParser *parser,
                 guint8          opcode,
                 const guint8   *payload,
                 gsize           len)
{
  if (opcode == OPCODE_TEXT && !utf8_is_valid (payload, len))
    return fail (parser, PUBSUB_WS_CLOSE_BAD_DATA, "text message is not valid UTF-8");
  parser->payload = payload;
  parser->payload_len = len;
  return opcode == OPCODE_TEXT ? PUBSUB_WS_TEXT : PUBSUB_WS_BINARY;
}

static PubsubWsEvent
handle_close (PubsubWsParser *parser,
              const guint8   *payload,
              gsize           len)
{
  gushort code;

  if (len == 0)
    {
      parser->close_code = PUBSUB_WS_CLOSE_NO_STATUS;
      parser->payload = payload;
      parser->payload_len = 0;
      return PUBSUB_WS_CLOSE;
    }
  if (len == 1)
    return fail (parser, PUBSUB_WS_CLOSE_PROTOCOL_ERROR, "close frame with a one-byte body");

  code = (gushort) ((payload[0] << 8) | payload[1]);
  /* RFC 6455 §7.4: codes a peer may send. */
  if (!((code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
        (code >= 3000 && code <= 4999)))
    return fail (parser, PUBSUB_WS_CLOSE_PROTOCOL_ERROR, "close frame with an invalid code");
  if (!utf8_is_valid (payload + 2, len - 2))
    return fail (parser, PUBSUB_WS_CLOSE_BAD_DATA, "close reason is not valid UTF-8");

  parser->close_code = code;
  parser->payload = payload + 2;
  parser->payload_len = len - 2;
  return PUBSUB_WS_CLOSE;
}

static PubsubWsEvent
handle_fragment (PubsubWsParser *parser,
                 guint8          opcode,
                 gboolean        fin,
                 const guint8   *payload,
                 gsize           len)
{
  if (opcode != OPCODE_CONTINUATION)
    {
      if (parser->fragments != NULL)
        return fail (parser, PUBSUB_WS_CLOSE_PROTOCOL_ERROR,
                     "a new message started before the fragmented one ended");
      parser->fragments = g_byte_array_new ();
      parser->fragments_opcode = opcode;
    }
  else if (parser->fragments == NULL)
    return fail (parser, PUBSUB_WS_CLOSE_PROTOCOL_ERROR, "continuation frame without a message");

  if (parser->fragments->len + len > parser->max_message)
    {
      g_clear_pointer (&parser->fragments, g_byte_array_unref);
      return fail (parser, PUBSUB_WS_CLOSE_TOO_BIG, "message too big");
    }
  g_byte_array_append (parser->fragments, payload, (guint) len);
  if (!fin)
    return PUBSUB_WS_CONTINUE;

  parser->fragments_done = TRUE;
  return deliver_message (parser, parser->fragments_opcode,
                          parser->fragments->data, parser->fragments->len);
}

/**
 * pubsub_ws_parser_next:
 * @data: received bytes; the frame found is unmasked in place
 * @len: how many
 * @consumed: (out): bytes of @data the returned event used
 *
 * Parses at most one frame from the start of @data.
 */
PubsubWsEvent
pubsub_ws_parser_next (PubsubWsParser *parser,
                       guint8         *data,
                       gsize           len,
                       gsize          *consumed)
{
  gboolean fin;
  guint8 opcode;
  guint64 payload_len;
  gsize header_len = 2;
  guint8 *payload;

  *consumed = 0;
  if (parser->fragments_done)
    {
      g_clear_pointer (&parser->fragments, g_byte_array_unref);
      parser->fragments_done = FALSE;
    }
  if (len < 2)
    return PUBSUB_WS_NEED_MORE;

  fin = (data[0] & 0x80) != 0;
  opcode = data[0] & 0x0F;
  if (data[0] & 0x70)
    return fail (parser, PUBSUB_WS_CLOSE_PROTOCOL_ERROR, "reserved bits set (no extension was negotiated)");
  if (!(data[1] & 0x80))
    return fail (parser, PUBSUB_WS_CLOSE_PROTOCOL_ERROR, "client frames must be masked");

  payload_len = data[1] & 0x7F;
  if (payload_len == 126)
    {
      if (len < 4)
        return PUBSUB_WS_NEED_MORE;
      payload_len = ((guint64) data[2] << 8) | data[3];
      header_len = 4;
    }
  else if (payload_len == 127)
    {
      if (len < 10)
        return PUBSUB_WS_NEED_MORE;
      payload_len = 0;
      for (guint i = 0; i < 8; i++)
        payload_len = (payload_len << 8) | data[2 + i];
      header_len = 10;
    }
  header_len += 4;   /* the masking key */

  switch (opcode)
    {
    case OPCODE_CLOSE:
    case OPCODE_PING:
    case OPCODE_PONG:
      if (!fin || payload_len > MAX_CONTROL_PAYLOAD)
        return fail (parser, PUBSUB_WS_CLOSE_PROTOCOL_ERROR,
                     "control frames must be whole and at most 125 bytes");
      break;
    case OPCODE_CONTINUATION:
    case OPCODE_TEXT:
    case OPCODE_BINARY:
      /* Refused before it is read: nothing that large is buffered. The
       * caller steps over it to see the client's answer to our close. */
      if (payload_len > parser->max_message)
        {
          fail (parser, PUBSUB_WS_CLOSE_TOO_BIG, "message too big");
          parser->skip = header_len + payload_len;
          return PUBSUB_WS_FAIL;
        }
      break;
    default:
      return fail (parser, PUBSUB_WS_CLOSE_PROTOCOL_ERROR, "unknown opcode");
    }

  if (len < header_len + payload_len)
    return PUBSUB_WS_NEED_MORE;

  payload = data + header_len;
  unmask (payload, (gsize) payload_len, data + header_len - 4);
  *consumed = header_len + (gsize) payload_len;

  switch (opcode)
    {
    case OPCODE_CLOSE:
      return handle_close (parser, payload, (gsize) payload_len);
    case OPCODE_PING:
    case OPCODE_PONG:
      parser->payload = payload;
      parser->payload_len = (gsize) payload_len;
      return opcode == OPCODE_PING ? PUBSUB_WS_PING : PUBSUB_WS_PONG;
    default:
      if (fin && opcode != OPCODE_CONTINUATION && parser->fragments == NULL)
        return deliver_message (parser, opcode, payload, (gsize) payload_len);
      return handle_fragment (parser, opcode, fin, payload, (gsize) payload_len);
    }
}
