/* bench-stats.h: the latency histogram and samples of a process's CPU time
 * and memory
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Log-linear (HDR style): values below 256 ns exactly, then 128 sub-buckets
 * per power of two, i.e. better than 0.8 % relative precision over the whole
 * 64-bit range (1 µs .. 60 s and beyond). Values are nanoseconds. */
#define BENCH_HIST_SUB   128u
#define BENCH_HIST_SLOTS (2u * BENCH_HIST_SUB + 57u * BENCH_HIST_SUB)

typedef struct {
  guint64 counts[BENCH_HIST_SLOTS];
  guint64 n;
  guint64 max;
  guint64 min;
  gdouble sum;
} BenchHist;

static inline guint
bench_hist_index (guint64 value)
{
  guint msb, shift;

  if (value < 2 * BENCH_HIST_SUB)
    return (guint) value;
  msb = 63u - (guint) __builtin_clzll (value);
  shift = msb - 7u;
  return 2 * BENCH_HIST_SUB + (shift - 1u) * BENCH_HIST_SUB +
         (guint) ((value >> shift) - BENCH_HIST_SUB);
}

/* Inline: every event a subscriber receives lands here. */
static inline void
bench_hist_add (BenchHist *hist,
                guint64    value)
{
  hist->counts[bench_hist_index (value)]++;
  hist->n++;
  hist->sum += (gdouble) value;
  if (value > hist->max)
    hist->max = value;
  if (value < hist->min || hist->n == 1)
    hist->min = value;
}

guint64 bench_hist_quantile (const BenchHist *hist,
                             gdouble          q);

/* Of a server process, from /proc; ok is FALSE when there is no such pid. */
typedef struct {
  gboolean ok;
  guint64  cpu_ticks;   /* utime + stime */
  glong    rss_kib;
  glong    hwm_kib;
} BenchProcSample;

BenchProcSample bench_proc_sample (gint pid);

/* User + system CPU seconds of this process so far. */
gdouble bench_self_cpu_s (void);

/* "kernel", "clock" or "mixed": where the arrival times came from. */
const char *bench_arrival_clock (guint64 n_kernel,
                                 guint64 n_clock);

G_END_DECLS
