/* fuzz-ws-frame.c: the RFC 6455 frame parser (pubsub-ws-frame.c) fed a
 * client's byte stream in arbitrary pieces, as a connection reads it
 *
 * Input: byte 0 picks max-message-bytes; byte 1 says how many of the next
 * bytes are piece sizes (cycled; 0 = all the rest); the remaining bytes are
 * the stream. The stream is parsed twice by a copy of the connection's read
 * loop (src/server/pubsub-connection.c read_once()/process_frames(): an
 * incomplete frame is carried over to the next read, a refused frame is
 * stepped over, an unparsable stream is discarded, a close frame stops
 * reading): once as a single read, once in the pieces. Checked:
 *
 *  - every event's invariants: consumed <= the bytes given, payloads inside
 *    the frame or the reassembled message and within the limits, close codes
 *    that RFC 6455 allows, valid UTF-8 where promised;
 *  - until the first failure, an independent unmasking of the original
 *    bytes: each payload and each reassembled message is exactly what the
 *    client masked;
 *  - both readings give the same events (with the same payloads) and leave
 *    the same bytes unread;
 *  - the server frames built from the events (pong, close) are well formed.
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <string.h>

#if defined(__has_feature)
# if __has_feature(address_sanitizer)
#  include <sanitizer/asan_interface.h>
# endif
#endif
#ifndef ASAN_POISON_MEMORY_REGION
# define ASAN_POISON_MEMORY_REGION(addr, size) ((void) (addr), (void) (size))
# define ASAN_UNPOISON_MEMORY_REGION(addr, size) ((void) (addr), (void) (size))
#endif

#include "fuzz-common.h"
#include "pubsub-ws-frame.h"

/* The range of max-message-bytes that the configuration allows, and
 * sizes around the boundaries of the length encodings. */
static const gsize max_messages[] = { 64, 125, 126, 1000, 65535, 65536, 1024 * 1024 };

#define MAX_PIECE_SIZES 16

typedef struct {
  PubsubWsEvent  event;
  gsize          consumed;
  gushort        close_code;
  const char    *problem;
  guint64        skip;
  GBytes        *payload;
} Event;

/* The bytes received and not yet used: grown by doubling, like the
 * connection's buffer, so that tiny reads cost no copy of what is carried
 * over; its spare room is poisoned for AddressSanitizer, so that a read
 * past the bytes received is an error all the same. */
typedef struct {
  guint8 *data;
  gsize   len;
  gsize   capacity;
} Buffer;

static void
buffer_append (Buffer       *buffer,
               const guint8 *bytes,
               gsize         len)
{
  if (buffer->len + len > buffer->capacity)
    {
      gsize capacity = MAX (buffer->capacity * 2, buffer->len + len);

      ASAN_UNPOISON_MEMORY_REGION (buffer->data, buffer->capacity);
      buffer->data = g_realloc (buffer->data, capacity);
      buffer->capacity = capacity;
    }
  ASAN_UNPOISON_MEMORY_REGION (buffer->data + buffer->len, len);
  memcpy (buffer->data + buffer->len, bytes, len);
  buffer->len += len;
  ASAN_POISON_MEMORY_REGION (buffer->data + buffer->len, buffer->capacity - buffer->len);
}

/* Drops the first @used bytes. */
static void
buffer_consume (Buffer *buffer,
                gsize   used)
{
  memmove (buffer->data, buffer->data + used, buffer->len - used);
  buffer->len -= used;
  ASAN_POISON_MEMORY_REGION (buffer->data + buffer->len, buffer->capacity - buffer->len);
}

static void
buffer_clear (Buffer *buffer)
{
  ASAN_UNPOISON_MEMORY_REGION (buffer->data, buffer->capacity);
  g_clear_pointer (&buffer->data, g_free);
  buffer->len = buffer->capacity = 0;
}

static void
event_clear (gpointer data)
{
  Event *event = data;

  g_clear_pointer (&event->payload, g_bytes_unref);
}

/* The connection's reading state, as in pubsub-connection.c. */
typedef struct {
  PubsubWsParser  parser;
  gsize           max_message;
  const guint8   *stream;       /* the original (masked) bytes */
  gsize           stream_len;
  Buffer          received;     /* an incomplete frame carried over, then a read */
  guint64         skip;
  gboolean        discard;
  gboolean        reading;
  GArray         *events;       /* of Event */

  /* The independent check, while no failure has happened. */
  gboolean        failed;
  GByteArray     *message;      /* unmasked data of the message being built */
  guint8          message_opcode;
} Reader;

static void
reader_init (Reader       *reader,
             gsize         max_message,
             const guint8 *stream,
             gsize         stream_len)
{
  memset (reader, 0, sizeof *reader);
  pubsub_ws_parser_init (&reader->parser, max_message);
  reader->max_message = max_message;
  reader->stream = stream;
  reader->stream_len = stream_len;
  reader->reading = TRUE;
  reader->events = g_array_new (FALSE, FALSE, sizeof (Event));
  g_array_set_clear_func (reader->events, event_clear);
}

static void
reader_clear (Reader *reader)
{
  pubsub_ws_parser_clear (&reader->parser);
  buffer_clear (&reader->received);
  g_clear_pointer (&reader->events, g_array_unref);
  g_clear_pointer (&reader->message, g_byte_array_unref);
}

static gboolean
close_code_may_be_sent (gushort code)
{
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
         (code >= 3000 && code <= 4999);
}

static gsize
header_len_of (const guint8 *frame)
{
  guint8 len7 = frame[1] & 0x7F;

  return (len7 == 126 ? 4 : len7 == 127 ? 10 : 2) + 4;
}

/* The declared payload length of a frame whose header is all there. */
static guint64
declared_len_of (const guint8 *frame)
{
  guint8 len7 = frame[1] & 0x7F;
  guint64 len = 0;

  if (len7 < 126)
    return len7;
  if (len7 == 126)
    return ((guint64) frame[2] << 8) | frame[3];
  for (guint i = 0; i < 8; i++)
    len = (len << 8) | frame[2 + i];
  return len;
}

static gboolean
points_into (const guint8 *p,
             gsize         len,
             const guint8 *start,
             gsize         start_len)
{
  return p >= start && len <= start_len && (gsize) (p - start) <= start_len - len;
}

/* Server frames built from what the client sent, as the connection does. */
static void
check_built_frames (const PubsubWsParser *parser,
                    PubsubWsEvent         event)
{
  g_autoptr(GBytes) frame = NULL;
  const guint8 *bytes;
  gsize len;

  if (event == PUBSUB_WS_PING)
    {
      frame = pubsub_ws_frame_new_pong (parser->payload, parser->payload_len);
      bytes = g_bytes_get_data (frame, &len);
      g_assert_cmpuint (len, ==, 2 + parser->payload_len);
      g_assert_cmpuint (bytes[0], ==, 0x80 | PUBSUB_WS_OPCODE_PONG);
      g_assert_cmpuint (bytes[1], ==, parser->payload_len);
      g_assert_cmpmem (bytes + 2, len - 2, parser->payload, parser->payload_len);
    }
  else if (event == PUBSUB_WS_CLOSE || event == PUBSUB_WS_FAIL)
    {
      gushort code = parser->close_code == PUBSUB_WS_CLOSE_NO_STATUS ? 0 : parser->close_code;

      frame = pubsub_ws_frame_new_close (code, parser->problem);
      bytes = g_bytes_get_data (frame, &len);
      g_assert_cmpuint (len, >=, 2);
      g_assert_cmpuint (len, <=, 2 + PUBSUB_WS_MAX_CONTROL_PAYLOAD);
      g_assert_cmpuint (bytes[0], ==, 0x80 | PUBSUB_WS_OPCODE_CLOSE);
      g_assert_cmpuint (bytes[1], ==, len - 2);
      g_assert_cmpuint (pubsub_ws_frame_payload_offset (frame), ==, 2);
      if (code != 0)
        {
          g_assert_cmpuint (len, >=, 4);
          g_assert_cmpuint ((bytes[2] << 8) | bytes[3], ==, code);
          g_assert_true (g_utf8_validate_len ((const char *) bytes + 4, len - 4, NULL));
        }
      else
        g_assert_cmpuint (len, ==, 2);
    }
}

/* What the parser just said about @data (at @stream_offset in the stream),
 * against the rules of RFC 6455 and the limits. */
static void
check_event (Reader        *reader,
             PubsubWsEvent  event,
             const guint8  *data,
             gsize          len,
             gsize          consumed)
{
  const PubsubWsParser *parser = &reader->parser;
  const GByteArray *fragments = parser->fragments;

  g_assert_cmpuint (consumed, <=, len);
  switch (event)
    {
    case PUBSUB_WS_NEED_MORE:
      g_assert_cmpuint (consumed, ==, 0);
      break;

    case PUBSUB_WS_CONTINUE:
      g_assert_cmpuint (consumed, >=, 6);
      g_assert_nonnull (fragments);
      g_assert_cmpuint (fragments->len, <=, reader->max_message);
      break;

    case PUBSUB_WS_TEXT:
    case PUBSUB_WS_BINARY:
      g_assert_cmpuint (consumed, >=, 6);
      g_assert_nonnull (parser->payload);
      g_assert_cmpuint (parser->payload_len, <=, reader->max_message);
      /* In place in the frame just consumed, or the reassembled message. */
      g_assert_true (points_into (parser->payload, parser->payload_len, data, consumed) ||
                     (fragments != NULL && parser->payload_len == fragments->len &&
                      (parser->payload == fragments->data || fragments->len == 0)));
      if (event == PUBSUB_WS_TEXT)
        g_assert_true (fuzz_utf8_is_valid (parser->payload, parser->payload_len));
      break;

    case PUBSUB_WS_PING:
    case PUBSUB_WS_PONG:
      g_assert_cmpuint (consumed, >=, 6);
      g_assert_cmpuint (parser->payload_len, <=, PUBSUB_WS_MAX_CONTROL_PAYLOAD);
      g_assert_true (points_into (parser->payload, parser->payload_len, data, consumed));
      break;

    case PUBSUB_WS_CLOSE:
      g_assert_cmpuint (consumed, >=, 6);
      g_assert_cmpuint (parser->payload_len, <=, PUBSUB_WS_MAX_CONTROL_PAYLOAD - 2);
      g_assert_true (points_into (parser->payload, parser->payload_len, data, consumed));
      if (parser->close_code == PUBSUB_WS_CLOSE_NO_STATUS)
        g_assert_cmpuint (parser->payload_len, ==, 0);
      else
        g_assert_true (close_code_may_be_sent (parser->close_code));
      g_assert_true (fuzz_utf8_is_valid (parser->payload, parser->payload_len));
      break;

    case PUBSUB_WS_FAIL:
      g_assert_nonnull (parser->problem);
      g_assert_true (parser->close_code == PUBSUB_WS_CLOSE_PROTOCOL_ERROR ||
                     parser->close_code == PUBSUB_WS_CLOSE_BAD_DATA ||
                     parser->close_code == PUBSUB_WS_CLOSE_TOO_BIG);
      g_assert_null (parser->payload);
      g_assert_cmpuint (parser->payload_len, ==, 0);
      if (parser->skip > 0)
        {
          /* A frame refused for its declared size, before its body: the
           * connection steps over exactly that frame. */
          g_assert_cmpuint (consumed, ==, 0);
          g_assert_cmpuint (parser->close_code, ==, PUBSUB_WS_CLOSE_TOO_BIG);
          g_assert_cmpuint (len, >=, 2);
          g_assert_cmpuint (parser->skip, >=, header_len_of (data));
          g_assert_cmpuint (parser->skip - header_len_of (data), ==, declared_len_of (data));
          g_assert_cmpuint (declared_len_of (data), >, reader->max_message);
        }
      break;

    default:
      g_assert_not_reached ();
    }
  check_built_frames (parser, event);
}

/* Unmasks the payload of the frame the parser consumed, from the original
 * bytes, without the parser's help. */
static GByteArray *
unmask_original (const guint8 *frame,
                 gsize         consumed)
{
  gsize header_len = header_len_of (frame);
  const guint8 *key = frame + header_len - 4;
  GByteArray *payload = g_byte_array_sized_new ((guint) (consumed - header_len));

  g_assert_cmpuint (consumed, >=, header_len);
  g_assert_cmpuint (declared_len_of (frame), ==, consumed - header_len);
  for (gsize i = header_len; i < consumed; i++)
    {
      guint8 byte = frame[i] ^ key[(i - header_len) & 3];

      g_byte_array_append (payload, &byte, 1);
    }
  return payload;
}

static void
assert_payload (const PubsubWsParser *parser,
                const guint8         *expected,
                gsize                 len)
{
  g_assert_cmpmem (parser->payload, parser->payload_len, expected, len);
}

/* Until the first failure, each event is what the original bytes say. */
static void
check_against_original (Reader        *reader,
                        PubsubWsEvent  event,
                        const guint8  *frame,
                        gsize          consumed)
{
  const PubsubWsParser *parser = &reader->parser;
  g_autoptr(GByteArray) payload = NULL;
  gboolean fin = (frame[0] & 0x80) != 0;
  guint8 opcode = frame[0] & 0x0F;

  if (reader->failed || consumed == 0)
    return;
  payload = unmask_original (frame, consumed);
  g_assert_cmpuint (frame[0] & 0x70, ==, 0);
  g_assert_cmpuint (frame[1] & 0x80, ==, 0x80);

  switch (event)
    {
    case PUBSUB_WS_PING:
    case PUBSUB_WS_PONG:
      g_assert_cmpuint (opcode, ==, event == PUBSUB_WS_PING ? PUBSUB_WS_OPCODE_PING
                                                             : PUBSUB_WS_OPCODE_PONG);
      g_assert_true (fin);
      assert_payload (parser, payload->data, payload->len);
      return;

    case PUBSUB_WS_CLOSE:
      g_assert_cmpuint (opcode, ==, PUBSUB_WS_OPCODE_CLOSE);
      if (payload->len == 0)
        g_assert_cmpuint (parser->close_code, ==, PUBSUB_WS_CLOSE_NO_STATUS);
      else
        {
          g_assert_cmpuint (payload->len, >=, 2);
          g_assert_cmpuint (parser->close_code, ==, (payload->data[0] << 8) | payload->data[1]);
          assert_payload (parser, payload->data + 2, payload->len - 2);
        }
      return;

    case PUBSUB_WS_CONTINUE:
    case PUBSUB_WS_TEXT:
    case PUBSUB_WS_BINARY:
      g_assert_true (opcode == PUBSUB_WS_OPCODE_CONTINUATION ||
                     opcode == PUBSUB_WS_OPCODE_TEXT || opcode == PUBSUB_WS_OPCODE_BINARY);
      g_assert_true (fin == (event != PUBSUB_WS_CONTINUE));
      if (opcode == PUBSUB_WS_OPCODE_CONTINUATION)
        {
          g_assert_nonnull (reader->message);
          g_byte_array_append (reader->message, payload->data, payload->len);
        }
      else
        {
          g_assert_null (reader->message);
          reader->message = g_steal_pointer (&payload);
          reader->message_opcode = opcode;
        }
      if (event == PUBSUB_WS_CONTINUE)
        return;
      g_assert_cmpuint (reader->message_opcode, ==,
                        event == PUBSUB_WS_TEXT ? PUBSUB_WS_OPCODE_TEXT : PUBSUB_WS_OPCODE_BINARY);
      assert_payload (parser, reader->message->data, reader->message->len);
      g_clear_pointer (&reader->message, g_byte_array_unref);
      return;

    case PUBSUB_WS_FAIL:
    case PUBSUB_WS_NEED_MORE:
    default:
      return;
    }
}

static void
record_event (Reader        *reader,
              PubsubWsEvent  event,
              gsize          consumed)
{
  const PubsubWsParser *parser = &reader->parser;
  /* CONTINUE leaves the payload of an earlier event, maybe in a buffer
   * that is gone: the connection does not look at it, nor do we. */
  gboolean has_payload = event != PUBSUB_WS_CONTINUE && event != PUBSUB_WS_FAIL;
  Event recorded = {
    .event = event,
    .consumed = consumed,
    .close_code = event == PUBSUB_WS_CLOSE || event == PUBSUB_WS_FAIL ? parser->close_code : 0,
    .problem = event == PUBSUB_WS_FAIL ? parser->problem : NULL,
    .skip = event == PUBSUB_WS_FAIL ? parser->skip : 0,
    .payload = has_payload ? g_bytes_new (parser->payload, parser->payload_len)
                           : g_bytes_new (NULL, 0),
  };

  g_array_append_val (reader->events, recorded);
}

/* process_frames() of the connection: @data starts at @stream_offset in the
 * stream. Returns: the bytes used by complete frames. */
static gsize
process_frames (Reader *reader,
                guint8 *data,
                gsize   len,
                gsize   stream_offset)
{
  gsize offset = 0;

  while (reader->reading && offset < len)
    {
      PubsubWsEvent event;
      gsize consumed;

      if (reader->discard)
        return len;
      if (reader->skip > 0)
        {
          gsize step = (gsize) MIN (reader->skip, (guint64) (len - offset));

          offset += step;
          reader->skip -= step;
          continue;
        }
      event = pubsub_ws_parser_next (&reader->parser, data + offset, len - offset, &consumed);
      check_event (reader, event, data + offset, len - offset, consumed);
      if (event == PUBSUB_WS_NEED_MORE)
        break;
      check_against_original (reader, event, reader->stream + stream_offset + offset, consumed);
      record_event (reader, event, consumed);
      offset += consumed;

      if (event == PUBSUB_WS_CLOSE)
        reader->reading = FALSE;
      else if (event == PUBSUB_WS_FAIL)
        {
          reader->failed = TRUE;
          if (reader->parser.skip > 0)
            reader->skip = reader->parser.skip;
          else if (consumed == 0)
            reader->discard = TRUE;
        }
    }
  return offset;
}

/* read_once() of the connection, for the @len bytes at @stream_offset:
 * behind what was carried over, the new bytes, then the frames they
 * complete; what is left is carried over to the next read. */
static void
read_once (Reader *reader,
           gsize   stream_offset,
           gsize   len)
{
  Buffer *received = &reader->received;
  gsize carried = received->len;
  gsize used;

  buffer_append (received, reader->stream + stream_offset, len);
  used = process_frames (reader, received->data, received->len, stream_offset - carried);
  g_assert_cmpuint (used, <=, received->len);
  if (reader->reading)
    buffer_consume (received, used);
}

static gsize
reader_unread (const Reader *reader)
{
  return reader->received.len;
}

static void
assert_same_events (const Reader *a,
                    const Reader *b)
{
  g_assert_cmpuint (a->events->len, ==, b->events->len);
  for (guint i = 0; i < a->events->len; i++)
    {
      const Event *x = &g_array_index (a->events, Event, i);
      const Event *y = &g_array_index (b->events, Event, i);

      g_assert_cmpint (x->event, ==, y->event);
      g_assert_cmpuint (x->consumed, ==, y->consumed);
      g_assert_cmpuint (x->close_code, ==, y->close_code);
      g_assert_cmpstr (x->problem, ==, y->problem);
      g_assert_cmpuint (x->skip, ==, y->skip);
      g_assert_true (g_bytes_equal (x->payload, y->payload));
    }
  g_assert_true (a->reading == b->reading);
  if (a->reading)
    g_assert_cmpuint (reader_unread (a), ==, reader_unread (b));
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  const guint8 *piece_sizes;
  gsize n_piece_sizes;
  const guint8 *stream;
  gsize stream_len;
  gsize max_message;
  Reader whole;
  Reader pieces;

  fuzz_setup_once ();
  if (size < 2)
    return 0;
  max_message = max_messages[data[0] % G_N_ELEMENTS (max_messages)];
  n_piece_sizes = MIN ((gsize) (data[1] % MAX_PIECE_SIZES) + 1, size - 2);
  piece_sizes = data + 2;
  stream = data + 2 + n_piece_sizes;
  stream_len = size - 2 - n_piece_sizes;

  reader_init (&whole, max_message, stream, stream_len);
  if (stream_len > 0)
    read_once (&whole, 0, stream_len);

  reader_init (&pieces, max_message, stream, stream_len);
  for (gsize offset = 0, i = 0; offset < stream_len && pieces.reading; i++)
    {
      guint8 piece = n_piece_sizes > 0 ? piece_sizes[i % n_piece_sizes] : 0;
      gsize len = piece == 0 ? stream_len - offset : MIN ((gsize) piece, stream_len - offset);

      read_once (&pieces, offset, len);
      offset += len;
    }

  assert_same_events (&whole, &pieces);
  reader_clear (&whole);
  reader_clear (&pieces);
  return 0;
}
