/* bench-report.h: the results of a run, tallied from the connections and
 * printed as text or as one JSON object (tests/bench/compare reads the
 * JSON)
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <glib.h>

#include "bench-stats.h"

G_BEGIN_DECLS

/* --mode idle */
typedef struct {
  gint            open;          /* subscribers still open at the end */
  BenchProcSample server_before;
  BenchProcSample server_after;
  gdouble         tool_cpu_pct;
  gboolean        ok;
} BenchIdleResult;

/* --mode fanout and slow */
typedef struct {
  guint64         sent, acked, pub_errors;
  guint64         events, expected, lost, gaps, dups, reorder, foreign, wrong_topic;
  gint            disconnected;
  gdouble         run_s;         /* publishing time */
  gdouble         events_s;      /* events / time to the last event */
  gdouble         pubs_s;        /* acks / time to the last ack */
  gdouble         tool_cpu;      /* % of a core */
  gdouble         spin;          /* % of a core busy-polling (--rate) */
  gboolean        server_ok;     /* --pid given and readable */
  gdouble         server_cpu;    /* % of a core */
  BenchProcSample server;        /* at the end of publishing */
  gboolean        ok;            /* see bench_result_collect () */
  guint64         slow_events_before;   /* slow: events before it read again */
} BenchResult;

/* Adds up the counters of every connection into r: sent .. disconnected,
 * run_s, events_s, pubs_s and ok (no loss, gap, duplicate, reordering,
 * disconnection, error or foreign event, and every publish acknowledged). */
void bench_result_collect (BenchResult           *r);

void bench_report_idle    (const BenchIdleResult *r);
void bench_report_publish (const BenchResult     *r);

G_END_DECLS
