/* pubsub-frame-queue.c: a FIFO of shared frames with vectored draining
 *
 * The queue holds references to frames that are shared with other queues
 * and with topic histories; it never copies their bytes. Draining produces
 * an iovec array for one writev() covering many frames.
 *
 * Each frame carries a stamp saying what it is: a live event (with the
 * monotonic time its publish was accepted), a replayed event, or anything
 * else. When a frame's last byte is consumed, the stamp feeds the delivery
 * counters: no clock read of its own (the caller reads the clock once per
 * write), no allocation.
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include "pubsub-frame-queue.h"

#define INITIAL_CAPACITY 8

void
pubsub_frame_queue_init (PubsubFrameQueue *queue)
{
  *queue = (PubsubFrameQueue) { NULL, 0, 0, 0, 0 };
}

void
pubsub_frame_queue_clear (PubsubFrameQueue *queue)
{
  for (guint i = 0; i < queue->length; i++)
    g_bytes_unref (queue->frames[(queue->head + i) & (queue->capacity - 1)].frame);
  g_free (queue->frames);
  pubsub_frame_queue_init (queue);
}

/* Unrolls the ring into a new array twice as large. */
static void
grow (PubsubFrameQueue *queue)
{
  guint capacity = queue->capacity == 0 ? INITIAL_CAPACITY : queue->capacity * 2;
  PubsubQueuedFrame *frames = g_new (PubsubQueuedFrame, capacity);

  for (guint i = 0; i < queue->length; i++)
    frames[i] = queue->frames[(queue->head + i) & (queue->capacity - 1)];
  g_free (queue->frames);
  queue->frames = frames;
  queue->capacity = capacity;
  queue->head = 0;
}

/**
 * pubsub_frame_queue_push_stamped:
 * @frame: a frame; the queue takes a new reference
 * @stamp: for a live event, when its publish was accepted (monotonic µs,
 *   > 0); %PUBSUB_FRAME_REPLAYED for an event from the history; else 0
 */
void
pubsub_frame_queue_push_stamped (PubsubFrameQueue *queue,
                                 GBytes           *frame,
                                 gint64            stamp)
{
  PubsubQueuedFrame *slot;

  /* An empty frame could never be consumed. */
  g_return_if_fail (g_bytes_get_size (frame) > 0);

  if (queue->length == queue->capacity)
    grow (queue);
  slot = &queue->frames[(queue->head + queue->length) & (queue->capacity - 1)];
  slot->frame = g_bytes_ref (frame);
  slot->stamp = stamp;
  queue->length++;
}

/**
 * pubsub_frame_queue_vectors:
 * @vectors: (out caller-allocates): room for @max_vectors
 *
 * Describes the unwritten bytes of the first frames, for one writev().
 *
 * Returns: the number of vectors filled
 */
guint
pubsub_frame_queue_vectors (PubsubFrameQueue *queue,
                            GOutputVector    *vectors,
                            guint             max_vectors)
{
  guint n = MIN (queue->length, max_vectors);

  for (guint i = 0; i < n; i++)
    {
      GBytes *frame = queue->frames[(queue->head + i) & (queue->capacity - 1)].frame;
      gsize size;
      const guint8 *data = g_bytes_get_data (frame, &size);

      vectors[i].buffer = data;
      vectors[i].size = size;
    }
  if (n > 0)
    {
      vectors[0].buffer = (const guint8 *) vectors[0].buffer + queue->head_sent;
      vectors[0].size -= queue->head_sent;
    }
  return n;
}

/* A frame just went out whole. */
static inline void
count_delivery (const PubsubQueuedFrame *entry,
                gint64                   now,
                PubsubCounters          *counters)
{
  if (entry->stamp > 0)
    pubsub_histogram_observe (&counters->latency, (guint64) MAX (now - entry->stamp, 0));
  else if (entry->stamp == PUBSUB_FRAME_REPLAYED)
    counters->replayed++;
}

/**
 * pubsub_frame_queue_consume_timed:
 * @written: bytes the kernel accepted from the vectors just described
 * @now: the monotonic time (µs) they were accepted, read once by the caller
 * @counters: (nullable): where delivered events are counted, with their
 *   latency
 *
 * Drops every frame written completely, counting its delivery; remembers
 * how much of the next one went out.
 */
void
pubsub_frame_queue_consume_timed (PubsubFrameQueue *queue,
                                  gsize             written,
                                  gint64            now,
                                  PubsubCounters   *counters)
{
  while (written > 0)
    {
      PubsubQueuedFrame *entry = &queue->frames[queue->head];
      gsize remaining = g_bytes_get_size (entry->frame) - queue->head_sent;

      g_assert (queue->length > 0);
      if (written < remaining)
        {
          queue->head_sent += written;
          return;
        }
      written -= remaining;
      if (counters != NULL)
        count_delivery (entry, now, counters);
      g_bytes_unref (entry->frame);
      queue->head = (queue->head + 1) & (queue->capacity - 1);
      queue->length--;
      queue->head_sent = 0;
    }
}
