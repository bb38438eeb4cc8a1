/* bench-stats.c: the latency histogram's quantiles and samples of a
 * process's CPU time and memory
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>

#include "bench-stats.h"

/* The middle of the bucket at idx. */
static guint64
hist_value (guint idx)
{
  guint j, shift;
  guint64 sub, lo, hi;

  if (idx < 2 * BENCH_HIST_SUB)
    return idx;
  j = idx - 2 * BENCH_HIST_SUB;
  shift = j / BENCH_HIST_SUB + 1u;
  sub = j % BENCH_HIST_SUB + BENCH_HIST_SUB;
  lo = sub << shift;
  hi = ((sub + 1) << shift) - 1;
  return lo + (hi - lo) / 2;
}

/* Clamped to the exact minimum and maximum seen. */
guint64
bench_hist_quantile (const BenchHist *hist,
                     gdouble          q)
{
  guint64 want, seen = 0;

  if (!hist->n)
    return 0;
  want = (guint64) ceil (q * (gdouble) hist->n);
  if (want < 1)
    want = 1;
  for (guint i = 0; i < BENCH_HIST_SLOTS; i++)
    {
      seen += hist->counts[i];
      if (seen >= want)
        {
          guint64 v = hist_value (i);

          return v > hist->max ? hist->max : v < hist->min ? hist->min : v;
        }
    }
  return hist->max;
}

static void
read_proc_stat (gint             pid,
                BenchProcSample *sample)
{
  char path[64];
  g_autofree char *text = NULL;
  char *paren;
  gulong utime = 0, stime = 0;

  snprintf (path, sizeof path, "/proc/%d/stat", pid);
  if (!g_file_get_contents (path, &text, NULL, NULL))
    return;
  /* after ") ": state(3) ppid pgrp session tty tpgid flags minflt cminflt
   * majflt cmajflt utime(14) stime(15) */
  paren = strrchr (text, ')');
  if (paren && sscanf (paren + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
                       &utime, &stime) == 2)
    {
      sample->ok = TRUE;
      sample->cpu_ticks = utime + stime;
    }
}

static void
read_proc_status (gint             pid,
                  BenchProcSample *sample)
{
  char path[64];
  g_autofree char *text = NULL;
  char *line;

  snprintf (path, sizeof path, "/proc/%d/status", pid);
  if (!g_file_get_contents (path, &text, NULL, NULL))
    return;
  line = strstr (text, "\nVmRSS:");
  if (line)
    sample->rss_kib = strtol (line + 7, NULL, 10);
  line = strstr (text, "\nVmHWM:");
  if (line)
    sample->hwm_kib = strtol (line + 7, NULL, 10);
}

BenchProcSample
bench_proc_sample (gint pid)
{
  BenchProcSample sample = { 0 };

  if (pid <= 0)
    return sample;
  read_proc_stat (pid, &sample);
  read_proc_status (pid, &sample);
  return sample;
}

gdouble
bench_self_cpu_s (void)
{
  struct rusage ru;

  getrusage (RUSAGE_SELF, &ru);
  return (gdouble) ru.ru_utime.tv_sec + (gdouble) ru.ru_utime.tv_usec / 1e6 +
         (gdouble) ru.ru_stime.tv_sec + (gdouble) ru.ru_stime.tv_usec / 1e6;
}

const char *
bench_arrival_clock (guint64 n_kernel,
                     guint64 n_clock)
{
  if (!n_clock && n_kernel)
    return "kernel";
  if (!n_kernel)
    return "clock";
  return n_kernel > 100 * n_clock ? "kernel" : "mixed";
}
