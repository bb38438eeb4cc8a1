/* test-recovery.c: seq, epoch, since recovery and idempotent publish over
 * the WebSocket (SPEC §8), against the real daemon
 *
 * SPDX-License-Identifier: MIT
 */
#include <string.h>

#include "pubsub-test-util.h"

/* An integer member of a frame (the raw JSON text, parsed exactly). */
static guint64
frame_uint (PubsubTestFrame *frame,
            const char      *member)
{
  g_autofree char *raw = pubsub_test_frame_dup_raw (frame, member, NULL);
  guint64 value;

  if (raw == NULL || !g_ascii_string_to_unsigned (raw, 10, 0, G_MAXUINT64, &value, NULL))
    g_error ("no integer '%s' in %s", member, frame->text);
  return value;
}

static gboolean
frame_bool (PubsubTestFrame *frame,
            const char      *member)
{
  g_autofree char *raw = pubsub_test_frame_dup_raw (frame, member, NULL);

  if (g_strcmp0 (raw, "true") != 0 && g_strcmp0 (raw, "false") != 0)
    g_error ("no boolean '%s' in %s", member, frame->text);
  return g_str_equal (raw, "true");
}

/* Publishes {"n":n} with @id (a fresh one when NULL) and returns the ack. */
static PubsubTestFrame *
publish (PubsubTestWs *ws,
         const char   *topic,
         const char   *id,
         guint         n)
{
  g_autofree char *fresh = id == NULL ? pubsub_test_uuid () : NULL;
  PubsubTestFrame *ack;

  pubsub_test_ws_sendf (ws, "{\"type\":\"publish\",\"topic\":\"%s\",\"request_id\":\"p%u\","
                        "\"message\":{\"id\":\"%s\",\"payload\":{\"n\":%u}}}",
                        topic, n, id != NULL ? id : fresh, n);
  ack = pubsub_test_ws_take (ws, "ack", 5000);
  g_assert_cmpstr (pubsub_test_frame_get_string (ack, "topic", NULL), ==, topic);
  return ack;
}

static void
publish_range (PubsubTestWs *ws,
               const char   *topic,
               guint         first,
               guint         last)
{
  for (guint n = first; n <= last; n++)
    {
      g_autoptr(PubsubTestFrame) ack = publish (ws, topic, NULL, n);

      g_assert_false (pubsub_test_frame_has_member (ack, "duplicate"));
    }
}

/* Subscribes with the raw JSON text of @since (NULL: none) and returns the ack. */
static PubsubTestFrame *
subscribe (PubsubTestWs *ws,
           const char   *topic,
           const char   *since,
           guint         last_n)
{
  g_autoptr(GString) text = g_string_new (NULL);
  PubsubTestFrame *ack;

  g_string_printf (text, "{\"type\":\"subscribe\",\"topic\":\"%s\",\"client_id\":\"c\","
                   "\"last_n\":%u,\"request_id\":\"s\"", topic, last_n);
  if (since != NULL)
    g_string_append_printf (text, ",\"since\":%s", since);
  g_string_append_c (text, '}');
  pubsub_test_ws_send (ws, text->str);
  ack = pubsub_test_ws_next (ws, 5000);
  if (g_strcmp0 (pubsub_test_frame_get_string (ack, "type", NULL), "ack") != 0)
    g_error ("expected the ack of subscribe, got: %s", ack->text);
  return ack;
}

/* The next frames are the events with payload.n = first…last, seq equal to
 * n (the tests publish n in order from 1), in this epoch. */
static void
expect_events (PubsubTestWs *ws,
               const char   *epoch,
               guint         first,
               guint         last)
{
  for (guint n = first; n <= last; n++)
    {
      g_autoptr(PubsubTestFrame) event = pubsub_test_ws_next (ws, 5000);
      g_autofree char *payload = pubsub_test_frame_dup_raw (event, "message", "payload", NULL);
      g_autofree char *expected = g_strdup_printf ("{\"n\":%u}", n);

      g_assert_cmpstr (pubsub_test_frame_get_string (event, "type", NULL), ==, "event");
      g_assert_cmpstr (payload, ==, expected);
      g_assert_cmpuint (frame_uint (event, "seq"), ==, n);
      g_assert_cmpstr (pubsub_test_frame_get_string (event, "epoch", NULL), ==, epoch);
    }
}

static char *
since_json (guint64     seq,
            const char *epoch)
{
  return g_strdup_printf ("{\"seq\":%" G_GUINT64_FORMAT ",\"epoch\":\"%s\"}", seq, epoch);
}

/* The subscribe ack says where the topic is; no "recovered" without since. */
static void
test_subscribe_ack (void)
{
  g_autoptr(PubsubTestServer) server = pubsub_test_server_start (NULL);
  g_autoptr(PubsubTestWs) ws = pubsub_test_ws_connect (server, NULL, NULL);
  g_autoptr(PubsubTestFrame) first = NULL;
  g_autoptr(PubsubTestFrame) second = NULL;
  const char *epoch;

  pubsub_test_create_topic (server, "t", NULL);
  first = subscribe (ws, "t", NULL, 0);
  epoch = pubsub_test_frame_get_string (first, "epoch", NULL);
  g_assert_nonnull (epoch);
  g_assert_cmpuint (strlen (epoch), ==, 16);
  g_assert_true (strspn (epoch, "0123456789abcdef") == 16);
  g_assert_cmpuint (frame_uint (first, "seq"), ==, 0);
  g_assert_false (pubsub_test_frame_has_member (first, "recovered"));

  publish_range (ws, "t", 1, 3);
  expect_events (ws, epoch, 1, 3);
  /* Subscribing again changes nothing, and says where the topic is now. */
  second = subscribe (ws, "t", NULL, 10);
  g_assert_cmpuint (frame_uint (second, "seq"), ==, 3);
  g_assert_cmpstr (pubsub_test_frame_get_string (second, "epoch", NULL), ==, epoch);
  pubsub_test_ws_assert_quiet (ws);
}

/* Disconnect, miss three, come back with since: exactly those three, then
 * live, no duplicate. */
static void
test_gap_inside_history (void)
{
  g_autoptr(PubsubTestServer) server = pubsub_test_server_start ("--history-size", "10", NULL);
  g_autoptr(PubsubTestWs) publisher = pubsub_test_ws_connect (server, NULL, NULL);
  g_autoptr(PubsubTestWs) reader = pubsub_test_ws_connect (server, NULL, NULL);
  g_autoptr(PubsubTestFrame) ack = NULL;
  g_autoptr(PubsubTestFrame) back = NULL;
  g_autofree char *epoch = NULL;
  g_autofree char *since = NULL;

  pubsub_test_create_topic (server, "orders", NULL);
  ack = subscribe (reader, "orders", NULL, 0);
  epoch = g_strdup (pubsub_test_frame_get_string (ack, "epoch", NULL));
  publish_range (publisher, "orders", 1, 2);
  expect_events (reader, epoch, 1, 2);
  g_clear_pointer (&reader, pubsub_test_ws_free);

  publish_range (publisher, "orders", 3, 5);

  reader = pubsub_test_ws_connect (server, NULL, NULL);
  since = since_json (2, epoch);
  back = subscribe (reader, "orders", since, 0);
  g_assert_true (frame_bool (back, "recovered"));
  g_assert_cmpuint (frame_uint (back, "seq"), ==, 5);
  g_assert_cmpstr (pubsub_test_frame_get_string (back, "epoch", NULL), ==, epoch);
  expect_events (reader, epoch, 3, 5);
  publish_range (publisher, "orders", 6, 6);
  expect_events (reader, epoch, 6, 6);
  pubsub_test_ws_assert_quiet (reader);
}

/* A gap larger than the history, a seq from the future, another epoch:
 * recovered:false and the last_n fallback. */
static void
test_fallbacks (void)
{
  g_autoptr(PubsubTestServer) server = pubsub_test_server_start ("--history-size", "3", NULL);
  g_autoptr(PubsubTestWs) publisher = pubsub_test_ws_connect (server, NULL, NULL);
  g_autoptr(PubsubTestFrame) ack = NULL;
  g_autofree char *epoch = NULL;
  struct {
    guint64     seq;
    gboolean    same_epoch;
    guint       last_n;
    guint       first_replayed;   /* 0: none */
  } cases[] = {
    { 4, TRUE, 0, 0 },      /* 5…8 wanted, 6…8 stored */
    { 4, TRUE, 2, 7 },
    { 9, TRUE, 1, 8 },      /* beyond the last seq */
    { 7, FALSE, 0, 0 },     /* another epoch */
    { 7, FALSE, 10, 6 },
  };

  pubsub_test_create_topic (server, "t", NULL);
  ack = subscribe (publisher, "t", NULL, 0);
  epoch = g_strdup (pubsub_test_frame_get_string (ack, "epoch", NULL));
  publish_range (publisher, "t", 1, 8);
  expect_events (publisher, epoch, 1, 8);

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(PubsubTestWs) reader = pubsub_test_ws_connect (server, NULL, NULL);
      g_autofree char *since = since_json (cases[i].seq,
                                           cases[i].same_epoch ? epoch : "00000000deadbeef");
      g_autoptr(PubsubTestFrame) back = subscribe (reader, "t", since, cases[i].last_n);

      g_assert_false (frame_bool (back, "recovered"));
      g_assert_cmpuint (frame_uint (back, "seq"), ==, 8);
      if (cases[i].first_replayed != 0)
        expect_events (reader, epoch, cases[i].first_replayed, 8);
      pubsub_test_ws_assert_quiet (reader);
    }
}

/* A topic deleted and created again has a new epoch: the old one recovers
 * nothing, and the new seq starts at 1. */
static void
test_new_epoch (void)
{
  g_autoptr(PubsubTestServer) server = pubsub_test_server_start (NULL);
  g_autoptr(PubsubTestWs) ws = pubsub_test_ws_connect (server, NULL, NULL);
  g_autoptr(PubsubTestWs) reader = NULL;
  g_autoptr(PubsubTestFrame) old = NULL;
  g_autoptr(PubsubTestFrame) back = NULL;
  g_autoptr(PubsubTestResponse) deleted = NULL;
  g_autofree char *since = NULL;
  const char *new_epoch;

  pubsub_test_create_topic (server, "t", NULL);
  old = subscribe (ws, "t", NULL, 0);
  publish_range (ws, "t", 1, 2);
  expect_events (ws, pubsub_test_frame_get_string (old, "epoch", NULL), 1, 2);
  deleted = pubsub_test_request (server, "DELETE", "/topics/t", NULL, NULL);
  g_assert_cmpuint (deleted->status, ==, 200);
  pubsub_test_create_topic (server, "t", NULL);

  reader = pubsub_test_ws_connect (server, NULL, NULL);
  since = since_json (1, pubsub_test_frame_get_string (old, "epoch", NULL));
  back = subscribe (reader, "t", since, 0);
  new_epoch = pubsub_test_frame_get_string (back, "epoch", NULL);
  g_assert_false (frame_bool (back, "recovered"));
  g_assert_cmpstr (new_epoch, !=, pubsub_test_frame_get_string (old, "epoch", NULL));
  g_assert_cmpuint (frame_uint (back, "seq"), ==, 0);
  publish_range (ws, "t", 1, 1);
  expect_events (reader, new_epoch, 1, 1);
}

static void
test_since_bad_shapes (void)
{
  static const char *const shapes[] = {
    "5", "\"x\"", "[1,\"0123456789abcdef\"]", "{}", "{\"seq\":1}",
    "{\"epoch\":\"0123456789abcdef\"}", "{\"seq\":-1,\"epoch\":\"0123456789abcdef\"}",
    "{\"seq\":1.5,\"epoch\":\"0123456789abcdef\"}", "{\"seq\":\"1\",\"epoch\":\"0123456789abcdef\"}",
    "{\"seq\":1,\"epoch\":7}", "{\"seq\":1,\"epoch\":null}",
  };
  g_autoptr(PubsubTestServer) server = pubsub_test_server_start (NULL);
  g_autoptr(PubsubTestWs) ws = pubsub_test_ws_connect (server, NULL, NULL);

  pubsub_test_create_topic (server, "t", NULL);
  for (gsize i = 0; i < G_N_ELEMENTS (shapes); i++)
    {
      g_autoptr(PubsubTestFrame) error = NULL;

      pubsub_test_ws_sendf (ws, "{\"type\":\"subscribe\",\"topic\":\"t\",\"client_id\":\"c\","
                            "\"request_id\":\"b%zu\",\"since\":%s}", i, shapes[i]);
      error = pubsub_test_ws_next (ws, 5000);
      g_assert_cmpstr (pubsub_test_frame_get_string (error, "type", NULL), ==, "error");
      g_assert_cmpstr (pubsub_test_frame_get_string (error, "error", "code"), ==, "BAD_REQUEST");
      g_assert_nonnull (strstr (pubsub_test_frame_get_string (error, "error", "message"), "since"));
    }
  /* Nothing was subscribed. */
  g_assert_cmpint (pubsub_test_topic_subscribers (server, "t", NULL), ==, 0);
}

/* The same id twice: one event, the same seq in both acks, duplicate:true
 * on the second; once it has left the history it is a new message. */
static void
test_idempotent_publish (void)
{
  g_autoptr(PubsubTestServer) server = pubsub_test_server_start ("--history-size", "2", NULL);
  g_autoptr(PubsubTestWs) publisher = pubsub_test_ws_connect (server, NULL, NULL);
  g_autoptr(PubsubTestWs) reader = pubsub_test_ws_connect (server, NULL, NULL);
  g_autoptr(PubsubTestFrame) sub = NULL;
  g_autoptr(PubsubTestFrame) first = NULL;
  g_autoptr(PubsubTestFrame) second = NULL;
  g_autoptr(PubsubTestFrame) third = NULL;
  g_autofree char *id = pubsub_test_uuid ();
  const char *epoch;

  pubsub_test_create_topic (server, "t", NULL);
  sub = subscribe (reader, "t", NULL, 0);
  epoch = pubsub_test_frame_get_string (sub, "epoch", NULL);

  first = publish (publisher, "t", id, 1);
  g_assert_cmpuint (frame_uint (first, "seq"), ==, 1);
  g_assert_false (pubsub_test_frame_has_member (first, "duplicate"));
  second = publish (publisher, "t", id, 1);
  g_assert_cmpuint (frame_uint (second, "seq"), ==, 1);
  g_assert_true (frame_bool (second, "duplicate"));
  expect_events (reader, epoch, 1, 1);
  pubsub_test_ws_assert_quiet (reader);

  publish_range (publisher, "t", 2, 3);
  expect_events (reader, epoch, 2, 3);
  /* Seq 1 is no longer stored (history 2): the id is new again. */
  third = publish (publisher, "t", id, 4);
  g_assert_cmpuint (frame_uint (third, "seq"), ==, 4);
  g_assert_false (pubsub_test_frame_has_member (third, "duplicate"));
  expect_events (reader, epoch, 4, 4);
  pubsub_test_ws_assert_quiet (reader);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  pubsub_test_quiet_debug ();

  g_test_add_func ("/recovery/subscribe-ack", test_subscribe_ack);
  g_test_add_func ("/recovery/gap-inside-history", test_gap_inside_history);
  g_test_add_func ("/recovery/fallbacks", test_fallbacks);
  g_test_add_func ("/recovery/new-epoch", test_new_epoch);
  g_test_add_func ("/recovery/since-bad-shapes", test_since_bad_shapes);
  g_test_add_func ("/recovery/idempotent-publish", test_idempotent_publish);

  return g_test_run ();
}
