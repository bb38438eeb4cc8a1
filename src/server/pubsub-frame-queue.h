/* pubsub-frame-queue.h: a FIFO of shared frames with vectored draining
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <gio/gio.h>

#include "pubsub-metrics.h"

G_BEGIN_DECLS

/* The stamp of an event replayed from a topic's history. */
#define PUBSUB_FRAME_REPLAYED ((gint64) -1)

/* One queued frame and what it is, for the metrics. */
typedef struct {
  GBytes *frame;   /* owned ref */
  /* > 0: a live event, accepted then (monotonic µs);
   * PUBSUB_FRAME_REPLAYED: an event from the history; 0: any other frame */
  gint64  stamp;
} PubsubQueuedFrame;

/* Frames are counted until their last byte has been handed to the kernel;
 * the head frame may be partly written (head_sent bytes). */
typedef struct {
  PubsubQueuedFrame *frames;    /* owned ring of capacity entries */
  guint              capacity;  /* 0 or a power of two */
  guint              head;
  guint              length;
  gsize              head_sent;
} PubsubFrameQueue;

void   pubsub_frame_queue_init          (PubsubFrameQueue *queue);
void   pubsub_frame_queue_clear         (PubsubFrameQueue *queue);
void   pubsub_frame_queue_push_stamped  (PubsubFrameQueue *queue,
                                         GBytes           *frame,
                                         gint64            stamp);
guint  pubsub_frame_queue_vectors       (PubsubFrameQueue *queue,
                                         GOutputVector    *vectors,
                                         guint             max_vectors);
void   pubsub_frame_queue_consume_timed (PubsubFrameQueue *queue,
                                         gsize             written,
                                         gint64            now,
                                         PubsubCounters   *counters);

static inline void
pubsub_frame_queue_push (PubsubFrameQueue *queue,
                         GBytes           *frame)
{
  pubsub_frame_queue_push_stamped (queue, frame, 0);
}

static inline void
pubsub_frame_queue_consume (PubsubFrameQueue *queue,
                            gsize             written)
{
  pubsub_frame_queue_consume_timed (queue, written, 0, NULL);
}

static inline guint
pubsub_frame_queue_length (const PubsubFrameQueue *queue)
{
  return queue->length;
}

G_END_DECLS
