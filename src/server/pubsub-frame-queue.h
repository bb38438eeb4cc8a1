/* pubsub-frame-queue.h: a FIFO of shared frames with vectored draining
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* Frames are counted until their last byte has been handed to the kernel;
 * the head frame may be partly written (head_sent bytes). */
typedef struct {
  GBytes **frames;      /* owned ring of capacity entries, owned refs */
  guint    capacity;    /* 0 or a power of two */
  guint    head;
  guint    length;
  gsize    head_sent;
} PubsubFrameQueue;

void   pubsub_frame_queue_init     (PubsubFrameQueue *queue);
void   pubsub_frame_queue_clear    (PubsubFrameQueue *queue);
void   pubsub_frame_queue_push     (PubsubFrameQueue *queue,
                                    GBytes           *frame);
guint  pubsub_frame_queue_vectors  (PubsubFrameQueue *queue,
                                    GOutputVector    *vectors,
                                    guint             max_vectors);
void   pubsub_frame_queue_consume  (PubsubFrameQueue *queue,
                                    gsize             written);

static inline guint
pubsub_frame_queue_length (const PubsubFrameQueue *queue)
{
  return queue->length;
}

G_END_DECLS
