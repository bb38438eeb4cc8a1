/* bench-util.h: what every part of pubsub-bench uses: fatal errors and
 * progress notes, the monotonic clock, a growable byte buffer, a ring of
 * 32-bit numbers and the interrupt flag
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <signal.h>
#include <string.h>
#include <time.h>

#include <glib.h>

G_BEGIN_DECLS

#define BENCH_LITERAL_LEN(lit) (sizeof (lit) - 1)

/* Set by SIGINT and SIGTERM once bench_install_signal_handlers () ran. */
extern volatile sig_atomic_t bench_interrupted;

void bench_install_signal_handlers (void);

/* "pubsub-bench: " + the message on stderr, then exit status 2. */
G_GNUC_NORETURN G_GNUC_PRINTF (1, 2)
void bench_die  (const char *format,
                 ...);
/* The same without exiting, and only with --verbose. */
G_GNUC_PRINTF (1, 2)
void bench_note (const char *format,
                 ...);

static inline guint64
bench_now_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (guint64) ts.tv_sec * 1000000000u + (guint64) ts.tv_nsec;
}

/* Bytes in a plain array, grown by doubling and never shrunk: connections
 * reuse theirs for every frame, so the hot path does not allocate. */
typedef struct {
  gchar *data;   /* owned */
  gsize  len;
  gsize  cap;
} BenchBuf;

void bench_buf_grow  (BenchBuf *buf,
                      gsize     need);
void bench_buf_clear (BenchBuf *buf);

static inline void
bench_buf_reserve (BenchBuf *buf,
                   gsize     extra)
{
  if (buf->len + extra > buf->cap)
    bench_buf_grow (buf, buf->len + extra);
}

static inline void
bench_buf_append (BenchBuf   *buf,
                  const void *data,
                  gsize       len)
{
  bench_buf_reserve (buf, len);
  memcpy (buf->data + buf->len, data, len);
  buf->len += len;
}

/* A FIFO of 32-bit numbers in a ring that doubles when full. */
typedef struct {
  guint32 *values;   /* owned */
  guint    head;
  guint    len;
  guint    cap;
} BenchU32Queue;

void     bench_u32_queue_push  (BenchU32Queue *queue,
                                guint32        value);
gboolean bench_u32_queue_pop   (BenchU32Queue *queue,
                                guint32       *value);
void     bench_u32_queue_clear (BenchU32Queue *queue);

G_END_DECLS
