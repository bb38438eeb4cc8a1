/* pubsub-metrics.h: what operators scrape: counters, histograms and their
 * Prometheus text
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <glib-object.h>

#include "pubsub-broker.h"

G_BEGIN_DECLS

/* Room for the finite buckets and the +Inf one. */
#define PUBSUB_HISTOGRAM_SLOTS 32

/**
 * PubsubHistogram:
 * @counts: observations per bucket, not cumulative; bucket i (i < n_finite)
 *   holds the values in (2^(i-1), 2^i] (bucket 0: 0 and 1), bucket n_finite
 *   everything larger (+Inf)
 * @sum: the sum of the observed values
 * @n_finite: how many finite buckets there are (at most SLOTS - 1)
 *
 * A histogram of integers over fixed powers of two: an observation finds its
 * bucket with one count-leading-zeros, without a loop over the bounds, a lock
 * or an allocation.
 */
typedef struct {
  guint64 counts[PUBSUB_HISTOGRAM_SLOTS];
  guint64 sum;
  guint   n_finite;
} PubsubHistogram;

/* The smallest i with value <= 2^i. */
static inline guint
pubsub_histogram_bucket (guint64 value)
{
  if (value <= 1)
    return 0;
#if defined(__GNUC__) || defined(__clang__)
  return 64 - (guint) __builtin_clzll (value - 1);
#else
  {
    guint bits = 0;

    for (value -= 1; value != 0; value >>= 1)
      bits++;
    return bits;
  }
#endif
}

static inline void
pubsub_histogram_observe (PubsubHistogram *histogram,
                          guint64          value)
{
  guint bucket = pubsub_histogram_bucket (value);

  histogram->counts[MIN (bucket, histogram->n_finite)]++;
  histogram->sum += value;
}

void    pubsub_histogram_init      (PubsubHistogram       *histogram,
                                    guint                  n_finite);
guint64 pubsub_histogram_get_count (const PubsubHistogram *histogram);

/**
 * PubsubCounters:
 * @latency: µs from a publish being accepted to its event's last byte being
 *   handed to the kernel, once per subscriber and live event; its count is
 *   the number of live events delivered
 * @queue_depth: frames in a subscriber's queue when a flush starts
 * @replayed: events from the history (and those sent while a replay catches
 *   up) handed to the kernel
 * @received_bytes: WebSocket bytes read from client sockets
 * @sent_bytes: WebSocket bytes written to client sockets
 * @slow_consumers: connections cut for not reading fast enough
 *
 * The counters of the hot paths, incremented in place where the work is
 * done: a subscriber keeps a pointer to them. Single-threaded, like the
 * daemon.
 */
typedef struct {
  PubsubHistogram latency;
  PubsubHistogram queue_depth;
  guint64         replayed;
  guint64         received_bytes;
  guint64         sent_bytes;
  guint64         slow_consumers;
} PubsubCounters;

/**
 * PubsubRefusal:
 * @PUBSUB_REFUSAL_MAX_CONNECTIONS: over max-connections (503)
 * @PUBSUB_REFUSAL_UNAUTHORIZED: no API key or a wrong one (401)
 * @PUBSUB_REFUSAL_ERROR: the server could not take the client (its socket
 *   could not be watched)
 *
 * Why a client was turned away; the label values of
 * pubsub_connections_refused_total.
 */
typedef enum {
  PUBSUB_REFUSAL_MAX_CONNECTIONS,
  PUBSUB_REFUSAL_UNAUTHORIZED,
  PUBSUB_REFUSAL_ERROR,
  PUBSUB_N_REFUSALS
} PubsubRefusal;

void            pubsub_counters_init            (PubsubCounters *counters);

#define PUBSUB_TYPE_METRICS (pubsub_metrics_get_type ())

G_DECLARE_FINAL_TYPE (PubsubMetrics, pubsub_metrics, PUBSUB, METRICS, GObject)

PubsubMetrics  *pubsub_metrics_new              (PubsubBroker  *broker);
PubsubCounters *pubsub_metrics_get_counters     (PubsubMetrics *self);
void            pubsub_metrics_count_refusal    (PubsubMetrics *self,
                                                 PubsubRefusal  reason);
void            pubsub_metrics_track_connection (PubsubMetrics *self,
                                                 GObject       *connection);
guint           pubsub_metrics_get_open_connections (PubsubMetrics *self);
char           *pubsub_metrics_render           (PubsubMetrics *self,
                                                 guint          websocket_connections,
                                                 gsize         *out_len);

G_END_DECLS
