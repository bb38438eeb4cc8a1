/* test-metrics.c: GET /metrics (SPEC §10) against the real pubsubd
 *
 * Every scrape is read by real parsers: Prometheus's own client library for
 * Python (prometheus_client.parser, as $PUBSUB_TEST_PYTHON) turns the text
 * into samples that the checks below look up, and promtool (`promtool check
 * metrics`, as $PROMTOOL when the build found it) lints it: HELP and TYPE
 * for every family, counter and unit naming.
 *
 * The values are checked against traffic the test makes itself: N publishes
 * to M subscribers are N published and N×M delivered, with as many latency
 * observations; a replay counts apart; a slow consumer cut is counted; every
 * refusal is counted by reason; the api-key is taken as X-API-Key or as a
 * bearer token.
 *
 * SPDX-License-Identifier: MIT
 */
#include <string.h>

#include "pubsub-test-util.h"

/* Reads the exposition on stdin, writes its samples as JSON: the parser
 * raises on anything that is not the text format. */
static const char parse_script[] =
  "import json, sys\n"
  "from prometheus_client.parser import text_string_to_metric_families\n"
  "samples = []\n"
  "for family in text_string_to_metric_families(sys.stdin.read()):\n"
  "    for sample in family.samples:\n"
  "        samples.append({'family': family.name, 'type': family.type,\n"
  "                        'help': family.documentation, 'name': sample.name,\n"
  "                        'labels': sample.labels, 'value': sample.value})\n"
  "json.dump(samples, sys.stdout)\n";

/* ---- scraping ---------------------------------------------------------- */

typedef struct {
  gboolean done;
  GBytes  *body;
  GError  *error;
} Fetch;

static void
on_fetched (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  Fetch *fetch = user_data;

  fetch->body = soup_session_send_and_read_finish (SOUP_SESSION (source), result, &fetch->error);
  fetch->done = TRUE;
}

/* GET /metrics with the given header pairs; returns the body, NUL-ended. */
static char *
scrape_full (PubsubTestServer   *server,
             const char * const *headers,
             guint              *out_status,
             char              **out_content_type)
{
  g_autoptr(SoupSession) session = soup_session_new ();
  g_autofree char *url = g_strconcat (server->http_base, "/metrics", NULL);
  g_autoptr(SoupMessage) msg = soup_message_new ("GET", url);
  Fetch fetch = { FALSE, };
  gsize len;
  const char *data;

  for (gsize i = 0; headers != NULL && headers[i] != NULL; i += 2)
    soup_message_headers_append (soup_message_get_request_headers (msg), headers[i],
                                 headers[i + 1]);
  soup_session_send_and_read_async (session, msg, G_PRIORITY_DEFAULT, NULL, on_fetched, &fetch);
  pubsub_test_wait_flag (&fetch.done, 20000, "the /metrics response");
  g_assert_no_error (fetch.error);
  if (out_status != NULL)
    *out_status = soup_message_get_status (msg);
  if (out_content_type != NULL)
    *out_content_type = g_strdup (soup_message_headers_get_one (soup_message_get_response_headers (msg),
                                                                "Content-Type"));
  data = g_bytes_get_data (fetch.body, &len);
  {
    char *text = g_strndup (data, len);

    g_bytes_unref (fetch.body);
    return text;
  }
}

static char *
scrape_text (PubsubTestServer *server)
{
  guint status = 0;
  char *text = scrape_full (server, NULL, &status, NULL);

  g_assert_cmpuint (status, ==, 200);
  return text;
}

/* A sample's value straight from the text, for waiting on a counter (the
 * checks themselves go through the parsers); -1 if the line is not there. */
static double
quick_value (const char *text,
             const char *series)
{
  gsize series_len = strlen (series);

  for (const char *line = text; line != NULL && *line != '\0'; line = strchr (line, '\n'))
    {
      if (*line == '\n')
        line++;
      if (strncmp (line, series, series_len) == 0 && line[series_len] == ' ')
        return g_ascii_strtod (line + series_len + 1, NULL);
    }
  return -1;
}

static double
scrape_quick (PubsubTestServer *server,
              const char       *series)
{
  g_autofree char *text = scrape_text (server);

  return quick_value (text, series);
}

/* ---- parsing ----------------------------------------------------------- */

typedef struct {
  JsonNode   *root;      /* owned: the parser's samples */
  GHashTable *values;    /* "name{k="v",…}" (labels sorted) → double* */
  GHashTable *types;     /* sample name → family type */
  GHashTable *families;  /* family name → help text */
} Scrape;

static void
scrape_free (Scrape *scrape)
{
  json_node_unref (scrape->root);
  g_hash_table_unref (scrape->values);
  g_hash_table_unref (scrape->types);
  g_hash_table_unref (scrape->families);
  g_free (scrape);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Scrape, scrape_free)

static char *
series_key (const char *name,
            JsonObject *labels)
{
  g_autoptr(GList) names = json_object_get_members (labels);
  GString *key = g_string_new (name);

  names = g_list_sort (names, (GCompareFunc) strcmp);
  if (names != NULL)
    {
      g_string_append_c (key, '{');
      for (GList *l = names; l != NULL; l = l->next)
        g_string_append_printf (key, "%s%s=\"%s\"", l == names ? "" : ",", (char *) l->data,
                                json_object_get_string_member (labels, l->data));
      g_string_append_c (key, '}');
    }
  return g_string_free (key, FALSE);
}

static char *
run_with_input (const char * const *argv,
                const char         *input,
                int                *out_status,
                char              **out_stderr)
{
  g_autoptr(GSubprocess) process = NULL;
  g_autoptr(GError) error = NULL;
  char *output = NULL;

  process = g_subprocess_newv (argv, G_SUBPROCESS_FLAGS_STDIN_PIPE |
                                     G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                     G_SUBPROCESS_FLAGS_STDERR_PIPE, &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (process, input, NULL, &output, out_stderr, &error);
  g_assert_no_error (error);
  *out_status = g_subprocess_get_exit_status (process);
  return output;
}

/* promtool's lint, when the build found it: silence and exit 0. */
static void
lint_with_promtool (const char *text)
{
  const char *promtool = g_getenv ("PROMTOOL");
  const char *argv[] = { promtool, "check", "metrics", NULL };
  g_autofree char *output = NULL;
  g_autofree char *errors = NULL;
  int status;

  if (promtool == NULL || *promtool == '\0')
    {
      g_test_message ("promtool was not found at build time: only prometheus_client read this");
      return;
    }
  output = run_with_input (argv, text, &status, &errors);
  if (status != 0 || *output != '\0' || *errors != '\0')
    g_error ("promtool check metrics (exit %d): %s%s\n---\n%s", status, output, errors, text);
}

/* Parses @text with both parsers; fails the test if either refuses it. */
static Scrape *
parse (const char *text)
{
  const char *argv[] = { g_getenv ("PUBSUB_TEST_PYTHON"), "-c", parse_script, NULL };
  g_autofree char *output = NULL;
  g_autofree char *errors = NULL;
  g_autoptr(GError) error = NULL;
  Scrape *scrape;
  JsonArray *samples;
  int status;

  g_assert_nonnull (argv[0]);
  lint_with_promtool (text);
  output = run_with_input (argv, text, &status, &errors);
  if (status != 0)
    g_error ("prometheus_client refused the exposition (exit %d): %s\n---\n%s", status, errors, text);

  scrape = g_new0 (Scrape, 1);
  scrape->root = json_from_string (output, &error);
  g_assert_no_error (error);
  scrape->values = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  scrape->types = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  scrape->families = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  samples = json_node_get_array (scrape->root);
  for (guint i = 0; i < json_array_get_length (samples); i++)
    {
      JsonObject *sample = json_array_get_object_element (samples, i);
      const char *name = json_object_get_string_member (sample, "name");
      char *key = series_key (name, json_object_get_object_member (sample, "labels"));
      double *value = g_new (double, 1);

      *value = json_object_get_double_member (sample, "value");
      /* Each series once. */
      g_assert_false (g_hash_table_contains (scrape->values, key));
      g_hash_table_insert (scrape->values, key, value);
      g_hash_table_insert (scrape->types, g_strdup (name),
                           g_strdup (json_object_get_string_member (sample, "type")));
      g_hash_table_insert (scrape->families,
                           g_strdup (json_object_get_string_member (sample, "family")),
                           g_strdup (json_object_get_string_member (sample, "help")));
    }
  return scrape;
}

static Scrape *
scrape (PubsubTestServer *server)
{
  g_autofree char *text = scrape_text (server);

  return parse (text);
}

static gboolean
has (Scrape     *scrape,
     const char *series)
{
  return g_hash_table_contains (scrape->values, series);
}

/* The value of a series such as pubsub_topics or
 * pubsub_connections{type="http"} (labels in name order). */
static double
value (Scrape     *scrape,
       const char *series)
{
  double *found = g_hash_table_lookup (scrape->values, series);

  if (found == NULL)
    g_error ("no series %s in the scrape", series);
  return *found;
}

static double
valuef (Scrape     *scrape,
        const char *format,
        ...) G_GNUC_PRINTF (2, 3);

static double
valuef (Scrape     *scrape,
        const char *format,
        ...)
{
  g_autofree char *series = NULL;
  va_list ap;

  va_start (ap, format);
  series = g_strdup_vprintf (format, ap);
  va_end (ap);
  return value (scrape, series);
}

static void
assert_type (Scrape     *scrape,
             const char *sample,
             const char *type)
{
  const char *found = g_hash_table_lookup (scrape->types, sample);

  if (g_strcmp0 (found, type) != 0)
    g_error ("%s: type %s, expected %s", sample, found, type);
}

typedef struct {
  double bound;
  double cumulative;
} Bucket;

static gint
compare_buckets (gconstpointer a,
                 gconstpointer b)
{
  double x = ((const Bucket *) a)->bound;
  double y = ((const Bucket *) b)->bound;

  return x < y ? -1 : x > y;
}

/* A histogram's buckets: cumulative, powers of two of the base unit, +Inf
 * equal to _count. Returns _count. */
static double
check_histogram (Scrape     *scrape,
                 const char *name,
                 double      first_bound)
{
  g_autofree char *prefix = g_strdup_printf ("%s_bucket{le=\"", name);
  g_autofree char *bucket_name = g_strdup_printf ("%s_bucket", name);
  g_autoptr(GArray) buckets = g_array_new (FALSE, FALSE, sizeof (Bucket));
  double count = valuef (scrape, "%s_count", name);
  GHashTableIter iter;
  gpointer key;
  gpointer found;

  assert_type (scrape, bucket_name, "histogram");
  g_assert_cmpfloat (valuef (scrape, "%s_bucket{le=\"+Inf\"}", name), ==, count);
  g_assert_cmpfloat (valuef (scrape, "%s_sum", name), >=, 0);

  g_hash_table_iter_init (&iter, scrape->values);
  while (g_hash_table_iter_next (&iter, &key, &found))
    if (g_str_has_prefix (key, prefix) && strstr (key, "+Inf") == NULL)
      {
        Bucket bucket = { g_ascii_strtod ((char *) key + strlen (prefix), NULL),
                          *(double *) found };

        g_array_append_val (buckets, bucket);
      }
  g_array_sort (buckets, compare_buckets);
  g_assert_cmpuint (buckets->len, >=, 10);
  for (guint i = 0; i < buckets->len; i++)
    {
      Bucket *bucket = &g_array_index (buckets, Bucket, i);

      g_assert_cmpfloat_with_epsilon (bucket->bound, first_bound * (double) (1u << i),
                                      first_bound / 1000);
      if (i > 0)
        g_assert_cmpfloat (bucket->cumulative, >=, g_array_index (buckets, Bucket, i - 1).cumulative);
      g_assert_cmpfloat (bucket->cumulative, <=, count);
    }
  return count;
}

/* ---- tests ------------------------------------------------------------- */

typedef struct {
  const char *sample;
  const char *type;
} Family;

/* Every family SPEC §10 asks for, by a sample name and its type. The first
 * five are what the dashboard reads. */
static const Family families[] = {
  { "pubsub_messages_published_total", "counter" },
  { "pubsub_events_delivered_total", "counter" },
  { "pubsub_connections", "gauge" },
  { "pubsub_slow_consumers_total", "counter" },
  { "pubsub_connections_refused_total", "counter" },
  { "pubsub_events_replayed_total", "counter" },
  { "pubsub_subscriptions", "gauge" },
  { "pubsub_topics", "gauge" },
  { "pubsub_received_bytes_total", "counter" },
  { "pubsub_sent_bytes_total", "counter" },
  { "pubsub_delivery_latency_seconds_bucket", "histogram" },
  { "pubsub_queue_depth_bucket", "histogram" },
  { "process_cpu_seconds_total", "counter" },
  { "process_open_fds", "gauge" },
  { "process_max_fds", "gauge" },
  { "process_virtual_memory_bytes", "gauge" },
  { "process_resident_memory_bytes", "gauge" },
  { "process_start_time_seconds", "gauge" },
};

static const char *const refusal_reasons[] = { "max_connections", "unauthorized", "error" };

static void
test_format (void)
{
  double before = (double) g_get_real_time () / G_USEC_PER_SEC;
  PubsubTestServer *server = pubsub_test_server_start (NULL);
  g_autofree char *content_type = NULL;
  g_autofree char *text = NULL;
  g_autoptr(Scrape) s = NULL;
  GHashTableIter iter;
  gpointer family;
  gpointer help;
  double now;
  guint status = 0;

  text = scrape_full (server, NULL, &status, &content_type);
  now = (double) g_get_real_time () / G_USEC_PER_SEC;
  g_assert_cmpuint (status, ==, 200);
  g_assert_cmpstr (content_type, ==, "text/plain; version=0.0.4; charset=utf-8");
  s = parse (text);

  for (guint i = 0; i < G_N_ELEMENTS (families); i++)
    assert_type (s, families[i].sample, families[i].type);
  g_hash_table_iter_init (&iter, s->families);
  while (g_hash_table_iter_next (&iter, &family, &help))
    if (*(char *) help == '\0')
      g_error ("family %s has no help text", (char *) family);

  /* A fresh daemon: nothing happened yet. */
  g_assert_cmpfloat (value (s, "pubsub_messages_published_total"), ==, 0);
  g_assert_cmpfloat (value (s, "pubsub_events_delivered_total"), ==, 0);
  g_assert_cmpfloat (value (s, "pubsub_events_replayed_total"), ==, 0);
  g_assert_cmpfloat (value (s, "pubsub_slow_consumers_total"), ==, 0);
  g_assert_cmpfloat (value (s, "pubsub_subscriptions"), ==, 0);
  g_assert_cmpfloat (value (s, "pubsub_topics"), ==, 0);
  g_assert_cmpfloat (value (s, "pubsub_received_bytes_total"), ==, 0);
  g_assert_cmpfloat (value (s, "pubsub_sent_bytes_total"), ==, 0);
  g_assert_cmpfloat (value (s, "pubsub_connections{type=\"websocket\"}"), ==, 0);
  /* This scrape's own connection. */
  g_assert_cmpfloat (value (s, "pubsub_connections{type=\"http\"}"), >=, 1);
  for (guint i = 0; i < G_N_ELEMENTS (refusal_reasons); i++)
    g_assert_cmpfloat (valuef (s, "pubsub_connections_refused_total{reason=\"%s\"}",
                               refusal_reasons[i]), ==, 0);
  g_assert_false (has (s, "pubsub_topic_messages_published_total"));
  g_assert_cmpfloat (check_histogram (s, "pubsub_delivery_latency_seconds", 0.000001), ==, 0);
  g_assert_cmpfloat (check_histogram (s, "pubsub_queue_depth", 1), ==, 0);

  /* The process, as /proc tells it. */
  g_assert_cmpfloat (value (s, "process_resident_memory_bytes"), >, 1024 * 1024);
  g_assert_cmpfloat (value (s, "process_virtual_memory_bytes"), >=,
                     value (s, "process_resident_memory_bytes"));
  g_assert_cmpfloat (value (s, "process_open_fds"), >=, 3);
  g_assert_cmpfloat (value (s, "process_open_fds"), <=, value (s, "process_max_fds"));
  g_assert_cmpfloat (value (s, "process_cpu_seconds_total"), >=, 0);
  /* Boot time has a resolution of a second. */
  g_assert_cmpfloat (value (s, "process_start_time_seconds"), >=, before - 2);
  g_assert_cmpfloat (value (s, "process_start_time_seconds"), <=, now + 2);

  pubsub_test_server_stop (server);
  pubsub_test_server_free (server);
}

#define N_SUBSCRIBERS 3
#define N_PUBLISHES 20

static void
test_traffic (void)
{
  PubsubTestServer *server = pubsub_test_server_start (NULL);
  PubsubTestWs *subscribers[N_SUBSCRIBERS];
  g_autoptr(PubsubTestWs) publisher = NULL;
  g_autoptr(PubsubTestWs) late = NULL;
  g_autoptr(Scrape) s = NULL;
  guint64 event_bytes = 0;
  gint64 first_publish;
  double elapsed;
  double delivered = N_SUBSCRIBERS * N_PUBLISHES;

  pubsub_test_create_topic (server, "orders", NULL);
  pubsub_test_create_topic (server, "idle", NULL);
  for (guint i = 0; i < N_SUBSCRIBERS; i++)
    {
      subscribers[i] = pubsub_test_ws_connect (server, NULL, NULL);
      pubsub_test_ws_subscribe (subscribers[i], "orders", 0);
    }
  publisher = pubsub_test_ws_connect (server, NULL, NULL);

  first_publish = g_get_monotonic_time ();
  for (guint n = 0; n < N_PUBLISHES; n++)
    {
      g_autofree char *payload = g_strdup_printf ("{\"n\":%u}", n);

      g_free (pubsub_test_ws_publish (publisher, "orders", payload));
    }
  /* Every subscriber read every event: each was handed to the kernel. */
  for (guint i = 0; i < N_SUBSCRIBERS; i++)
    for (guint n = 0; n < N_PUBLISHES; n++)
      {
        g_autoptr(PubsubTestFrame) event = pubsub_test_ws_take (subscribers[i], "event", 5000);

        event_bytes += event->len;
      }
  s = scrape (server);
  elapsed = (double) (g_get_monotonic_time () - first_publish) / G_USEC_PER_SEC;

  g_assert_cmpfloat (value (s, "pubsub_messages_published_total"), ==, N_PUBLISHES);
  g_assert_cmpfloat (value (s, "pubsub_topic_messages_published_total{topic=\"orders\"}"), ==,
                     N_PUBLISHES);
  g_assert_cmpfloat (value (s, "pubsub_topic_messages_published_total{topic=\"idle\"}"), ==, 0);
  g_assert_cmpfloat (value (s, "pubsub_topic_subscribers{topic=\"orders\"}"), ==, N_SUBSCRIBERS);
  g_assert_cmpfloat (value (s, "pubsub_topic_subscribers{topic=\"idle\"}"), ==, 0);
  g_assert_cmpfloat (value (s, "pubsub_subscriptions"), ==, N_SUBSCRIBERS);
  g_assert_cmpfloat (value (s, "pubsub_topics"), ==, 2);
  g_assert_cmpfloat (value (s, "pubsub_connections{type=\"websocket\"}"), ==, N_SUBSCRIBERS + 1);
  g_assert_cmpfloat (value (s, "pubsub_connections{type=\"http\"}"), >=, 1);

  /* N publishes to M subscribers: N×M deliveries, each with its latency. */
  g_assert_cmpfloat (value (s, "pubsub_events_delivered_total"), ==, delivered);
  g_assert_cmpfloat (check_histogram (s, "pubsub_delivery_latency_seconds", 0.000001), ==,
                     delivered);
  g_assert_cmpfloat (value (s, "pubsub_delivery_latency_seconds_sum"), >, 0);
  g_assert_cmpfloat (value (s, "pubsub_delivery_latency_seconds_sum"), <=, delivered * elapsed);
  g_assert_cmpfloat (value (s, "pubsub_delivery_latency_seconds_bucket{le=\"16.777216\"}"), ==,
                     delivered);
  g_assert_cmpfloat (value (s, "pubsub_events_replayed_total"), ==, 0);
  /* At least one flush per event and subscriber, and never an empty one. */
  g_assert_cmpfloat (check_histogram (s, "pubsub_queue_depth", 1), >=, N_SUBSCRIBERS);
  g_assert_cmpfloat (value (s, "pubsub_queue_depth_sum"), >=,
                     value (s, "pubsub_queue_depth_count"));

  /* Bytes: the events read are in what was sent (with their frame headers,
   * acks and everything else); the publish frames are in what was read. */
  g_assert_cmpfloat (value (s, "pubsub_sent_bytes_total"), >=, (double) event_bytes);
  g_assert_cmpfloat (value (s, "pubsub_received_bytes_total"), >=, N_PUBLISHES * 100);
  g_clear_pointer (&s, scrape_free);

  /* A replay counts apart: it is no live delivery. */
  late = pubsub_test_ws_connect (server, NULL, NULL);
  pubsub_test_ws_subscribe (late, "orders", 5);
  for (guint n = 0; n < 5; n++)
    pubsub_test_frame_free (pubsub_test_ws_take (late, "event", 5000));
  s = scrape (server);
  g_assert_cmpfloat (value (s, "pubsub_events_replayed_total"), ==, 5);
  g_assert_cmpfloat (value (s, "pubsub_events_delivered_total"), ==, delivered);
  g_assert_cmpfloat (value (s, "pubsub_delivery_latency_seconds_count"), ==, delivered);
  g_assert_cmpfloat (value (s, "pubsub_subscriptions"), ==, N_SUBSCRIBERS + 1);
  g_clear_pointer (&s, scrape_free);

  /* A deleted topic leaves the total as it was. */
  g_assert_cmpuint (pubsub_test_http (server, "DELETE", "/topics/orders", NULL, NULL, NULL), ==,
                    200);
  s = scrape (server);
  g_assert_cmpfloat (value (s, "pubsub_messages_published_total"), ==, N_PUBLISHES);
  g_assert_false (has (s, "pubsub_topic_messages_published_total{topic=\"orders\"}"));
  g_assert_false (has (s, "pubsub_topic_subscribers{topic=\"orders\"}"));
  g_assert_cmpfloat (value (s, "pubsub_topics"), ==, 1);
  g_assert_cmpfloat (value (s, "pubsub_subscriptions"), ==, 0);

  /* Closed connections are no longer counted. */
  for (guint i = 0; i < N_SUBSCRIBERS; i++)
    pubsub_test_ws_free (subscribers[i]);
  g_clear_pointer (&publisher, pubsub_test_ws_free);
  g_clear_pointer (&late, pubsub_test_ws_free);
  pubsub_test_wait_for (scrape_quick (server, "pubsub_connections{type=\"websocket\"}") == 0,
                        10000);

  pubsub_test_server_stop (server);
  pubsub_test_server_free (server);
}

/* A client that asks for pongs and never reads them is cut (as in
 * test-backpressure), and counted. */
static void
test_slow_consumer (void)
{
  const char *args[] = { "--queue-size", "10", NULL };
  PubsubTestServer *server = pubsub_test_server_start_full (PUBSUB_TEST_SERVER_DEFAULT, NULL, args);
  g_autoptr(PubsubTestRawWs) raw = pubsub_test_raw_ws_connect (server, "/ws", 4096, NULL);
  g_autofree char *pad = g_strnfill (8000, 'r');
  g_autoptr(Scrape) s = NULL;

  g_assert_nonnull (raw);
  for (guint i = 0; i < 1500; i++)
    {
      g_autofree char *ping = g_strdup_printf ("{\"type\":\"ping\",\"request_id\":\"%u-%s\"}",
                                               i, pad);

      pubsub_test_raw_ws_send_text (raw, ping);
    }
  pubsub_test_wait_for (scrape_quick (server, "pubsub_slow_consumers_total") == 1, 20000);

  s = scrape (server);
  g_assert_cmpfloat (value (s, "pubsub_slow_consumers_total"), ==, 1);
  g_assert_cmpfloat (value (s, "pubsub_received_bytes_total"), >, 8000);
  g_clear_pointer (&s, scrape_free);

  g_clear_pointer (&raw, pubsub_test_raw_ws_free);
  pubsub_test_wait_for (scrape_quick (server, "pubsub_connections{type=\"websocket\"}") == 0,
                        15000);
  g_assert_cmpfloat (scrape_quick (server, "pubsub_slow_consumers_total"), ==, 1);

  pubsub_test_server_stop (server);
  pubsub_test_server_free (server);
}

/* Queue depth at flush, deterministically: 32 pings in one TCP write are
 * read at once, so their 32 pongs wait in the queue for one flush. (A slow
 * consumer shows nothing certain here: once its socket is full the flush
 * pass skips it, so how deep its queue was when last flushed depends on
 * timing.) */
static void
test_queue_depth (void)
{
  PubsubTestServer *server = pubsub_test_server_start (NULL);
  g_autoptr(PubsubTestRawWs) raw = pubsub_test_raw_ws_connect (server, "/ws", 0, NULL);
  g_autoptr(GByteArray) burst = g_byte_array_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(Scrape) s = NULL;
  const guint8 mask[4] = { 1, 2, 3, 4 };

  g_assert_nonnull (raw);
  for (guint i = 0; i < 32; i++)
    {
      g_autofree char *ping = g_strdup_printf ("{\"type\":\"ping\",\"request_id\":\"%u\"}", i);
      g_autoptr(GByteArray) frame = pubsub_test_ws_client_frame (0x81, ping, strlen (ping), mask);

      g_byte_array_append (burst, frame->data, frame->len);
    }
  pubsub_test_raw_ws_start_reading (raw);
  g_assert_cmpint (g_socket_send (raw->socket, (const char *) burst->data, burst->len, NULL,
                                  &error), ==, (gssize) burst->len);
  g_assert_no_error (error);
  pubsub_test_wait_for (g_queue_get_length (&raw->frames) >= 32, 20000);

  s = scrape (server);
  /* One flush had all 32 waiting: above the bucket le="16", within le="32". */
  g_assert_cmpfloat (value (s, "pubsub_queue_depth_count"), >, 0);
  g_assert_cmpfloat (value (s, "pubsub_queue_depth_bucket{le=\"16\"}"), <,
                     value (s, "pubsub_queue_depth_count"));
  g_assert_cmpfloat (value (s, "pubsub_queue_depth_bucket{le=\"32\"}"), ==,
                     value (s, "pubsub_queue_depth_count"));
  g_clear_pointer (&s, scrape_free);

  g_clear_pointer (&raw, pubsub_test_raw_ws_free);
  pubsub_test_server_stop (server);
  pubsub_test_server_free (server);
}

static guint
metrics_status (PubsubTestServer *server,
                const char       *header,
                const char       *value)
{
  const char *headers[] = { header, value, NULL };
  g_autoptr(PubsubTestResponse) response = NULL;

  /* A refused scrape answers like every REST error: JSON, UNAUTHORIZED. */
  response = pubsub_test_request_full (server, "GET", "/metrics", NULL, FALSE,
                                       header != NULL ? headers : NULL, NULL);
  if (response->status == 401)
    {
      g_assert_cmpstr (pubsub_test_response_error_code (response), ==, "UNAUTHORIZED");
      g_assert_nonnull (soup_message_headers_get_one (response->headers, "WWW-Authenticate"));
    }
  return response->status;
}

static void
test_auth (void)
{
  const char *args[] = { "--api-key", "s3cret", NULL };
  PubsubTestServer *server = pubsub_test_server_start_full (PUBSUB_TEST_SERVER_DEFAULT, NULL, args);
  const char *with_key[] = { "X-API-Key", "s3cret", NULL };
  const char *with_bearer[] = { "Authorization", "Bearer s3cret", NULL };
  const char *with_lower_bearer[] = { "Authorization", "bearer s3cret", NULL };
  g_autofree char *text = NULL;
  g_autoptr(Scrape) s = NULL;
  guint status = 0;

  /* Refused: no key, a wrong one, the right one in the wrong place. */
  g_assert_cmpuint (metrics_status (server, NULL, NULL), ==, 401);
  g_assert_cmpuint (metrics_status (server, "X-API-Key", "wrong"), ==, 401);
  g_assert_cmpuint (metrics_status (server, "Authorization", "Bearer wrong"), ==, 401);
  g_assert_cmpuint (metrics_status (server, "Authorization", "Basic czNjcmV0"), ==, 401);
  g_assert_cmpuint (metrics_status (server, "Authorization", "s3cret"), ==, 401);

  /* Taken: X-API-Key, or a bearer token (the scheme in any case). */
  g_free (scrape_full (server, with_key, &status, NULL));
  g_assert_cmpuint (status, ==, 200);
  g_free (scrape_full (server, with_lower_bearer, &status, NULL));
  g_assert_cmpuint (status, ==, 200);

  /* Every 401 is counted, whatever was asked. */
  g_assert_cmpuint (pubsub_test_http (server, "GET", "/topics", NULL, NULL, NULL), ==, 401);
  g_assert_null (pubsub_test_ws_try_connect (server, NULL, NULL, &status));
  g_assert_cmpuint (status, ==, 401);
  /* /health needs no key, and is no refusal. */
  g_assert_cmpuint (pubsub_test_http (server, "GET", "/health", NULL, NULL, NULL), ==, 200);

  text = scrape_full (server, with_bearer, &status, NULL);
  g_assert_cmpuint (status, ==, 200);
  s = parse (text);
  g_assert_cmpfloat (value (s, "pubsub_connections_refused_total{reason=\"unauthorized\"}"), ==, 7);
  g_assert_cmpfloat (value (s, "pubsub_connections_refused_total{reason=\"max_connections\"}"), ==, 0);
  g_assert_cmpfloat (value (s, "pubsub_connections_refused_total{reason=\"error\"}"), ==, 0);

  pubsub_test_server_stop (server);
  pubsub_test_server_free (server);
}

static void
test_max_connections (void)
{
  const char *args[] = { "--max-connections", "2", NULL };
  PubsubTestServer *server = pubsub_test_server_start_full (PUBSUB_TEST_SERVER_DEFAULT, NULL, args);
  g_autoptr(PubsubTestWs) first = pubsub_test_ws_connect (server, NULL, NULL);
  g_autoptr(PubsubTestWs) second = pubsub_test_ws_connect (server, NULL, NULL);
  g_autoptr(Scrape) s = NULL;
  guint status = 0;

  g_assert_null (pubsub_test_ws_try_connect (server, NULL, NULL, &status));
  g_assert_cmpuint (status, ==, 503);
  /* Room for the scrape itself. */
  g_clear_pointer (&second, pubsub_test_ws_free);
  pubsub_test_wait_for (scrape_quick (server, "pubsub_connections{type=\"websocket\"}") == 1,
                        10000);

  s = scrape (server);
  g_assert_cmpfloat (value (s, "pubsub_connections_refused_total{reason=\"max_connections\"}"), ==, 1);
  g_assert_cmpfloat (value (s, "pubsub_connections_refused_total{reason=\"unauthorized\"}"), ==, 0);

  g_clear_pointer (&first, pubsub_test_ws_free);
  pubsub_test_server_stop (server);
  pubsub_test_server_free (server);
}

static void
test_method (void)
{
  PubsubTestServer *server = pubsub_test_server_start (NULL);
  g_autoptr(PubsubTestResponse) response = NULL;

  response = pubsub_test_request (server, "POST", "/metrics", "{}", NULL);
  g_assert_cmpuint (response->status, ==, 405);
  g_assert_cmpstr (soup_message_headers_get_one (response->headers, "Allow"), ==, "GET");

  pubsub_test_server_stop (server);
  pubsub_test_server_free (server);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  pubsub_test_quiet_debug ();

  g_test_add_func ("/metrics/format", test_format);
  g_test_add_func ("/metrics/traffic", test_traffic);
  g_test_add_func ("/metrics/slow-consumer", test_slow_consumer);
  g_test_add_func ("/metrics/queue-depth", test_queue_depth);
  g_test_add_func ("/metrics/auth", test_auth);
  g_test_add_func ("/metrics/max-connections", test_max_connections);
  g_test_add_func ("/metrics/method", test_method);

  return g_test_run ();
}
