/* bench-modes.c: the phases of a pubsub-bench run
 *
 * Setup (bench-client.c) connects and subscribes everything; then fanout and
 * slow publish for --duration, in window mode (every confirmation lets the
 * next publish go, see bench_pub_fill ()) or on the fixed --rate schedule
 * here, and drain until every publish is confirmed and every subscriber has
 * the last message of every publisher. Slow mode stops one subscriber's
 * reading for the whole time and lets it read what is left afterwards; idle
 * holds the connections and samples the server's memory.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <unistd.h>

#include "bench-client.h"
#include "bench-modes.h"
#include "bench-options.h"
#include "bench-protocol.h"
#include "bench-report.h"

static guint64 next_send_at = G_MAXUINT64;   /* --rate: the next scheduled publish */
static guint64 spin_ns;                      /* --rate: busy polls that found nothing */

/* ------------------------------------------------------------------ --rate */

/* Publisher i sends its k-th message at t_start + (k * P + i) / rate. */
static inline guint64
sched_time (const BenchConn *c)
{
  return bench_run.t_start +
         (guint64) (((gdouble) c->sent * bench_run.n_pubs + c->idx) * 1e9 / bench_options.rate);
}

/* Sends what is due; returns the next scheduled send time. */
static guint64
rate_send_due (guint64 now)
{
  guint64 next = G_MAXUINT64;

  for (gint i = 0; i < bench_run.n_pubs; i++)
    {
      BenchConn *c = bench_run.pubs[i];
      guint64 s;

      if (c->state != BENCH_CONN_OPEN)
        continue;
      while ((s = sched_time (c)) <= now && s < bench_run.t_stop)
        {
          bench_hist_add (&bench_run.lag_hist, now - s);
          bench_publish_one (c, s);
        }
      if (s < next)
        next = s;
    }
  next_send_at = next;
  return next;
}

/* Called by the loop in the middle of a long batch of reads once
 * next_send_at has come. */
static void
rate_catch_up (guint64 now)
{
  rate_send_due (now);
  for (gint p = 0; p < bench_run.n_pubs; p++)
    if (bench_run.pubs[p]->dirty)
      bench_conn_flush (bench_run.pubs[p]);
}

/* Sleeps on the timer until --spin-us before the next publish, then polls
 * without sleeping so that the tool's wake-up delay stays out of the
 * latency. */
static void
publish_at_rate (void)
{
  guint64 spin = (guint64) MAX (bench_options.spin_us, 0) * 1000u, now;

  if (spin > (guint64) (0.5e9 / bench_options.rate))
    spin = (guint64) (0.5e9 / bench_options.rate);
  while (!bench_interrupted && (now = bench_now_ns ()) < bench_run.t_stop)
    {
      guint64 next = rate_send_due (now);

      bench_flush_dirty ();
      if (next > bench_run.t_stop)
        next = bench_run.t_stop;
      if (next > now + spin)
        {
          bench_loop_arm_timer (next - spin);
          bench_loop_once (100);
        }
      else if (bench_loop_once (0) == 0) /* busy-poll up to the scheduled time */
        spin_ns += bench_now_ns () - now;
    }
}

/* ------------------------------------------------------------------ publishing */

static void
publish_in_window (void)
{
  for (gint i = 0; i < bench_run.n_pubs; i++)
    bench_pub_fill (bench_run.pubs[i], bench_run.t_start);
  bench_flush_dirty ();
  while (!bench_interrupted && bench_now_ns () < bench_run.t_stop)
    bench_loop_once (bench_ms_until (bench_run.t_stop, 100));
}

static void
publish (void)
{
  gboolean at_rate = bench_options.rate > 0;

  if (at_rate)
    bench_loop_add_timer ();
  bench_run.t_start = bench_now_ns ();
  bench_run.t_stop = bench_run.t_start + (guint64) (bench_options.duration * 1e9);
  bench_run.warm_until = bench_run.t_start + (guint64) (bench_options.warmup * 1e9);
  bench_run.running = TRUE;
  if (at_rate)
    {
      bench_loop_set_due (rate_catch_up, &next_send_at);
      publish_at_rate ();
    }
  else
    publish_in_window ();
  bench_run.running = FALSE;
  bench_loop_set_due (NULL, NULL);
  if (bench_interrupted)
    bench_run.t_stop = bench_now_ns ();
}

static guint64
expected_for (const BenchConn *s)
{
  guint64 e = 0;

  for (gint p = 0; p < bench_run.n_pubs; p++)
    e += bench_run.pubs[p]->seq[s->topic];
  return e;
}

/* Every publish is confirmed and every open fast subscriber has seen the
 * last sequence number of every publisher. */
static gboolean
drain_done (void)
{
  guint64 want = 0;

  for (gint p = 0; p < bench_run.n_pubs; p++)
    if (bench_run.pubs[p]->state == BENCH_CONN_OPEN && bench_run.pubs[p]->unconfirmed)
      return FALSE;
  for (gint i = 0; i < bench_run.n_subs; i++)
    {
      const BenchConn *s = bench_run.subs[i];

      if (s->state == BENCH_CONN_OPEN)
        want += expected_for (s);
      else
        for (gint p = 0; p < bench_run.n_pubs; p++)
          want += s->last[p];
    }
  return bench_run.sum_last >= want;
}

/* nats confirms PUBs by PONG: ask for the last ones, then wait at most
 * --drain-timeout, checking every 2 ms. */
static void
drain (void)
{
  guint64 deadline, last_check = 0;

  if (bench_options.nats)
    for (gint i = 0; i < bench_run.n_pubs; i++)
      if (bench_run.pubs[i]->state == BENCH_CONN_OPEN && bench_run.pubs[i]->since_ping)
        bench_nats_ping (bench_run.pubs[i]);
  bench_flush_dirty ();
  deadline = bench_now_ns () + (guint64) (bench_options.drain * 1e9);
  while (bench_now_ns () < deadline)
    {
      guint64 now = bench_now_ns ();

      if (now - last_check > 2000000u)
        {
          last_check = now;
          if (drain_done ())
            break;
        }
      bench_loop_once (2);
    }
}

/* ------------------------------------------------------------------ across nodes */

static gint
count_probed (void)
{
  gint n = 0;

  for (gint i = 0; i < bench_run.n_conns; i++)
    n += bench_run.conns[i].role != BENCH_ROLE_PUB && bench_run.conns[i].probed;
  return n;
}

/* The subscribers other than publishers: fast ones and the slow one. */
static gint
count_subscribers (void)
{
  return bench_run.n_subs + (bench_run.slow ? 1 : 0);
}

/* Every 20 ms, one probe per topic from the first publisher, until every
 * subscriber has one; dies after --sync-timeout. */
static void
probe_until_reached (guint64 deadline)
{
  BenchConn *p = bench_run.pubs[0];
  guint64 next_round = 0, now;
  gint want = count_subscribers ();

  while (count_probed () < want)
    {
      if (bench_interrupted)
        bench_die ("interrupted while probing the nodes");
      now = bench_now_ns ();
      if (now > deadline)
        bench_die ("after %.0f s, a probe published on %s had reached only %d of %d "
                   "subscribers: do the nodes pass messages to each other?",
                   bench_options.sync_timeout, bench_options.url, count_probed (), want);
      if (now >= next_round)
        {
          for (gint t = 0; t < bench_options.topics; t++)
            bench_publish_probe (p, t, bench_run.probe_rounds);
          if (bench_options.nats)
            bench_nats_ping (p);
          bench_run.probe_rounds++;
          bench_flush_dirty ();
          next_round = now + 20000000u;
        }
      bench_loop_once (5);
    }
}

/* With --sub-url the subscribers are on other nodes than the publishers, and
 * a node that acknowledged a subscribe has not necessarily told the
 * publishers' node yet (nats-server spreads interest over its routes
 * asynchronously), so messages published at once could be lost before the
 * cluster has settled rather than by the cluster: probe first, then forget
 * the probes' own counts. */
static void
sync_nodes (void)
{
  guint64 t0 = bench_now_ns ();
  guint64 deadline = t0 + (guint64) (bench_options.sync_timeout * 1e9);
  BenchConn *p = bench_run.pubs[0];

  probe_until_reached (deadline);
  while (p->unconfirmed && p->state == BENCH_CONN_OPEN)
    {
      if (bench_now_ns () > deadline)
        bench_die ("the probes were not all confirmed within %.0f s", bench_options.sync_timeout);
      bench_loop_once (5);
    }
  if (p->errors)
    bench_die ("%" G_GUINT64_FORMAT " probe publishes were refused", p->errors);
  p->sent = p->acked = p->unconfirmed = p->since_ping = 0;
  bench_run.sync_s = (gdouble) (bench_now_ns () - t0) / 1e9;
  bench_note ("a probe reached every subscriber after %.3f s (%" G_GUINT64_FORMAT " rounds)",
              bench_run.sync_s, bench_run.probe_rounds);
}

/* ------------------------------------------------------------------ the modes */

/* Publishes and drains; fills r with the counts and the CPU use meanwhile. */
static void
measure_publishing (BenchResult *r)
{
  gdouble cpu_start = bench_self_cpu_s (), span;
  BenchProcSample srv0 = bench_proc_sample (bench_options.pid), srv1;
  guint64 t_end;

  publish ();
  drain ();
  t_end = bench_now_ns ();
  r->tool_cpu = bench_self_cpu_s () - cpu_start;
  srv1 = bench_proc_sample (bench_options.pid);
  bench_result_collect (r);
  span = (gdouble) (t_end - bench_run.t_start) / 1e9;
  r->tool_cpu = 100.0 * r->tool_cpu / span;
  r->spin = 100.0 * (gdouble) spin_ns / 1e9 / span;
  r->server = srv1;
  r->server_ok = srv0.ok && srv1.ok;
  r->server_cpu = r->server_ok ? 100.0 * (gdouble) (srv1.cpu_ticks - srv0.cpu_ticks) /
                                 (gdouble) sysconf (_SC_CLK_TCK) / span
                               : 0;
}

/* Lets the slow subscriber read what the server left for it, until it is cut
 * or has had nothing for 3 s (at most 15 s). */
static void
slow_read_out (BenchResult *r)
{
  BenchConn *slow = bench_run.slow;
  guint64 limit;

  r->slow_events_before = slow->events;
  bench_conn_resume (slow);
  limit = bench_now_ns () + 15000000000u;
  slow->last_rx = bench_now_ns ();
  while (slow->state == BENCH_CONN_OPEN && bench_now_ns () < limit &&
         bench_now_ns () - slow->last_rx < 3000000000u)
    bench_loop_once (100);
}

gint
bench_mode_publish (void)
{
  BenchResult r = { 0 };
  gint status;

  bench_client_connect_all ();
  if (bench_options.sub_urls && bench_options.sync_timeout > 0 && bench_run.n_pubs > 0)
    sync_nodes ();
  if (bench_options.mode == BENCH_MODE_SLOW)
    bench_conn_pause (bench_run.slow);
  measure_publishing (&r);
  status = r.ok ? 0 : 1;
  if (bench_options.mode == BENCH_MODE_SLOW)
    {
      slow_read_out (&r);
      if (r.ok && bench_run.slow->state == BENCH_CONN_OPEN)
        status = 3;
    }
  bench_report_publish (&r);
  bench_client_close_all ();
  return status;
}

gint
bench_mode_idle (void)
{
  BenchIdleResult r = { 0 };
  gdouble cpu0, cpu, wall;
  guint64 wall0, until;

  r.server_before = bench_proc_sample (bench_options.pid);
  cpu0 = bench_self_cpu_s ();
  wall0 = bench_now_ns ();
  bench_client_connect_all ();
  until = bench_now_ns () + (guint64) (bench_options.hold * 1e9);
  while (!bench_interrupted && bench_now_ns () < until)
    bench_loop_once (bench_ms_until (until, 100));
  r.server_after = bench_proc_sample (bench_options.pid);
  cpu = bench_self_cpu_s () - cpu0;
  wall = (gdouble) (bench_now_ns () - wall0) / 1e9;
  r.tool_cpu_pct = 100.0 * cpu / wall;
  for (gint i = 0; i < bench_run.n_subs; i++)
    r.open += bench_run.subs[i]->state == BENCH_CONN_OPEN;
  r.ok = r.open == bench_run.n_subs;
  bench_report_idle (&r);
  bench_run.shutting_down = TRUE;
  return r.ok ? 0 : 1;
}
