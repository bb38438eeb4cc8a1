/* test-rest-messages.c: messages over REST and GET /topics/{name}
 * (SPEC §8), against the real daemon
 *
 * SPDX-License-Identifier: MIT
 */
#include <string.h>

#include "pubsub-test-util.h"

/* Payloads that must come back byte for byte: json-glib would round the big
 * integer, and every escape stays as the client wrote it. */
static const char *const round_trip_payloads[] = {
  "12345678901234567890123",
  "-0.0",
  "1e400",
  "\"a\\u0000b\\n\\\"q\\\" \\ud83d\\ude00 \xc3\xa9\xe2\x82\xac\"",
  "{\"order_id\":\"ORD-123\",\"amount\":99.50,\"tags\":[\"x\",null,true,{\"k\":[]}]}",
  "null",
  "[]",
};

static char *
body_text (PubsubTestResponse *response)
{
  gsize len;
  const char *data = g_bytes_get_data (response->body, &len);

  return g_strndup (data, len);
}

static gint64
member_int (PubsubTestResponse *response,
            const char         *name)
{
  JsonObject *object = json_node_get_object (response->json);

  g_assert_true (json_object_has_member (object, name));
  return json_object_get_int_member (object, name);
}

static const char *
member_string (PubsubTestResponse *response,
               const char         *name)
{
  return json_object_get_string_member (json_node_get_object (response->json), name);
}

static PubsubTestResponse *
post_message (PubsubTestServer *server,
              const char       *topic,
              const char       *body)
{
  g_autofree char *path = g_strdup_printf ("/topics/%s/messages", topic);

  return pubsub_test_request (server, "POST", path, body, NULL);
}

static PubsubTestResponse *
get_messages (PubsubTestServer *server,
              const char       *topic,
              const char       *query)
{
  g_autofree char *path = g_strdup_printf ("/topics/%s/messages%s%s", topic,
                                           query != NULL ? "?" : "", query != NULL ? query : "");

  return pubsub_test_request (server, "GET", path, NULL, NULL);
}

/* The seqs of a GET …/messages answer, in order. */
static GArray *
listed_seqs (PubsubTestResponse *response)
{
  JsonArray *messages = json_object_get_array_member (json_node_get_object (response->json),
                                                      "messages");
  GArray *seqs = g_array_new (FALSE, FALSE, sizeof (gint64));

  for (guint i = 0; i < json_array_get_length (messages); i++)
    {
      JsonObject *message = json_array_get_object_element (messages, i);
      gint64 seq = json_object_get_int_member (message, "seq");
      const char *ts = json_object_get_string_member (message, "ts");

      g_assert_true (g_uuid_string_is_valid (json_object_get_string_member (message, "id")));
      g_assert_true (json_object_has_member (message, "payload"));
      pubsub_test_assert_timestamp (ts);
      g_array_append_val (seqs, seq);
    }
  return seqs;
}

static void
assert_seqs (PubsubTestResponse *response,
             gint64              first,
             gint64              last)
{
  g_autoptr(GArray) seqs = listed_seqs (response);

  g_assert_cmpuint (seqs->len, ==, last >= first ? (guint) (last - first + 1) : 0);
  for (guint i = 0; i < seqs->len; i++)
    g_assert_cmpint (g_array_index (seqs, gint64, i), ==, first + i);
}

static void
publish_n (PubsubTestServer *server,
           const char       *topic,
           guint             count)
{
  for (guint n = 1; n <= count; n++)
    {
      g_autofree char *body = g_strdup_printf ("{\"payload\":{\"n\":%u}}", n);
      g_autoptr(PubsubTestResponse) response = post_message (server, topic, body);

      g_assert_cmpuint (response->status, ==, 201);
    }
}

static void
test_publish (void)
{
  g_autoptr(PubsubTestServer) server = pubsub_test_server_start (NULL);
  g_autoptr(PubsubTestResponse) first = NULL;
  g_autoptr(PubsubTestResponse) given = NULL;
  g_autoptr(PubsubTestResponse) again = NULL;
  g_autofree char *id = pubsub_test_uuid ();
  g_autofree char *body = g_strdup_printf ("{\"id\":\"%s\",\"payload\":2}", id);

  pubsub_test_create_topic (server, "orders", NULL);
  first = post_message (server, "orders", "{\"payload\":1}");
  g_assert_cmpuint (first->status, ==, 201);
  g_assert_cmpstr (member_string (first, "status"), ==, "published");
  g_assert_cmpstr (member_string (first, "topic"), ==, "orders");
  g_assert_true (g_uuid_string_is_valid (member_string (first, "id")));
  g_assert_cmpint (member_int (first, "seq"), ==, 1);
  g_assert_false (json_object_has_member (json_node_get_object (first->json), "duplicate"));

  given = post_message (server, "orders", body);
  g_assert_cmpuint (given->status, ==, 201);
  g_assert_cmpstr (member_string (given, "id"), ==, id);
  g_assert_cmpint (member_int (given, "seq"), ==, 2);

  /* A retry: 200, the same seq, nothing published again. */
  again = post_message (server, "orders", body);
  g_assert_cmpuint (again->status, ==, 200);
  g_assert_cmpint (member_int (again, "seq"), ==, 2);
  g_assert_true (json_object_get_boolean_member (json_node_get_object (again->json), "duplicate"));
  {
    g_autoptr(PubsubTestResponse) info = pubsub_test_request (server, "GET", "/topics/orders",
                                                              NULL, NULL);

    g_assert_cmpint (member_int (info, "messages"), ==, 2);
  }
}

typedef struct {
  const char *name;
  const char *topic;
  const char *body;
  guint       status;
  const char *code;
} BadPublish;

static const BadPublish bad_publishes[] = {
  { "not-json", "t", "{payload:1}", 400, "BAD_REQUEST" },
  { "empty", "t", "", 400, "BAD_REQUEST" },
  { "array", "t", "[1]", 400, "BAD_REQUEST" },
  { "no-payload", "t", "{\"id\":null}", 400, "BAD_REQUEST" },
  { "id-not-uuid", "t", "{\"payload\":1,\"id\":\"nope\"}", 400, "BAD_REQUEST" },
  { "id-number", "t", "{\"payload\":1,\"id\":5}", 400, "BAD_REQUEST" },
  { "trailing-garbage", "t", "{\"payload\":1} x", 400, "BAD_REQUEST" },
  { "missing-topic", "nope", "{\"payload\":1}", 404, "TOPIC_NOT_FOUND" },
  { "invalid-topic", "a%20b", "{\"payload\":1}", 404, "TOPIC_NOT_FOUND" },
};

static void
test_publish_errors (void)
{
  g_autoptr(PubsubTestServer) server = pubsub_test_server_start ("--max-message-bytes", "64", NULL);
  g_autofree char *big = g_strdup_printf ("{\"payload\":\"%0100d\"}", 7);
  g_autoptr(PubsubTestResponse) too_big = NULL;
  g_autoptr(PubsubTestResponse) info = NULL;

  pubsub_test_create_topic (server, "t", NULL);
  for (gsize i = 0; i < G_N_ELEMENTS (bad_publishes); i++)
    {
      const BadPublish *row = &bad_publishes[i];
      g_autoptr(PubsubTestResponse) response = post_message (server, row->topic, row->body);

      g_test_message ("case %s", row->name);
      g_assert_cmpuint (response->status, ==, row->status);
      g_assert_cmpstr (pubsub_test_response_error_code (response), ==, row->code);
    }
  too_big = post_message (server, "t", big);
  g_assert_cmpuint (too_big->status, ==, 413);
  info = pubsub_test_request (server, "GET", "/topics/t", NULL, NULL);
  g_assert_cmpint (member_int (info, "messages"), ==, 0);
}

static void
test_publish_auth (void)
{
  g_autoptr(PubsubTestServer) server = pubsub_test_server_start ("--api-key", "k", NULL);
  g_autoptr(PubsubTestResponse) refused = NULL;
  g_autoptr(PubsubTestResponse) listed = NULL;
  g_autoptr(PubsubTestResponse) accepted = NULL;

  pubsub_test_create_topic (server, "t", "k");
  refused = post_message (server, "t", "{\"payload\":1}");
  g_assert_cmpuint (refused->status, ==, 401);
  listed = get_messages (server, "t", NULL);
  g_assert_cmpuint (listed->status, ==, 401);
  accepted = pubsub_test_request (server, "POST", "/topics/t/messages", "{\"payload\":1}",
                                  "X-API-Key", "k", NULL);
  g_assert_cmpuint (accepted->status, ==, 201);
}

/* A WebSocket subscriber gets from a REST publish what a WebSocket publish
 * would give it, payload byte for byte; GET …/messages gives it back too. */
static void
test_round_trip (void)
{
  g_autoptr(PubsubTestServer) server = pubsub_test_server_start (NULL);
  g_autoptr(PubsubTestWs) reader = pubsub_test_ws_connect (server, NULL, NULL);
  g_autoptr(PubsubTestResponse) listed = NULL;
  g_autofree char *listed_text = NULL;

  pubsub_test_create_topic (server, "rt", NULL);
  pubsub_test_ws_subscribe (reader, "rt", 0);
  for (gsize i = 0; i < G_N_ELEMENTS (round_trip_payloads); i++)
    {
      g_autofree char *body = g_strdup_printf ("{\"payload\":%s}", round_trip_payloads[i]);
      g_autoptr(PubsubTestResponse) response = post_message (server, "rt", body);
      g_autoptr(PubsubTestFrame) event = NULL;
      g_autofree char *payload = NULL;
      g_autofree char *seq = NULL;

      g_assert_cmpuint (response->status, ==, 201);
      event = pubsub_test_ws_wait_for (reader, "event", 5000);
      payload = pubsub_test_frame_dup_raw (event, "message", "payload", NULL);
      g_assert_cmpstr (payload, ==, round_trip_payloads[i]);
      g_assert_cmpstr (pubsub_test_frame_get_string (event, "message", "id"), ==,
                       member_string (response, "id"));
      seq = pubsub_test_frame_dup_raw (event, "seq", NULL);
      g_assert_cmpint (g_ascii_strtoll (seq, NULL, 10), ==, member_int (response, "seq"));
    }

  listed = get_messages (server, "rt", NULL);
  g_assert_cmpuint (listed->status, ==, 200);
  listed_text = body_text (listed);
  for (gsize i = 0; i < G_N_ELEMENTS (round_trip_payloads); i++)
    {
      g_autofree char *needle = g_strdup_printf (",\"payload\":%s,\"ts\":", round_trip_payloads[i]);

      if (strstr (listed_text, needle) == NULL)
        g_error ("payload %s not listed verbatim in %s", round_trip_payloads[i], listed_text);
    }
}

static void
test_list (void)
{
  g_autoptr(PubsubTestServer) server = pubsub_test_server_start ("--history-size", "5", NULL);
  struct {
    const char *query;
    gint64      first;
    gint64      last;
    gboolean    truncated;
  } cases[] = {
    { NULL, 4, 8, FALSE },               /* everything stored */
    { "since=5", 6, 8, FALSE },
    { "since=3", 4, 8, FALSE },          /* just inside the history */
    { "since=1", 4, 8, TRUE },           /* 2 and 3 are gone */
    { "since=0", 4, 8, TRUE },
    { "since=8", 9, 8, FALSE },          /* nothing new */
    { "since=99", 9, 8, FALSE },
    { "last_n=2", 7, 8, FALSE },
    { "last_n=0", 9, 8, FALSE },
    { "last_n=100", 4, 8, FALSE },
    { "limit=2", 4, 5, FALSE },
    { "since=4&limit=3", 5, 7, FALSE },
    { "since=1&limit=1", 4, 4, TRUE },
    { "last_n=3&limit=2", 6, 7, FALSE },
    { "limit=1000", 4, 8, FALSE },       /* capped at history-size */
  };

  pubsub_test_create_topic (server, "t", NULL);
  publish_n (server, "t", 8);
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(PubsubTestResponse) response = get_messages (server, "t", cases[i].query);
      JsonObject *object;

      g_test_message ("query %s", cases[i].query != NULL ? cases[i].query : "(none)");
      g_assert_cmpuint (response->status, ==, 200);
      object = json_node_get_object (response->json);
      g_assert_cmpstr (json_object_get_string_member (object, "topic"), ==, "t");
      g_assert_cmpuint (strlen (json_object_get_string_member (object, "epoch")), ==, 16);
      g_assert_cmpint (json_object_get_int_member (object, "seq"), ==, 8);
      g_assert_cmpint (json_object_get_boolean_member (object, "truncated"), ==,
                       cases[i].truncated);
      assert_seqs (response, cases[i].first, cases[i].last);
    }
}

static void
test_list_errors (void)
{
  static const char *const bad_queries[] = {
    "since=-1", "since=x", "since=", "since=1.5", "last_n=-2", "last_n=1e3",
    "limit=0", "limit=-1", "limit=abc", "since=1&last_n=1",
  };
  g_autoptr(PubsubTestServer) server = pubsub_test_server_start (NULL);
  g_autoptr(PubsubTestResponse) missing = NULL;

  pubsub_test_create_topic (server, "t", NULL);
  for (gsize i = 0; i < G_N_ELEMENTS (bad_queries); i++)
    {
      g_autoptr(PubsubTestResponse) response = get_messages (server, "t", bad_queries[i]);

      g_test_message ("query %s", bad_queries[i]);
      g_assert_cmpuint (response->status, ==, 400);
      g_assert_cmpstr (pubsub_test_response_error_code (response), ==, "BAD_REQUEST");
    }
  missing = get_messages (server, "nope", NULL);
  g_assert_cmpuint (missing->status, ==, 404);
  g_assert_cmpstr (pubsub_test_response_error_code (missing), ==, "TOPIC_NOT_FOUND");
}

static void
test_topic_info (void)
{
  g_autoptr(PubsubTestServer) server = pubsub_test_server_start ("--history-size", "3", NULL);
  g_autoptr(PubsubTestWs) reader = pubsub_test_ws_connect (server, NULL, NULL);
  g_autoptr(PubsubTestResponse) info = NULL;
  g_autoptr(PubsubTestResponse) missing = NULL;
  g_autoptr(PubsubTestResponse) listed = NULL;
  g_autoptr(PubsubTestFrame) ack = NULL;

  pubsub_test_create_topic (server, "a:b", NULL);
  pubsub_test_ws_sendf (reader, "{\"type\":\"subscribe\",\"topic\":\"a:b\",\"client_id\":\"c\"}");
  ack = pubsub_test_ws_take (reader, "ack", 5000);
  publish_n (server, "a:b", 7);

  info = pubsub_test_request (server, "GET", "/topics/a%3Ab", NULL, NULL);
  g_assert_cmpuint (info->status, ==, 200);
  g_assert_cmpstr (member_string (info, "name"), ==, "a:b");
  g_assert_cmpstr (member_string (info, "epoch"), ==,
                   pubsub_test_frame_get_string (ack, "epoch", NULL));
  g_assert_cmpint (member_int (info, "seq"), ==, 7);
  g_assert_cmpint (member_int (info, "messages"), ==, 7);
  g_assert_cmpint (member_int (info, "stored"), ==, 3);
  g_assert_cmpint (member_int (info, "subscribers"), ==, 1);
  listed = get_messages (server, "a:b", NULL);
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (listed->json), "epoch"),
                   ==, member_string (info, "epoch"));

  missing = pubsub_test_request (server, "GET", "/topics/nope", NULL, NULL);
  g_assert_cmpuint (missing->status, ==, 404);
  g_assert_cmpstr (pubsub_test_response_error_code (missing), ==, "TOPIC_NOT_FOUND");
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  pubsub_test_quiet_debug ();

  g_test_add_func ("/rest-messages/publish", test_publish);
  g_test_add_func ("/rest-messages/publish-errors", test_publish_errors);
  g_test_add_func ("/rest-messages/publish-auth", test_publish_auth);
  g_test_add_func ("/rest-messages/round-trip", test_round_trip);
  g_test_add_func ("/rest-messages/list", test_list);
  g_test_add_func ("/rest-messages/list-errors", test_list_errors);
  g_test_add_func ("/rest-messages/topic-info", test_topic_info);

  return g_test_run ();
}
