/* pubsub-ws-frame.c: RFC 6455 framing: client frames parsed in place,
 * server frames built
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
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "pubsub-ws-frame.h"

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

/* Eight bytes at a time while they are ASCII, then GLib's full check.
 * g_utf8_validate_len() stops at a NUL byte, but U+0000 is valid UTF-8
 * (RFC 3629) like any other ASCII character: step over it and go on. */
static gboolean
utf8_is_valid (const guint8 *data,
               gsize         len)
{
  const char *end = (const char *) data + len;
  const char *p;
  gsize i = 0;

  for (; i + 8 <= len; i += 8)
    {
      guint64 word;

      memcpy (&word, data + i, sizeof word);
      if (word & G_GUINT64_CONSTANT (0x8080808080808080))
        break;
    }
  p = (const char *) data + i;
  while (!g_utf8_validate_len (p, (gsize) (end - p), &p))
    {
      if (*p != '\0')
        return FALSE;
      p++;
    }
  return TRUE;
}

/* Unmasks @payload in place and says whether it is all ASCII (no byte
 * with its high bit set): one pass over the bytes, 16 at a time with SSE2,
 * instead of one to unmask and one more to look for UTF-8. A text message
 * that is all ASCII is valid UTF-8 without further checks. */
static gboolean
unmask (guint8       *payload,
        gsize         len,
        const guint8  key[4])
{
  guint32 key32;
  guint64 key64;
  guint64 high = 0;
  gsize i = 0;

  memcpy (&key32, key, 4);
  key64 = ((guint64) key32 << 32) | key32;
#ifdef __SSE2__
  if (len >= 16)
    {
      const __m128i key128 = _mm_set1_epi32 ((int) key32);
      __m128i seen = _mm_setzero_si128 ();

      for (; i + 16 <= len; i += 16)
        {
          __m128i bytes = _mm_xor_si128 (_mm_loadu_si128 ((const __m128i *) (payload + i)),
                                         key128);

          _mm_storeu_si128 ((__m128i *) (payload + i), bytes);
          seen = _mm_or_si128 (seen, bytes);
        }
      high = (guint64) _mm_movemask_epi8 (seen);
    }
#endif
  for (; i + 8 <= len; i += 8)
    {
      guint64 word;

      memcpy (&word, payload + i, 8);
      word ^= key64;
      memcpy (payload + i, &word, 8);
      high |= word & G_GUINT64_CONSTANT (0x8080808080808080);
    }
  for (; i < len; i++)
    {
      payload[i] ^= key[i & 3];
      high |= payload[i] & 0x80;
    }
  return high == 0;
}

static PubsubWsEvent
deliver_message (PubsubWsParser *parser,
                 guint8          opcode,
                 const guint8   *payload,
                 gsize           len,
                 gboolean        ascii)
{
  static const guint8 nothing[1];

  /* An empty reassembled message has no buffer (its GByteArray's data is
   * NULL): hand out a real pointer, as for every other message. */
  if (payload == NULL)
    payload = nothing;
  if (opcode == PUBSUB_WS_OPCODE_TEXT && !ascii && !utf8_is_valid (payload, len))
    return fail (parser, PUBSUB_WS_CLOSE_BAD_DATA, "text message is not valid UTF-8");
  parser->payload = payload;
  parser->payload_len = len;
  return opcode == PUBSUB_WS_OPCODE_TEXT ? PUBSUB_WS_TEXT : PUBSUB_WS_BINARY;
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
  if (opcode != PUBSUB_WS_OPCODE_CONTINUATION)
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
                          parser->fragments->data, parser->fragments->len, FALSE);
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
  gboolean ascii;

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
      /* RFC 6455 §5.2. It also keeps header_len + payload_len, the size
       * of a frame to step over, from wrapping around. */
      if (data[2] & 0x80)
        return fail (parser, PUBSUB_WS_CLOSE_PROTOCOL_ERROR,
                     "the most significant bit of a 64-bit length must be 0");
      payload_len = 0;
      for (guint i = 0; i < 8; i++)
        payload_len = (payload_len << 8) | data[2 + i];
      header_len = 10;
    }
  header_len += 4;   /* the masking key */

  switch (opcode)
    {
    case PUBSUB_WS_OPCODE_CLOSE:
    case PUBSUB_WS_OPCODE_PING:
    case PUBSUB_WS_OPCODE_PONG:
      if (!fin || payload_len > PUBSUB_WS_MAX_CONTROL_PAYLOAD)
        return fail (parser, PUBSUB_WS_CLOSE_PROTOCOL_ERROR,
                     "control frames must be whole and at most 125 bytes");
      break;
    case PUBSUB_WS_OPCODE_CONTINUATION:
    case PUBSUB_WS_OPCODE_TEXT:
    case PUBSUB_WS_OPCODE_BINARY:
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
  ascii = unmask (payload, (gsize) payload_len, data + header_len - 4);
  *consumed = header_len + (gsize) payload_len;

  switch (opcode)
    {
    case PUBSUB_WS_OPCODE_CLOSE:
      return handle_close (parser, payload, (gsize) payload_len);
    case PUBSUB_WS_OPCODE_PING:
    case PUBSUB_WS_OPCODE_PONG:
      parser->payload = payload;
      parser->payload_len = (gsize) payload_len;
      return opcode == PUBSUB_WS_OPCODE_PING ? PUBSUB_WS_PING : PUBSUB_WS_PONG;
    default:
      if (fin && opcode != PUBSUB_WS_OPCODE_CONTINUATION && parser->fragments == NULL)
        return deliver_message (parser, opcode, payload, (gsize) payload_len, ascii);
      return handle_fragment (parser, opcode, fin, payload, (gsize) payload_len);
    }
}

/* ---------------------------------------------------------------------- */
/* Building server frames                                                 */

/**
 * pubsub_ws_frame_header_len:
 * @payload_len: the length of the frame's body
 *
 * Returns: the length of an unmasked server frame's header
 */
gsize
pubsub_ws_frame_header_len (gsize payload_len)
{
  if (payload_len < 126)
    return 2;
  if (payload_len <= G_MAXUINT16)
    return 4;
  return PUBSUB_WS_MAX_HEADER_LEN;
}

/**
 * pubsub_ws_frame_write_header:
 * @out: room for pubsub_ws_frame_header_len (@payload_len) bytes
 * @payload_len: the length of the body that follows
 * @opcode: the frame's opcode; the frame is final (FIN), never fragmented
 */
void
pubsub_ws_frame_write_header (guint8         *out,
                              gsize           payload_len,
                              PubsubWsOpcode  opcode)
{
  out[0] = 0x80 | opcode;   /* FIN */
  if (payload_len < 126)
    {
      out[1] = (guint8) payload_len;
      return;
    }
  if (payload_len <= G_MAXUINT16)
    {
      out[1] = 126;
      out[2] = (guint8) (payload_len >> 8);
      out[3] = (guint8) payload_len;
      return;
    }
  out[1] = 127;
  for (guint i = 0; i < 8; i++)
    out[2 + i] = (guint8) ((guint64) payload_len >> (56 - 8 * i));
}

/**
 * pubsub_ws_frame_payload_offset:
 * @frame: an unmasked server frame
 *
 * Returns: where the body starts in @frame.
 */
gsize
pubsub_ws_frame_payload_offset (GBytes *frame)
{
  const guint8 *data = g_bytes_get_data (frame, NULL);

  return data[1] < 126 ? 2 : data[1] == 126 ? 4 : PUBSUB_WS_MAX_HEADER_LEN;
}

/**
 * pubsub_ws_frame_new_ping:
 *
 * Returns: a ping control frame with an empty body, shared.
 */
GBytes *
pubsub_ws_frame_new_ping (void)
{
  static const guint8 ping[] = { 0x80 | PUBSUB_WS_OPCODE_PING, 0x00 };

  return g_bytes_new_static (ping, sizeof ping);
}

/**
 * pubsub_ws_frame_new_pong:
 * @payload: the ping's body, echoed
 * @len: its length, at most %PUBSUB_WS_MAX_CONTROL_PAYLOAD
 *
 * Returns: a pong control frame.
 */
GBytes *
pubsub_ws_frame_new_pong (const guint8 *payload,
                          gsize         len)
{
  guint8 *frame;

  g_return_val_if_fail (len <= PUBSUB_WS_MAX_CONTROL_PAYLOAD, NULL);

  frame = g_malloc (2 + len);
  pubsub_ws_frame_write_header (frame, len, PUBSUB_WS_OPCODE_PONG);
  memcpy (frame + 2, payload, len);
  return g_bytes_new_take (frame, 2 + len);
}

/**
 * pubsub_ws_frame_new_close:
 * @code: the close code, or 0 for a close frame without a body
 * @reason: (nullable): why, in UTF-8; cut (never inside a character) to what
 *   fits in a control frame after the code
 *
 * Returns: a close control frame.
 */
GBytes *
pubsub_ws_frame_new_close (gushort     code,
                           const char *reason)
{
  const gsize max_reason = PUBSUB_WS_MAX_CONTROL_PAYLOAD - 2;
  gsize reason_len = 0;
  gsize body_len;
  guint8 *frame;

  if (code != 0 && reason != NULL)
    {
      const char *end = reason + MIN (strlen (reason), max_reason);

      g_utf8_validate (reason, end - reason, &end);
      reason_len = (gsize) (end - reason);
    }
  body_len = code != 0 ? 2 + reason_len : 0;
  frame = g_malloc (2 + body_len);
  pubsub_ws_frame_write_header (frame, body_len, PUBSUB_WS_OPCODE_CLOSE);
  if (code != 0)
    {
      frame[2] = (guint8) (code >> 8);
      frame[3] = (guint8) code;
      if (reason_len > 0)
        memcpy (frame + 4, reason, reason_len);
    }
  return g_bytes_new_take (frame, 2 + body_len);
}
