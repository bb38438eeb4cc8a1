/* test-lifecycle.c: the process (SPEC §1) and graceful shutdown (SPEC §6)
 *
 * SPDX-License-Identifier: MIT
 */
#include <signal.h>
#include <string.h>

#include "pubsub-test-util.h"

/* stderr without valgrind's own lines ("==PID== …"), when wrapped. */
static char *
own_lines (const char *text)
{
  g_auto(GStrv) lines = g_strsplit (text, "\n", -1);
  GString *out = g_string_new (NULL);

  for (gsize i = 0; lines[i] != NULL; i++)
    if (!g_str_has_prefix (lines[i], "==") && *lines[i] != '\0')
      g_string_append_printf (out, "%s\n", lines[i]);
  return g_string_free (out, FALSE);
}

static void
test_help (void)
{
  const char *options[] = {
    "--listen", "--api-key", "--queue-size", "--history-size", "--heartbeat-interval",
    "--max-message-bytes", "--max-connections", "--max-topics", "--shutdown-grace", "--bus",
    "--config", "--version", "--help",
  };
  const char *args[] = { "--help", NULL };
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  g_autofree char *err_own = NULL;

  g_assert_cmpint (pubsub_test_run (NULL, args, &out, &err), ==, 0);
  g_test_message ("%s", out);
  g_assert_nonnull (strstr (out, "pubsubd"));
  for (gsize i = 0; i < G_N_ELEMENTS (options); i++)
    {
      g_autofree char *needle = g_strconcat (options[i], " ", NULL);
      g_autofree char *needle_eq = g_strconcat (options[i], "=", NULL);

      if (strstr (out, needle) == NULL && strstr (out, needle_eq) == NULL &&
          !g_str_has_suffix (out, options[i]))
        g_test_fail_printf ("--help does not list %s", options[i]);
    }
  err_own = own_lines (err);
  g_assert_cmpstr (err_own, ==, "");
}

static void
test_version (void)
{
  const char *args[] = { "--version", NULL };
  const char *with_others[] = { "--queue-size", "5", "--version", "--bus", "none", NULL };
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  g_autofree char *err_own = NULL;
  g_autofree char *out2 = NULL;

  g_assert_cmpint (pubsub_test_run (NULL, args, &out, &err), ==, 0);
  g_assert_cmpstr (out, ==, "pubsubd " PUBSUB_TEST_VERSION "\n");
  err_own = own_lines (err);
  g_assert_cmpstr (err_own, ==, "");
  /* It does not start the server, whatever else is given. */
  g_assert_cmpint (pubsub_test_run (NULL, with_others, &out2, NULL), ==, 0);
  g_assert_cmpstr (out2, ==, "pubsubd " PUBSUB_TEST_VERSION "\n");
}

/* ---- graceful shutdown -------------------------------------------------- */

static void
send_publish (PubsubTestWs *publisher,
              const char   *topic,
              guint         n,
              gsize         pad_len)
{
  g_autofree char *id = pubsub_test_uuid ();
  g_autofree char *pad = g_strnfill (pad_len, 'p');

  pubsub_test_ws_sendf (publisher,
                        "{\"type\":\"publish\",\"topic\":\"%s\",\"message\":"
                        "{\"id\":\"%s\",\"payload\":{\"n\":%u,\"pad\":\"%s\"}}}",
                        topic, id, n, pad);
}

static guint
count_acks (PubsubTestWs *ws)
{
  guint acks = 0;

  for (GList *l = ws->frames.head; l != NULL; l = l->next)
    if (g_strcmp0 (pubsub_test_frame_type (l->data), "ack") == 0)
      acks++;
  return acks;
}

/* Clients on open connections, some subscribed with events in flight: on
 * the signal each gets everything queued, then close code 1001, and the
 * daemon exits 0 long before shutdown-grace. */
static void
test_shutdown_clean (gconstpointer data)
{
  int signum = GPOINTER_TO_INT (data);
  PubsubTestServer *server = pubsub_test_server_start ("--shutdown-grace", "20", NULL);
  g_autoptr(PubsubTestWs) one = pubsub_test_ws_connect (server, NULL, NULL);
  g_autoptr(PubsubTestWs) two = pubsub_test_ws_connect (server, NULL, NULL);
  g_autoptr(PubsubTestWs) idle = pubsub_test_ws_connect (server, NULL, NULL);
  g_autoptr(PubsubTestWs) publisher = pubsub_test_ws_connect (server, NULL, NULL);
  PubsubTestWs *clients[4];
  PubsubTestSequence seq_one = { 1, 0 };
  PubsubTestSequence seq_two = { 1, 0 };
  guint in_flight = 30;
  gint64 signalled;
  gint64 took;

  pubsub_test_create_topic (server, "t1", NULL);
  pubsub_test_create_topic (server, "t2", NULL);
  pubsub_test_ws_subscribe (one, "t1", 0);
  pubsub_test_ws_subscribe (two, "t1", 0);
  pubsub_test_ws_subscribe (two, "t2", 0);
  one->keep_frames = two->keep_frames = FALSE;
  /* Flushed in order, with no gap, up to the close: checked as they come. */
  one->on_frame = pubsub_test_ws_check_sequence;
  one->on_frame_data = &seq_one;
  two->on_frame = pubsub_test_ws_check_sequence;
  two->on_frame_data = &seq_two;

  /* 20 acknowledged events, then 30 more sent right before the signal. */
  for (guint i = 1; i <= 20; i++)
    send_publish (publisher, "t1", i, 1000);
  pubsub_test_wait_for (count_acks (publisher) == 20, 5000);
  for (guint i = 21; i < 21 + in_flight; i++)
    send_publish (publisher, "t1", i, 1000);
  signalled = g_get_monotonic_time ();
  pubsub_test_server_signal (server, signum);

  clients[0] = one;
  clients[1] = two;
  clients[2] = idle;
  clients[3] = publisher;
  for (guint i = 0; i < G_N_ELEMENTS (clients); i++)
    {
      pubsub_test_ws_wait_closed (clients[i], 5000);
      g_assert_cmpuint (clients[i]->close_code, ==, 1001);
    }
  pubsub_test_server_wait_exit (server, 10000);
  took = g_get_monotonic_time () - signalled;
  g_test_message ("exited %" G_GINT64_FORMAT " ms after the signal; the subscribers got %u "
                  "and %u events", took / 1000, seq_one.received, seq_two.received);
  pubsub_test_server_stop (server);   /* asserts exit status 0 */
  g_assert_cmpint (took, <, (gint64) 5 * G_USEC_PER_SEC * pubsub_test_timeout_scale ());
  g_assert_nonnull (strstr (server->log->str, "shutting down"));

  /* Everything acknowledged before the signal was delivered before the close
   * (and of the rest, what came came in order: checked as it came). */
  g_assert_cmpuint (seq_one.received, >=, 20);
  g_assert_cmpuint (seq_two.received, >=, 20);
  g_assert_cmpuint (seq_one.received, <=, 20 + in_flight);
  g_assert_cmpuint (seq_two.received, <=, 20 + in_flight);

  one->on_frame = two->on_frame = NULL;
  g_clear_pointer (&one, pubsub_test_ws_free);
  g_clear_pointer (&two, pubsub_test_ws_free);
  g_clear_pointer (&idle, pubsub_test_ws_free);
  g_clear_pointer (&publisher, pubsub_test_ws_free);
  pubsub_test_server_free (server);
}

/* A subscriber that never reads holds a backlog that cannot be flushed: the
 * daemon waits shutdown-grace seconds for it, no more, and exits 0; the
 * others are closed with 1001 at once. Meanwhile nothing new is accepted. */
static void
test_shutdown_grace (gconstpointer data)
{
  int signum = GPOINTER_TO_INT (data);
  PubsubTestServer *server = pubsub_test_server_start ("--shutdown-grace", "2", NULL);
  g_autoptr(PubsubTestRawWs) stalled = pubsub_test_raw_ws_connect (server, "/ws", 4096, NULL);
  g_autoptr(PubsubTestWs) reader = pubsub_test_ws_connect (server, NULL, NULL);
  g_autoptr(PubsubTestWs) publisher = pubsub_test_ws_connect (server, NULL, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(PubsubTestResponse) refused = NULL;
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GSocketConnection) connection = NULL;
  PubsubTestSequence seq = { 1, 0 };
  gint64 signalled;
  gint64 took;
  guint total = 100;

  g_assert_nonnull (stalled);
  pubsub_test_create_topic (server, "big", NULL);
  pubsub_test_raw_ws_send_text (stalled, "{\"type\":\"subscribe\",\"topic\":\"big\","
                                         "\"client_id\":\"stalled\"}");
  pubsub_test_ws_subscribe (reader, "big", 0);
  pubsub_test_wait_for (pubsub_test_topic_subscribers (server, "big", NULL) == 2, 5000);
  reader->keep_frames = FALSE;
  reader->on_frame = pubsub_test_ws_check_sequence;
  reader->on_frame_data = &seq;

  /* ~6 MB: more than the kernel holds for the stalled one, less than its
   * queue (100 frames of 60 KiB). */
  for (guint i = 1; i <= total; i++)
    send_publish (publisher, "big", i, 60 * 1024);
  pubsub_test_wait_for (count_acks (publisher) == total && seq.received == total, 20000);
  g_assert_cmpint (pubsub_test_topic_subscribers (server, "big", NULL), ==, 2);

  signalled = g_get_monotonic_time ();
  pubsub_test_server_signal (server, signum);
  pubsub_test_ws_wait_closed (reader, 5000);
  g_assert_cmpuint (reader->close_code, ==, 1001);
  pubsub_test_ws_wait_closed (publisher, 5000);
  g_assert_cmpuint (publisher->close_code, ==, 1001);

  /* Shutting down: new connections are refused, not queued. */
  pubsub_test_server_wait_for_log (server, "shutting down", 5000);
  g_assert_false (server->exited);
  connection = g_socket_client_connect_to_host (client, server->http_base + strlen ("http://"),
                                                0, NULL, &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED);
  g_assert_null (connection);
  g_clear_error (&error);
  refused = pubsub_test_request_full (server, "GET", "/health", NULL, FALSE, NULL, &error);
  g_assert_null (refused);
  g_assert_nonnull (error);
  g_test_message ("a request during shutdown: %s", error->message);
  g_assert_false (server->exited);

  pubsub_test_server_wait_exit (server, 10000);
  took = g_get_monotonic_time () - signalled;
  g_test_message ("exited %" G_GINT64_FORMAT " ms after the signal", took / 1000);
  pubsub_test_server_stop (server);   /* asserts exit status 0 */
  /* It waited for the stalled one, up to the grace period and not much
   * longer. */
  g_assert_cmpint (took, >=, (gint64) 1500 * 1000);
  g_assert_cmpint (took, <, (gint64) (2 + 3 * pubsub_test_timeout_scale ()) * G_USEC_PER_SEC);

  /* The stalled one finds its connection gone once it reads. */
  pubsub_test_raw_ws_start_reading (stalled);
  pubsub_test_wait_for (stalled->eof, 10000);

  reader->on_frame = NULL;
  g_clear_pointer (&reader, pubsub_test_ws_free);
  g_clear_pointer (&publisher, pubsub_test_ws_free);
  g_clear_pointer (&stalled, pubsub_test_raw_ws_free);
  pubsub_test_server_free (server);
}

/* A second signal does not wait for the grace period. */
static void
test_shutdown_second_signal (void)
{
  PubsubTestServer *server = pubsub_test_server_start ("--shutdown-grace", "600", NULL);
  g_autoptr(PubsubTestRawWs) stalled = pubsub_test_raw_ws_connect (server, "/ws", 4096, NULL);
  g_autoptr(PubsubTestWs) publisher = pubsub_test_ws_connect (server, NULL, NULL);
  gint64 signalled;

  g_assert_nonnull (stalled);
  pubsub_test_create_topic (server, "big", NULL);
  pubsub_test_raw_ws_send_text (stalled, "{\"type\":\"subscribe\",\"topic\":\"big\","
                                         "\"client_id\":\"stalled\"}");
  pubsub_test_wait_for (pubsub_test_topic_subscribers (server, "big", NULL) == 1, 5000);
  for (guint i = 1; i <= 100; i++)
    send_publish (publisher, "big", i, 60 * 1024);
  pubsub_test_wait_for (count_acks (publisher) == 100, 20000);

  pubsub_test_server_signal (server, SIGTERM);
  pubsub_test_server_wait_for_log (server, "shutting down", 5000);
  pubsub_test_ws_wait_closed (publisher, 5000);
  g_assert_false (server->exited);
  signalled = g_get_monotonic_time ();
  pubsub_test_server_signal (server, SIGINT);
  pubsub_test_server_wait_exit (server, 10000);
  pubsub_test_server_stop (server);
  g_assert_cmpint (g_get_monotonic_time () - signalled, <,
                   (gint64) 5 * G_USEC_PER_SEC * pubsub_test_timeout_scale ());

  g_clear_pointer (&publisher, pubsub_test_ws_free);
  g_clear_pointer (&stalled, pubsub_test_raw_ws_free);
  pubsub_test_server_free (server);
}

/* With nothing open, the daemon exits at once. */
static void
test_shutdown_idle (void)
{
  PubsubTestServer *server = pubsub_test_server_start (NULL);
  gint64 start;

  /* (Serving: past start-up, see /lifecycle/shutdown/right-after-start.) */
  g_assert_cmpuint (pubsub_test_http (server, "GET", "/health", NULL, NULL, NULL), ==, 200);
  start = g_get_monotonic_time ();
  pubsub_test_server_stop (server);
  g_assert_cmpint (g_get_monotonic_time () - start, <,
                   (gint64) 3 * G_USEC_PER_SEC * pubsub_test_timeout_scale ());
  pubsub_test_server_free (server);
}

/* A supervisor may stop the daemon the moment it says it listens: that must
 * be the same graceful exit 0, not death by the signal. */
static void
test_shutdown_right_after_start (void)
{
  guint rounds = pubsub_test_scale_count (300, 10);

  for (guint i = 0; i < rounds; i++)
    {
      PubsubTestServer *server = pubsub_test_server_start (NULL);

      pubsub_test_server_stop (server);   /* SIGTERM now, then checks exit status 0 */
      pubsub_test_server_free (server);
      if (g_test_failed ())
        {
          g_test_message ("round %u of %u", i + 1, rounds);
          break;
        }
    }
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  pubsub_test_quiet_debug ();

  g_test_add_func ("/lifecycle/help", test_help);
  g_test_add_func ("/lifecycle/version", test_version);
  g_test_add_func ("/lifecycle/shutdown/idle", test_shutdown_idle);
  g_test_add_data_func ("/lifecycle/shutdown/clean/sigterm", GINT_TO_POINTER (SIGTERM),
                        test_shutdown_clean);
  g_test_add_data_func ("/lifecycle/shutdown/clean/sigint", GINT_TO_POINTER (SIGINT),
                        test_shutdown_clean);
  g_test_add_data_func ("/lifecycle/shutdown/grace/sigterm", GINT_TO_POINTER (SIGTERM),
                        test_shutdown_grace);
  g_test_add_data_func ("/lifecycle/shutdown/grace/sigint", GINT_TO_POINTER (SIGINT),
                        test_shutdown_grace);
  g_test_add_func ("/lifecycle/shutdown/second-signal", test_shutdown_second_signal);
  g_test_add_func ("/lifecycle/shutdown/right-after-start", test_shutdown_right_after_start);

  return g_test_run ();
}
