/* test-counters.c: the metrics' arithmetic, in-process (src/server/pubsub-metrics.c,
 * the stamps of src/server/pubsub-frame-queue.c)
 *
 * - histogram buckets: every boundary of the powers of two, the +Inf
 *   overflow, the sum;
 * - the frame queue counts an event when its last byte is consumed, never
 *   before, with now - stamp as its latency; replayed events apart; other
 *   frames not at all;
 * - the text: bucket bounds in exact decimal seconds, the sum in seconds,
 *   deleted topics kept in the published total, HELP and TYPE lines.
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <string.h>

#include "pubsub-broker.h"
#include "pubsub-frame-queue.h"
#include "pubsub-metrics.h"
#include "pubsub-protocol.h"
#include "pubsub-test-model.h"

static void
test_bucket (void)
{
  static const struct {
    guint64 value;
    guint   bucket;
  } rows[] = {
    { 0, 0 }, { 1, 0 }, { 2, 1 }, { 3, 2 }, { 4, 2 }, { 5, 3 }, { 8, 3 }, { 9, 4 },
    { 1023, 10 }, { 1024, 10 }, { 1025, 11 },
    { G_GUINT64_CONSTANT (1) << 40, 40 }, { (G_GUINT64_CONSTANT (1) << 40) + 1, 41 },
    { G_MAXUINT64, 64 },
  };

  for (guint i = 0; i < G_N_ELEMENTS (rows); i++)
    {
      g_test_message ("value %" G_GUINT64_FORMAT, rows[i].value);
      g_assert_cmpuint (pubsub_histogram_bucket (rows[i].value), ==, rows[i].bucket);
    }
}

static void
test_histogram (void)
{
  PubsubHistogram histogram;

  pubsub_histogram_init (&histogram, 4);   /* le 1, 2, 4, 8, then +Inf */
  pubsub_histogram_observe (&histogram, 0);
  pubsub_histogram_observe (&histogram, 1);
  pubsub_histogram_observe (&histogram, 2);
  pubsub_histogram_observe (&histogram, 3);
  pubsub_histogram_observe (&histogram, 8);
  pubsub_histogram_observe (&histogram, 9);
  pubsub_histogram_observe (&histogram, 1000000);

  g_assert_cmpuint (histogram.counts[0], ==, 2);
  g_assert_cmpuint (histogram.counts[1], ==, 1);
  g_assert_cmpuint (histogram.counts[2], ==, 1);
  g_assert_cmpuint (histogram.counts[3], ==, 1);
  g_assert_cmpuint (histogram.counts[4], ==, 2);   /* +Inf */
  g_assert_cmpuint (histogram.counts[5], ==, 0);
  g_assert_cmpuint (histogram.sum, ==, 0 + 1 + 2 + 3 + 8 + 9 + 1000000);
  g_assert_cmpuint (pubsub_histogram_get_count (&histogram), ==, 7);
}

static GBytes *
frame_of (gsize size)
{
  return g_bytes_new_take (g_strnfill (size, 'x'), size);
}

static void
test_queue_stamps (void)
{
  g_autoptr(GBytes) event = frame_of (10);
  g_autoptr(GBytes) replayed = frame_of (5);
  g_autoptr(GBytes) ack = frame_of (3);
  PubsubCounters counters;
  PubsubFrameQueue queue;

  pubsub_counters_init (&counters);
  pubsub_frame_queue_init (&queue);
  pubsub_frame_queue_push_stamped (&queue, event, 1000);
  pubsub_frame_queue_push_stamped (&queue, replayed, PUBSUB_FRAME_REPLAYED);
  pubsub_frame_queue_push (&queue, ack);
  pubsub_frame_queue_push_stamped (&queue, event, 1500);

  /* Part of the event: not delivered yet. */
  pubsub_frame_queue_consume_timed (&queue, 9, 2000, &counters);
  g_assert_cmpuint (pubsub_histogram_get_count (&counters.latency), ==, 0);

  /* Its last byte: delivered at the time of this write, 1,500 µs late. */
  pubsub_frame_queue_consume_timed (&queue, 1, 2500, &counters);
  g_assert_cmpuint (pubsub_histogram_get_count (&counters.latency), ==, 1);
  g_assert_cmpuint (counters.latency.sum, ==, 1500);
  g_assert_cmpuint (counters.latency.counts[pubsub_histogram_bucket (1500)], ==, 1);

  /* The replayed event and the ack: one replay, no latency. */
  pubsub_frame_queue_consume_timed (&queue, 5 + 3, 3000, &counters);
  g_assert_cmpuint (counters.replayed, ==, 1);
  g_assert_cmpuint (pubsub_histogram_get_count (&counters.latency), ==, 1);

  /* Without counters (as before): consumed, counted nowhere. */
  pubsub_frame_queue_consume (&queue, 10);
  g_assert_cmpuint (pubsub_frame_queue_length (&queue), ==, 0);
  g_assert_cmpuint (pubsub_histogram_get_count (&counters.latency), ==, 1);

  /* A clock read before the stamp (cannot happen) counts as 0, not 2^64. */
  pubsub_frame_queue_push_stamped (&queue, event, 5000);
  pubsub_frame_queue_consume_timed (&queue, 10, 4000, &counters);
  g_assert_cmpuint (counters.latency.counts[0], ==, 1);
  g_assert_cmpuint (counters.latency.sum, ==, 1500);

  pubsub_frame_queue_clear (&queue);
}

/* The line of @text that starts with @prefix, without its newline. */
static char *
line_of (const char *text,
         const char *prefix)
{
  g_auto(GStrv) lines = g_strsplit (text, "\n", -1);

  for (guint i = 0; lines[i] != NULL; i++)
    if (g_str_has_prefix (lines[i], prefix))
      return g_strdup (lines[i]);
  return NULL;
}

static void
assert_line (const char *text,
             const char *expected)
{
  const char *space = strrchr (expected, ' ');
  g_autofree char *prefix = g_strndup (expected, (gsize) (space - expected + 1));
  g_autofree char *line = line_of (text, prefix);

  g_assert_cmpstr (line, ==, expected);
}

static void
publish (PubsubBroker *broker,
         const char   *topic)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(PubsubMessage) message = NULL;
  g_autofree char *id = g_uuid_string_random ();

  message = pubsub_test_broker_publish (broker, topic, id, "1", 1, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (message);
}

static void
test_render (void)
{
  g_autoptr(PubsubBroker) broker = pubsub_broker_new (NULL, pubsub_frame_new_event, 10, 10);
  g_autoptr(PubsubMetrics) metrics = pubsub_metrics_new (broker);
  PubsubCounters *counters = pubsub_metrics_get_counters (metrics);
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;
  gsize len;

  g_assert_nonnull (pubsub_test_broker_create (broker, "a", &error));
  g_assert_nonnull (pubsub_test_broker_create (broker, "b", &error));
  for (guint i = 0; i < 3; i++)
    publish (broker, "a");
  publish (broker, "b");
  g_assert_true (pubsub_test_broker_delete (broker, "a", &error));

  pubsub_histogram_observe (&counters->latency, 1024);
  pubsub_histogram_observe (&counters->latency, 3);
  pubsub_histogram_observe (&counters->latency, 30000000);   /* past 16.8 s */
  pubsub_histogram_observe (&counters->queue_depth, 7);
  counters->sent_bytes = 12345;
  pubsub_metrics_count_refusal (metrics, PUBSUB_REFUSAL_UNAUTHORIZED);
  pubsub_metrics_count_refusal (metrics, PUBSUB_REFUSAL_UNAUTHORIZED);

  text = pubsub_metrics_render (metrics, 2, &len);
  g_assert_cmpuint (strlen (text), ==, len);

  /* The deleted topic's 3 stay in the total; its series are gone. */
  assert_line (text, "pubsub_messages_published_total 4");
  assert_line (text, "pubsub_topic_messages_published_total{topic=\"b\"} 1");
  g_assert_null (line_of (text, "pubsub_topic_messages_published_total{topic=\"a\"}"));
  assert_line (text, "pubsub_topics 1");
  assert_line (text, "pubsub_sent_bytes_total 12345");
  assert_line (text, "pubsub_connections{type=\"websocket\"} 2");
  /* Nothing tracked: no http connection, and never below zero. */
  assert_line (text, "pubsub_connections{type=\"http\"} 0");
  assert_line (text, "pubsub_connections_refused_total{reason=\"unauthorized\"} 2");
  assert_line (text, "pubsub_connections_refused_total{reason=\"max_connections\"} 0");

  /* Bounds in exact decimal seconds, cumulative counts. */
  assert_line (text, "pubsub_delivery_latency_seconds_bucket{le=\"0.000001\"} 0");
  assert_line (text, "pubsub_delivery_latency_seconds_bucket{le=\"0.000004\"} 1");
  assert_line (text, "pubsub_delivery_latency_seconds_bucket{le=\"0.001024\"} 2");
  assert_line (text, "pubsub_delivery_latency_seconds_bucket{le=\"16.777216\"} 2");
  assert_line (text, "pubsub_delivery_latency_seconds_bucket{le=\"+Inf\"} 3");
  assert_line (text, "pubsub_delivery_latency_seconds_sum 30.001027");
  assert_line (text, "pubsub_delivery_latency_seconds_count 3");
  assert_line (text, "pubsub_events_delivered_total 3");
  assert_line (text, "pubsub_queue_depth_bucket{le=\"4\"} 0");
  assert_line (text, "pubsub_queue_depth_bucket{le=\"8\"} 1");
  assert_line (text, "pubsub_queue_depth_bucket{le=\"65536\"} 1");
  assert_line (text, "pubsub_queue_depth_sum 7");

  /* Every family has its HELP and TYPE, right before its samples. */
  g_assert_nonnull (strstr (text, "# HELP pubsub_delivery_latency_seconds "));
  g_assert_nonnull (strstr (text, "\n# TYPE pubsub_delivery_latency_seconds histogram\n"
                                  "pubsub_delivery_latency_seconds_bucket{le=\"0.000001\"} 0\n"));
  g_assert_nonnull (strstr (text, "\n# TYPE process_resident_memory_bytes gauge\n"
                                  "process_resident_memory_bytes "));
  g_assert_true (g_str_has_suffix (text, "\n"));
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/counters/bucket", test_bucket);
  g_test_add_func ("/counters/histogram", test_histogram);
  g_test_add_func ("/counters/queue-stamps", test_queue_stamps);
  g_test_add_func ("/counters/render", test_render);

  return g_test_run ();
}
