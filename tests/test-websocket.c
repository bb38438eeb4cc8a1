/* test-websocket.c: the WebSocket protocol (SPEC §2) against the real pubsubd
 *
 * Clients are libsoup's (pubsub_test_ws_*), which check on every frame they
 * receive that it is a JSON object with a well-formed "ts", or a raw socket
 * (pubsub_test_raw_ws_*) where a client must misbehave: never answer pings,
 * send invalid UTF-8, fragment by hand.
 *
 * SPDX-License-Identifier: MIT
 */
#include <string.h>

#include "pubsub-test-util.h"

/* ---- helpers ------------------------------------------------------------ */

/* One daemon for the table rows, with the topic "orders"; stopped (exit
 * status 0) in main(). */
static PubsubTestServer *
get_shared_server (void)
{
  static const char * const args[] = { "--history-size", "1000", NULL };
  gboolean started;
  PubsubTestServer *server = pubsub_test_shared_server (args, &started);

  if (started)
    pubsub_test_create_topic (server, "orders", NULL);
  return server;
}

/* request_id is omitted or null when the client sent none. */
static void
assert_no_request_id (PubsubTestFrame *frame)
{
  g_autofree char *raw = pubsub_test_frame_dup_raw (frame, "request_id", NULL);

  if (raw != NULL && !g_str_equal (raw, "null"))
    g_test_fail_printf ("request_id %s in a reply to a frame without one: %s", raw, frame->text);
}

static void
assert_request_id_raw (PubsubTestFrame *frame,
                       const char      *raw_expected)
{
  g_autofree char *raw = pubsub_test_frame_dup_raw (frame, "request_id", NULL);

  if (g_strcmp0 (raw, raw_expected) != 0)
    g_test_fail_printf ("request_id: expected %s verbatim, got %s in %s", raw_expected, raw,
                        frame->text);
}

/* Asserts the next frame is of @type and returns it. */
static PubsubTestFrame *
expect_frame (PubsubTestWs *ws,
              const char   *type)
{
  PubsubTestFrame *frame = pubsub_test_ws_next (ws, 5000);

  if (g_strcmp0 (pubsub_test_frame_type (frame), type) != 0)
    g_error ("expected a %s frame, got: %s", type, frame->text);
  return frame;
}

static void
expect_error (PubsubTestWs *ws,
              const char   *code)
{
  g_autoptr(PubsubTestFrame) frame = expect_frame (ws, "error");

  g_assert_cmpstr (pubsub_test_frame_get_string (frame, "error", "code"), ==, code);
  g_assert_nonnull (pubsub_test_frame_get_string (frame, "error", "message"));
}

/* The connection still works: ping, pong. */
static void
assert_usable (PubsubTestWs *ws)
{
  g_assert_false (ws->closed);
  pubsub_test_ws_assert_quiet (ws);
}

static void
publish_seq (PubsubTestWs *publisher,
             const char   *topic,
             guint         n)
{
  g_autofree char *payload = g_strdup_printf ("{\"n\":%u}", n);

  g_free (pubsub_test_ws_publish (publisher, topic, payload));
}

/* ---- the basic exchange ------------------------------------------------- */

static void
test_ping (void)
{
  PubsubTestServer *server = get_shared_server ();
  g_autoptr(PubsubTestWs) ws = pubsub_test_ws_connect (server, NULL, NULL);
  g_autoptr(PubsubTestFrame) pong = NULL;
  g_autoptr(PubsubTestFrame) bare = NULL;
  g_autoptr(PubsubTestFrame) null_id = NULL;
  g_autoptr(PubsubTestFrame) extra = NULL;

  pubsub_test_ws_send (ws, "{\"type\":\"ping\",\"request_id\":\"r1\"}");
  pong = expect_frame (ws, "pong");
  assert_request_id_raw (pong, "\"r1\"");

  pubsub_test_ws_send (ws, "{\"type\":\"ping\"}");
  bare = expect_frame (ws, "pong");
  assert_no_request_id (bare);

  pubsub_test_ws_send (ws, "{\"type\":\"ping\",\"request_id\":null}");
  null_id = expect_frame (ws, "pong");
  assert_no_request_id (null_id);

  /* Fields the protocol does not name are ignored; whitespace is fine. */
  pubsub_test_ws_send (ws, " {\n\"x\" : [1, {\"y\": null}], \"type\" : \"ping\" ,"
                           " \"request_id\" : \"r2\", \"z\": -1.5e3 }\t");
  extra = expect_frame (ws, "pong");
  assert_request_id_raw (extra, "\"r2\"");
}

/* Extensions: the server must not take permessage-deflate, which libsoup's
 * client offers by default. */
static void
test_no_deflate (void)
{
  PubsubTestServer *server = get_shared_server ();
  g_autoptr(PubsubTestWs) ws = pubsub_test_ws_connect (server, NULL, NULL);

  g_assert_nonnull (ws->offered_extensions);
  g_assert_nonnull (strstr (ws->offered_extensions, "permessage-deflate"));
  g_assert_null (soup_websocket_connection_get_extensions (ws->conn));
  assert_usable (ws);
}

static void
test_subscribe_publish (void)
{
  PubsubTestServer *server = pubsub_test_server_start (NULL);
  g_autoptr(PubsubTestWs) subscriber = pubsub_test_ws_connect (server, NULL, NULL);
  g_autoptr(PubsubTestWs) publisher = pubsub_test_ws_connect (server, NULL, NULL);
  g_autoptr(PubsubTestFrame) sub_ack = NULL;
  g_autoptr(PubsubTestFrame) pub_ack = NULL;
  g_autoptr(PubsubTestFrame) event = NULL;
  g_autofree char *id = pubsub_test_uuid ();
  g_autofree char *raw_id = NULL;
  g_autofree char *raw_payload = NULL;

  pubsub_test_create_topic (server, "orders", NULL);
  pubsub_test_ws_send (subscriber, "{\"type\":\"subscribe\",\"topic\":\"orders\","
                                   "\"client_id\":\"sub-1\",\"request_id\":\"s1\"}");
  sub_ack = expect_frame (subscriber, "ack");
  assert_request_id_raw (sub_ack, "\"s1\"");
  g_assert_cmpstr (pubsub_test_frame_get_string (sub_ack, "topic", NULL), ==, "orders");
  g_assert_cmpstr (pubsub_test_frame_get_string (sub_ack, "status", NULL), ==, "ok");

  pubsub_test_ws_sendf (publisher, "{\"type\":\"publish\",\"topic\":\"orders\","
                                   "\"request_id\":\"p1\",\"message\":{\"id\":\"%s\","
                                   "\"payload\":{\"amount\":42,\"item\":\"book\"}}}", id);
  pub_ack = expect_frame (publisher, "ack");
  assert_request_id_raw (pub_ack, "\"p1\"");
  g_assert_cmpstr (pubsub_test_frame_get_string (pub_ack, "topic", NULL), ==, "orders");
  g_assert_cmpstr (pubsub_test_frame_get_string (pub_ack, "status", NULL), ==, "ok");

  event = expect_frame (subscriber, "event");
  g_assert_cmpstr (pubsub_test_frame_get_string (event, "topic", NULL), ==, "orders");
  raw_id = pubsub_test_frame_dup_raw (event, "message", "id", NULL);
  g_assert_cmpstr (pubsub_test_frame_get_string (event, "message", "id"), ==, id);
  raw_payload = pubsub_test_frame_dup_raw (event, "message", "payload", NULL);
  g_assert_cmpstr (raw_payload, ==, "{\"amount\":42,\"item\":\"book\"}");
  assert_no_request_id (event);

  /* The publisher is not subscribed: it gets nothing more; neither does the
   * subscriber. */
  assert_usable (publisher);
  assert_usable (subscriber);

  g_clear_pointer (&subscriber, pubsub_test_ws_free);
  g_clear_pointer (&publisher, pubsub_test_ws_free);
  pubsub_test_server_stop (server);
  pubsub_test_server_free (server);
}

/* A UUID in upper case is still a UUID. */
static void
test_publish_uuid_forms (void)
{
  PubsubTestServer *server = get_shared_server ();
  g_autoptr(PubsubTestWs) ws = pubsub_test_ws_connect (server, NULL, NULL);
  g_autofree char *id = pubsub_test_uuid ();
  g_autofree char *upper = g_ascii_strup (id, -1);
  g_autoptr(PubsubTestFrame) ack = NULL;

  pubsub_test_ws_sendf (ws, "{\"type\":\"publish\",\"topic\":\"orders\",\"message\":"
                            "{\"id\":\"%s\",\"payload\":1}}", upper);
  ack = expect_frame (ws, "ack");
  assert_no_request_id (ack);
  g_assert_cmpstr (pubsub_test_frame_get_string (ack, "topic", NULL), ==, "orders");
}

/* ---- request_id echo ---------------------------------------------------- */

static const char *request_ids[] = {
  "\"r1\"",
  "\"\"",
  "\"r\\u00e9\"",
  "\"r\xc3\xa9\"",
  "\"\\ud83d\\ude00\"",
  "\"\xf0\x9f\x98\x80\"",
  "\"quote\\\"d \\\\ back\\/slash\\n\\t\"",
  "\"\\u0000\"",
  "\"42\"",
};

static void
test_request_id_verbatim (void)
{
  PubsubTestServer *server = get_shared_server ();
  g_autoptr(PubsubTestWs) ws = pubsub_test_ws_connect (server, NULL, NULL);

  for (gsize i = 0; i < G_N_ELEMENTS (request_ids) + 1; i++)
    {
      g_autofree char *generated = NULL;
      const char *rid;
      g_autofree char *id = pubsub_test_uuid ();
      struct {
        char       *frame;
        const char *type;
      } cases[5];

      if (i < G_N_ELEMENTS (request_ids))
        rid = request_ids[i];
      else
        {
          g_autofree char *body = g_strnfill (600, 'x');

          rid = generated = g_strdup_printf ("\"%s\"", body);
        }
      g_test_message ("request_id %s", rid);
      cases[0].frame = g_strdup_printf ("{\"request_id\":%s,\"type\":\"ping\"}", rid);
      cases[0].type = "pong";
      cases[1].frame = g_strdup_printf ("{\"type\":\"subscribe\",\"topic\":\"orders\","
                                        "\"client_id\":\"c\",\"request_id\":%s}", rid);
      cases[1].type = "ack";
      cases[2].frame = g_strdup_printf ("{\"type\":\"unsubscribe\",\"topic\":\"orders\","
                                        "\"client_id\":\"c\",\"request_id\":%s}", rid);
      cases[2].type = "ack";
      cases[3].frame = g_strdup_printf ("{\"type\":\"publish\",\"topic\":\"orders\",\"request_id\":%s,"
                                        "\"message\":{\"id\":\"%s\",\"payload\":null}}", rid, id);
      cases[3].type = "ack";
      cases[4].frame = g_strdup_printf ("{\"type\":\"publish\",\"topic\":\"orders\",\"request_id\":%s,"
                                        "\"message\":{\"id\":\"nope\",\"payload\":null}}", rid);
      cases[4].type = "error";

      for (gsize j = 0; j < G_N_ELEMENTS (cases); j++)
        {
          g_autoptr(PubsubTestFrame) reply = NULL;

          pubsub_test_ws_send (ws, cases[j].frame);
          reply = expect_frame (ws, cases[j].type);
          assert_request_id_raw (reply, rid);
          g_free (cases[j].frame);
        }
    }
  assert_usable (ws);
}

/* ---- errors ------------------------------------------------------------- */

typedef struct {
  const char *name;
  const char *frame;
  const char *code;
  const char *request_id;   /* the raw token to see echoed, or NULL */
} ErrorCase;

#define UUID "123e4567-e89b-12d3-a456-426614174000"
#define T129 "ttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttt" \
             "tttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttt"

static const ErrorCase error_cases[] = {
  /* Not JSON */
  { "not-json/word", "hello", "BAD_REQUEST", NULL },
  { "not-json/brace", "{", "BAD_REQUEST", NULL },
  { "not-json/empty", "", "BAD_REQUEST", NULL },
  { "not-json/spaces", "   ", "BAD_REQUEST", NULL },
  { "not-json/truncated", "{\"type\":\"ping\"", "BAD_REQUEST", NULL },
  /* What json-glib 1.6 would accept */
  { "lenient/single-quotes", "{'type':'ping'}", "BAD_REQUEST", NULL },
  { "lenient/comment-after", "{\"type\":\"ping\"} /*c*/", "BAD_REQUEST", NULL },
  { "lenient/comment-before", "/*c*/{\"type\":\"ping\"}", "BAD_REQUEST", NULL },
  { "lenient/line-comment", "{\"type\":\"ping\"} // c", "BAD_REQUEST", NULL },
  { "lenient/hex", "{\"type\":\"ping\",\"n\":0x10}", "BAD_REQUEST", NULL },
  { "lenient/leading-zero", "{\"type\":\"ping\",\"n\":01}", "BAD_REQUEST", NULL },
  { "lenient/trailing-dot", "{\"type\":\"ping\",\"n\":1.}", "BAD_REQUEST", NULL },
  { "lenient/leading-dot", "{\"type\":\"ping\",\"n\":.5}", "BAD_REQUEST", NULL },
  { "lenient/trailing-garbage", "{} x", "BAD_REQUEST", NULL },
  { "lenient/ping-then-garbage", "{\"type\":\"ping\"} x", "BAD_REQUEST", NULL },
  { "lenient/two-arrays", "[1] [2]", "BAD_REQUEST", NULL },
  { "lenient/two-objects", "{\"type\":\"ping\"}{\"type\":\"ping\"}", "BAD_REQUEST", NULL },
  { "lenient/trailing-comma", "{\"type\":\"ping\",}", "BAD_REQUEST", NULL },
  { "lenient/unquoted-key", "{type:\"ping\"}", "BAD_REQUEST", NULL },
  { "lenient/plus", "{\"type\":\"ping\",\"n\":+1}", "BAD_REQUEST", NULL },
  { "lenient/nan", "{\"type\":\"ping\",\"n\":NaN}", "BAD_REQUEST", NULL },
  { "lenient/infinity", "{\"type\":\"ping\",\"n\":Infinity}", "BAD_REQUEST", NULL },
  { "lenient/exponent-only", "{\"type\":\"ping\",\"n\":1e}", "BAD_REQUEST", NULL },
  { "lenient/minus-only", "{\"type\":\"ping\",\"n\":-}", "BAD_REQUEST", NULL },
  { "lenient/capital-true", "{\"type\":\"ping\",\"b\":True}", "BAD_REQUEST", NULL },
  { "lenient/bad-escape", "{\"type\":\"ping\",\"s\":\"\\x41\"}", "BAD_REQUEST", NULL },
  { "lenient/short-unicode-escape", "{\"type\":\"ping\",\"s\":\"\\u41\"}", "BAD_REQUEST", NULL },
  { "lenient/raw-tab", "{\"type\":\"ping\",\"s\":\"a\tb\"}", "BAD_REQUEST", NULL },
  { "lenient/raw-newline", "{\"type\":\"ping\",\"s\":\"a\nb\"}", "BAD_REQUEST", NULL },
  /* Not an object */
  { "not-object/array", "[]", "BAD_REQUEST", NULL },
  { "not-object/array-of-ping", "[{\"type\":\"ping\"}]", "BAD_REQUEST", NULL },
  { "not-object/string", "\"ping\"", "BAD_REQUEST", NULL },
  { "not-object/number", "5", "BAD_REQUEST", NULL },
  { "not-object/null", "null", "BAD_REQUEST", NULL },
  { "not-object/true", "true", "BAD_REQUEST", NULL },
  /* type */
  { "type/missing", "{\"request_id\":\"t1\"}", "BAD_REQUEST", "\"t1\"" },
  { "type/null", "{\"type\":null,\"request_id\":\"t2\"}", "BAD_REQUEST", "\"t2\"" },
  { "type/number", "{\"type\":5,\"request_id\":\"t3\"}", "BAD_REQUEST", "\"t3\"" },
  { "type/unknown", "{\"type\":\"pong\",\"request_id\":\"t4\"}", "BAD_REQUEST", "\"t4\"" },
  { "type/case", "{\"type\":\"PING\",\"request_id\":\"t5\"}", "BAD_REQUEST", "\"t5\"" },
  { "type/empty", "{\"type\":\"\",\"request_id\":\"t6\"}", "BAD_REQUEST", "\"t6\"" },
  { "type/array", "{\"type\":[\"ping\"],\"request_id\":\"t7\"}", "BAD_REQUEST", "\"t7\"" },
  { "type/escaped-nul", "{\"type\":\"ping\\u0000\",\"request_id\":\"t8\"}", "BAD_REQUEST", "\"t8\"" },
  { "request-id/number", "{\"type\":\"ping\",\"request_id\":5}", "BAD_REQUEST", NULL },
  /* subscribe */
  { "subscribe/no-topic", "{\"type\":\"subscribe\",\"client_id\":\"c\",\"request_id\":\"s1\"}",
    "BAD_REQUEST", "\"s1\"" },
  { "subscribe/topic-null", "{\"type\":\"subscribe\",\"topic\":null,\"client_id\":\"c\","
    "\"request_id\":\"s2\"}", "BAD_REQUEST", "\"s2\"" },
  { "subscribe/topic-number", "{\"type\":\"subscribe\",\"topic\":5,\"client_id\":\"c\","
    "\"request_id\":\"s3\"}", "BAD_REQUEST", "\"s3\"" },
  { "subscribe/no-client-id", "{\"type\":\"subscribe\",\"topic\":\"orders\","
    "\"request_id\":\"s4\"}", "BAD_REQUEST", "\"s4\"" },
  { "subscribe/client-id-null", "{\"type\":\"subscribe\",\"topic\":\"orders\","
    "\"client_id\":null,\"request_id\":\"s5\"}", "BAD_REQUEST", "\"s5\"" },
  { "subscribe/client-id-number", "{\"type\":\"subscribe\",\"topic\":\"orders\","
    "\"client_id\":5,\"request_id\":\"s6\"}", "BAD_REQUEST", "\"s6\"" },
  { "subscribe/last-n-negative", "{\"type\":\"subscribe\",\"topic\":\"orders\","
    "\"client_id\":\"c\",\"last_n\":-1,\"request_id\":\"s7\"}", "BAD_REQUEST", "\"s7\"" },
  { "subscribe/last-n-fraction", "{\"type\":\"subscribe\",\"topic\":\"orders\","
    "\"client_id\":\"c\",\"last_n\":1.5,\"request_id\":\"s8\"}", "BAD_REQUEST", "\"s8\"" },
  { "subscribe/last-n-string", "{\"type\":\"subscribe\",\"topic\":\"orders\","
    "\"client_id\":\"c\",\"last_n\":\"3\",\"request_id\":\"s9\"}", "BAD_REQUEST", "\"s9\"" },
  { "subscribe/last-n-exponent", "{\"type\":\"subscribe\",\"topic\":\"orders\","
    "\"client_id\":\"c\",\"last_n\":1e2,\"request_id\":\"s10\"}", "BAD_REQUEST", "\"s10\"" },
  { "subscribe/last-n-point-zero", "{\"type\":\"subscribe\",\"topic\":\"orders\","
    "\"client_id\":\"c\",\"last_n\":2.0,\"request_id\":\"s11\"}", "BAD_REQUEST", "\"s11\"" },
  { "subscribe/last-n-true", "{\"type\":\"subscribe\",\"topic\":\"orders\","
    "\"client_id\":\"c\",\"last_n\":true,\"request_id\":\"s12\"}", "BAD_REQUEST", "\"s12\"" },
  { "subscribe/last-n-huge-negative", "{\"type\":\"subscribe\",\"topic\":\"orders\","
    "\"client_id\":\"c\",\"last_n\":-99999999999999999999999,\"request_id\":\"s13\"}",
    "BAD_REQUEST", "\"s13\"" },
  { "subscribe/topic-empty", "{\"type\":\"subscribe\",\"topic\":\"\",\"client_id\":\"c\","
    "\"request_id\":\"s14\"}", "BAD_REQUEST", "\"s14\"" },
  { "subscribe/topic-space", "{\"type\":\"subscribe\",\"topic\":\"a b\",\"client_id\":\"c\","
    "\"request_id\":\"s15\"}", "BAD_REQUEST", "\"s15\"" },
  { "subscribe/topic-e-acute", "{\"type\":\"subscribe\",\"topic\":\"\xc3\xa9\","
    "\"client_id\":\"c\",\"request_id\":\"s16\"}", "BAD_REQUEST", "\"s16\"" },
  { "subscribe/topic-slash", "{\"type\":\"subscribe\",\"topic\":\"a/b\",\"client_id\":\"c\","
    "\"request_id\":\"s17\"}", "BAD_REQUEST", "\"s17\"" },
  { "subscribe/topic-129", "{\"type\":\"subscribe\",\"topic\":\"" T129 "\","
    "\"client_id\":\"c\",\"request_id\":\"s18\"}", "BAD_REQUEST", "\"s18\"" },
  { "subscribe/topic-escaped-nul", "{\"type\":\"subscribe\",\"topic\":\"orders\\u0000x\","
    "\"client_id\":\"c\",\"request_id\":\"s19\"}", "BAD_REQUEST", "\"s19\"" },
  { "subscribe/missing-topic", "{\"type\":\"subscribe\",\"topic\":\"missing\","
    "\"client_id\":\"c\",\"request_id\":\"s20\"}", "TOPIC_NOT_FOUND", "\"s20\"" },
  { "subscribe/missing-topic-case", "{\"type\":\"subscribe\",\"topic\":\"Orders\","
    "\"client_id\":\"c\",\"request_id\":\"s21\"}", "TOPIC_NOT_FOUND", "\"s21\"" },
  /* unsubscribe */
  { "unsubscribe/no-topic", "{\"type\":\"unsubscribe\",\"client_id\":\"c\","
    "\"request_id\":\"u1\"}", "BAD_REQUEST", "\"u1\"" },
  { "unsubscribe/no-client-id", "{\"type\":\"unsubscribe\",\"topic\":\"orders\","
    "\"request_id\":\"u2\"}", "BAD_REQUEST", "\"u2\"" },
  { "unsubscribe/client-id-number", "{\"type\":\"unsubscribe\",\"topic\":\"orders\","
    "\"client_id\":1,\"request_id\":\"u3\"}", "BAD_REQUEST", "\"u3\"" },
  { "unsubscribe/topic-invalid", "{\"type\":\"unsubscribe\",\"topic\":\"a b\","
    "\"client_id\":\"c\",\"request_id\":\"u4\"}", "BAD_REQUEST", "\"u4\"" },
  { "unsubscribe/missing-topic", "{\"type\":\"unsubscribe\",\"topic\":\"missing\","
    "\"client_id\":\"c\",\"request_id\":\"u5\"}", "TOPIC_NOT_FOUND", "\"u5\"" },
  /* publish */
  { "publish/no-topic", "{\"type\":\"publish\",\"request_id\":\"p1\",\"message\":"
    "{\"id\":\"" UUID "\",\"payload\":1}}", "BAD_REQUEST", "\"p1\"" },
  { "publish/topic-number", "{\"type\":\"publish\",\"topic\":1,\"request_id\":\"p2\","
    "\"message\":{\"id\":\"" UUID "\",\"payload\":1}}", "BAD_REQUEST", "\"p2\"" },
  { "publish/topic-invalid", "{\"type\":\"publish\",\"topic\":\"a/b\",\"request_id\":\"p3\","
    "\"message\":{\"id\":\"" UUID "\",\"payload\":1}}", "BAD_REQUEST", "\"p3\"" },
  { "publish/no-message", "{\"type\":\"publish\",\"topic\":\"orders\",\"request_id\":\"p4\"}",
    "BAD_REQUEST", "\"p4\"" },
  { "publish/message-null", "{\"type\":\"publish\",\"topic\":\"orders\",\"request_id\":\"p5\","
    "\"message\":null}", "BAD_REQUEST", "\"p5\"" },
  { "publish/message-string", "{\"type\":\"publish\",\"topic\":\"orders\",\"request_id\":\"p6\","
    "\"message\":\"hi\"}", "BAD_REQUEST", "\"p6\"" },
  { "publish/message-array", "{\"type\":\"publish\",\"topic\":\"orders\",\"request_id\":\"p7\","
    "\"message\":[\"" UUID "\",1]}", "BAD_REQUEST", "\"p7\"" },
  { "publish/no-id", "{\"type\":\"publish\",\"topic\":\"orders\",\"request_id\":\"p8\","
    "\"message\":{\"payload\":1}}", "BAD_REQUEST", "\"p8\"" },
  { "publish/id-null", "{\"type\":\"publish\",\"topic\":\"orders\",\"request_id\":\"p9\","
    "\"message\":{\"id\":null,\"payload\":1}}", "BAD_REQUEST", "\"p9\"" },
  { "publish/id-number", "{\"type\":\"publish\",\"topic\":\"orders\",\"request_id\":\"p10\","
    "\"message\":{\"id\":5,\"payload\":1}}", "BAD_REQUEST", "\"p10\"" },
  { "publish/id-word", "{\"type\":\"publish\",\"topic\":\"orders\",\"request_id\":\"p11\","
    "\"message\":{\"id\":\"abc\",\"payload\":1}}", "BAD_REQUEST", "\"p11\"" },
  { "publish/id-empty", "{\"type\":\"publish\",\"topic\":\"orders\",\"request_id\":\"p12\","
    "\"message\":{\"id\":\"\",\"payload\":1}}", "BAD_REQUEST", "\"p12\"" },
  { "publish/id-no-dashes", "{\"type\":\"publish\",\"topic\":\"orders\",\"request_id\":\"p13\","
    "\"message\":{\"id\":\"123e4567e89b12d3a456426614174000\",\"payload\":1}}",
    "BAD_REQUEST", "\"p13\"" },
  { "publish/id-braces", "{\"type\":\"publish\",\"topic\":\"orders\",\"request_id\":\"p14\","
    "\"message\":{\"id\":\"{" UUID "}\",\"payload\":1}}", "BAD_REQUEST", "\"p14\"" },
  { "publish/id-extra-char", "{\"type\":\"publish\",\"topic\":\"orders\",\"request_id\":\"p15\","
    "\"message\":{\"id\":\"" UUID "0\",\"payload\":1}}", "BAD_REQUEST", "\"p15\"" },
  { "publish/id-non-hex", "{\"type\":\"publish\",\"topic\":\"orders\",\"request_id\":\"p16\","
    "\"message\":{\"id\":\"123e4567-e89b-12d3-a456-42661417400g\",\"payload\":1}}",
    "BAD_REQUEST", "\"p16\"" },
  { "publish/id-escaped-nul", "{\"type\":\"publish\",\"topic\":\"orders\",\"request_id\":\"p17\","
    "\"message\":{\"id\":\"123e4567-e89b-12d3-a456-42661417400\\u0000\",\"payload\":1}}",
    "BAD_REQUEST", "\"p17\"" },
  { "publish/no-payload", "{\"type\":\"publish\",\"topic\":\"orders\",\"request_id\":\"p18\","
    "\"message\":{\"id\":\"" UUID "\"}}", "BAD_REQUEST", "\"p18\"" },
  { "publish/missing-topic", "{\"type\":\"publish\",\"topic\":\"missing\",\"request_id\":\"p19\","
    "\"message\":{\"id\":\"" UUID "\",\"payload\":1}}", "TOPIC_NOT_FOUND", "\"p19\"" },
};

static void
test_error (gconstpointer data)
{
  const ErrorCase *row = data;
  PubsubTestServer *server = get_shared_server ();
  g_autoptr(PubsubTestWs) ws = pubsub_test_ws_connect (server, NULL, NULL);
  g_autoptr(PubsubTestFrame) frame = NULL;
  g_autoptr(PubsubTestFrame) ack = NULL;
  g_autofree char *id = pubsub_test_uuid ();

  pubsub_test_ws_send (ws, row->frame);
  frame = expect_frame (ws, "error");
  g_test_message ("%s -> %s", row->frame, frame->text);
  g_assert_cmpstr (pubsub_test_frame_get_string (frame, "error", "code"), ==, row->code);
  g_assert_cmpstr (pubsub_test_frame_get_string (frame, "error", "message"), !=, "");
  if (row->request_id != NULL)
    assert_request_id_raw (frame, row->request_id);
  else
    assert_no_request_id (frame);

  /* An error never closes the connection, and nothing else came. */
  assert_usable (ws);
  /* Nor did it subscribe to anything: a publish to "orders" is answered by
   * its ack alone, no event. */
  pubsub_test_ws_sendf (ws, "{\"type\":\"publish\",\"topic\":\"orders\",\"message\":"
                            "{\"id\":\"%s\",\"payload\":\"after an error\"}}", id);
  ack = expect_frame (ws, "ack");
  assert_usable (ws);
}

/* Several errors in a row on one connection, then normal service. */
static void
test_error_then_service (void)
{
  PubsubTestServer *server = get_shared_server ();
  g_autoptr(PubsubTestWs) ws = pubsub_test_ws_connect (server, NULL, NULL);
  g_autoptr(PubsubTestFrame) event = NULL;

  for (gsize i = 0; i < G_N_ELEMENTS (error_cases); i++)
    pubsub_test_ws_send (ws, error_cases[i].frame);
  for (gsize i = 0; i < G_N_ELEMENTS (error_cases); i++)
    expect_error (ws, error_cases[i].code);
  pubsub_test_ws_subscribe (ws, "orders", 0);
  publish_seq (ws, "orders", 7);
  event = pubsub_test_ws_wait_for (ws, "event", 5000);
  g_assert_cmpint (pubsub_test_event_sequence (event), ==, 7);
}

static void
test_binary_frame (void)
{
  PubsubTestServer *server = get_shared_server ();
  g_autoptr(PubsubTestWs) ws = pubsub_test_ws_connect (server, NULL, NULL);
  const char ping[] = "{\"type\":\"ping\",\"request_id\":\"b1\"}";
  g_autoptr(PubsubTestFrame) frame = NULL;

  /* Even valid JSON is refused in a binary frame. */
  soup_websocket_connection_send_binary (ws->conn, ping, strlen (ping));
  frame = expect_frame (ws, "error");
  g_assert_cmpstr (pubsub_test_frame_get_string (frame, "error", "code"), ==, "BAD_REQUEST");
  assert_usable (ws);
  soup_websocket_connection_send_binary (ws->conn, "\x00\xff", 2);
  expect_error (ws, "BAD_REQUEST");
  assert_usable (ws);
}

/* ---- the payload, byte for byte ----------------------------------------- */

typedef struct {
  const char *name;
  const char *payload;
} PayloadCase;

static const PayloadCase payload_cases[] = {
  { "nested", "{\"a\":{\"b\":[1,2,{\"c\":null,\"d\":[true,false]}]},\"e\":\"x\"}" },
  { "whitespace", "{ \"a\" : [ 1 , 2 ] ,\n\t\"b\" : { } }" },
  { "escapes", "\"\\u00e9\\n\\\"\"" },
  { "all-escapes", "\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u0041\"" },
  { "utf8", "\"caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80\"" },
  { "emoji-escaped", "\"\\ud83d\\ude00\"" },
  { "null", "null" },
  { "true", "true" },
  { "false", "false" },
  { "empty-string", "\"\"" },
  { "empty-array", "[]" },
  { "empty-object", "{}" },
  { "big-integer", "12345678901234567890" },
  { "int64-overflow", "9223372036854775808" },
  { "negative-big", "-123456789012345678901234567890" },
  { "huge-exponent", "1e400" },
  { "negative-zero", "-0.0" },
  { "capital-exponent", "1E5" },
  { "tenth", "0.1" },
  { "small", "-1.5e-7" },
  { "exponent-sign", "2E+10" },
  { "zero", "0" },
  { "escaped-nul", "\"a\\u0000b\"" },
  { "unit-separator", "\"\\u001f\"" },
  { "delete-char", "\"\x7f\"" },
  { "duplicate-keys", "{\"a\":1,\"a\":2}" },
  { "array-mixed", "[1,\"two\",3.0,null,[],{}]" },
};

static void
test_payload_round_trip (gconstpointer data)
{
  const PayloadCase *row = data;
  PubsubTestServer *server = get_shared_server ();
  g_autofree char *topic = g_strdup_printf ("payload-%s", row->name);
  g_autoptr(PubsubTestWs) subscriber = pubsub_test_ws_connect (server, NULL, NULL);
  g_autoptr(PubsubTestWs) publisher = pubsub_test_ws_connect (server, NULL, NULL);
  g_autoptr(PubsubTestWs) late = NULL;
  g_autoptr(PubsubTestFrame) event = NULL;
  g_autoptr(PubsubTestFrame) replayed = NULL;
  g_autofree char *raw = NULL;
  g_autofree char *raw_replayed = NULL;
  g_autofree char *id = NULL;

  pubsub_test_create_topic (server, topic, NULL);
  pubsub_test_ws_subscribe (subscriber, topic, 0);
  id = pubsub_test_ws_publish (publisher, topic, row->payload);
  event = expect_frame (subscriber, "event");
  g_assert_cmpstr (pubsub_test_frame_get_string (event, "message", "id"), ==, id);
  raw = pubsub_test_frame_dup_raw (event, "message", "payload", NULL);
  if (g_strcmp0 (raw, row->payload) != 0)
    g_test_fail_printf ("payload %s came back as %s", row->payload, raw);

  /* The history keeps the same text. */
  late = pubsub_test_ws_connect (server, NULL, NULL);
  pubsub_test_ws_subscribe (late, topic, 1);
  replayed = expect_frame (late, "event");
  raw_replayed = pubsub_test_frame_dup_raw (replayed, "message", "payload", NULL);
  if (g_strcmp0 (raw_replayed, row->payload) != 0)
    g_test_fail_printf ("payload %s was replayed as %s", row->payload, raw_replayed);
}

/* A payload nested deeper than most parsers like: forwarded or refused, but
 * never a crash; the connection stays usable. */
static void
test_payload_deep (void)
{
  PubsubTestServer *server = get_shared_server ();
  g_autoptr(PubsubTestWs) ws = pubsub_test_ws_connect (server, NULL, NULL);
  g_autoptr(GString) deep = g_string_new (NULL);
  g_autoptr(PubsubTestFrame) reply = NULL;
  g_autofree char *id = pubsub_test_uuid ();
  const char *type;

  for (guint i = 0; i < 10000; i++)
    g_string_append_c (deep, '[');
  for (guint i = 0; i < 10000; i++)
    g_string_append_c (deep, ']');
  pubsub_test_ws_sendf (ws, "{\"type\":\"publish\",\"topic\":\"orders\",\"message\":"
                            "{\"id\":\"%s\",\"payload\":%s}}", id, deep->str);
  reply = pubsub_test_ws_next (ws, 5000);
  type = pubsub_test_frame_type (reply);
  g_assert_true (g_strcmp0 (type, "ack") == 0 || g_strcmp0 (type, "error") == 0);
  if (g_str_equal (type, "error"))
    g_assert_cmpstr (pubsub_test_frame_get_string (reply, "error", "code"), ==, "BAD_REQUEST");
  assert_usable (ws);
}

/* ---- replay ------------------------------------------------------------- */

/* Reads @count events and checks their sequence numbers run from @first. */
static void
expect_events (PubsubTestWs *ws,
               gint64        first,
               guint         count)
{
  for (guint i = 0; i < count; i++)
    {
      g_autoptr(PubsubTestFrame) event = expect_frame (ws, "event");

      g_assert_cmpint (pubsub_test_event_sequence (event), ==, first + i);
    }
}

static void
test_replay_counts (void)
{
  PubsubTestServer *server = pubsub_test_server_start (NULL);
  g_autoptr(PubsubTestWs) publisher = pubsub_test_ws_connect (server, NULL, NULL);
  struct {
    const char *last_n;     /* the raw token, or NULL for no last_n */
    guint       expected;   /* replayed: the last ones of 1..5 */
  } cases[] = {
    { NULL, 0 },
    { "null", 0 },
    { "0", 0 },
    { "-0", 0 },
    { "1", 1 },
    { "2", 2 },
    { "5", 5 },
    { "6", 5 },
    { "1000", 5 },
    { "4294967296", 5 },
    { "18446744073709551616", 5 },
    { "99999999999999999999999", 5 },
  };

  pubsub_test_create_topic (server, "replay", NULL);
  pubsub_test_create_topic (server, "empty", NULL);
  for (guint i = 1; i <= 5; i++)
    publish_seq (publisher, "replay", i);

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(PubsubTestWs) ws = pubsub_test_ws_connect (server, NULL, NULL);
      g_autoptr(PubsubTestFrame) ack = NULL;
      g_autofree char *last_n = cases[i].last_n != NULL
                                  ? g_strdup_printf (",\"last_n\":%s", cases[i].last_n)
                                  : g_strdup ("");

      g_test_message ("last_n %s", cases[i].last_n);
      pubsub_test_ws_sendf (ws, "{\"type\":\"subscribe\",\"topic\":\"replay\","
                                "\"client_id\":\"c\"%s}", last_n);
      /* The ack comes before the replay. */
      ack = expect_frame (ws, "ack");
      g_assert_cmpstr (pubsub_test_frame_get_string (ack, "topic", NULL), ==, "replay");
      expect_events (ws, 6 - cases[i].expected, cases[i].expected);
      assert_usable (ws);

      /* A topic with no history replays nothing, whatever last_n says. */
      pubsub_test_ws_sendf (ws, "{\"type\":\"subscribe\",\"topic\":\"empty\","
                                "\"client_id\":\"c\"%s}", last_n);
      g_clear_pointer (&ack, pubsub_test_frame_free);
      ack = expect_frame (ws, "ack");
      assert_usable (ws);
    }

  g_clear_pointer (&publisher, pubsub_test_ws_free);
  pubsub_test_server_stop (server);
  pubsub_test_server_free (server);
}

/* The replay is the last min(last_n, stored) of a history capped at
 * history-size, and live events follow it. */
static void
test_replay_history_cap (void)
{
  PubsubTestServer *server = pubsub_test_server_start ("--history-size", "3", NULL);
  g_autoptr(PubsubTestWs) publisher = pubsub_test_ws_connect (server, NULL, NULL);
  g_autoptr(PubsubTestWs) all = pubsub_test_ws_connect (server, NULL, NULL);
  g_autoptr(PubsubTestWs) two = pubsub_test_ws_connect (server, NULL, NULL);

  pubsub_test_create_topic (server, "capped", NULL);
  for (guint i = 1; i <= 10; i++)
    publish_seq (publisher, "capped", i);

  pubsub_test_ws_subscribe (all, "capped", 100);
  expect_events (all, 8, 3);
  pubsub_test_ws_subscribe (two, "capped", 2);
  expect_events (two, 9, 2);

  publish_seq (publisher, "capped", 11);
  expect_events (all, 11, 1);
  expect_events (two, 11, 1);
  assert_usable (all);
  assert_usable (two);

  g_clear_pointer (&publisher, pubsub_test_ws_free);
  g_clear_pointer (&all, pubsub_test_ws_free);
  g_clear_pointer (&two, pubsub_test_ws_free);
  pubsub_test_server_stop (server);
  pubsub_test_server_free (server);
}

/* With history-size 0 nothing is kept, and nothing is replayed. */
static void
test_replay_no_history (void)
{
  PubsubTestServer *server = pubsub_test_server_start ("--history-size", "0", NULL);
  g_autoptr(PubsubTestWs) publisher = pubsub_test_ws_connect (server, NULL, NULL);
  g_autoptr(PubsubTestWs) ws = pubsub_test_ws_connect (server, NULL, NULL);

  pubsub_test_create_topic (server, "none", NULL);
  publish_seq (publisher, "none", 1);
  pubsub_test_ws_subscribe (ws, "none", 10);
  assert_usable (ws);
  publish_seq (publisher, "none", 2);
  expect_events (ws, 2, 1);

  g_clear_pointer (&publisher, pubsub_test_ws_free);
  g_clear_pointer (&ws, pubsub_test_ws_free);
  pubsub_test_server_stop (server);
  pubsub_test_server_free (server);
}

typedef struct {
  PubsubTestWs *publisher;
  guint         sent;
  guint         total;
  guint         acked;
  guint         acked_at_ack;     /* publisher acks when the subscriber's ack came */
  gboolean      subscribed;
  gboolean      sub_acked;
  gint64        next_expected;
  guint         events;
} Interleave;

static void
on_subscriber_frame (PubsubTestFrame *frame,
                     gpointer         user_data)
{
  Interleave *state = user_data;
  const char *type = pubsub_test_frame_type (frame);

  if (!state->sub_acked)
    {
      /* The ack comes first, before any replayed event. */
      if (g_strcmp0 (type, "ack") != 0)
        g_error ("expected the subscribe ack first, got: %s", frame->text);
      state->sub_acked = TRUE;
      state->acked_at_ack = state->acked;
      return;
    }
  if (g_strcmp0 (type, "event") != 0)
    g_error ("expected only events after the ack, got: %s", frame->text);
  /* No gap, no duplicate: exactly the next one. */
  g_assert_cmpint (pubsub_test_event_sequence (frame), ==, state->next_expected);
  state->next_expected++;
  state->events++;
}

/* Replay then live while another connection keeps publishing: the subscriber
 * sees 1..N exactly, in order, ack first. */
static void
test_replay_then_live (void)
{
  PubsubTestServer *server = pubsub_test_server_start ("--history-size", "1000", NULL);
  g_autoptr(PubsubTestWs) publisher = pubsub_test_ws_connect (server, NULL, NULL);
  g_autoptr(PubsubTestWs) subscriber = pubsub_test_ws_connect (server, NULL, NULL);
  Interleave state = { 0, };
  guint prefill = 50;

  state.total = pubsub_test_scale_count (400, 150);
  state.next_expected = 1;
  pubsub_test_create_topic (server, "live", NULL);
  for (guint i = 1; i <= prefill; i++)
    publish_seq (publisher, "live", i);
  state.sent = prefill;
  state.acked = prefill;

  publisher->keep_frames = FALSE;
  publisher->on_frame = pubsub_test_ws_count_ack;
  publisher->on_frame_data = &state.acked;
  subscriber->keep_frames = FALSE;
  subscriber->on_frame = on_subscriber_frame;
  subscriber->on_frame_data = &state;

  /* Publish in small bursts, one per main-loop turn; subscribe (asking for
   * more than is stored) while the publishes are streaming in. */
  while (state.acked < state.total)
    {
      for (guint burst = 0; burst < 5 && state.sent < state.total; burst++)
        pubsub_test_ws_send_publish (publisher, "live", ++state.sent, NULL);
      if (!state.subscribed && state.sent >= prefill + 25)
        {
          pubsub_test_ws_send (subscriber, "{\"type\":\"subscribe\",\"topic\":\"live\","
                                           "\"client_id\":\"late\",\"last_n\":100000}");
          state.subscribed = TRUE;
        }
      pubsub_test_wait_for (state.acked + 20 >= state.sent, 10000);
      pubsub_test_iterate ();
    }
  pubsub_test_wait_for (state.events == state.total, 10000);
  g_test_message ("the subscribe was acknowledged after %u of %u publishes",
                  state.acked_at_ack, state.total);
  g_assert_true (state.sub_acked);
  g_assert_cmpint (state.next_expected, ==, state.total + 1);

  subscriber->on_frame = NULL;
  publisher->on_frame = NULL;
  subscriber->keep_frames = TRUE;
  assert_usable (subscriber);
  g_clear_pointer (&publisher, pubsub_test_ws_free);
  g_clear_pointer (&subscriber, pubsub_test_ws_free);
  pubsub_test_server_stop (server);
  pubsub_test_server_free (server);
}

/* ---- subscriptions ------------------------------------------------------ */

static void
test_subscribe_twice (void)
{
  PubsubTestServer *server = pubsub_test_server_start (NULL);
  g_autoptr(PubsubTestWs) publisher = pubsub_test_ws_connect (server, NULL, NULL);
  g_autoptr(PubsubTestWs) ws = pubsub_test_ws_connect (server, NULL, NULL);
  g_autoptr(PubsubTestFrame) second_ack = NULL;

  pubsub_test_create_topic (server, "twice", NULL);
  for (guint i = 1; i <= 3; i++)
    publish_seq (publisher, "twice", i);

  pubsub_test_ws_subscribe (ws, "twice", 2);
  expect_events (ws, 2, 2);
  /* Again, asking for a replay: acknowledged, nothing replayed. */
  pubsub_test_ws_send (ws, "{\"type\":\"subscribe\",\"topic\":\"twice\",\"client_id\":\"other\","
                           "\"last_n\":3,\"request_id\":\"again\"}");
  second_ack = expect_frame (ws, "ack");
  assert_request_id_raw (second_ack, "\"again\"");
  g_assert_cmpstr (pubsub_test_frame_get_string (second_ack, "topic", NULL), ==, "twice");
  assert_usable (ws);
  g_assert_cmpint (pubsub_test_topic_subscribers (server, "twice", NULL), ==, 1);

  /* One event per publish, not two. */
  publish_seq (publisher, "twice", 4);
  publish_seq (publisher, "twice", 5);
  expect_events (ws, 4, 2);
  assert_usable (ws);

  /* One unsubscribe undoes it. */
  pubsub_test_ws_send (ws, "{\"type\":\"unsubscribe\",\"topic\":\"twice\",\"client_id\":\"c\"}");
  g_clear_pointer (&second_ack, pubsub_test_frame_free);
  second_ack = expect_frame (ws, "ack");
  publish_seq (publisher, "twice", 6);
  assert_usable (ws);

  g_clear_pointer (&publisher, pubsub_test_ws_free);
  g_clear_pointer (&ws, pubsub_test_ws_free);
  pubsub_test_server_stop (server);
  pubsub_test_server_free (server);
}

static void
test_publisher_gets_own_event (void)
{
  PubsubTestServer *server = get_shared_server ();
  g_autoptr(PubsubTestWs) ws = pubsub_test_ws_connect (server, NULL, NULL);
  g_autofree char *topic = pubsub_test_topic_name ();
  g_autofree char *id = pubsub_test_uuid ();
  gboolean got_ack = FALSE;
  gboolean got_event = FALSE;

  pubsub_test_create_topic (server, topic, NULL);
  pubsub_test_ws_subscribe (ws, topic, 0);
  pubsub_test_ws_sendf (ws, "{\"type\":\"publish\",\"topic\":\"%s\",\"request_id\":\"own\","
                            "\"message\":{\"id\":\"%s\",\"payload\":[\"mine\"]}}", topic, id);
  /* Both, in either order. */
  for (guint i = 0; i < 2; i++)
    {
      g_autoptr(PubsubTestFrame) frame = pubsub_test_ws_next (ws, 5000);
      g_autofree char *payload = NULL;

      if (g_strcmp0 (pubsub_test_frame_type (frame), "ack") == 0 && !got_ack)
        {
          assert_request_id_raw (frame, "\"own\"");
          got_ack = TRUE;
        }
      else if (g_strcmp0 (pubsub_test_frame_type (frame), "event") == 0 && !got_event)
        {
          g_assert_cmpstr (pubsub_test_frame_get_string (frame, "message", "id"), ==, id);
          payload = pubsub_test_frame_dup_raw (frame, "message", "payload", NULL);
          g_assert_cmpstr (payload, ==, "[\"mine\"]");
          got_event = TRUE;
        }
      else
        g_error ("unexpected: %s", frame->text);
    }
  assert_usable (ws);
}

static void
test_unsubscribe (void)
{
  PubsubTestServer *server = get_shared_server ();
  g_autoptr(PubsubTestWs) publisher = pubsub_test_ws_connect (server, NULL, NULL);
  g_autoptr(PubsubTestWs) ws = pubsub_test_ws_connect (server, NULL, NULL);
  g_autofree char *topic = pubsub_test_topic_name ();
  g_autofree char *other = pubsub_test_topic_name ();

  pubsub_test_create_topic (server, topic, NULL);
  pubsub_test_create_topic (server, other, NULL);
  pubsub_test_ws_subscribe (ws, topic, 0);
  pubsub_test_ws_subscribe (ws, other, 0);
  publish_seq (publisher, topic, 1);
  expect_events (ws, 1, 1);

  for (guint round = 0; round < 2; round++)
    {
      /* The second time it is not subscribed: still an ack. */
      g_autoptr(PubsubTestFrame) ack = NULL;

      pubsub_test_ws_sendf (ws, "{\"type\":\"unsubscribe\",\"topic\":\"%s\",\"client_id\":\"c\","
                                "\"request_id\":\"u%u\"}", topic, round);
      ack = expect_frame (ws, "ack");
      g_assert_cmpstr (pubsub_test_frame_get_string (ack, "topic", NULL), ==, topic);
      g_assert_cmpstr (pubsub_test_frame_get_string (ack, "status", NULL), ==, "ok");
      g_assert_cmpstr (pubsub_test_frame_get_string (ack, "request_id", NULL), ==,
                       round == 0 ? "u0" : "u1");
    }
  /* No more events from it; the other subscription is untouched. */
  publish_seq (publisher, topic, 2);
  publish_seq (publisher, other, 3);
  expect_events (ws, 3, 1);
  assert_usable (ws);

  /* Unsubscribing from a topic never subscribed: an ack, no request_id. */
  {
    g_autoptr(PubsubTestWs) fresh = pubsub_test_ws_connect (server, NULL, NULL);
    g_autoptr(PubsubTestFrame) ack = NULL;

    pubsub_test_ws_sendf (fresh, "{\"type\":\"unsubscribe\",\"topic\":\"%s\","
                                 "\"client_id\":\"c\"}", other);
    ack = expect_frame (fresh, "ack");
    g_assert_cmpstr (pubsub_test_frame_get_string (ack, "topic", NULL), ==, other);
    assert_no_request_id (ack);
    assert_usable (fresh);
  }
}

static void
test_topic_deleted (void)
{
  PubsubTestServer *server = pubsub_test_server_start (NULL);
  g_autoptr(PubsubTestWs) publisher = pubsub_test_ws_connect (server, NULL, NULL);
  g_autoptr(PubsubTestWs) ws = pubsub_test_ws_connect (server, NULL, NULL);
  g_autoptr(PubsubTestWs) bystander = pubsub_test_ws_connect (server, NULL, NULL);
  g_autoptr(PubsubTestFrame) info = NULL;
  g_autoptr(PubsubTestResponse) deleted = NULL;
  g_autofree char *id = pubsub_test_uuid ();

  pubsub_test_create_topic (server, "doomed", NULL);
  pubsub_test_create_topic (server, "kept", NULL);
  pubsub_test_ws_subscribe (ws, "doomed", 0);
  pubsub_test_ws_subscribe (ws, "kept", 0);

  deleted = pubsub_test_request (server, "DELETE", "/topics/doomed", NULL, NULL);
  g_assert_cmpuint (deleted->status, ==, 200);
  info = expect_frame (ws, "info");
  g_assert_cmpstr (pubsub_test_frame_get_string (info, "msg", NULL), ==, "topic_deleted");
  g_assert_cmpstr (pubsub_test_frame_get_string (info, "topic", NULL), ==, "doomed");
  assert_usable (ws);
  /* A connection not subscribed to it hears nothing. */
  assert_usable (bystander);

  /* The subscription is gone: a new topic of the same name is not followed;
   * the other topic still is. */
  pubsub_test_ws_sendf (publisher, "{\"type\":\"publish\",\"topic\":\"doomed\",\"message\":"
                                   "{\"id\":\"%s\",\"payload\":1}}", id);
  expect_error (publisher, "TOPIC_NOT_FOUND");
  pubsub_test_create_topic (server, "doomed", NULL);
  publish_seq (publisher, "doomed", 1);
  publish_seq (publisher, "kept", 2);
  expect_events (ws, 2, 1);
  assert_usable (ws);
  g_assert_cmpint (pubsub_test_topic_subscribers (server, "doomed", NULL), ==, 0);
  g_assert_cmpint (pubsub_test_topic_subscribers (server, "kept", NULL), ==, 1);

  g_clear_pointer (&publisher, pubsub_test_ws_free);
  g_clear_pointer (&ws, pubsub_test_ws_free);
  g_clear_pointer (&bystander, pubsub_test_ws_free);
  pubsub_test_server_stop (server);
  pubsub_test_server_free (server);
}

/* ---- fan-out ------------------------------------------------------------ */

/* Every subscriber gets every message, in order. The publisher stays at
 * most a window ahead of the slowest subscriber (this test is about order
 * and loss, not about slow consumers). */
static void
test_fanout (void)
{
  PubsubTestServer *server = pubsub_test_server_start (NULL);
  g_autoptr(PubsubTestWs) publisher = pubsub_test_ws_connect (server, NULL, NULL);
  guint n_subscribers = 20;
  guint total = pubsub_test_scale_count (2000, 300);
  guint window = 40;
  PubsubTestWs *subscribers[20];
  PubsubTestSequence state[20];
  guint acked = 0;
  guint sent = 0;

  pubsub_test_create_topic (server, "fanout", NULL);
  for (guint i = 0; i < n_subscribers; i++)
    {
      subscribers[i] = pubsub_test_ws_connect (server, NULL, NULL);
      pubsub_test_ws_subscribe (subscribers[i], "fanout", 0);
      state[i].next = 1;
      state[i].received = 0;
      subscribers[i]->keep_frames = FALSE;
      subscribers[i]->on_frame = pubsub_test_ws_check_sequence;
      subscribers[i]->on_frame_data = &state[i];
    }
  g_assert_cmpint (pubsub_test_topic_subscribers (server, "fanout", NULL), ==, n_subscribers);
  publisher->keep_frames = FALSE;
  publisher->on_frame = pubsub_test_ws_count_ack;
  publisher->on_frame_data = &acked;

  while (sent < total)
    {
      guint slowest = G_MAXUINT;

      for (guint i = 0; i < n_subscribers; i++)
        slowest = MIN (slowest, state[i].received);
      while (sent < total && sent < slowest + window)
        pubsub_test_ws_send_publish (publisher, "fanout", ++sent, NULL);
      pubsub_test_iterate ();
    }
  pubsub_test_wait_for (acked == total, 30000);
  for (guint i = 0; i < n_subscribers; i++)
    {
      pubsub_test_wait_for (state[i].received == total, 30000);
      g_assert_false (subscribers[i]->closed);
    }

  for (guint i = 0; i < n_subscribers; i++)
    {
      subscribers[i]->on_frame = NULL;
      pubsub_test_ws_free (subscribers[i]);
    }
  publisher->on_frame = NULL;
  g_clear_pointer (&publisher, pubsub_test_ws_free);
  pubsub_test_server_stop (server);
  pubsub_test_server_free (server);
}

/* ---- heartbeat ---------------------------------------------------------- */

static guint
count_info_pings (PubsubTestWs *ws)
{
  guint count = 0;

  while (!g_queue_is_empty (&ws->frames))
    {
      g_autoptr(PubsubTestFrame) frame = g_queue_pop_head (&ws->frames);

      if (g_strcmp0 (pubsub_test_frame_type (frame), "info") == 0 &&
          g_strcmp0 (pubsub_test_frame_get_string (frame, "msg", NULL), "ping") == 0)
        count++;
      else
        g_error ("unexpected frame: %s", frame->text);
    }
  return count;
}

static void
test_heartbeat (void)
{
  PubsubTestServer *server = pubsub_test_server_start ("--heartbeat-interval", "1", NULL);
  g_autoptr(PubsubTestWs) alive = pubsub_test_ws_connect (server, NULL, NULL);
  g_autoptr(PubsubTestRawWs) silent = pubsub_test_raw_ws_connect (server, "/ws", 0, NULL);
  gint64 start = g_get_monotonic_time ();
  guint pings = 0;
  guint raw_info_pings = 0;
  guint raw_control_pings = 0;
  gint64 closed_after;

  g_assert_nonnull (silent);
  pubsub_test_raw_ws_start_reading (silent);

  /* The silent one (no frame, no pong) is closed with 1001 after about two
   * intervals. */
  pubsub_test_wait_for (silent->got_close, 5000);
  closed_after = g_get_monotonic_time () - start;
  g_test_message ("the silent client was closed after %" G_GINT64_FORMAT " ms",
                  closed_after / 1000);
  g_assert_cmpuint (silent->close_code, ==, 1001);
  g_assert_cmpint (closed_after, >=, 1 * G_USEC_PER_SEC);
  for (GList *l = silent->frames.head; l != NULL; l = l->next)
    {
      PubsubTestRawFrame *frame = l->data;

      if (frame->opcode == 0x9)
        raw_control_pings++;
      else if (frame->opcode == 0x1)
        {
          gsize len;
          const char *text = g_bytes_get_data (frame->payload, &len);
          g_autofree char *copy = g_strndup (text, len);

          g_assert_nonnull (strstr (copy, "\"type\":\"info\""));
          g_assert_nonnull (strstr (copy, "\"msg\":\"ping\""));
          raw_info_pings++;
        }
    }
  /* With each info ping comes a WebSocket ping. */
  g_assert_cmpuint (raw_info_pings, >=, 1);
  g_assert_cmpuint (raw_control_pings, ==, raw_info_pings);

  /* The soup client answers pings with pongs: still open after 3+ beats. */
  while (pings < 4)
    {
      pubsub_test_wait_for (!g_queue_is_empty (&alive->frames) || alive->closed, 5000);
      g_assert_false (alive->closed);
      pings += count_info_pings (alive);
    }
  g_assert_cmpint (g_get_monotonic_time () - start, >=, 3 * G_USEC_PER_SEC);
  g_assert_false (alive->closed);
  assert_usable (alive);

  g_clear_pointer (&alive, pubsub_test_ws_free);
  g_clear_pointer (&silent, pubsub_test_raw_ws_free);
  pubsub_test_server_stop (server);
  pubsub_test_server_free (server);
}

/* A client that only ever sends its own frames (never a pong) is alive too:
 * any frame counts. */
static void
test_heartbeat_frames_count (void)
{
  PubsubTestServer *server = pubsub_test_server_start ("--heartbeat-interval", "1", NULL);
  g_autoptr(PubsubTestRawWs) chatty = pubsub_test_raw_ws_connect (server, "/ws", 0, NULL);
  gint64 start = g_get_monotonic_time ();
  gint64 next_send = start;
  guint sent = 0;

  g_assert_nonnull (chatty);
  pubsub_test_raw_ws_start_reading (chatty);
  while (g_get_monotonic_time () - start < (gint64) 4 * G_USEC_PER_SEC)
    {
      if (g_get_monotonic_time () >= next_send)
        {
          pubsub_test_raw_ws_send_text (chatty, "{\"type\":\"ping\"}");
          sent++;
          next_send += G_USEC_PER_SEC / 2;
        }
      pubsub_test_iterate ();
      g_assert_false (chatty->got_close);
      g_assert_false (chatty->eof);
    }
  g_assert_cmpuint (sent, >=, 7);
  g_clear_pointer (&chatty, pubsub_test_raw_ws_free);
  pubsub_test_server_stop (server);
  pubsub_test_server_free (server);
}

/* ---- limits ------------------------------------------------------------- */

/* A ping of exactly @size bytes (padding in request_id). */
static char *
ping_of_size (gsize size)
{
  const char *head = "{\"type\":\"ping\",\"request_id\":\"";
  const char *tail = "\"}";
  gsize fixed = strlen (head) + strlen (tail);
  g_autofree char *pad = g_strnfill (size - fixed, 'x');

  return g_strconcat (head, pad, tail, NULL);
}

static void
test_frame_too_big (void)
{
  PubsubTestServer *server = pubsub_test_server_start ("--max-message-bytes", "1024", NULL);
  g_autoptr(PubsubTestWs) at_limit = pubsub_test_ws_connect (server, NULL, NULL);
  g_autoptr(PubsubTestWs) over = pubsub_test_ws_connect (server, NULL, NULL);
  g_autoptr(PubsubTestWs) way_over = pubsub_test_ws_connect (server, NULL, NULL);
  g_autoptr(PubsubTestWs) bystander = pubsub_test_ws_connect (server, NULL, NULL);
  g_autofree char *exact = ping_of_size (1024);
  g_autofree char *one_more = ping_of_size (1025);
  g_autofree char *big = ping_of_size (2000);
  g_autoptr(PubsubTestFrame) pong = NULL;

  g_assert_cmpuint (strlen (exact), ==, 1024);
  pubsub_test_ws_send (at_limit, exact);
  pong = expect_frame (at_limit, "pong");
  assert_usable (at_limit);

  pubsub_test_ws_send (over, one_more);
  pubsub_test_ws_wait_closed (over, 5000);
  g_assert_cmpuint (over->close_code, ==, 1009);

  pubsub_test_ws_send (way_over, big);
  pubsub_test_ws_wait_closed (way_over, 5000);
  g_assert_cmpuint (way_over->close_code, ==, 1009);

  /* Others are not affected. */
  assert_usable (bystander);
  assert_usable (at_limit);

  g_clear_pointer (&at_limit, pubsub_test_ws_free);
  g_clear_pointer (&over, pubsub_test_ws_free);
  g_clear_pointer (&way_over, pubsub_test_ws_free);
  g_clear_pointer (&bystander, pubsub_test_ws_free);
  pubsub_test_server_stop (server);
  pubsub_test_server_free (server);
}

static void
test_max_connections (void)
{
  PubsubTestServer *server = pubsub_test_server_start ("--max-connections", "2", NULL);
  g_autoptr(PubsubTestWs) first = pubsub_test_ws_connect (server, NULL, NULL);
  g_autoptr(PubsubTestWs) second = pubsub_test_ws_connect (server, NULL, NULL);
  g_autoptr(PubsubTestWs) third = NULL;
  guint status = 0;
  gint64 deadline;

  third = pubsub_test_ws_try_connect (server, NULL, NULL, &status);
  g_assert_null (third);
  g_assert_cmpuint (status, ==, 503);
  {
    g_autoptr(PubsubTestRawWs) raw = pubsub_test_raw_ws_connect (server, "/ws", 0, &status);

    g_assert_null (raw);
    g_assert_cmpuint (status, ==, 503);
  }
  /* One budget for every connection (SPEC §8): a REST client is refused
   * too. */
  g_assert_cmpuint (pubsub_test_http (server, "GET", "/health", NULL, NULL, NULL), ==, 503);
  assert_usable (first);
  assert_usable (second);

  /* Closing one frees a slot (once the server has seen it go). */
  g_clear_pointer (&first, pubsub_test_ws_free);
  deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC * pubsub_test_timeout_scale ();
  while (third == NULL)
    {
      third = pubsub_test_ws_try_connect (server, NULL, NULL, &status);
      if (third == NULL)
        {
          g_assert_cmpuint (status, ==, 503);
          g_assert_cmpint (g_get_monotonic_time (), <, deadline);
        }
    }
  assert_usable (third);
  g_assert_null (pubsub_test_ws_try_connect (server, NULL, NULL, &status));
  g_assert_cmpuint (status, ==, 503);

  g_clear_pointer (&second, pubsub_test_ws_free);
  g_clear_pointer (&third, pubsub_test_ws_free);
  pubsub_test_server_stop (server);
  pubsub_test_server_free (server);
}

/* Invalid UTF-8 in a text frame: libsoup closes with 1007. */
static void
test_invalid_utf8 (void)
{
  PubsubTestServer *server = get_shared_server ();
  g_autoptr(PubsubTestRawWs) raw = pubsub_test_raw_ws_connect (server, "/ws", 0, NULL);
  const char bad[] = "{\"type\":\"ping\",\"request_id\":\"\xff\xfe\"}";

  g_assert_nonnull (raw);
  pubsub_test_raw_ws_start_reading (raw);
  pubsub_test_raw_ws_send (raw, 0x1, bad, strlen (bad));
  pubsub_test_wait_for (raw->got_close || raw->eof, 5000);
  g_assert_true (raw->got_close);
  g_assert_cmpuint (raw->close_code, ==, 1007);
}

/* A message split into fragments is one message; control frames may come
 * between them. */
static void
test_fragmented (void)
{
  PubsubTestServer *server = get_shared_server ();
  g_autoptr(PubsubTestRawWs) raw = pubsub_test_raw_ws_connect (server, "/ws", 0, NULL);
  const char *part1 = "{\"type\":\"pi";
  const char *part2 = "ng\",\"request_id\":\"frag\"}";
  guint8 header[2];
  g_autoptr(GByteArray) frame = g_byte_array_new ();
  PubsubTestRawFrame *reply = NULL;
  gboolean got_pong_control = FALSE;

  g_assert_nonnull (raw);
  pubsub_test_raw_ws_start_reading (raw);

  /* First fragment by hand: FIN clear, masked with a zero mask. */
  header[0] = 0x01;
  header[1] = 0x80 | (guint8) strlen (part1);
  g_byte_array_append (frame, header, 2);
  g_byte_array_append (frame, (const guint8 *) "\0\0\0\0", 4);
  g_byte_array_append (frame, (const guint8 *) part1, (guint) strlen (part1));
  g_socket_set_blocking (raw->socket, TRUE);
  g_assert_cmpint (g_socket_send (raw->socket, (const char *) frame->data, frame->len, NULL,
                                  NULL), ==, (gssize) frame->len);
  g_socket_set_blocking (raw->socket, FALSE);
  /* A ping in between, then the last fragment (continuation, FIN set). */
  pubsub_test_raw_ws_send (raw, 0x9, "hb", 2);
  pubsub_test_raw_ws_send (raw, 0x0, part2, strlen (part2));

  pubsub_test_wait_for (g_queue_get_length (&raw->frames) >= 2 || raw->eof, 5000);
  for (GList *l = raw->frames.head; l != NULL; l = l->next)
    {
      PubsubTestRawFrame *f = l->data;

      if (f->opcode == 0xA)
        got_pong_control = TRUE;
      else if (f->opcode == 0x1)
        reply = f;
    }
  g_assert_true (got_pong_control);
  g_assert_nonnull (reply);
  {
    gsize len;
    const char *text = g_bytes_get_data (reply->payload, &len);
    g_autofree char *copy = g_strndup (text, len);

    g_assert_nonnull (strstr (copy, "\"type\":\"pong\""));
    g_assert_nonnull (strstr (copy, "\"request_id\":\"frag\""));
  }
}

/* The path must be /ws exactly; other paths are REST's 404. */
static void
test_upgrade_paths (void)
{
  PubsubTestServer *server = get_shared_server ();
  guint status = 0;
  g_autoptr(PubsubTestRawWs) raw = pubsub_test_raw_ws_connect (server, "/wsx", 0, &status);

  g_assert_null (raw);
  g_assert_cmpuint (status, ==, 404);
  g_assert_null (pubsub_test_raw_ws_connect (server, "/topics", 0, &status));
  g_assert_cmpuint (status, !=, 101);
  /* A query string does not matter without an API key. */
  g_clear_pointer (&raw, pubsub_test_raw_ws_free);
  raw = pubsub_test_raw_ws_connect (server, "/ws?x=1", 0, &status);
  g_assert_nonnull (raw);
  g_assert_cmpuint (status, ==, 101);
}

int
main (int   argc,
      char *argv[])
{
  int status;

  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  pubsub_test_quiet_debug ();

  g_test_add_func ("/ws/ping", test_ping);
  g_test_add_func ("/ws/no-deflate", test_no_deflate);
  g_test_add_func ("/ws/subscribe-publish", test_subscribe_publish);
  g_test_add_func ("/ws/publish/uuid-forms", test_publish_uuid_forms);
  g_test_add_func ("/ws/request-id/verbatim", test_request_id_verbatim);
  for (gsize i = 0; i < G_N_ELEMENTS (error_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/ws/error/%s", error_cases[i].name);

      g_test_add_data_func (path, &error_cases[i], test_error);
    }
  g_test_add_func ("/ws/error/then-service", test_error_then_service);
  g_test_add_func ("/ws/error/binary-frame", test_binary_frame);
  for (gsize i = 0; i < G_N_ELEMENTS (payload_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/ws/payload/%s", payload_cases[i].name);

      g_test_add_data_func (path, &payload_cases[i], test_payload_round_trip);
    }
  g_test_add_func ("/ws/payload/deep", test_payload_deep);
  g_test_add_func ("/ws/replay/counts", test_replay_counts);
  g_test_add_func ("/ws/replay/history-cap", test_replay_history_cap);
  g_test_add_func ("/ws/replay/no-history", test_replay_no_history);
  g_test_add_func ("/ws/replay/then-live", test_replay_then_live);
  g_test_add_func ("/ws/subscribe/twice", test_subscribe_twice);
  g_test_add_func ("/ws/subscribe/own-event", test_publisher_gets_own_event);
  g_test_add_func ("/ws/unsubscribe", test_unsubscribe);
  g_test_add_func ("/ws/topic-deleted", test_topic_deleted);
  g_test_add_func ("/ws/fanout", test_fanout);
  g_test_add_func ("/ws/heartbeat/dead-client", test_heartbeat);
  g_test_add_func ("/ws/heartbeat/frames-count", test_heartbeat_frames_count);
  g_test_add_func ("/ws/limits/frame-too-big", test_frame_too_big);
  g_test_add_func ("/ws/limits/max-connections", test_max_connections);
  g_test_add_func ("/ws/invalid-utf8", test_invalid_utf8);
  g_test_add_func ("/ws/fragmented", test_fragmented);
  g_test_add_func ("/ws/upgrade-paths", test_upgrade_paths);

  status = g_test_run ();
  pubsub_test_shared_server_stop ();
  return status;
}
