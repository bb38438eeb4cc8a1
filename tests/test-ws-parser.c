/* test-ws-parser.c: RFC 6455 client frames, parsed in place
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <string.h>

#include "pubsub-test-util.h"
#include "pubsub-ws-frame.h"

#define MAX_MESSAGE 1024

/* The key of every masked frame made here with pubsub_test_ws_client_frame(). */
static const guint8 mask_key[4] = { 0x37, 0xfa, 0x21, 0x3d };

typedef struct {
  PubsubWsParser parser;
} Fixture;

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  pubsub_ws_parser_init (&f->parser, MAX_MESSAGE);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  pubsub_ws_parser_clear (&f->parser);
}

static PubsubWsEvent
parse (Fixture    *f,
       GByteArray *frame,
       gsize      *consumed)
{
  return pubsub_ws_parser_next (&f->parser, frame->data, frame->len, consumed);
}

static void
assert_payload (Fixture    *f,
                const char *expected)
{
  g_assert_cmpuint (f->parser.payload_len, ==, strlen (expected));
  g_assert_cmpmem (f->parser.payload, f->parser.payload_len, expected, strlen (expected));
}

static void
test_text (Fixture       *f,
           gconstpointer  data)
{
  const char *text = "{\"type\":\"ping\",\"request_id\":\"é\"}";
  g_autoptr(GByteArray) frame = pubsub_test_ws_client_frame (0x81, text, strlen (text), mask_key);
  gsize consumed;

  g_assert_cmpint (parse (f, frame, &consumed), ==, PUBSUB_WS_TEXT);
  g_assert_cmpuint (consumed, ==, frame->len);
  assert_payload (f, text);
}

static void
test_lengths (Fixture       *f,
              gconstpointer  data)
{
  const gsize sizes[] = { 0, 1, 125, 126, 127, 1000, MAX_MESSAGE };

  for (gsize i = 0; i < G_N_ELEMENTS (sizes); i++)
    {
      g_autofree char *text = g_strnfill (sizes[i], 'a' + (char) i);
      g_autoptr(GByteArray) frame = pubsub_test_ws_client_frame (0x81, text, sizes[i], mask_key);
      gsize consumed;

      g_assert_cmpint (parse (f, frame, &consumed), ==, PUBSUB_WS_TEXT);
      g_assert_cmpuint (consumed, ==, frame->len);
      assert_payload (f, text);
    }
}

/* Every prefix of a frame is incomplete and consumes nothing. */
static void
test_need_more (Fixture       *f,
                gconstpointer  data)
{
  g_autofree char *text = g_strnfill (300, 'x');
  g_autoptr(GByteArray) frame = pubsub_test_ws_client_frame (0x81, text, 300, mask_key);

  for (gsize len = 0; len < frame->len; len++)
    {
      g_autoptr(GByteArray) copy = g_byte_array_new ();
      gsize consumed = 99;

      g_byte_array_append (copy, frame->data, (guint) len);
      g_assert_cmpint (pubsub_ws_parser_next (&f->parser, copy->data, copy->len, &consumed),
                       ==, PUBSUB_WS_NEED_MORE);
      g_assert_cmpuint (consumed, ==, 0);
    }
}

static void
test_several_frames (Fixture       *f,
                     gconstpointer  data)
{
  g_autoptr(GByteArray) all = g_byte_array_new ();
  const char *texts[] = { "one", "two", "three" };
  gsize offset = 0;

  for (gsize i = 0; i < G_N_ELEMENTS (texts); i++)
    {
      g_autoptr(GByteArray) frame = pubsub_test_ws_client_frame (0x81, texts[i], strlen (texts[i]),
                                                                 mask_key);

      g_byte_array_append (all, frame->data, frame->len);
    }
  for (gsize i = 0; i < G_N_ELEMENTS (texts); i++)
    {
      gsize consumed;

      g_assert_cmpint (pubsub_ws_parser_next (&f->parser, all->data + offset, all->len - offset,
                                              &consumed), ==, PUBSUB_WS_TEXT);
      assert_payload (f, texts[i]);
      offset += consumed;
    }
  g_assert_cmpuint (offset, ==, all->len);
}

/* U+0000 is valid UTF-8 (RFC 3629), so a text message or a close reason
 * may hold NUL bytes, wherever they are. g_utf8_validate() refuses them:
 * only those past the last whole 8-byte ASCII word were refused (1007),
 * found by tests/fuzz/fuzz-ws-frame. */
static void
test_nul_is_utf8 (Fixture       *f,
                  gconstpointer  data)
{
  static const struct { const char *text; gsize len; } texts[] = {
    { "\0", 1 },
    { "abcdefgh\0", 9 },
    { "\0bcdefghi", 9 },
    { "abcdefg\0" "abcdefgh\0\0", 18 },
    { "caf\xc3\xa9\0\xe6\x97\xa5\0", 10 },
  };
  g_autoptr(GByteArray) truncated = pubsub_test_ws_client_frame (0x81, "\xc3\0", 2, mask_key);
  g_autoptr(GByteArray) close = pubsub_test_ws_client_frame (0x88, "\x03\xe8" "a\0b", 5, mask_key);
  gsize consumed;

  for (gsize i = 0; i < G_N_ELEMENTS (texts); i++)
    {
      g_autoptr(GByteArray) frame = pubsub_test_ws_client_frame (0x81, texts[i].text,
                                                                 texts[i].len, mask_key);

      g_assert_cmpint (parse (f, frame, &consumed), ==, PUBSUB_WS_TEXT);
      g_assert_cmpmem (f->parser.payload, f->parser.payload_len, texts[i].text, texts[i].len);
    }

  /* A NUL does not complete a character it interrupts. */
  g_assert_cmpint (parse (f, truncated, &consumed), ==, PUBSUB_WS_FAIL);
  g_assert_cmpuint (f->parser.close_code, ==, PUBSUB_WS_CLOSE_BAD_DATA);

  g_assert_cmpint (parse (f, close, &consumed), ==, PUBSUB_WS_CLOSE);
  g_assert_cmpuint (f->parser.close_code, ==, 1000);
  g_assert_cmpmem (f->parser.payload, f->parser.payload_len, "a\0b", 3);
}

/* Unmasking also finds out whether a text message is all ASCII, 16, 8
 * and 1 bytes at a time: a non-ASCII byte anywhere, in any of those
 * steps, must still send the message through the full UTF-8 check. */
static void
test_utf8_every_position (Fixture       *f,
                          gconstpointer  data)
{
  for (gsize len = 1; len <= 40; len++)
    for (gsize at = 0; at < len; at++)
      {
        g_autofree char *text = g_malloc (len);
        gsize consumed;

        memset (text, 'a', len);
        text[at] = (char) 0xff;   /* never in UTF-8 */
        {
          g_autoptr(GByteArray) bad = pubsub_test_ws_client_frame (0x81, text, len, mask_key);

          g_assert_cmpint (parse (f, bad, &consumed), ==, PUBSUB_WS_FAIL);
          g_assert_cmpuint (f->parser.close_code, ==, PUBSUB_WS_CLOSE_BAD_DATA);
        }
        if (at + 2 > len)
          continue;
        text[at] = (char) 0xc3;   /* é: valid */
        text[at + 1] = (char) 0xa9;
        {
          g_autoptr(GByteArray) good = pubsub_test_ws_client_frame (0x81, text, len, mask_key);

          g_assert_cmpint (parse (f, good, &consumed), ==, PUBSUB_WS_TEXT);
          g_assert_cmpmem (f->parser.payload, f->parser.payload_len, text, len);
        }
      }
}

static void
test_control_frames (Fixture       *f,
                     gconstpointer  data)
{
  g_autoptr(GByteArray) ping = pubsub_test_ws_client_frame (0x89, "hello", 5, mask_key);
  g_autoptr(GByteArray) pong = pubsub_test_ws_client_frame (0x8A, "", 0, mask_key);
  g_autoptr(GByteArray) binary = pubsub_test_ws_client_frame (0x82, "\x00\x01", 2, mask_key);
  gsize consumed;

  g_assert_cmpint (parse (f, ping, &consumed), ==, PUBSUB_WS_PING);
  assert_payload (f, "hello");
  g_assert_cmpint (parse (f, pong, &consumed), ==, PUBSUB_WS_PONG);
  g_assert_cmpint (parse (f, binary, &consumed), ==, PUBSUB_WS_BINARY);
  g_assert_cmpuint (f->parser.payload_len, ==, 2);
}

typedef struct {
  const char *name;
  guint8      first_byte;
  const char *payload;
  gsize       len;
  gboolean    masked;
  gushort     close_code;
} FailCase;

static const FailCase fail_cases[] = {
  { "unmasked", 0x81, "x", 1, FALSE, 1002 },
  { "rsv1", 0xC1, "x", 1, TRUE, 1002 },
  { "rsv2", 0xA1, "x", 1, TRUE, 1002 },
  { "rsv3", 0x91, "x", 1, TRUE, 1002 },
  { "opcode-3", 0x83, "x", 1, TRUE, 1002 },
  { "opcode-11", 0x8B, "x", 1, TRUE, 1002 },
  { "fragmented-ping", 0x09, "x", 1, TRUE, 1002 },
  { "continuation-first", 0x80, "x", 1, TRUE, 1002 },
  { "invalid-utf8", 0x81, "\xc3\x28", 2, TRUE, 1007 },
  { "lone-surrogate", 0x81, "\xed\xa0\x80", 3, TRUE, 1007 },
  { "close-one-byte", 0x88, "\x03", 1, TRUE, 1002 },
  { "close-code-999", 0x88, "\x03\xe7", 2, TRUE, 1002 },
  { "close-code-1005", 0x88, "\x03\xed", 2, TRUE, 1002 },
  { "close-code-1006", 0x88, "\x03\xee", 2, TRUE, 1002 },
  { "close-code-2000", 0x88, "\x07\xd0", 2, TRUE, 1002 },
  { "close-reason-not-utf8", 0x88, "\x03\xe8\xff", 3, TRUE, 1007 },
};

static void
test_fail (Fixture       *f,
           gconstpointer  data)
{
  const FailCase *c = data;
  g_autoptr(GByteArray) frame = pubsub_test_ws_client_frame (c->first_byte, c->payload, c->len,
                                                               c->masked ? mask_key : NULL);
  gsize consumed;

  g_assert_cmpint (parse (f, frame, &consumed), ==, PUBSUB_WS_FAIL);
  g_assert_cmpuint (f->parser.close_code, ==, c->close_code);
  g_assert_nonnull (f->parser.problem);
}

static void
test_control_too_long (Fixture       *f,
                       gconstpointer  data)
{
  g_autofree char *body = g_strnfill (126, 'p');
  g_autoptr(GByteArray) frame = pubsub_test_ws_client_frame (0x89, body, 126, mask_key);
  gsize consumed;

  g_assert_cmpint (parse (f, frame, &consumed), ==, PUBSUB_WS_FAIL);
  g_assert_cmpuint (f->parser.close_code, ==, PUBSUB_WS_CLOSE_PROTOCOL_ERROR);
}

static void
test_close (Fixture       *f,
            gconstpointer  data)
{
  g_autoptr(GByteArray) empty = pubsub_test_ws_client_frame (0x88, "", 0, mask_key);
  g_autoptr(GByteArray) normal = pubsub_test_ws_client_frame (0x88, "\x03\xe8" "bye", 5, mask_key);
  g_autoptr(GByteArray) app = pubsub_test_ws_client_frame (0x88, "\x0f\xa0", 2, mask_key);
  gsize consumed;

  g_assert_cmpint (parse (f, empty, &consumed), ==, PUBSUB_WS_CLOSE);
  g_assert_cmpuint (f->parser.close_code, ==, PUBSUB_WS_CLOSE_NO_STATUS);
  g_assert_cmpint (parse (f, normal, &consumed), ==, PUBSUB_WS_CLOSE);
  g_assert_cmpuint (f->parser.close_code, ==, 1000);
  assert_payload (f, "bye");
  g_assert_cmpint (parse (f, app, &consumed), ==, PUBSUB_WS_CLOSE);
  g_assert_cmpuint (f->parser.close_code, ==, 4000);
}

/* A fragmented message, with a ping between its fragments. */
static void
test_fragments (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(GByteArray) first = pubsub_test_ws_client_frame (0x01, "{\"type\":", 8, mask_key);
  g_autoptr(GByteArray) ping = pubsub_test_ws_client_frame (0x89, "p", 1, mask_key);
  g_autoptr(GByteArray) middle = pubsub_test_ws_client_frame (0x00, "\"pi", 3, mask_key);
  g_autoptr(GByteArray) last = pubsub_test_ws_client_frame (0x80, "ng\"}", 4, mask_key);
  g_autoptr(GByteArray) next = pubsub_test_ws_client_frame (0x81, "after", 5, mask_key);
  gsize consumed;

  g_assert_cmpint (parse (f, first, &consumed), ==, PUBSUB_WS_CONTINUE);
  g_assert_cmpuint (consumed, ==, first->len);
  g_assert_cmpint (parse (f, ping, &consumed), ==, PUBSUB_WS_PING);
  g_assert_cmpint (parse (f, middle, &consumed), ==, PUBSUB_WS_CONTINUE);
  g_assert_cmpint (parse (f, last, &consumed), ==, PUBSUB_WS_TEXT);
  assert_payload (f, "{\"type\":\"ping\"}");
  g_assert_cmpint (parse (f, next, &consumed), ==, PUBSUB_WS_TEXT);
  assert_payload (f, "after");
}

/* A message of empty fragments is an empty message, with a real pointer:
 * the reassembly buffer has none of its own then, and NULL + 0 is
 * undefined in C (found by tests/fuzz/fuzz-ws-frame under UBSan). */
static void
test_fragments_empty (Fixture       *f,
                      gconstpointer  data)
{
  const guint8 first_bytes[] = { 0x01, 0x02 };

  for (gsize i = 0; i < G_N_ELEMENTS (first_bytes); i++)
    {
      g_autoptr(GByteArray) first = pubsub_test_ws_client_frame (first_bytes[i], "", 0, mask_key);
      g_autoptr(GByteArray) middle = pubsub_test_ws_client_frame (0x00, "", 0, mask_key);
      g_autoptr(GByteArray) last = pubsub_test_ws_client_frame (0x80, "", 0, mask_key);
      gsize consumed;

      g_assert_cmpint (parse (f, first, &consumed), ==, PUBSUB_WS_CONTINUE);
      g_assert_cmpint (parse (f, middle, &consumed), ==, PUBSUB_WS_CONTINUE);
      g_assert_cmpint (parse (f, last, &consumed), ==,
                       first_bytes[i] == 0x01 ? PUBSUB_WS_TEXT : PUBSUB_WS_BINARY);
      g_assert_cmpuint (consumed, ==, last->len);
      g_assert_nonnull (f->parser.payload);
      g_assert_cmpuint (f->parser.payload_len, ==, 0);
    }
}

static void
test_fragments_interleaved_message (Fixture       *f,
                                    gconstpointer  data)
{
  g_autoptr(GByteArray) first = pubsub_test_ws_client_frame (0x01, "ab", 2, mask_key);
  g_autoptr(GByteArray) whole = pubsub_test_ws_client_frame (0x81, "cd", 2, mask_key);
  gsize consumed;

  g_assert_cmpint (parse (f, first, &consumed), ==, PUBSUB_WS_CONTINUE);
  g_assert_cmpint (parse (f, whole, &consumed), ==, PUBSUB_WS_FAIL);
  g_assert_cmpuint (f->parser.close_code, ==, PUBSUB_WS_CLOSE_PROTOCOL_ERROR);
}

/* Refused on its header alone, with its whole size to step over. */
static void
test_too_big_frame (Fixture       *f,
                    gconstpointer  data)
{
  g_autofree char *body = g_strnfill (MAX_MESSAGE + 1, 'b');
  g_autoptr(GByteArray) frame = pubsub_test_ws_client_frame (0x81, body, MAX_MESSAGE + 1, mask_key);
  gsize consumed;

  g_assert_cmpint (pubsub_ws_parser_next (&f->parser, frame->data, 8, &consumed), ==,
                   PUBSUB_WS_FAIL);
  g_assert_cmpuint (consumed, ==, 0);
  g_assert_cmpuint (f->parser.close_code, ==, PUBSUB_WS_CLOSE_TOO_BIG);
  g_assert_cmpuint (f->parser.skip, ==, frame->len);
}

/* RFC 6455 §5.2: the most significant bit of a 64-bit length must be 0.
 * Such a length is a protocol error, not a frame to step over: its size
 * plus the header would wrap around (found by tests/fuzz/fuzz-ws-frame). */
static void
test_length_msb (Fixture       *f,
                 gconstpointer  data)
{
  static const guint8 msb_set[][14] = {
    { 0x81, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4 },
    { 0x81, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4 },
    { 0x82, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xF2, 1, 2, 3, 4 },
    { 0x00, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0x10, 1, 2, 3, 4 },
  };
  guint8 largest[14] = { 0x81, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4 };
  gsize consumed;

  for (gsize i = 0; i < G_N_ELEMENTS (msb_set); i++)
    {
      guint8 frame[14];

      memcpy (frame, msb_set[i], sizeof frame);
      g_assert_cmpint (pubsub_ws_parser_next (&f->parser, frame, sizeof frame, &consumed), ==,
                       PUBSUB_WS_FAIL);
      g_assert_cmpuint (consumed, ==, 0);
      g_assert_cmpuint (f->parser.close_code, ==, PUBSUB_WS_CLOSE_PROTOCOL_ERROR);
      g_assert_cmpuint (f->parser.skip, ==, 0);
    }

  /* The largest length allowed is too big, and stepped over whole. */
  g_assert_cmpint (pubsub_ws_parser_next (&f->parser, largest, sizeof largest, &consumed), ==,
                   PUBSUB_WS_FAIL);
  g_assert_cmpuint (consumed, ==, 0);
  g_assert_cmpuint (f->parser.close_code, ==, PUBSUB_WS_CLOSE_TOO_BIG);
  g_assert_cmpuint (f->parser.skip, ==, G_GUINT64_CONSTANT (0x7FFFFFFFFFFFFFFF) + 14);
}

/* The reassembled size counts too: libsoup 3.2.3 had no such limit. */
static void
test_too_big_fragments (Fixture       *f,
                        gconstpointer  data)
{
  g_autofree char *part = g_strnfill (MAX_MESSAGE / 2 + 1, 'c');
  g_autoptr(GByteArray) first = pubsub_test_ws_client_frame (0x01, part, strlen (part), mask_key);
  g_autoptr(GByteArray) second = pubsub_test_ws_client_frame (0x00, part, strlen (part), mask_key);
  gsize consumed;

  g_assert_cmpint (parse (f, first, &consumed), ==, PUBSUB_WS_CONTINUE);
  g_assert_cmpint (parse (f, second, &consumed), ==, PUBSUB_WS_FAIL);
  g_assert_cmpuint (f->parser.close_code, ==, PUBSUB_WS_CLOSE_TOO_BIG);
  g_assert_null (f->parser.fragments);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

#define ADD(path, func) g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("/ws-parser/text", test_text);
  ADD ("/ws-parser/lengths", test_lengths);
  ADD ("/ws-parser/need-more", test_need_more);
  ADD ("/ws-parser/several-frames", test_several_frames);
  ADD ("/ws-parser/control-frames", test_control_frames);
  ADD ("/ws-parser/nul-is-utf8", test_nul_is_utf8);
  ADD ("/ws-parser/utf8-every-position", test_utf8_every_position);
  ADD ("/ws-parser/control-too-long", test_control_too_long);
  ADD ("/ws-parser/close", test_close);
  ADD ("/ws-parser/fragments", test_fragments);
  ADD ("/ws-parser/fragments-empty", test_fragments_empty);
  ADD ("/ws-parser/fragments-interleaved-message", test_fragments_interleaved_message);
  ADD ("/ws-parser/too-big/frame", test_too_big_frame);
  ADD ("/ws-parser/too-big/fragments", test_too_big_fragments);
  ADD ("/ws-parser/length-msb", test_length_msb);
#undef ADD
  for (gsize i = 0; i < G_N_ELEMENTS (fail_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/ws-parser/fail/%s", fail_cases[i].name);

      g_test_add (path, Fixture, &fail_cases[i], fixture_setup, test_fail, fixture_teardown);
    }
  return g_test_run ();
}
