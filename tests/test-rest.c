/* test-rest.c: the REST contract (SPEC §3) and authentication (SPEC §4)
 * against the real pubsubd
 *
 * Every request goes through pubsub_test_request(), which also checks what
 * every response must be: Content-Type application/json, a JSON object, and
 * the {"error":{"code","message"}} shape for statuses >= 400.
 *
 * Tests that count things (/health, /stats, listings) get a daemon of their
 * own; the table-driven rows share one per table (they leave nothing behind
 * but the topics they are about).
 *
 * SPDX-License-Identifier: MIT
 */
#include <string.h>

#include "pubsub-test-util.h"

#define API_KEY "s3cret-Key_42"

/* ---- helpers ------------------------------------------------------------ */

/* One daemon for the rows of the tables; stopped (exit status 0) in main(). */
static PubsubTestServer *
get_shared_server (void)
{
  return pubsub_test_shared_server (NULL, NULL);
}

static JsonObject *
response_object (PubsubTestResponse *response)
{
  return json_node_get_object (response->json);
}

/* Fails the test but goes on, so one wrong answer shows with the others. */
static void
assert_error (PubsubTestResponse *response,
              guint               status,
              const char         *code)
{
  if (response->status != status ||
      g_strcmp0 (pubsub_test_response_error_code (response), code) != 0)
    {
      gsize len;
      const char *data = g_bytes_get_data (response->body, &len);
      g_autofree char *copy = g_strndup (data, len);
      g_autofree char *shown = g_strescape (copy, NULL);

      g_test_fail_printf ("expected %u %s, got %u %s", status, code, response->status, shown);
    }
}

static void
assert_status_body (PubsubTestResponse *response,
                    guint               status,
                    const char         *label,
                    const char         *topic)
{
  JsonObject *object = response_object (response);

  g_assert_cmpuint (response->status, ==, status);
  g_assert_cmpstr (json_object_get_string_member (object, "status"), ==, label);
  g_assert_cmpstr (json_object_get_string_member (object, "topic"), ==, topic);
}

/* The names of GET /topics, in order. */
static GPtrArray *
list_topic_names_with_key (PubsubTestServer *server,
                           const char       *api_key)
{
  g_autoptr(PubsubTestResponse) response = pubsub_test_get_topics (server, api_key);
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);
  JsonArray *topics;

  topics = json_object_get_array_member (response_object (response), "topics");
  for (guint i = 0; i < json_array_get_length (topics); i++)
    {
      JsonObject *topic = json_array_get_object_element (topics, i);

      g_assert_true (json_object_has_member (topic, "subscribers"));
      g_ptr_array_add (names, g_strdup (json_object_get_string_member (topic, "name")));
    }
  return names;
}

static GPtrArray *
list_topic_names (PubsubTestServer *server)
{
  return list_topic_names_with_key (server, NULL);
}

static gboolean
topic_listed_with_key (PubsubTestServer *server,
                       const char       *name,
                       const char       *api_key)
{
  g_autoptr(GPtrArray) names = list_topic_names_with_key (server, api_key);

  for (guint i = 0; i < names->len; i++)
    if (g_str_equal (g_ptr_array_index (names, i), name))
      return TRUE;
  return FALSE;
}

static gboolean
topic_listed (PubsubTestServer *server,
              const char       *name)
{
  return topic_listed_with_key (server, name, NULL);
}

static gint64
get_int (JsonObject *object,
         const char *member)
{
  JsonNode *node = json_object_get_member (object, member);

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) ||
      json_node_get_value_type (node) != G_TYPE_INT64)
    g_error ("member %s is missing or not an integer", member);
  return json_node_get_int (node);
}

typedef struct {
  gint64 topics;
  gint64 subscribers;
} Health;

static Health
get_health (PubsubTestServer *server)
{
  g_autoptr(PubsubTestResponse) response = pubsub_test_request (server, "GET", "/health",
                                                                NULL, NULL);
  JsonObject *object = response_object (response);
  Health health;

  g_assert_cmpuint (response->status, ==, 200);
  g_assert_cmpint (get_int (object, "uptime_sec"), >=, 0);
  health.topics = get_int (object, "topics");
  health.subscribers = get_int (object, "subscribers");
  return health;
}

/* /stats → topics.NAME.MEMBER, or -1 if the topic is not listed. */
static gint64
get_stat (PubsubTestServer *server,
          const char       *topic,
          const char       *member)
{
  g_autoptr(PubsubTestResponse) response = pubsub_test_request (server, "GET", "/stats", NULL,
                                                                NULL);
  JsonObject *topics;

  g_assert_cmpuint (response->status, ==, 200);
  topics = json_object_get_object_member (response_object (response), "topics");
  if (!json_object_has_member (topics, topic))
    return -1;
  return get_int (json_object_get_object_member (topics, topic), member);
}

/* ---- POST /topics ------------------------------------------------------- */

static void
test_create (void)
{
  g_autoptr(PubsubTestServer) server = pubsub_test_server_start (NULL);
  g_autoptr(PubsubTestResponse) created = NULL;
  g_autoptr(PubsubTestResponse) again = NULL;

  created = pubsub_test_request (server, "POST", "/topics", "{\"name\":\"orders\"}", NULL);
  assert_status_body (created, 201, "created", "orders");
  g_assert_true (topic_listed (server, "orders"));
  g_assert_cmpint (pubsub_test_topic_subscribers (server, "orders", NULL), ==, 0);

  again = pubsub_test_request (server, "POST", "/topics", "{\"name\":\"orders\"}", NULL);
  assert_error (again, 409, "TOPIC_EXISTS");
  g_assert_cmpint (get_health (server).topics, ==, 1);

  pubsub_test_server_stop (server);
}

/* Bodies that must be refused with 400 BAD_REQUEST, and create nothing. The
 * first rows are what json-glib 1.6 would accept. */
typedef struct {
  const char *name;
  const char *body;
  gssize      len;       /* -1: strlen */
  const char *must_not_exist;
} BadBody;

static const BadBody bad_bodies[] = {
  { "single-quotes", "{'name':'x1'}", -1, "x1" },
  { "comment-after", "{\"name\":\"x2\"} /*c*/", -1, "x2" },
  { "comment-inside", "{\"name\":/*c*/\"x3\"}", -1, "x3" },
  { "line-comment", "{\"name\":\"x4\"} // c", -1, "x4" },
  { "hex-name", "{\"name\":0x1}", -1, NULL },
  { "hex-other", "{\"name\":\"x5\",\"n\":0x10}", -1, "x5" },
  { "leading-zero", "{\"name\":\"x6\",\"n\":01}", -1, "x6" },
  { "trailing-dot", "{\"name\":\"x7\",\"n\":1.}", -1, "x7" },
  { "leading-dot", "{\"name\":\"x8\",\"n\":.5}", -1, "x8" },
  { "trailing-garbage", "{\"name\":\"x9\"} x", -1, "x9" },
  { "two-objects", "{\"name\":\"x10\"}{\"name\":\"x11\"}", -1, "x10" },
  { "trailing-comma", "{\"name\":\"x12\",}", -1, "x12" },
  { "unquoted-key", "{name:\"x13\"}", -1, "x13" },
  { "not-json", "hello", -1, NULL },
  { "truncated", "{\"name\":\"x14\"", -1, "x14" },
  { "empty", "", -1, NULL },
  { "whitespace", "  \n ", -1, NULL },
  { "array", "[]", -1, NULL },
  { "array-of-object", "[{\"name\":\"x15\"}]", -1, "x15" },
  { "array-then-array", "[1] [2]", -1, NULL },
  { "string", "\"x16\"", -1, "x16" },
  { "number", "5", -1, NULL },
  { "null", "null", -1, NULL },
  { "name-number", "{\"name\":5}", -1, NULL },
  { "name-null", "{\"name\":null}", -1, NULL },
  { "name-object", "{\"name\":{\"x\":1}}", -1, NULL },
  { "name-array", "{\"name\":[\"x17\"]}", -1, "x17" },
  { "name-true", "{\"name\":true}", -1, NULL },
  { "no-name", "{}", -1, NULL },
  { "other-field", "{\"topic\":\"x18\"}", -1, "x18" },
  { "name-empty", "{\"name\":\"\"}", -1, NULL },
  { "name-129", "{\"name\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}", -1, NULL },
  { "name-space", "{\"name\":\"a b\"}", -1, "a b" },
  { "name-e-acute", "{\"name\":\"\xc3\xa9\"}", -1, "\xc3\xa9" },
  { "name-e-acute-escaped", "{\"name\":\"\\u00e9\"}", -1, "\xc3\xa9" },
  { "name-slash", "{\"name\":\"a/b\"}", -1, "a/b" },
  { "name-tab", "{\"name\":\"a\\tb\"}", -1, NULL },
  { "name-nul", "{\"name\":\"a\\u0000b\"}", -1, "a" },
  { "name-percent", "{\"name\":\"a%3Ab\"}", -1, "a%3Ab" },
  { "name-star", "{\"name\":\"a*\"}", -1, "a*" },
  { "invalid-utf8", "{\"name\":\"x19\xff\"}", -1, NULL },
  { "lone-surrogate", "{\"name\":\"x20\\ud800\"}", -1, NULL },
  { "nul-byte-after", "{\"name\":\"x21\"}\0garbage", 22, "x21" },
};

static void
test_create_bad_body (gconstpointer data)
{
  const BadBody *row = data;
  PubsubTestServer *server = get_shared_server ();
  gsize len = row->len >= 0 ? (gsize) row->len : strlen (row->body);
  g_autoptr(GBytes) body = g_bytes_new (row->body, len);
  g_autoptr(PubsubTestResponse) response = NULL;
  const char *message;

  response = pubsub_test_request_full (server, "POST", "/topics", body, FALSE, NULL, NULL);
  assert_error (response, 400, "BAD_REQUEST");
  if (response->status == 400)
    {
      message = json_object_get_string_member (
        json_object_get_object_member (response_object (response), "error"), "message");
      g_test_message ("%s -> %s", row->name, message);
    }
  if (row->must_not_exist != NULL && topic_listed (server, row->must_not_exist))
    g_test_fail_printf ("topic '%s' was created", row->must_not_exist);
}

static void
test_create_valid_names (void)
{
  const char *names[] = {
    "a", "Z", "0", ".", "_", "-", ":", "orders.eu-west_1:v2",
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-:",
  };
  g_autoptr(PubsubTestServer) server = pubsub_test_server_start (NULL);
  g_autofree char *longest = g_strnfill (128, 'n');
  g_autofree char *longest_body = g_strdup_printf ("{\"name\":\"%s\"}", longest);
  g_autoptr(PubsubTestResponse) response = NULL;
  g_autoptr(PubsubTestResponse) escaped = NULL;
  g_autoptr(PubsubTestResponse) extra = NULL;

  for (gsize i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree char *body = g_strdup_printf ("{\"name\":\"%s\"}", names[i]);
      g_autoptr(PubsubTestResponse) created = pubsub_test_request (server, "POST", "/topics",
                                                                   body, NULL);

      assert_status_body (created, 201, "created", names[i]);
      g_assert_true (topic_listed (server, names[i]));
    }

  response = pubsub_test_request (server, "POST", "/topics", longest_body, NULL);
  assert_status_body (response, 201, "created", longest);

  /* A JSON escape is just another spelling of the same name. */
  escaped = pubsub_test_request (server, "POST", "/topics", " {\"name\" : \"\\u0065sc\"} \n",
                                 NULL);
  assert_status_body (escaped, 201, "created", "esc");

  /* Other members are ignored. */
  extra = pubsub_test_request (server, "POST", "/topics",
                               "{\"name\":\"extra\",\"x\":[1,{\"y\":null}],\"z\":-1.5e3}", NULL);
  assert_status_body (extra, 201, "created", "extra");

  g_assert_cmpint (get_health (server).topics, ==, G_N_ELEMENTS (names) + 3);
  pubsub_test_server_stop (server);
}

/* The body is JSON whatever its Content-Type says. */
static void
test_create_content_type_ignored (void)
{
  const char *types[] = {
    "text/plain", "application/x-www-form-urlencoded", "application/octet-stream",
    "multipart/form-data; boundary=x",
  };
  g_autoptr(PubsubTestServer) server = pubsub_test_server_start (NULL);

  for (gsize i = 0; i < G_N_ELEMENTS (types); i++)
    {
      g_autofree char *name = g_strdup_printf ("ct%" G_GSIZE_FORMAT, i);
      g_autofree char *body = g_strdup_printf ("{\"name\":\"%s\"}", name);
      g_autoptr(PubsubTestResponse) created =
        pubsub_test_request (server, "POST", "/topics", body, "Content-Type", types[i], NULL);
      g_autoptr(PubsubTestResponse) bad =
        pubsub_test_request (server, "POST", "/topics", "name=x", "Content-Type", types[i],
                             NULL);

      assert_status_body (created, 201, "created", name);
      assert_error (bad, 400, "BAD_REQUEST");
    }
  pubsub_test_server_stop (server);
}

/* A body over max-message-bytes is 413, declared or chunked; at the limit it
 * is read. */
static char *
body_of_size (const char *name,
              gsize       size)
{
  g_autofree char *head = g_strdup_printf ("{\"name\":\"%s\",\"pad\":\"", name);
  gsize fixed = strlen (head) + strlen ("\"}");
  g_autofree char *pad = NULL;

  g_assert_cmpuint (size, >=, fixed);
  pad = g_strnfill (size - fixed, 'p');
  return g_strconcat (head, pad, "\"}", NULL);
}

static void
test_create_too_large (void)
{
  g_autoptr(PubsubTestServer) server = pubsub_test_server_start ("--max-message-bytes", "1024",
                                                                 NULL);
  struct {
    const char *name;
    gsize       size;
    gboolean    chunked;
    guint       status;
  } cases[] = {
    { "cl2000", 2000, FALSE, 413 },
    { "ch2000", 2000, TRUE, 413 },
    { "cl1025", 1025, FALSE, 413 },
    { "ch1025", 1025, TRUE, 413 },
    { "cl100k", 100 * 1024, FALSE, 413 },
    { "ch100k", 100 * 1024, TRUE, 413 },
    { "cl1024", 1024, FALSE, 201 },
    { "ch1024", 1024, TRUE, 201 },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *text = body_of_size (cases[i].name, cases[i].size);
      g_autoptr(GBytes) body = g_bytes_new (text, strlen (text));
      g_autoptr(PubsubTestResponse) response = NULL;

      g_test_message ("%s: %" G_GSIZE_FORMAT " bytes%s", cases[i].name, cases[i].size,
                      cases[i].chunked ? ", chunked" : "");
      response = pubsub_test_request_full (server, "POST", "/topics", body, cases[i].chunked,
                                           NULL, NULL);
      g_assert_cmpuint (response->status, ==, cases[i].status);
      g_assert_cmpint (topic_listed (server, cases[i].name), ==, cases[i].status == 201);
    }
  pubsub_test_server_stop (server);
}

/* ---- DELETE /topics/{name} ---------------------------------------------- */

static void
test_delete (void)
{
  g_autoptr(PubsubTestServer) server = pubsub_test_server_start (NULL);
  g_autoptr(PubsubTestResponse) deleted = NULL;
  g_autoptr(PubsubTestResponse) again = NULL;
  g_autoptr(PubsubTestResponse) never = NULL;
  g_autoptr(PubsubTestResponse) recreated = NULL;

  pubsub_test_create_topic (server, "orders", NULL);
  pubsub_test_create_topic (server, "other", NULL);

  deleted = pubsub_test_request (server, "DELETE", "/topics/orders", NULL, NULL);
  assert_status_body (deleted, 200, "deleted", "orders");
  g_assert_false (topic_listed (server, "orders"));
  g_assert_true (topic_listed (server, "other"));

  again = pubsub_test_request (server, "DELETE", "/topics/orders", NULL, NULL);
  assert_error (again, 404, "TOPIC_NOT_FOUND");
  never = pubsub_test_request (server, "DELETE", "/topics/never", NULL, NULL);
  assert_error (never, 404, "TOPIC_NOT_FOUND");

  /* The name is free again. */
  recreated = pubsub_test_request (server, "POST", "/topics", "{\"name\":\"orders\"}", NULL);
  assert_status_body (recreated, 201, "created", "orders");
  pubsub_test_server_stop (server);
}

static void
test_delete_percent_decoded (void)
{
  g_autoptr(PubsubTestServer) server = pubsub_test_server_start (NULL);
  const struct { const char *name; const char *path; } cases[] = {
    { "a:b", "/topics/a%3Ab" },
    { "c:d", "/topics/c%3ad" },
    { "e.f", "/topics/e%2Ef" },
    { "g_h-i", "/topics/%67_h%2Di" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(PubsubTestResponse) deleted = NULL;
      g_autoptr(PubsubTestResponse) again = NULL;

      pubsub_test_create_topic (server, cases[i].name, NULL);
      deleted = pubsub_test_request (server, "DELETE", cases[i].path, NULL, NULL);
      assert_status_body (deleted, 200, "deleted", cases[i].name);
      g_assert_false (topic_listed (server, cases[i].name));
      again = pubsub_test_request (server, "DELETE", cases[i].path, NULL, NULL);
      assert_error (again, 404, "TOPIC_NOT_FOUND");
    }
  pubsub_test_server_stop (server);
}

/* Names that cannot exist answer 404 with a well-formed JSON body, whatever
 * bytes the decoded path holds. */
static void
test_delete_odd_names (void)
{
  const char *paths[] = {
    "/topics/a%20b", "/topics/%C3%A9", "/topics/%FF", "/topics/a%22b", "/topics/a%5Cb",
    "/topics/a%0Ab", "/topics/a%01b",
  };
  g_autoptr(PubsubTestServer) server = pubsub_test_server_start (NULL);

  for (gsize i = 0; i < G_N_ELEMENTS (paths); i++)
    {
      g_autoptr(PubsubTestResponse) response = NULL;

      g_test_message ("DELETE %s", paths[i]);
      response = pubsub_test_request (server, "DELETE", paths[i], NULL, NULL);
      assert_error (response, 404, "TOPIC_NOT_FOUND");
    }
  pubsub_test_server_stop (server);
}

/* ---- GET /topics, /health, /stats --------------------------------------- */

static void
test_list_sorted (void)
{
  /* Byte order: '-' < '.' < '0' < ':' < 'B' < 'Z' < '_' < 'a' < 'ab' < 'b'. */
  const char *sorted[] = { "-", ".x", "0", "9", ":", "B", "Z", "_", "a", "a.b", "ab", "b", "z" };
  const char *order[] = { "ab", "Z", "_", "a", "z", "0", ":", "B", "-", "b", "a.b", "9", ".x" };
  g_autoptr(PubsubTestServer) server = pubsub_test_server_start (NULL);
  g_autoptr(GPtrArray) names = NULL;
  g_autoptr(PubsubTestResponse) empty = pubsub_test_request (server, "GET", "/topics", NULL,
                                                             NULL);

  G_STATIC_ASSERT (G_N_ELEMENTS (sorted) == G_N_ELEMENTS (order));
  g_assert_cmpuint (empty->status, ==, 200);
  g_assert_cmpuint (json_array_get_length (
                      json_object_get_array_member (response_object (empty), "topics")), ==, 0);

  for (gsize i = 0; i < G_N_ELEMENTS (order); i++)
    pubsub_test_create_topic (server, order[i], NULL);
  names = list_topic_names (server);
  g_assert_cmpuint (names->len, ==, G_N_ELEMENTS (sorted));
  for (guint i = 0; i < names->len; i++)
    g_assert_cmpstr (g_ptr_array_index (names, i), ==, sorted[i]);
  pubsub_test_server_stop (server);
}

static void
test_health_counts (void)
{
  g_autoptr(PubsubTestServer) server = pubsub_test_server_start (NULL);
  g_autoptr(PubsubTestWs) both = NULL;
  g_autoptr(PubsubTestWs) one = NULL;
  g_autoptr(PubsubTestWs) idle = NULL;
  Health health = get_health (server);

  g_assert_cmpint (health.topics, ==, 0);
  g_assert_cmpint (health.subscribers, ==, 0);

  pubsub_test_create_topic (server, "alpha", NULL);
  pubsub_test_create_topic (server, "beta", NULL);
  pubsub_test_create_topic (server, "gamma", NULL);
  health = get_health (server);
  g_assert_cmpint (health.topics, ==, 3);
  g_assert_cmpint (health.subscribers, ==, 0);

  /* One connection on two topics counts once in each. */
  both = pubsub_test_ws_connect (server, NULL, NULL);
  pubsub_test_ws_subscribe (both, "alpha", 0);
  pubsub_test_ws_subscribe (both, "beta", 0);
  one = pubsub_test_ws_connect (server, NULL, NULL);
  pubsub_test_ws_subscribe (one, "alpha", 0);
  /* A connection with no subscription counts nowhere. */
  idle = pubsub_test_ws_connect (server, NULL, NULL);
  pubsub_test_ws_assert_quiet (idle);

  health = get_health (server);
  g_assert_cmpint (health.topics, ==, 3);
  g_assert_cmpint (health.subscribers, ==, 3);
  g_assert_cmpint (pubsub_test_topic_subscribers (server, "alpha", NULL), ==, 2);
  g_assert_cmpint (pubsub_test_topic_subscribers (server, "beta", NULL), ==, 1);
  g_assert_cmpint (pubsub_test_topic_subscribers (server, "gamma", NULL), ==, 0);
  g_assert_cmpint (get_stat (server, "alpha", "subscribers"), ==, 2);
  g_assert_cmpint (get_stat (server, "beta", "subscribers"), ==, 1);
  g_assert_cmpint (get_stat (server, "gamma", "subscribers"), ==, 0);

  /* Subscribing again changes nothing. */
  pubsub_test_ws_subscribe (both, "alpha", 0);
  g_assert_cmpint (get_health (server).subscribers, ==, 3);

  /* Unsubscribing and closing count down. */
  pubsub_test_ws_send (both, "{\"type\":\"unsubscribe\",\"topic\":\"beta\",\"client_id\":\"c\"}");
  g_clear_pointer (&(PubsubTestFrame *) { pubsub_test_ws_wait_for (both, "ack", 5000) },
                   pubsub_test_frame_free);
  health = get_health (server);
  g_assert_cmpint (health.subscribers, ==, 2);
  g_assert_cmpint (pubsub_test_topic_subscribers (server, "beta", NULL), ==, 0);

  g_clear_pointer (&one, pubsub_test_ws_free);
  pubsub_test_wait_for (get_health (server).subscribers == 1, 5000);
  g_assert_cmpint (pubsub_test_topic_subscribers (server, "alpha", NULL), ==, 1);

  /* Deleting a topic drops its subscriptions from the count. */
  {
    g_autoptr(PubsubTestResponse) deleted = pubsub_test_request (server, "DELETE",
                                                                 "/topics/alpha", NULL, NULL);

    g_assert_cmpuint (deleted->status, ==, 200);
  }
  health = get_health (server);
  g_assert_cmpint (health.topics, ==, 2);
  g_assert_cmpint (health.subscribers, ==, 0);

  g_clear_pointer (&both, pubsub_test_ws_free);
  g_clear_pointer (&idle, pubsub_test_ws_free);
  pubsub_test_server_stop (server);
}

static void
test_health_uptime (void)
{
  g_autoptr(PubsubTestServer) server = pubsub_test_server_start (NULL);
  gint64 start = g_get_monotonic_time ();
  gint64 uptime = 0;

  /* It counts seconds: wait until it has moved past 1. */
  while (uptime < 2)
    {
      g_autoptr(PubsubTestResponse) response = pubsub_test_request (server, "GET", "/health",
                                                                    NULL, NULL);

      uptime = get_int (response_object (response), "uptime_sec");
      g_assert_cmpint (uptime, <=, (g_get_monotonic_time () - start) / G_USEC_PER_SEC + 2 +
                                   (gint64) pubsub_test_timeout_scale () * 5);
      if (uptime < 2)
        {
          gint64 until = g_get_monotonic_time () + 100 * 1000;

          pubsub_test_wait_for (g_get_monotonic_time () > until, 1000);
        }
      g_assert_cmpint (g_get_monotonic_time () - start, <,
                       (gint64) 10 * G_USEC_PER_SEC * pubsub_test_timeout_scale ());
    }
  pubsub_test_server_stop (server);
}

static void
test_stats_messages (void)
{
  g_autoptr(PubsubTestServer) server = pubsub_test_server_start ("--history-size", "10", NULL);
  g_autoptr(PubsubTestWs) publisher = NULL;
  g_autoptr(PubsubTestResponse) empty = pubsub_test_request (server, "GET", "/stats", NULL,
                                                             NULL);
  guint n = pubsub_test_scale_count (150, 40);

  g_assert_cmpuint (empty->status, ==, 200);
  g_assert_cmpuint (json_object_get_size (
                      json_object_get_object_member (response_object (empty), "topics")), ==, 0);

  pubsub_test_create_topic (server, "busy", NULL);
  pubsub_test_create_topic (server, "quiet", NULL);
  publisher = pubsub_test_ws_connect (server, NULL, NULL);
  for (guint i = 0; i < n; i++)
    {
      g_autofree char *payload = g_strdup_printf ("{\"n\":%u}", i);

      g_free (pubsub_test_ws_publish (publisher, "busy", payload));
    }
  /* Counted since creation, not capped by the history of 10. */
  g_assert_cmpint (get_stat (server, "busy", "messages"), ==, n);
  g_assert_cmpint (get_stat (server, "busy", "subscribers"), ==, 0);
  g_assert_cmpint (get_stat (server, "quiet", "messages"), ==, 0);
  g_assert_cmpint (get_stat (server, "gone", "messages"), ==, -1);

  /* A topic created again starts from zero. */
  {
    g_autoptr(PubsubTestResponse) deleted = pubsub_test_request (server, "DELETE",
                                                                 "/topics/busy", NULL, NULL);

    g_assert_cmpuint (deleted->status, ==, 200);
  }
  g_assert_cmpint (get_stat (server, "busy", "messages"), ==, -1);
  pubsub_test_create_topic (server, "busy", NULL);
  g_assert_cmpint (get_stat (server, "busy", "messages"), ==, 0);

  g_clear_pointer (&publisher, pubsub_test_ws_free);
  pubsub_test_server_stop (server);
}

/* ---- 404, 405 ------------------------------------------------------------ */

typedef struct {
  const char *method;
  const char *path;
  const char *allow;     /* NULL: 404 expected */
} RouteCase;

static const RouteCase route_cases[] = {
  { "PUT", "/topics", "GET, POST" },
  { "DELETE", "/topics", "GET, POST" },
  { "PATCH", "/topics", "GET, POST" },
  { "POST", "/health", "GET" },
  { "DELETE", "/health", "GET" },
  { "POST", "/stats", "GET" },
  { "PUT", "/stats", "GET" },
  { "POST", "/topics/orders", "GET, DELETE" },
  { "PUT", "/topics/orders", "GET, DELETE" },
  { "PUT", "/topics/orders/messages", "GET, POST" },
  { "DELETE", "/topics/orders/messages", "GET, POST" },
  { "PATCH", "/topics/orders/messages", "GET, POST" },
  { "POST", "/ws", "GET" },
  { "GET", "/index.html", NULL },
  { "GET", "/nope", NULL },
  { "GET", "/topicsx", NULL },
  { "GET", "/healthz", NULL },
  { "GET", "/health/x", NULL },
  { "GET", "/stats/orders", NULL },
  { "POST", "/nope", NULL },
  { "DELETE", "/nope/orders", NULL },
  { "GET", "/TOPICS", NULL },
  { "GET", "/topics/orders/other", NULL },
  { "GET", "/topics/orders/messages/1", NULL },
  { "POST", "/topics/orders/", NULL },
};

static gint
compare_strings (gconstpointer a,
                 gconstpointer b)
{
  return strcmp (*(const char * const *) a, *(const char * const *) b);
}

static GPtrArray *
split_methods (const char *list)
{
  g_auto(GStrv) parts = g_strsplit (list, ",", -1);
  GPtrArray *methods = g_ptr_array_new_with_free_func (g_free);

  for (gsize i = 0; parts[i] != NULL; i++)
    g_ptr_array_add (methods, g_strstrip (g_strdup (parts[i])));
  g_ptr_array_sort (methods, compare_strings);
  return methods;
}

static void
test_route (gconstpointer data)
{
  const RouteCase *row = data;
  PubsubTestServer *server = get_shared_server ();
  g_autoptr(PubsubTestResponse) response = NULL;
  const char *body = g_str_equal (row->method, "POST") || g_str_equal (row->method, "PUT") ||
                     g_str_equal (row->method, "PATCH") ? "{\"name\":\"route\"}" : NULL;

  response = pubsub_test_request (server, row->method, row->path, body, NULL);
  if (row->allow == NULL)
    {
      g_assert_cmpuint (response->status, ==, 404);
      g_assert_null (soup_message_headers_get_one (response->headers, "Allow"));
    }
  else
    {
      const char *allow = soup_message_headers_get_list (response->headers, "Allow");
      g_autoptr(GPtrArray) got = NULL;
      g_autoptr(GPtrArray) expected = split_methods (row->allow);

      g_assert_cmpuint (response->status, ==, 405);
      g_assert_nonnull (allow);
      got = split_methods (allow);
      g_assert_cmpuint (got->len, ==, expected->len);
      for (guint i = 0; i < got->len; i++)
        g_assert_cmpstr (g_ptr_array_index (got, i), ==, g_ptr_array_index (expected, i));
    }
  /* Nothing was created on the way. */
  g_assert_false (topic_listed (server, "route"));
}

/* ---- Authentication ---------------------------------------------------- */

typedef struct {
  const char *method;
  const char *path;
  const char *body;
  guint       status;      /* with the right key */
} AuthCall;

static const AuthCall auth_calls[] = {
  { "GET", "/topics", NULL, 200 },
  { "POST", "/topics", "{\"name\":\"made\"}", 201 },
  { "DELETE", "/topics/victim", NULL, 200 },
  { "GET", "/stats", NULL, 200 },
};

/* (Whitespace around a header value is not part of it, by HTTP's rules.) */
static const char *wrong_keys[] = {
  "", "wrong", "S3CRET-KEY_42", "s3cret-Key_4", "s3cret-Key_421", "s3cret Key_42",
  API_KEY API_KEY,
};

static void
check_auth (PubsubTestServer *server)
{
  pubsub_test_create_topic (server, "victim", API_KEY);

  for (gsize i = 0; i < G_N_ELEMENTS (auth_calls); i++)
    {
      const AuthCall *call = &auth_calls[i];
      g_autoptr(PubsubTestResponse) without = NULL;
      g_autoptr(PubsubTestResponse) with = NULL;

      g_test_message ("%s %s", call->method, call->path);
      without = pubsub_test_request (server, call->method, call->path, call->body, NULL);
      assert_error (without, 401, "UNAUTHORIZED");
      for (gsize j = 0; j < G_N_ELEMENTS (wrong_keys); j++)
        {
          g_autoptr(PubsubTestResponse) wrong =
            pubsub_test_request (server, call->method, call->path, call->body,
                                 "X-API-Key", wrong_keys[j], NULL);

          assert_error (wrong, 401, "UNAUTHORIZED");
        }
      /* The key belongs in the header, not in the query, for REST. */
      {
        g_autofree char *path = g_strconcat (call->path, "?api_key=" API_KEY, NULL);
        g_autoptr(PubsubTestResponse) query = pubsub_test_request (server, call->method, path,
                                                                   call->body, NULL);

        assert_error (query, 401, "UNAUTHORIZED");
      }
      /* Nothing happened: "made" exists only once the authorized POST (call 1)
       * made it, and the victim until the authorized DELETE (call 2). */
      g_assert_cmpint (topic_listed_with_key (server, "made", API_KEY), ==, i > 1);
      g_assert_cmpint (topic_listed_with_key (server, "victim", API_KEY), ==, i <= 2);

      with = pubsub_test_request (server, call->method, call->path, call->body,
                                  "X-API-Key", API_KEY, NULL);
      g_assert_cmpuint (with->status, ==, call->status);
    }

  /* /health is open to all. */
  {
    g_autoptr(PubsubTestResponse) health = pubsub_test_request (server, "GET", "/health",
                                                                NULL, NULL);
    g_autoptr(PubsubTestResponse) wrong = pubsub_test_request (server, "GET", "/health", NULL,
                                                               "X-API-Key", "wrong", NULL);

    g_assert_cmpuint (health->status, ==, 200);
    g_assert_cmpuint (wrong->status, ==, 200);
  }
}

/* The upgrade takes the key in the header or in ?api_key=, else HTTP 401. */
static void
check_websocket_auth (PubsubTestServer *server)
{
  const char *key_header[] = { "X-API-Key", API_KEY, NULL };
  g_autoptr(PubsubTestWs) by_header = NULL;
  g_autoptr(PubsubTestWs) by_query = NULL;
  guint status = 0;

  g_assert_null (pubsub_test_ws_try_connect (server, NULL, NULL, &status));
  g_assert_cmpuint (status, ==, 401);
  for (gsize i = 0; i < G_N_ELEMENTS (wrong_keys); i++)
    {
      const char *wrong_header[] = { "X-API-Key", wrong_keys[i], NULL };
      g_autofree char *escaped = g_uri_escape_string (wrong_keys[i], NULL, FALSE);
      g_autofree char *query = g_strconcat ("api_key=", escaped, NULL);

      status = 0;
      g_assert_null (pubsub_test_ws_try_connect (server, NULL, wrong_header, &status));
      g_assert_cmpuint (status, ==, 401);
      status = 0;
      g_assert_null (pubsub_test_ws_try_connect (server, query, NULL, &status));
      g_assert_cmpuint (status, ==, 401);
    }
  status = 0;
  g_assert_null (pubsub_test_ws_try_connect (server, "apikey=" API_KEY, NULL, &status));
  g_assert_cmpuint (status, ==, 401);

  /* A raw client sees a JSON 401 too. */
  {
    g_autoptr(PubsubTestRawWs) raw = pubsub_test_raw_ws_connect (server, "/ws", 0, &status);

    g_assert_null (raw);
    g_assert_cmpuint (status, ==, 401);
  }

  by_header = pubsub_test_ws_try_connect (server, NULL, key_header, &status);
  g_assert_nonnull (by_header);
  g_assert_cmpuint (status, ==, 101);
  by_query = pubsub_test_ws_try_connect (server, "api_key=" API_KEY, NULL, &status);
  g_assert_nonnull (by_query);
  g_assert_cmpuint (status, ==, 101);

  /* Both work, and the protocol needs no key once connected. */
  pubsub_test_create_topic (server, "ws-auth", API_KEY);
  pubsub_test_ws_subscribe (by_header, "ws-auth", 0);
  g_free (pubsub_test_ws_publish (by_query, "ws-auth", "{\"ok\":true}"));
  {
    g_autoptr(PubsubTestFrame) event = pubsub_test_ws_next (by_header, 5000);

    g_assert_cmpstr (pubsub_test_frame_type (event), ==, "event");
  }
}

/* The key never shows in the daemon's log, even with debug messages on. */
static void
check_key_not_logged (PubsubTestServer *server)
{
  g_autofree char *log = NULL;

  pubsub_test_server_stop (server);
  log = pubsub_test_server_dup_own_log (server);
  /* Debug messages were on: there is plenty of log to look at. */
  g_assert_nonnull (strstr (log, "Listening on"));
  g_assert_nonnull (strstr (log, "DEBUG"));
  if (strstr (log, API_KEY) != NULL)
    {
      g_printerr ("%s", log);
      g_test_fail_printf ("the API key appears in the log (above)");
    }
  for (gsize i = 0; i < G_N_ELEMENTS (wrong_keys); i++)
    if (strlen (wrong_keys[i]) > 3 && strstr (log, wrong_keys[i]) != NULL)
      {
        g_printerr ("%s", log);
        g_test_fail_printf ("a wrong API key (%s) appears in the log (above)", wrong_keys[i]);
      }
}

static void
test_auth_option (void)
{
  const char *env[] = { "G_MESSAGES_DEBUG=all", NULL };
  const char *args[] = { "--api-key", API_KEY, NULL };
  g_autoptr(PubsubTestServer) server = pubsub_test_server_start_full (0, env, args);

  check_auth (server);
  check_websocket_auth (server);
  check_key_not_logged (server);
}

static void
test_auth_env (void)
{
  const char *env[] = { "G_MESSAGES_DEBUG=all", "API_KEY=" API_KEY, NULL };
  g_autoptr(PubsubTestServer) server = pubsub_test_server_start_full (0, env, NULL);

  check_auth (server);
  check_websocket_auth (server);
  check_key_not_logged (server);
}

/* Without a key, nothing asks for one. */
static void
test_auth_off (void)
{
  g_autoptr(PubsubTestServer) server = pubsub_test_server_start (NULL);

  pubsub_test_create_topic (server, "victim", NULL);
  for (gsize i = 0; i < G_N_ELEMENTS (auth_calls); i++)
    {
      g_autoptr(PubsubTestResponse) response =
        pubsub_test_request (server, auth_calls[i].method, auth_calls[i].path,
                             auth_calls[i].body, "X-API-Key", "anything", NULL);

      g_assert_cmpuint (response->status, ==, auth_calls[i].status);
    }
  g_clear_pointer (&(PubsubTestWs *) { pubsub_test_ws_connect (server, NULL, NULL) },
                   pubsub_test_ws_free);
  pubsub_test_server_stop (server);
}

int
main (int   argc,
      char *argv[])
{
  int status;

  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  pubsub_test_quiet_debug ();

  g_test_add_func ("/rest/create/ok", test_create);
  for (gsize i = 0; i < G_N_ELEMENTS (bad_bodies); i++)
    {
      g_autofree char *path = g_strdup_printf ("/rest/create/bad-body/%s", bad_bodies[i].name);

      g_test_add_data_func (path, &bad_bodies[i], test_create_bad_body);
    }
  g_test_add_func ("/rest/create/valid-names", test_create_valid_names);
  g_test_add_func ("/rest/create/content-type-ignored", test_create_content_type_ignored);
  g_test_add_func ("/rest/create/too-large", test_create_too_large);
  g_test_add_func ("/rest/delete/ok", test_delete);
  g_test_add_func ("/rest/delete/percent-decoded", test_delete_percent_decoded);
  g_test_add_func ("/rest/delete/odd-names", test_delete_odd_names);
  g_test_add_func ("/rest/list/sorted", test_list_sorted);
  g_test_add_func ("/rest/health/counts", test_health_counts);
  g_test_add_func ("/rest/health/uptime", test_health_uptime);
  g_test_add_func ("/rest/stats/messages", test_stats_messages);
  for (gsize i = 0; i < G_N_ELEMENTS (route_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/rest/route/%s%s", route_cases[i].method,
                                               route_cases[i].path);

      g_strdelimit (path + strlen ("/rest/route/"), "/", '_');
      g_test_add_data_func (path, &route_cases[i], test_route);
    }
  g_test_add_func ("/rest/auth/option", test_auth_option);
  g_test_add_func ("/rest/auth/env", test_auth_env);
  g_test_add_func ("/rest/auth/off", test_auth_off);

  status = g_test_run ();
  pubsub_test_shared_server_stop ();
  return status;
}
