/* bench-report.c: tallies the counters of pubsub-bench's connections and
 * prints the result
 *
 * The text is for people; the JSON object (--json) is what
 * tests/bench/compare parses, so its keys and number formats are a contract:
 * change them only together with that script and the manual (--help).
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdio.h>

#include "bench-client.h"
#include "bench-options.h"
#include "bench-report.h"

static void
collect_publishers (BenchResult *r)
{
  for (gint p = 0; p < bench_run.n_pubs; p++)
    {
      r->sent += bench_run.pubs[p]->sent;
      r->acked += bench_run.pubs[p]->acked;
      r->pub_errors += bench_run.pubs[p]->errors;
    }
}

/* Messages of its topic that s never got, holes included. */
static guint64
subscriber_lost (const BenchConn *s)
{
  guint64 lost = s->missing;

  for (gint p = 0; p < bench_run.n_pubs; p++)
    {
      guint64 e = bench_run.pubs[p]->seq[s->topic];

      if (e > s->last[p])
        lost += e - s->last[p];
    }
  return lost;
}

static void
collect_subscriber (BenchResult     *r,
                    const BenchConn *s)
{
  r->events += s->events;
  r->gaps += s->gaps;
  r->dups += s->dups;
  r->reorder += s->reorder;
  r->foreign += s->foreign;
  r->wrong_topic += s->wrong_topic;
  r->lost += subscriber_lost (s);
  for (gint p = 0; p < bench_run.n_pubs; p++)
    r->expected += bench_run.pubs[p]->seq[s->topic];
  if (s->state == BENCH_CONN_CLOSED)
    r->disconnected++;
}

/* With --sub-url: the fast subscribers of each node, so that a cluster
 * that loses messages across nodes shows where. */
typedef struct {
  gint    subscribers, disconnected;
  guint64 events, lost;
} NodeTally;

static NodeTally
node_tally (gint node)
{
  NodeTally t = { 0 };

  for (gint i = 0; i < bench_run.n_subs; i++)
    {
      const BenchConn *s = bench_run.subs[i];

      if (s->node != node)
        continue;
      t.subscribers++;
      t.events += s->events;
      t.lost += subscriber_lost (s);
      t.disconnected += s->state == BENCH_CONN_CLOSED;
    }
  return t;
}

void
bench_result_collect (BenchResult *r)
{
  guint64 t_start = bench_run.t_start, t_stop = bench_run.t_stop;
  guint64 end_ev = bench_run.t_last_event > t_start ? bench_run.t_last_event : t_stop;
  guint64 end_ack = bench_run.t_last_ack > t_start ? bench_run.t_last_ack : t_stop;

  collect_publishers (r);
  for (gint i = 0; i < bench_run.n_subs; i++)
    collect_subscriber (r, bench_run.subs[i]);
  r->run_s = (gdouble) (t_stop - t_start) / 1e9;
  r->events_s = end_ev > t_start ? (gdouble) r->events / ((gdouble) (end_ev - t_start) / 1e9) : 0;
  r->pubs_s = end_ack > t_start ? (gdouble) r->acked / ((gdouble) (end_ack - t_start) / 1e9) : 0;
  r->ok = !r->lost && !r->gaps && !r->dups && !r->reorder && !r->disconnected && !r->pub_errors &&
          !r->foreign && !r->wrong_topic && r->acked == r->sent;
}

static const char *
protocol_name (void)
{
  return bench_options.nats ? "nats" : "pubsub";
}

static const char *
arrival_clock (void)
{
  return bench_arrival_clock (bench_run.n_kernel_ts, bench_run.n_clock_ts);
}

/* How the slow subscriber's connection ended, into buf. */
static const char *
slow_end_text (const BenchConn *c,
               char            *buf,
               gsize            n)
{
  if (c->state != BENCH_CONN_CLOSED)
    snprintf (buf, n, "still open");
  else if (c->got_close)
    snprintf (buf, n, "close frame %d", c->close_code);
  else if (c->lost_errno)
    snprintf (buf, n, "%s without a close frame", g_strerror (c->lost_errno));
  else
    snprintf (buf, n, "end of stream without a close frame");
  return buf;
}

/* ------------------------------------------------------------------ JSON */

static void
json_common (GString *j)
{
  g_string_append_printf (j, "{\"mode\":\"%s\",\"protocol\":\"%s\",\"url\":\"%s\"",
                          bench_options.mode_name, protocol_name (), bench_options.url);
  g_string_append_printf (j, ",\"subscribers\":%d,\"publishers\":%d,\"topics\":%d,\"size\":%d",
                          bench_run.n_subs, bench_run.n_pubs, bench_options.topics,
                          bench_options.payload_len);
}

static void
json_nodes (GString *j)
{
  if (!bench_options.sub_urls)
    return;
  g_string_append (j, ",\"sub_nodes\":[");
  for (gint n = 0; n < bench_run.n_nodes; n++)
    {
      NodeTally t = node_tally (n);

      g_string_append_printf (j,
                              "%s{\"url\":\"%s\",\"subscribers\":%d,\"events\":%" G_GUINT64_FORMAT
                              ",\"lost\":%" G_GUINT64_FORMAT ",\"disconnected\":%d}",
                              n ? "," : "", bench_options.sub_urls[n], t.subscribers, t.events,
                              t.lost, t.disconnected);
    }
  g_string_append_printf (j, "],\"sync_s\":%.3f", bench_run.sync_s);
}

static void
json_latency (GString *j)
{
  const BenchHist *h = &bench_run.hist;

  g_string_append_printf (j,
                          ",\"latency_us\":{\"count\":%" G_GUINT64_FORMAT ",\"p50\":%.1f,"
                          "\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f,\"mean\":%.1f}",
                          h->n, bench_hist_quantile (h, 0.50) / 1e3,
                          bench_hist_quantile (h, 0.90) / 1e3, bench_hist_quantile (h, 0.99) / 1e3,
                          bench_hist_quantile (h, 0.999) / 1e3, h->max / 1e3,
                          h->n ? h->sum / (gdouble) h->n / 1e3 : 0.0);
}

static void
json_counts (GString           *j,
             const BenchResult *r)
{
  g_string_append_printf (j, ",\"duration_s\":%.3f,\"window\":%d,\"rate\":%.1f", r->run_s,
                          bench_options.rate > 0 ? 0 : bench_options.window, bench_options.rate);
  g_string_append_printf (j,
                          ",\"published\":%" G_GUINT64_FORMAT ",\"acked\":%" G_GUINT64_FORMAT
                          ",\"publish_errors\":%" G_GUINT64_FORMAT ",\"publishes_per_s\":%.1f",
                          r->sent, r->acked, r->pub_errors, r->pubs_s);
  g_string_append_printf (j,
                          ",\"events\":%" G_GUINT64_FORMAT
                          ",\"expected_events\":%" G_GUINT64_FORMAT
                          ",\"events_per_s\":%.1f"
                          ",\"lost\":%" G_GUINT64_FORMAT
                          ",\"gaps\":%" G_GUINT64_FORMAT
                          ",\"duplicates\":%" G_GUINT64_FORMAT
                          ",\"out_of_order\":%" G_GUINT64_FORMAT
                          ",\"disconnected\":%d"
                          ",\"foreign\":%" G_GUINT64_FORMAT,
                          r->events, r->expected, r->events_s, r->lost, r->gaps, r->dups,
                          r->reorder, r->disconnected, r->foreign + r->wrong_topic);
}

static void
json_cpu (GString           *j,
          const BenchResult *r)
{
  const BenchHist *lag = &bench_run.lag_hist;

  g_string_append_printf (j, ",\"arrival_clock\":\"%s\"", arrival_clock ());
  if (bench_options.rate > 0)
    g_string_append_printf (j, ",\"send_lag_us\":{\"p50\":%.1f,\"p99\":%.1f,\"max\":%.1f}",
                            bench_hist_quantile (lag, 0.5) / 1e3,
                            bench_hist_quantile (lag, 0.99) / 1e3, lag->max / 1e3);
  g_string_append_printf (j, ",\"tool_cpu_pct\":%.1f,\"tool_spin_pct\":%.1f", r->tool_cpu,
                          r->spin);
  if (r->server_ok)
    g_string_append_printf (j, ",\"server_pid\":%d,\"server_cpu_pct\":%.1f,\"server_rss_kib\":%ld,"
                            "\"server_hwm_kib\":%ld", bench_options.pid, r->server_cpu,
                            r->server.rss_kib, r->server.hwm_kib);
}

static void
json_slow (GString           *j,
           const BenchResult *r)
{
  const BenchConn *slow = bench_run.slow;
  char why[128];

  g_string_append_printf (j,
                          ",\"slow\":{\"events_while_stalled\":%" G_GUINT64_FORMAT ",\"events\":%"
                          G_GUINT64_FORMAT ",\"slow_consumer_error\":%s,\"close_code\":%d,"
                          "\"ended\":\"%s\",\"disconnected\":%s,\"last_event_sent_at_s\":%.3f}",
                          r->slow_events_before, slow->events, slow->slow_err ? "true" : "false",
                          slow->got_close ? slow->close_code : 0,
                          slow_end_text (slow, why, sizeof why),
                          slow->state == BENCH_CONN_CLOSED ? "true" : "false",
                          slow->last_sent_ts > bench_run.t_start
                            ? (gdouble) (slow->last_sent_ts - bench_run.t_start) / 1e9 : 0.0);
}

static void
json_publish (const BenchResult *r)
{
  g_autoptr (GString) j = g_string_new (NULL);

  json_common (j);
  json_nodes (j);
  json_counts (j, r);
  json_latency (j);
  json_cpu (j, r);
  if (bench_options.mode == BENCH_MODE_SLOW)
    json_slow (j, r);
  g_string_append_printf (j, ",\"ok\":%s}", r->ok ? "true" : "false");
  puts (j->str);
}

/* ------------------------------------------------------------------ text */

static void
text_counts (const BenchResult *r)
{
  printf ("pubsub-bench: %s, protocol=%s url=%s\n", bench_options.mode_name, protocol_name (),
          bench_options.url);
  printf ("setup: %d subscribers on %d topic(s), %d publisher(s), payload %d bytes, ",
          bench_run.n_subs, bench_options.topics, bench_run.n_pubs, bench_options.payload_len);
  if (bench_options.rate > 0)
    printf ("rate %.0f/s for %.1f s\n", bench_options.rate, r->run_s);
  else
    printf ("window %d for %.1f s\n", bench_options.window, r->run_s);
  printf ("published: %" G_GUINT64_FORMAT ", acked %" G_GUINT64_FORMAT ", errors %"
          G_GUINT64_FORMAT " -> %.0f publishes/s\n", r->sent, r->acked, r->pub_errors, r->pubs_s);
  printf ("delivered: %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT " events -> %.0f events/s\n",
          r->events, r->expected, r->events_s);
  printf ("integrity: lost %" G_GUINT64_FORMAT ", gaps %" G_GUINT64_FORMAT ", duplicates %"
          G_GUINT64_FORMAT ", out-of-order %" G_GUINT64_FORMAT ", disconnected %d, unparsed %"
          G_GUINT64_FORMAT " -> %s\n", r->lost, r->gaps, r->dups, r->reorder, r->disconnected,
          r->foreign + r->wrong_topic, r->ok ? "OK" : "FAILED");
}

static void
text_nodes (void)
{
  if (!bench_options.sub_urls)
    return;
  for (gint n = 0; n < bench_run.n_nodes; n++)
    {
      NodeTally t = node_tally (n);

      printf ("  subscribers on %s: %d, %" G_GUINT64_FORMAT " events, lost %" G_GUINT64_FORMAT
              ", disconnected %d\n", bench_options.sub_urls[n], t.subscribers, t.events, t.lost,
              t.disconnected);
    }
}

static void
text_latency (void)
{
  const BenchHist *h = &bench_run.hist, *lag = &bench_run.lag_hist;

  printf ("latency us: p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  (%" G_GUINT64_FORMAT
          " samples, arrival clock: %s)\n",
          bench_hist_quantile (h, 0.50) / 1e3, bench_hist_quantile (h, 0.90) / 1e3,
          bench_hist_quantile (h, 0.99) / 1e3, bench_hist_quantile (h, 0.999) / 1e3, h->max / 1e3,
          h->n, arrival_clock ());
  if (bench_options.rate > 0)
    printf ("send lag us (actual - scheduled send time): p50 %.1f  p99 %.1f  max %.1f\n",
            bench_hist_quantile (lag, 0.5) / 1e3, bench_hist_quantile (lag, 0.99) / 1e3,
            lag->max / 1e3);
}

static void
text_cpu (const BenchResult *r)
{
  printf ("cpu: tool %.1f%% of a core", r->tool_cpu);
  if (r->spin > 0.05)
    printf (" (%.1f%% of it busy-polling before scheduled sends)", r->spin);
  if (r->server_ok)
    printf (", server %.1f%% (pid %d, RSS %ld KiB, peak %ld KiB)", r->server_cpu,
            bench_options.pid, r->server.rss_kib, r->server.hwm_kib);
  printf ("\n");
}

static void
text_slow (void)
{
  const BenchConn *slow = bench_run.slow;
  char why[128];

  printf ("slow subscriber: %s; %" G_GUINT64_FORMAT " events received in all, %s the "
          "SLOW_CONSUMER error", slow->state == BENCH_CONN_CLOSED ? "disconnected"
                                                                   : "NOT disconnected",
          slow->events, slow->slow_err ? "with" : "without");
  printf ("; ended by %s", slow_end_text (slow, why, sizeof why));
  if (slow->last_sent_ts > bench_run.t_start)
    printf ("; its last event was published %.3f s into the run",
            (gdouble) (slow->last_sent_ts - bench_run.t_start) / 1e9);
  printf ("\n");
}

/* ------------------------------------------------------------------ the results */

void
bench_report_publish (const BenchResult *r)
{
  if (bench_options.json)
    json_publish (r);
  else
    {
      text_counts (r);
      text_nodes ();
      text_latency ();
      text_cpu (r);
      if (bench_options.mode == BENCH_MODE_SLOW)
        text_slow ();
    }
  if (r->tool_cpu - r->spin > 90.0)
    fprintf (stderr, "pubsub-bench: warning: the tool used %.0f%% of a core and may be the "
             "bottleneck\n", r->tool_cpu - r->spin);
}

void
bench_report_idle (const BenchIdleResult *r)
{
  glong before = r->server_before.rss_kib, after = r->server_after.rss_kib;
  gint n = bench_run.n_subs;
  gdouble per = n ? (gdouble) (after - before) / n : 0;
  g_autoptr (GString) j = NULL;

  if (!bench_options.json)
    {
      printf ("pubsub-bench: idle, protocol=%s url=%s pid=%d\n", protocol_name (),
              bench_options.url, bench_options.pid);
      printf ("connections: %d subscribed, %d still open after %.1f s\n", n, r->open,
              bench_options.hold);
      printf ("server RSS: %ld KiB before, %ld KiB after -> %.2f KiB per connection\n", before,
              after, per);
      return;
    }
  j = g_string_new (NULL);
  json_common (j);
  g_string_append_printf (j,
                          ",\"connections\":%d,\"open_at_end\":%d,\"hold_s\":%.1f,"
                          "\"rss_before_kib\":%ld,\"rss_after_kib\":%ld,"
                          "\"rss_per_conn_kib\":%.2f,\"tool_cpu_pct\":%.1f,\"ok\":%s}",
                          n, r->open, bench_options.hold, before, after, per, r->tool_cpu_pct,
                          r->ok ? "true" : "false");
  puts (j->str);
}
