/* pubsub-metrics.c: what operators scrape: counters, histograms and their
 * Prometheus text
 *
 * The registry is owned by the HTTP server and handed, construct-only, to
 * what counts. Nothing here is global. The hot paths (a subscriber's flush, a
 * connection's read) increment a PubsubCounters in place, where the work is
 * already done: no call, no lock, no allocation, and a histogram bucket is
 * one count-leading-zeros away. Everything that can be read from elsewhere
 * instead is read at scrape time: topics and their counts from the broker,
 * open WebSocket connections from the server, the process from /proc.
 *
 * The text is format 0.0.4 (text/plain; version=0.0.4), as `promtool check
 * metrics` and the Prometheus client parsers read it: a # HELP and a # TYPE
 * line per family, counters named *_total, base units (seconds, bytes),
 * histograms as cumulative _bucket{le} series with _sum and _count. Numbers
 * are written without the C locale's help (the daemon calls setlocale()).
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "pubsub-metrics.h"

/* Latency buckets: 2^0 .. 2^24 µs, i.e. 1 µs to 16.8 s (then +Inf). */
#define LATENCY_BUCKETS 25
/* Queue depth buckets: 1 .. 2^16 frames (then +Inf). */
#define QUEUE_DEPTH_BUCKETS 17

G_STATIC_ASSERT (LATENCY_BUCKETS < PUBSUB_HISTOGRAM_SLOTS);
G_STATIC_ASSERT (QUEUE_DEPTH_BUCKETS < PUBSUB_HISTOGRAM_SLOTS);

static const char *const refusal_names[PUBSUB_N_REFUSALS] = {
  [PUBSUB_REFUSAL_MAX_CONNECTIONS] = "max_connections",
  [PUBSUB_REFUSAL_UNAUTHORIZED] = "unauthorized",
  [PUBSUB_REFUSAL_ERROR] = "error",
};

struct _PubsubMetrics {
  GObject         parent_instance;

  PubsubBroker   *broker;              /* owned */
  gulong          topic_deleted_id;
  guint64         deleted_published;   /* messages of topics deleted since */
  PubsubCounters  counters;
  guint64         refusals[PUBSUB_N_REFUSALS];
  guint           open_connections;    /* accepted TCP connections alive */
  double          start_time;          /* s since the epoch; < 0 until read */
};

G_DEFINE_FINAL_TYPE (PubsubMetrics, pubsub_metrics, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_BROKER,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

/* ---------------------------------------------------------------------- */
/* Histograms                                                             */

/**
 * pubsub_histogram_init:
 * @n_finite: buckets 2^0 … 2^(n_finite - 1); larger values count as +Inf
 */
void
pubsub_histogram_init (PubsubHistogram *histogram,
                       guint            n_finite)
{
  g_return_if_fail (n_finite < PUBSUB_HISTOGRAM_SLOTS);

  *histogram = (PubsubHistogram) { .n_finite = n_finite };
}

guint64
pubsub_histogram_get_count (const PubsubHistogram *histogram)
{
  guint64 count = 0;

  for (guint i = 0; i <= histogram->n_finite; i++)
    count += histogram->counts[i];
  return count;
}

/**
 * pubsub_counters_init:
 *
 * Zeroes @counters and sets up their histograms' buckets.
 */
void
pubsub_counters_init (PubsubCounters *counters)
{
  *counters = (PubsubCounters) { 0, };
  pubsub_histogram_init (&counters->latency, LATENCY_BUCKETS);
  pubsub_histogram_init (&counters->queue_depth, QUEUE_DEPTH_BUCKETS);
}

/* ---------------------------------------------------------------------- */
/* GObject                                                                */

/* A deleted topic takes its count with it; the total must not go down. */
static void
on_topic_deleted (PubsubBroker  *broker,
                  PubsubTopic   *topic,
                  PubsubMetrics *self)
{
  self->deleted_published += pubsub_topic_get_messages (topic);
}

static void
pubsub_metrics_constructed (GObject *object)
{
  PubsubMetrics *self = PUBSUB_METRICS (object);

  G_OBJECT_CLASS (pubsub_metrics_parent_class)->constructed (object);

  g_assert (self->broker != NULL);
  self->topic_deleted_id = g_signal_connect (self->broker, "topic-deleted",
                                             G_CALLBACK (on_topic_deleted), self);
}

static void
pubsub_metrics_dispose (GObject *object)
{
  PubsubMetrics *self = PUBSUB_METRICS (object);

  if (self->broker != NULL)
    g_clear_signal_handler (&self->topic_deleted_id, self->broker);
  g_clear_object (&self->broker);

  G_OBJECT_CLASS (pubsub_metrics_parent_class)->dispose (object);
}

static void
pubsub_metrics_get_property (GObject    *object,
                             guint       prop_id,
                             GValue     *value,
                             GParamSpec *pspec)
{
  PubsubMetrics *self = PUBSUB_METRICS (object);

  switch (prop_id)
    {
    case PROP_BROKER:
      g_value_set_object (value, self->broker);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
pubsub_metrics_set_property (GObject      *object,
                             guint         prop_id,
                             const GValue *value,
                             GParamSpec   *pspec)
{
  PubsubMetrics *self = PUBSUB_METRICS (object);

  switch (prop_id)
    {
    case PROP_BROKER:
      self->broker = g_value_dup_object (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
pubsub_metrics_class_init (PubsubMetricsClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->constructed = pubsub_metrics_constructed;
  object_class->dispose = pubsub_metrics_dispose;
  object_class->get_property = pubsub_metrics_get_property;
  object_class->set_property = pubsub_metrics_set_property;

  properties[PROP_BROKER] =
    g_param_spec_object ("broker", NULL, NULL, PUBSUB_TYPE_BROKER,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
pubsub_metrics_init (PubsubMetrics *self)
{
  pubsub_counters_init (&self->counters);
  self->start_time = -1;
}

/**
 * pubsub_metrics_new:
 * @broker: the broker whose topics are reported
 */
PubsubMetrics *
pubsub_metrics_new (PubsubBroker *broker)
{
  g_return_val_if_fail (PUBSUB_IS_BROKER (broker), NULL);

  return g_object_new (PUBSUB_TYPE_METRICS, "broker", broker, NULL);
}

/**
 * pubsub_metrics_get_counters:
 *
 * Returns: (transfer none): the counters the hot paths increment in place;
 *   valid as long as @self
 */
PubsubCounters *
pubsub_metrics_get_counters (PubsubMetrics *self)
{
  g_return_val_if_fail (PUBSUB_IS_METRICS (self), NULL);

  return &self->counters;
}

void
pubsub_metrics_count_refusal (PubsubMetrics *self,
                              PubsubRefusal  reason)
{
  g_return_if_fail (PUBSUB_IS_METRICS (self));
  g_return_if_fail ((guint) reason < PUBSUB_N_REFUSALS);

  self->refusals[reason]++;
}

static void
on_connection_finalized (gpointer  data,
                         GObject  *where_the_object_was)
{
  PubsubMetrics *self = data;

  g_assert (self->open_connections > 0);
  self->open_connections--;
  g_object_unref (self);
}

/**
 * pubsub_metrics_track_connection:
 * @connection: an accepted connection (its #GSocketConnection)
 *
 * Counts @connection as open for as long as it exists: libsoup and the
 * WebSocket side drop their references when they close it. Each tracked
 * connection keeps @self alive, so the count never outlives its owner.
 */
void
pubsub_metrics_track_connection (PubsubMetrics *self,
                                 GObject       *connection)
{
  g_return_if_fail (PUBSUB_IS_METRICS (self));
  g_return_if_fail (G_IS_OBJECT (connection));

  self->open_connections++;
  g_object_weak_ref (connection, on_connection_finalized, g_object_ref (self));
}

/**
 * pubsub_metrics_get_open_connections:
 *
 * Returns: the tracked connections still open, WebSocket ones included
 */
guint
pubsub_metrics_get_open_connections (PubsubMetrics *self)
{
  g_return_val_if_fail (PUBSUB_IS_METRICS (self), 0);

  return self->open_connections;
}

/* ---------------------------------------------------------------------- */
/* Text format 0.0.4                                                      */

static void
append_family (GString    *out,
               const char *name,
               const char *type,
               const char *help)
{
  g_string_append_printf (out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
append_u64 (GString    *out,
            const char *name,
            guint64     value)
{
  g_string_append_printf (out, "%s %" G_GUINT64_FORMAT "\n", name, value);
}

static void
append_double (GString    *out,
               const char *name,
               double      value)
{
  char buffer[G_ASCII_DTOSTR_BUF_SIZE];

  g_string_append_printf (out, "%s %s\n", name,
                          g_ascii_formatd (buffer, sizeof buffer, "%.3f", value));
}

/* A label value, escaped as the format says: \\, \" and \n. Topic names
 * cannot contain any of them today; the format is kept all the same. */
static void
append_label_value (GString    *out,
                    const char *value)
{
  g_string_append_c (out, '"');
  for (const char *p = value; *p != '\0'; p++)
    {
      if (*p == '\\')
        g_string_append (out, "\\\\");
      else if (*p == '"')
        g_string_append (out, "\\\"");
      else if (*p == '\n')
        g_string_append (out, "\\n");
      else
        g_string_append_c (out, *p);
    }
  g_string_append_c (out, '"');
}

static void
append_labelled_u64 (GString    *out,
                     const char *name,
                     const char *label,
                     const char *label_value,
                     guint64     value)
{
  g_string_append_printf (out, "%s{%s=", name, label);
  append_label_value (out, label_value);
  g_string_append_printf (out, "} %" G_GUINT64_FORMAT "\n", value);
}

/* Microseconds as exact decimal seconds: 1024 → "0.001024". */
static void
append_micros_as_seconds (GString *out,
                          guint64  us)
{
  guint64 fraction = us % G_USEC_PER_SEC;
  gsize end;

  g_string_append_printf (out, "%" G_GUINT64_FORMAT, us / G_USEC_PER_SEC);
  if (fraction == 0)
    return;
  g_string_append_printf (out, ".%06" G_GUINT64_FORMAT, fraction);
  for (end = out->len; out->str[end - 1] == '0'; end--)
    ;
  g_string_truncate (out, end);
}

static void
append_plain (GString *out,
              guint64  value)
{
  g_string_append_printf (out, "%" G_GUINT64_FORMAT, value);
}

/* @format writes a bucket bound or the sum, from the observed unit. */
static void
append_histogram (GString               *out,
                  const char            *name,
                  const char            *help,
                  const PubsubHistogram *histogram,
                  void                 (*format) (GString *, guint64))
{
  guint64 cumulative = 0;

  append_family (out, name, "histogram", help);
  for (guint i = 0; i < histogram->n_finite; i++)
    {
      cumulative += histogram->counts[i];
      g_string_append_printf (out, "%s_bucket{le=\"", name);
      format (out, G_GUINT64_CONSTANT (1) << i);
      g_string_append_printf (out, "\"} %" G_GUINT64_FORMAT "\n", cumulative);
    }
  cumulative += histogram->counts[histogram->n_finite];
  g_string_append_printf (out, "%s_bucket{le=\"+Inf\"} %" G_GUINT64_FORMAT "\n", name, cumulative);
  g_string_append_printf (out, "%s_sum ", name);
  format (out, histogram->sum);
  g_string_append_printf (out, "\n%s_count %" G_GUINT64_FORMAT "\n", name, cumulative);
}

static void
append_topics (PubsubMetrics *self,
               GString       *out)
{
  g_autoptr(GPtrArray) topics = pubsub_broker_list_topics (self->broker);
  guint64 published = self->deleted_published;

  for (guint i = 0; i < topics->len; i++)
    published += pubsub_topic_get_messages (g_ptr_array_index (topics, i));
  append_family (out, "pubsub_messages_published_total", "counter",
                 "Messages published, over every topic and every way in "
                 "(WebSocket, REST, D-Bus).");
  append_u64 (out, "pubsub_messages_published_total", published);

  /* A family without samples is left out, as the Go and Python clients do. */
  if (topics->len == 0)
    return;
  append_family (out, "pubsub_topic_messages_published_total", "counter",
                 "Messages published to the topic since it was created.");
  for (guint i = 0; i < topics->len; i++)
    {
      PubsubTopic *topic = g_ptr_array_index (topics, i);

      append_labelled_u64 (out, "pubsub_topic_messages_published_total", "topic",
                           pubsub_topic_get_name (topic), pubsub_topic_get_messages (topic));
    }
  append_family (out, "pubsub_topic_subscribers", "gauge", "Subscriptions of the topic.");
  for (guint i = 0; i < topics->len; i++)
    {
      PubsubTopic *topic = g_ptr_array_index (topics, i);

      append_labelled_u64 (out, "pubsub_topic_subscribers", "topic",
                           pubsub_topic_get_name (topic), pubsub_topic_get_subscribers (topic));
    }
}

static void
append_traffic (PubsubMetrics *self,
                GString       *out,
                guint          websocket_connections)
{
  const PubsubCounters *counters = &self->counters;
  guint http = self->open_connections - MIN (self->open_connections, websocket_connections);

  append_family (out, "pubsub_events_delivered_total", "counter",
                 "Live events whose bytes were all handed to the kernel, once per subscriber.");
  append_u64 (out, "pubsub_events_delivered_total",
              pubsub_histogram_get_count (&counters->latency));
  append_family (out, "pubsub_events_replayed_total", "counter",
                 "Events from a topic's history handed to the kernel for a subscribe "
                 "(and those published while its replay caught up).");
  append_u64 (out, "pubsub_events_replayed_total", counters->replayed);

  append_family (out, "pubsub_connections", "gauge",
                 "Open client connections: websocket (upgraded), http (accepted and "
                 "not upgraded).");
  append_labelled_u64 (out, "pubsub_connections", "type", "websocket", websocket_connections);
  append_labelled_u64 (out, "pubsub_connections", "type", "http", http);

  append_family (out, "pubsub_slow_consumers_total", "counter",
                 "Connections cut with SLOW_CONSUMER for not reading fast enough.");
  append_u64 (out, "pubsub_slow_consumers_total", counters->slow_consumers);

  append_family (out, "pubsub_connections_refused_total", "counter",
                 "Clients turned away: over max-connections, without the right API key "
                 "(any request), or on an error.");
  for (guint i = 0; i < PUBSUB_N_REFUSALS; i++)
    append_labelled_u64 (out, "pubsub_connections_refused_total", "reason", refusal_names[i],
                         self->refusals[i]);

  append_family (out, "pubsub_subscriptions", "gauge", "Subscriptions over all topics.");
  append_u64 (out, "pubsub_subscriptions", pubsub_broker_get_subscriber_count (self->broker));
  append_family (out, "pubsub_topics", "gauge", "Topics that exist.");
  append_u64 (out, "pubsub_topics", pubsub_broker_get_topic_count (self->broker));

  append_family (out, "pubsub_received_bytes_total", "counter",
                 "WebSocket bytes read from client sockets.");
  append_u64 (out, "pubsub_received_bytes_total", counters->received_bytes);
  append_family (out, "pubsub_sent_bytes_total", "counter",
                 "WebSocket bytes written to client sockets.");
  append_u64 (out, "pubsub_sent_bytes_total", counters->sent_bytes);

  append_histogram (out, "pubsub_delivery_latency_seconds",
                    "Time from a publish being accepted to its event reaching the kernel, "
                    "per subscriber (live events).",
                    &counters->latency, append_micros_as_seconds);
  append_histogram (out, "pubsub_queue_depth",
                    "Frames in a subscriber's outgoing queue when a flush starts.",
                    &counters->queue_depth, append_plain);
}

/* ---------------------------------------------------------------------- */
/* The process, read as the Go and Python clients read it                 */

/* The fields of /proc/self/stat after the command name, which may itself
 * contain spaces and parentheses. Index 0 is field 3 (state). */
static char **
read_proc_stat (void)
{
  g_autofree char *contents = NULL;
  const char *rest;

  if (!g_file_get_contents ("/proc/self/stat", &contents, NULL, NULL))
    return NULL;
  rest = strrchr (contents, ')');
  if (rest == NULL || rest[1] != ' ')
    return NULL;
  return g_strsplit (g_strstrip ((char *) rest + 2), " ", -1);
}

static guint64
stat_field (char **fields,
            guint  field)
{
  g_assert (field >= 3);
  if (g_strv_length (fields) <= field - 3)
    return 0;
  return g_ascii_strtoull (fields[field - 3], NULL, 10);
}

/* Boot time, s since the epoch, from /proc/stat; 0 if unknown. */
static guint64
read_boot_time (void)
{
  g_autofree char *contents = NULL;
  const char *line;

  if (!g_file_get_contents ("/proc/stat", &contents, NULL, NULL))
    return 0;
  line = strstr (contents, "\nbtime ");
  if (line == NULL)
    return 0;
  return g_ascii_strtoull (line + strlen ("\nbtime "), NULL, 10);
}

static guint
count_open_fds (void)
{
  g_autoptr(GDir) dir = g_dir_open ("/proc/self/fd", 0, NULL);
  guint count = 0;

  if (dir == NULL)
    return 0;
  while (g_dir_read_name (dir) != NULL)
    count++;
  return count;
}

static void
append_process (PubsubMetrics *self,
                GString       *out)
{
  g_auto(GStrv) fields = read_proc_stat ();
  long ticks = sysconf (_SC_CLK_TCK);
  long page = sysconf (_SC_PAGESIZE);
  struct rlimit limit;

  /* No /proc (not Linux): no process metrics, as the Go client does. */
  if (fields == NULL || ticks <= 0 || page <= 0)
    return;

  if (self->start_time < 0)
    self->start_time = (double) read_boot_time () + (double) stat_field (fields, 22) / ticks;

  append_family (out, "process_cpu_seconds_total", "counter",
                 "Total user and system CPU time spent in seconds.");
  append_double (out, "process_cpu_seconds_total",
                 (double) (stat_field (fields, 14) + stat_field (fields, 15)) / ticks);
  append_family (out, "process_open_fds", "gauge", "Number of open file descriptors.");
  append_u64 (out, "process_open_fds", count_open_fds ());
  if (getrlimit (RLIMIT_NOFILE, &limit) == 0)
    {
      append_family (out, "process_max_fds", "gauge",
                     "Maximum number of open file descriptors.");
      append_u64 (out, "process_max_fds", (guint64) limit.rlim_cur);
    }
  append_family (out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
  append_u64 (out, "process_virtual_memory_bytes", stat_field (fields, 23));
  append_family (out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
  append_u64 (out, "process_resident_memory_bytes", stat_field (fields, 24) * (guint64) page);
  append_family (out, "process_start_time_seconds", "gauge",
                 "Start time of the process since unix epoch in seconds.");
  append_double (out, "process_start_time_seconds", self->start_time);
}

/**
 * pubsub_metrics_render:
 * @websocket_connections: the WebSocket connections open now
 * @out_len: (out): the length of the text
 *
 * Returns: (transfer full): every metric in the Prometheus text format 0.0.4
 */
char *
pubsub_metrics_render (PubsubMetrics *self,
                       guint          websocket_connections,
                       gsize         *out_len)
{
  GString *out;

  g_return_val_if_fail (PUBSUB_IS_METRICS (self), NULL);

  out = g_string_sized_new (8192);
  append_topics (self, out);
  append_traffic (self, out, websocket_connections);
  append_process (self, out);
  *out_len = out->len;
  return g_string_free (out, FALSE);
}
