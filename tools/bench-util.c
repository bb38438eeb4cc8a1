/* bench-util.c: fatal errors and progress notes, the byte buffer, the ring
 * of 32-bit numbers and the interrupt flag of pubsub-bench
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench-options.h"
#include "bench-util.h"

volatile sig_atomic_t bench_interrupted;

static void
on_signal (int sig)
{
  (void) sig;
  bench_interrupted = 1;
}

/* SIGPIPE is ignored: a server that goes away shows up as EPIPE on send(). */
void
bench_install_signal_handlers (void)
{
  struct sigaction sa = { .sa_handler = on_signal };

  signal (SIGPIPE, SIG_IGN);
  sigaction (SIGINT, &sa, NULL);
  sigaction (SIGTERM, &sa, NULL);
}

static G_GNUC_PRINTF (1, 0) void
print_message (const char *format,
               va_list     args)
{
  fputs ("pubsub-bench: ", stderr);
  vfprintf (stderr, format, args);
  fputc ('\n', stderr);
}

void
bench_die (const char *format,
           ...)
{
  va_list args;

  va_start (args, format);
  print_message (format, args);
  va_end (args);
  exit (2);
}

void
bench_note (const char *format,
            ...)
{
  va_list args;

  if (!bench_options.verbose)
    return;
  va_start (args, format);
  print_message (format, args);
  va_end (args);
}

void
bench_buf_grow (BenchBuf *buf,
                gsize     need)
{
  gsize cap = buf->cap ? buf->cap : 512;

  while (cap < need)
    cap *= 2;
  buf->data = g_realloc (buf->data, cap);
  buf->cap = cap;
}

void
bench_buf_clear (BenchBuf *buf)
{
  g_clear_pointer (&buf->data, g_free);
  buf->len = buf->cap = 0;
}

void
bench_u32_queue_push (BenchU32Queue *queue,
                      guint32        value)
{
  if (queue->len == queue->cap)
    {
      guint cap = queue->cap ? queue->cap * 2 : 16;
      guint32 *values = g_new (guint32, cap);

      for (guint i = 0; i < queue->len; i++)
        values[i] = queue->values[(queue->head + i) % queue->cap];
      g_free (queue->values);
      queue->values = values;
      queue->cap = cap;
      queue->head = 0;
    }
  queue->values[(queue->head + queue->len++) % queue->cap] = value;
}

gboolean
bench_u32_queue_pop (BenchU32Queue *queue,
                     guint32       *value)
{
  if (!queue->len)
    return FALSE;
  *value = queue->values[queue->head];
  queue->head = (queue->head + 1) % queue->cap;
  queue->len--;
  return TRUE;
}

void
bench_u32_queue_clear (BenchU32Queue *queue)
{
  g_clear_pointer (&queue->values, g_free);
  queue->head = queue->len = queue->cap = 0;
}
