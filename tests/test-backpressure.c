/* test-backpressure.c: slow consumers (SPEC §2, Backpressure)
 *
 * A slow consumer is a raw socket with a small receive buffer that does the
 * upgrade by hand, subscribes, and then stops reading. Next to it, a libsoup
 * client that reads everything and a publisher. The slow one must be cut
 * (SLOW_CONSUMER, close 1008) without delaying the others, and the daemon's
 * memory must stay bounded meanwhile.
 *
 * SPDX-License-Identifier: MIT
 */
#include <string.h>

#include "pubsub-test-util.h"

#define PAYLOAD_BYTES (16 * 1024)
#define QUEUE_SIZE 50

/* Under AddressSanitizer (the daemon is built like this test), freed memory
 * sits in a quarantine of up to 256 MB before reuse, so RSS would measure
 * the quarantine: these daemons get none. (Valgrind is handled by
 * pubsub_test_server_get_memory_kib().) */
static PubsubTestServer *
start_server (const char * const *args)
{
#if defined(__SANITIZE_ADDRESS__)
  const char *inherited = g_getenv ("ASAN_OPTIONS");
  g_autofree char *asan = g_strdup_printf ("ASAN_OPTIONS=%s%squarantine_size_mb=0",
                                           inherited != NULL ? inherited : "",
                                           inherited != NULL && *inherited != '\0' ? ":" : "");
  const char *env[] = { asan, NULL };

  return pubsub_test_server_start_full (PUBSUB_TEST_SERVER_DEFAULT, env, args);
#else
  return pubsub_test_server_start_full (PUBSUB_TEST_SERVER_DEFAULT, NULL, args);
#endif
}

typedef struct {
  guint    acked;        /* the publisher's acks */
  gint64   next;         /* the reader's next expected event */
  guint    received;     /* the reader's events */
  gboolean expect_ack;   /* the reader's next frame is its subscribe's ack */
} Counters;

static void
on_reader_frame (PubsubTestFrame *frame,
                 gpointer         user_data)
{
  Counters *counters = user_data;

  if (counters->expect_ack)
    {
      /* The ack comes before the replay. */
      if (g_strcmp0 (pubsub_test_frame_type (frame), "ack") != 0)
        g_error ("the reading subscriber expected its ack, got: %.200s", frame->text);
      counters->expect_ack = FALSE;
      return;
    }
  if (g_strcmp0 (pubsub_test_frame_type (frame), "event") != 0)
    g_error ("the reading subscriber got: %.200s", frame->text);
  if (pubsub_test_event_sequence (frame) != counters->next)
    g_error ("the reading subscriber expected event %" G_GINT64_FORMAT ", got %" G_GINT64_FORMAT,
             counters->next, pubsub_test_event_sequence (frame));
  counters->next++;
  counters->received++;
}

/* What a raw client read, checked: events 1..k in order, then possibly the
 * SLOW_CONSUMER error, then possibly the 1008 close. Returns k. */
static guint
check_slow_consumer_frames (PubsubTestRawWs *raw,
                            gboolean        *out_saw_error)
{
  guint events = 0;
  gboolean saw_error = FALSE;
  gboolean saw_close = FALSE;

  for (GList *l = raw->frames.head; l != NULL; l = l->next)
    {
      PubsubTestRawFrame *frame = l->data;
      gsize len;
      const char *data = g_bytes_get_data (frame->payload, &len);
      g_autofree char *text = g_strndup (data, len);

      g_assert_false (saw_close);   /* nothing after the close frame */
      if (frame->opcode == 0x8)
        {
          saw_close = TRUE;
          continue;
        }
      g_assert_cmpuint (frame->opcode, ==, 0x1);
      g_assert_false (saw_error);   /* nothing but the close after the error */
      if (strstr (text, "\"type\":\"ack\"") != NULL && events == 0)
        continue;                   /* the subscribe's ack */
      if (strstr (text, "\"type\":\"error\"") != NULL)
        {
          g_assert_nonnull (strstr (text, "\"code\":\"SLOW_CONSUMER\""));
          saw_error = TRUE;
          continue;
        }
      {
        g_autofree char *expected = g_strdup_printf ("\"payload\":{\"n\":%u,", events + 1);

        if (strstr (text, "\"type\":\"event\"") == NULL || strstr (text, expected) == NULL)
          g_error ("the slow consumer expected event %u, got: %.200s", events + 1, text);
      }
      events++;
    }
  if (saw_close)
    {
      g_assert_true (saw_error);
      g_assert_cmpuint (raw->close_code, ==, 1008);
      g_assert_cmpstr (raw->close_reason, ==, "SLOW_CONSUMER");
    }
  *out_saw_error = saw_error;
  return events;
}

static void
test_slow_consumer (void)
{
  g_autofree char *queue_size = g_strdup_printf ("%u", QUEUE_SIZE);
  const char *args[] = { "--queue-size", queue_size, NULL };
  PubsubTestServer *server = start_server (args);
  g_autoptr(PubsubTestWs) publisher = pubsub_test_ws_connect (server, NULL, NULL);
  g_autoptr(PubsubTestWs) reader = pubsub_test_ws_connect (server, NULL, NULL);
  g_autoptr(PubsubTestRawWs) slow = pubsub_test_raw_ws_connect (server, "/ws", 4096, NULL);
  g_autofree char *padding = g_strnfill (PAYLOAD_BYTES, 'x');
  Counters counters = { 0, 1, 0, FALSE };
  guint total = 2000;
  guint window = 20;
  guint sent = 0;
  guint64 rss_before;
  guint64 rss_max;
  guint64 bound_kib;
  gint64 last_poll_with_slow = 0;
  gint64 cut_seen_at = 0;
  gint64 cut_window = 0;
  guint next_poll = 50;
  guint slow_events;
  gboolean saw_error = FALSE;

  g_assert_nonnull (slow);
  pubsub_test_create_topic (server, "firehose", NULL);
  pubsub_test_raw_ws_send_text (slow, "{\"type\":\"subscribe\",\"topic\":\"firehose\","
                                      "\"client_id\":\"slow\"}");
  pubsub_test_ws_subscribe (reader, "firehose", 0);
  pubsub_test_wait_for (pubsub_test_topic_subscribers (server, "firehose", NULL) == 2, 5000);

  publisher->keep_frames = FALSE;
  publisher->on_frame = pubsub_test_ws_count_ack;
  publisher->on_frame_data = &counters.acked;
  reader->keep_frames = FALSE;
  reader->on_frame = on_reader_frame;
  reader->on_frame_data = &counters;

  rss_before = rss_max = pubsub_test_server_get_memory_kib (server);
  last_poll_with_slow = g_get_monotonic_time ();
  while (sent < total)
    {
      /* The publisher stays a small window ahead of its acks and of the
       * reader; the slow consumer holds nobody back. */
      while (sent < total && sent < MIN (counters.acked, counters.received) + window)
        pubsub_test_ws_send_publish (publisher, "firehose", ++sent, padding);
      pubsub_test_iterate ();

      if (sent < next_poll)
        continue;
      next_poll += 50;
      rss_max = MAX (rss_max, pubsub_test_server_get_memory_kib (server));
      if (cut_seen_at != 0)
        continue;
      if (pubsub_test_topic_subscribers (server, "firehose", NULL) == 1)
        {
          /* Cut, some time since the last poll that still saw it: read what
           * the server kept for it. */
          cut_seen_at = g_get_monotonic_time ();
          cut_window = cut_seen_at - last_poll_with_slow;
          g_test_message ("the slow consumer was cut by message %u", sent);
          pubsub_test_raw_ws_start_reading (slow);
        }
      else
        last_poll_with_slow = g_get_monotonic_time ();
    }
  pubsub_test_wait_for (counters.acked == total, 30000);
  pubsub_test_wait_for (counters.received == total, 30000);
  rss_max = MAX (rss_max, pubsub_test_server_get_memory_kib (server));

  /* The others never noticed. */
  g_assert_false (reader->closed);
  g_assert_false (publisher->closed);
  g_assert_cmpint (counters.next, ==, total + 1);
  g_assert_cmpint (pubsub_test_topic_subscribers (server, "firehose", NULL), ==, 1);

  /* The slow one was cut, and its connection goes away. */
  g_assert_cmpint (cut_seen_at, !=, 0);
  pubsub_test_wait_for (slow->eof, 15000);
  slow_events = check_slow_consumer_frames (slow, &saw_error);
  g_test_message ("the slow consumer read %u events (%" G_GUINT64_FORMAT " bytes)%s%s",
                  slow_events, slow->bytes_read,
                  saw_error ? ", the SLOW_CONSUMER error" : "",
                  slow->got_close ? " and the 1008 close" : "");
  g_assert_cmpuint (slow_events, <, total);
  /* Reading began within a second of the cut: the spec keeps the TCP
   * connection that long, so the error and the close frame must be there. */
  if (cut_window < G_USEC_PER_SEC)
    {
      g_assert_true (saw_error);
      g_assert_true (slow->got_close);
    }

  /* Memory: the slow consumer's backlog is bounded by queue-size messages
   * (kernel socket buffers are in neither RSS nor the heap). Unbounded, it
   * would be the ~1,700 messages the kernel could not take: ~27 MiB. */
  bound_kib = (guint64) QUEUE_SIZE * PAYLOAD_BYTES * 4 / 1024 + 8 * 1024;
  g_test_message ("daemon memory: %" G_GUINT64_FORMAT " KiB before, %" G_GUINT64_FORMAT
                  " KiB at most (bound: +%" G_GUINT64_FORMAT " KiB)",
                  rss_before, rss_max, bound_kib);
  g_assert_cmpuint (rss_max - rss_before, <, bound_kib);

  publisher->on_frame = NULL;
  reader->on_frame = NULL;
  g_clear_pointer (&publisher, pubsub_test_ws_free);
  g_clear_pointer (&reader, pubsub_test_ws_free);
  g_clear_pointer (&slow, pubsub_test_raw_ws_free);
  pubsub_test_server_stop (server);
  pubsub_test_server_free (server);
}

/* The bound holds for replies too: a client that sends pings and never reads
 * the pongs is cut. */
static void
test_slow_reader_of_replies (void)
{
  const char *args[] = { "--queue-size", "10", NULL };
  PubsubTestServer *server = start_server (args);
  g_autoptr(PubsubTestRawWs) raw = pubsub_test_raw_ws_connect (server, "/ws", 4096, NULL);
  g_autoptr(PubsubTestWs) bystander = pubsub_test_ws_connect (server, NULL, NULL);
  g_autofree char *pad = g_strnfill (8000, 'r');
  guint total = 1500;
  guint pongs = 0;
  gboolean saw_error = FALSE;
  guint64 rss_before = pubsub_test_server_get_memory_kib (server);
  guint64 rss_after;

  g_assert_nonnull (raw);
  /* ~12 MB of pongs asked for; the kernel holds a few MB at most. */
  for (guint i = 0; i < total; i++)
    {
      g_autofree char *ping = g_strdup_printf ("{\"type\":\"ping\",\"request_id\":\"%u-%s\"}",
                                               i, pad);

      pubsub_test_raw_ws_send_text (raw, ping);
    }
  /* The others are served meanwhile. */
  pubsub_test_ws_assert_quiet (bystander);
  rss_after = pubsub_test_server_get_memory_kib (server);

  pubsub_test_raw_ws_start_reading (raw);
  pubsub_test_wait_for (raw->eof, 15000);
  for (GList *l = raw->frames.head; l != NULL; l = l->next)
    {
      PubsubTestRawFrame *frame = l->data;
      gsize len;
      const char *data = g_bytes_get_data (frame->payload, &len);
      g_autofree char *text = g_strndup (data, MIN (len, 200));
      g_autofree char *expected = g_strdup_printf ("\"request_id\":\"%u-", pongs);

      if (frame->opcode == 0x8)
        {
          g_assert_cmpuint (raw->close_code, ==, 1008);
          g_assert_cmpstr (raw->close_reason, ==, "SLOW_CONSUMER");
          g_assert_true (saw_error);
          g_assert_null (l->next);
        }
      else if (strstr (text, "\"type\":\"error\"") != NULL)
        {
          g_assert_nonnull (strstr (text, "\"code\":\"SLOW_CONSUMER\""));
          saw_error = TRUE;
        }
      else
        {
          g_assert_false (saw_error);
          if (strstr (text, "\"type\":\"pong\"") == NULL || strstr (text, expected) == NULL)
            g_error ("expected pong %u, got: %s", pongs, text);
          pongs++;
        }
    }
  g_test_message ("%u of %u pongs were delivered before the cut; memory %" G_GUINT64_FORMAT
                  " -> %" G_GUINT64_FORMAT " KiB", pongs, total, rss_before, rss_after);
  g_assert_cmpuint (pongs, <, total);
  /* The queue holds 10 pongs of 8 KB; unbounded, ~9 MB of them. */
  g_assert_cmpint ((gint64) rss_after - (gint64) rss_before, <, 10 * 8 * 4 + 8 * 1024);
  pubsub_test_ws_assert_quiet (bystander);

  g_clear_pointer (&raw, pubsub_test_raw_ws_free);
  g_clear_pointer (&bystander, pubsub_test_ws_free);
  pubsub_test_server_stop (server);
  pubsub_test_server_free (server);
}

/* A reading client asking for the whole history is never cut, even though
 * the replay is far bigger than queue-size: a message handed to the kernel
 * no longer counts. */
static void
test_full_replay_not_cut (void)
{
  PubsubTestServer *server = pubsub_test_server_start ("--history-size", "500",
                                                       "--queue-size", "10", NULL);
  g_autoptr(PubsubTestWs) publisher = pubsub_test_ws_connect (server, NULL, NULL);
  g_autoptr(PubsubTestWs) reader = NULL;
  Counters counters = { 0, 1, 0, FALSE };
  guint sent = 0;

  pubsub_test_create_topic (server, "history", NULL);
  publisher->keep_frames = FALSE;
  publisher->on_frame = pubsub_test_ws_count_ack;
  publisher->on_frame_data = &counters.acked;
  /* 600 published, 500 kept: 101..600. The publisher itself reads its acks
   * within a window of 5 (queue-size is 10 for it as well). */
  while (sent < 600)
    {
      while (sent < 600 && sent < counters.acked + 5)
        pubsub_test_ws_send_publish (publisher, "history", ++sent, "some payload text");
      pubsub_test_iterate ();
    }
  pubsub_test_wait_for (counters.acked == 600, 10000);

  for (guint round = 0; round < 3; round++)
    {
      reader = pubsub_test_ws_connect (server, NULL, NULL);
      counters.next = 101;
      counters.received = 0;
      counters.expect_ack = TRUE;
      reader->keep_frames = FALSE;
      reader->on_frame = on_reader_frame;
      reader->on_frame_data = &counters;
      pubsub_test_ws_send (reader, "{\"type\":\"subscribe\",\"topic\":\"history\","
                                   "\"client_id\":\"all\",\"last_n\":500}");
      pubsub_test_wait_for (counters.received == 500 || reader->closed, 10000);
      g_assert_false (reader->closed);
      g_assert_false (counters.expect_ack);
      g_assert_cmpint (counters.next, ==, 601);

      /* Still subscribed, and nothing more came. */
      g_assert_cmpint (pubsub_test_topic_subscribers (server, "history", NULL), ==, 1);
      reader->on_frame = NULL;
      reader->keep_frames = TRUE;
      pubsub_test_ws_assert_quiet (reader);
      g_clear_pointer (&reader, pubsub_test_ws_free);
      pubsub_test_wait_for (pubsub_test_topic_subscribers (server, "history", NULL) == 0, 5000);
    }

  publisher->on_frame = NULL;
  g_clear_pointer (&publisher, pubsub_test_ws_free);
  pubsub_test_server_stop (server);
  pubsub_test_server_free (server);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  pubsub_test_quiet_debug ();

  g_test_add_func ("/backpressure/slow-consumer", test_slow_consumer);
  g_test_add_func ("/backpressure/slow-reader-of-replies", test_slow_reader_of_replies);
  g_test_add_func ("/backpressure/full-replay-not-cut", test_full_replay_not_cut);

  return g_test_run ();
}
