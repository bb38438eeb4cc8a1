/* test-frame-queue.c: the ring of shared frames (src/pubsub-frame-queue.c)
 *
 * Frames are GBytes made with g_bytes_new_with_free_func(), whose free
 * function counts releases, so every test can see exactly when the queue
 * drops its last reference. Partial writes are simulated by consuming byte
 * counts that end inside frames, and a randomized test checks the queue
 * against a plain model (a GQueue and a byte string) through growth and
 * wraparound.
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <string.h>

#include <gio/gio.h>

#include "pubsub-frame-queue.h"

typedef struct {
  guint released;
} Tracker;

typedef struct {
  Tracker *tracker;
  gsize    size;
  guint8   data[];
} Block;

static void
block_free (gpointer user_data)
{
  Block *block = user_data;

  block->tracker->released++;
  g_free (block);
}

/* A frame of @size bytes whose content starts at @seed and counts up. */
static GBytes *
tracked_frame (Tracker *tracker,
               gsize    size,
               guint8   seed)
{
  Block *block = g_malloc (sizeof (Block) + size);

  block->tracker = tracker;
  block->size = size;
  for (gsize i = 0; i < size; i++)
    block->data[i] = (guint8) (seed + i);
  return g_bytes_new_with_free_func (block->data, size, block_free, block);
}

/* Pushes a new frame and drops the caller's reference: the queue owns it. */
static const guint8 *
push_owned (PubsubFrameQueue *queue,
            Tracker          *tracker,
            gsize             size,
            guint8            seed)
{
  g_autoptr(GBytes) frame = tracked_frame (tracker, size, seed);

  pubsub_frame_queue_push (queue, frame);
  return g_bytes_get_data (frame, NULL);
}

static void
test_empty (void)
{
  PubsubFrameQueue queue;
  GOutputVector vectors[4];

  pubsub_frame_queue_init (&queue);
  g_assert_cmpuint (pubsub_frame_queue_length (&queue), ==, 0);
  g_assert_cmpuint (pubsub_frame_queue_vectors (&queue, vectors, G_N_ELEMENTS (vectors)), ==, 0);
  pubsub_frame_queue_consume (&queue, 0);
  g_assert_cmpuint (pubsub_frame_queue_length (&queue), ==, 0);
  pubsub_frame_queue_clear (&queue);
  pubsub_frame_queue_clear (&queue);
  g_assert_cmpuint (pubsub_frame_queue_length (&queue), ==, 0);
}

static void
test_push_vectors (void)
{
  Tracker tracker = { 0 };
  PubsubFrameQueue queue;
  GOutputVector vectors[8];
  const guint8 *a;
  const guint8 *b;
  const guint8 *c;

  pubsub_frame_queue_init (&queue);
  a = push_owned (&queue, &tracker, 5, 0);
  b = push_owned (&queue, &tracker, 3, 100);
  c = push_owned (&queue, &tracker, 7, 200);

  /* The queue holds its own references. */
  g_assert_cmpuint (tracker.released, ==, 0);
  g_assert_cmpuint (pubsub_frame_queue_length (&queue), ==, 3);

  /* The vectors point at the frames' own bytes: nothing is copied. */
  g_assert_cmpuint (pubsub_frame_queue_vectors (&queue, vectors, G_N_ELEMENTS (vectors)), ==, 3);
  g_assert_true (vectors[0].buffer == a);
  g_assert_cmpuint (vectors[0].size, ==, 5);
  g_assert_true (vectors[1].buffer == b);
  g_assert_cmpuint (vectors[1].size, ==, 3);
  g_assert_true (vectors[2].buffer == c);
  g_assert_cmpuint (vectors[2].size, ==, 7);

  /* Describing the queue does not change it. */
  g_assert_cmpuint (pubsub_frame_queue_vectors (&queue, vectors, G_N_ELEMENTS (vectors)), ==, 3);
  g_assert_cmpuint (pubsub_frame_queue_length (&queue), ==, 3);
  g_assert_cmpuint (tracker.released, ==, 0);

  pubsub_frame_queue_clear (&queue);
  g_assert_cmpuint (tracker.released, ==, 3);
}

static void
test_partial_writes (void)
{
  Tracker tracker = { 0 };
  PubsubFrameQueue queue;
  GOutputVector vectors[8];
  const guint8 *a;
  const guint8 *b;
  const guint8 *c;
  const guint8 *x;
  const guint8 *y;
  const guint8 *z;

  pubsub_frame_queue_init (&queue);
  a = push_owned (&queue, &tracker, 5, 0);
  b = push_owned (&queue, &tracker, 3, 100);
  c = push_owned (&queue, &tracker, 7, 200);

  /* Two bytes of A went out: it still counts, from its third byte. */
  pubsub_frame_queue_consume (&queue, 2);
  g_assert_cmpuint (pubsub_frame_queue_length (&queue), ==, 3);
  g_assert_cmpuint (tracker.released, ==, 0);
  g_assert_cmpuint (pubsub_frame_queue_vectors (&queue, vectors, 8), ==, 3);
  g_assert_true (vectors[0].buffer == a + 2);
  g_assert_cmpuint (vectors[0].size, ==, 3);
  g_assert_true (vectors[1].buffer == b);
  g_assert_cmpuint (vectors[1].size, ==, 3);

  /* One more byte: still inside A. */
  pubsub_frame_queue_consume (&queue, 1);
  g_assert_cmpuint (pubsub_frame_queue_vectors (&queue, vectors, 8), ==, 3);
  g_assert_true (vectors[0].buffer == a + 3);
  g_assert_cmpuint (vectors[0].size, ==, 2);

  /* The rest of A exactly: A is released, B starts clean. */
  pubsub_frame_queue_consume (&queue, 2);
  g_assert_cmpuint (pubsub_frame_queue_length (&queue), ==, 2);
  g_assert_cmpuint (tracker.released, ==, 1);
  g_assert_cmpuint (pubsub_frame_queue_vectors (&queue, vectors, 8), ==, 2);
  g_assert_true (vectors[0].buffer == b);
  g_assert_cmpuint (vectors[0].size, ==, 3);

  /* Across a boundary: all of B and 4 bytes of C. */
  pubsub_frame_queue_consume (&queue, 3 + 4);
  g_assert_cmpuint (pubsub_frame_queue_length (&queue), ==, 1);
  g_assert_cmpuint (tracker.released, ==, 2);
  g_assert_cmpuint (pubsub_frame_queue_vectors (&queue, vectors, 8), ==, 1);
  g_assert_true (vectors[0].buffer == c + 4);
  g_assert_cmpuint (vectors[0].size, ==, 3);

  /* More frames behind the partly written one; then one write that ends
   * C, covers X and Y whole and stops inside Z. */
  x = push_owned (&queue, &tracker, 4, 10);
  y = push_owned (&queue, &tracker, 4, 20);
  z = push_owned (&queue, &tracker, 4, 30);
  g_assert_cmpuint (pubsub_frame_queue_vectors (&queue, vectors, 8), ==, 4);
  g_assert_true (vectors[0].buffer == c + 4);
  g_assert_true (vectors[1].buffer == x);
  g_assert_true (vectors[2].buffer == y);
  g_assert_true (vectors[3].buffer == z);
  pubsub_frame_queue_consume (&queue, 3 + 4 + 4 + 1);
  g_assert_cmpuint (pubsub_frame_queue_length (&queue), ==, 1);
  g_assert_cmpuint (tracker.released, ==, 5);
  g_assert_cmpuint (pubsub_frame_queue_vectors (&queue, vectors, 8), ==, 1);
  g_assert_true (vectors[0].buffer == z + 1);
  g_assert_cmpuint (vectors[0].size, ==, 3);

  /* Nothing written: no change. */
  pubsub_frame_queue_consume (&queue, 0);
  g_assert_cmpuint (pubsub_frame_queue_length (&queue), ==, 1);
  g_assert_cmpuint (pubsub_frame_queue_vectors (&queue, vectors, 8), ==, 1);
  g_assert_true (vectors[0].buffer == z + 1);

  pubsub_frame_queue_consume (&queue, 3);
  g_assert_cmpuint (pubsub_frame_queue_length (&queue), ==, 0);
  g_assert_cmpuint (tracker.released, ==, 6);
  g_assert_cmpuint (pubsub_frame_queue_vectors (&queue, vectors, 8), ==, 0);

  /* Emptied by consuming: the next frame starts clean. */
  x = push_owned (&queue, &tracker, 2, 0);
  g_assert_cmpuint (pubsub_frame_queue_vectors (&queue, vectors, 8), ==, 1);
  g_assert_true (vectors[0].buffer == x);
  g_assert_cmpuint (vectors[0].size, ==, 2);

  pubsub_frame_queue_clear (&queue);
  g_assert_cmpuint (tracker.released, ==, 7);
}

/* Checks that the queue holds frames whose first bytes are @seeds[0..n). */
static void
assert_seeds (PubsubFrameQueue *queue,
              const guint8     *seeds,
              guint             n)
{
  GOutputVector vectors[64];

  g_assert_cmpuint (n, <=, G_N_ELEMENTS (vectors));
  g_assert_cmpuint (pubsub_frame_queue_length (queue), ==, n);
  g_assert_cmpuint (pubsub_frame_queue_vectors (queue, vectors, G_N_ELEMENTS (vectors)), ==, n);
  for (guint i = 0; i < n; i++)
    g_assert_cmpuint (((const guint8 *) vectors[i].buffer)[0], ==, seeds[i]);
}

static void
test_growth_wraparound (void)
{
  Tracker tracker = { 0 };
  PubsubFrameQueue queue;
  guint8 seeds[64];
  guint first = 0;   /* seeds[first..next) are queued */
  guint next = 0;

  pubsub_frame_queue_init (&queue);

  /* Fill part of the initial ring, then drain most of it: the head moves on. */
  for (guint i = 0; i < 6; i++, next++)
    push_owned (&queue, &tracker, 3, seeds[next] = (guint8) next);
  for (guint i = 0; i < 5; i++, first++)
    pubsub_frame_queue_consume (&queue, 3);
  g_assert_cmpuint (tracker.released, ==, 5);
  assert_seeds (&queue, seeds + first, next - first);
  g_assert_cmpuint (queue.head, !=, 0);

  /* Push past the end of the ring (wrapping) and past its capacity (growing
   * while wrapped); the order must survive. */
  for (guint i = 0; i < 30; i++, next++)
    {
      guint capacity = queue.capacity;

      push_owned (&queue, &tracker, 3, seeds[next] = (guint8) next);
      assert_seeds (&queue, seeds + first, next + 1 - first);
      if (queue.capacity != capacity)
        g_assert_cmpuint (queue.capacity, ==, capacity * 2);
      /* A power of two. */
      g_assert_cmpuint (queue.capacity & (queue.capacity - 1), ==, 0);
      g_assert_cmpuint (queue.capacity, >=, queue.length);
    }
  g_assert_cmpuint (queue.length, ==, 31);
  g_assert_cmpuint (queue.capacity, ==, 32);

  /* Interleave: every step frees one and adds two, with a partial write
   * straddling each consumed frame, so the head laps the ring. */
  for (guint round = 0; round < 16; round++)
    {
      pubsub_frame_queue_consume (&queue, 2);
      pubsub_frame_queue_consume (&queue, 1);
      first++;
      push_owned (&queue, &tracker, 3, seeds[next % 64] = (guint8) next);
      next++;
      if (round % 2 == 0)
        {
          pubsub_frame_queue_consume (&queue, 3);
          first++;
        }
      else
        {
          push_owned (&queue, &tracker, 3, seeds[next % 64] = (guint8) next);
          next++;
        }
    }
  g_assert_cmpuint (tracker.released, ==, first);
  {
    guint8 expected[64];
    guint n = next - first;

    for (guint i = 0; i < n; i++)
      expected[i] = (guint8) (first + i);
    assert_seeds (&queue, expected, n);
  }

  pubsub_frame_queue_clear (&queue);
  g_assert_cmpuint (tracker.released, ==, next);
}

static void
test_vectors_max (void)
{
  Tracker tracker = { 0 };
  PubsubFrameQueue queue;
  GOutputVector vectors[16];
  gsize described = 0;
  guint n;

  pubsub_frame_queue_init (&queue);
  for (guint i = 0; i < 10; i++)
    push_owned (&queue, &tracker, 10 + i, (guint8) (i * 10));

  /* No more than asked for, and never past the caller's array. */
  memset (vectors, 0xAA, sizeof vectors);
  n = pubsub_frame_queue_vectors (&queue, vectors, 4);
  g_assert_cmpuint (n, ==, 4);
  for (guint i = 0; i < 4; i++)
    {
      g_assert_cmpuint (vectors[i].size, ==, 10 + i);
      g_assert_cmpuint (((const guint8 *) vectors[i].buffer)[0], ==, i * 10);
      described += vectors[i].size;
    }
  {
    GOutputVector untouched;

    memset (&untouched, 0xAA, sizeof untouched);
    g_assert_cmpmem (&vectors[4], sizeof vectors[4], &untouched, sizeof untouched);
  }
  g_assert_cmpuint (pubsub_frame_queue_vectors (&queue, vectors, 0), ==, 0);

  /* The kernel takes everything described: those four go. */
  pubsub_frame_queue_consume (&queue, described);
  g_assert_cmpuint (pubsub_frame_queue_length (&queue), ==, 6);
  g_assert_cmpuint (tracker.released, ==, 4);

  /* Asking for more than there is: what there is. */
  g_assert_cmpuint (pubsub_frame_queue_vectors (&queue, vectors, 16), ==, 6);
  g_assert_cmpuint (((const guint8 *) vectors[0].buffer)[0], ==, 40);

  /* One vector, partly written. */
  pubsub_frame_queue_consume (&queue, 5);
  g_assert_cmpuint (pubsub_frame_queue_vectors (&queue, vectors, 1), ==, 1);
  g_assert_cmpuint (vectors[0].size, ==, 14 - 5);
  g_assert_cmpuint (((const guint8 *) vectors[0].buffer)[0], ==, 45);

  pubsub_frame_queue_clear (&queue);
  g_assert_cmpuint (tracker.released, ==, 10);
}

static void
test_clear_releases (void)
{
  Tracker tracker = { 0 };
  PubsubFrameQueue queue;
  GOutputVector vectors[4];
  g_autoptr(GBytes) kept = NULL;
  guint pushed = 0;

  pubsub_frame_queue_init (&queue);
  for (guint i = 0; i < 7; i++, pushed++)
    push_owned (&queue, &tracker, 4, (guint8) i);
  for (guint i = 0; i < 5; i++)
    pubsub_frame_queue_consume (&queue, 4);
  for (guint i = 0; i < 12; i++, pushed++)
    push_owned (&queue, &tracker, 4, (guint8) i);

  /* A frame the caller still holds, and a partly written head. */
  kept = tracked_frame (&tracker, 4, 0);
  pubsub_frame_queue_push (&queue, kept);
  pubsub_frame_queue_consume (&queue, 1);
  g_assert_cmpuint (tracker.released, ==, 5);
  g_assert_cmpuint (pubsub_frame_queue_length (&queue), ==, 15);

  pubsub_frame_queue_clear (&queue);
  g_assert_cmpuint (tracker.released, ==, pushed);   /* all but the kept one */
  g_assert_cmpuint (pubsub_frame_queue_length (&queue), ==, 0);
  g_assert_null (queue.frames);
  g_assert_cmpuint (queue.capacity, ==, 0);
  g_assert_cmpuint (queue.head, ==, 0);
  g_assert_cmpuint (queue.head_sent, ==, 0);
  g_assert_cmpuint (pubsub_frame_queue_vectors (&queue, vectors, 4), ==, 0);

  /* The kept frame is intact and still ours. */
  g_assert_cmpuint (g_bytes_get_size (kept), ==, 4);
  g_clear_pointer (&kept, g_bytes_unref);
  g_assert_cmpuint (tracker.released, ==, pushed + 1);

  /* Usable again after a clear; the partial-write offset did not survive. */
  {
    const guint8 *data = push_owned (&queue, &tracker, 6, 0);

    g_assert_cmpuint (pubsub_frame_queue_vectors (&queue, vectors, 4), ==, 1);
    g_assert_true (vectors[0].buffer == data);
    g_assert_cmpuint (vectors[0].size, ==, 6);
  }
  pubsub_frame_queue_clear (&queue);
  g_assert_cmpuint (tracker.released, ==, pushed + 2);
}

/* One frame in several queues, and twice in one: freed after the last. */
static void
test_shared_frame (void)
{
  Tracker tracker = { 0 };
  PubsubFrameQueue q1;
  PubsubFrameQueue q2;
  GBytes *frame = tracked_frame (&tracker, 8, 0);
  GOutputVector v1[2];
  GOutputVector v2[2];

  pubsub_frame_queue_init (&q1);
  pubsub_frame_queue_init (&q2);
  pubsub_frame_queue_push (&q1, frame);
  pubsub_frame_queue_push (&q2, frame);
  pubsub_frame_queue_push (&q2, frame);
  g_bytes_unref (frame);

  /* Same bytes in both queues. */
  g_assert_cmpuint (pubsub_frame_queue_vectors (&q1, v1, 2), ==, 1);
  g_assert_cmpuint (pubsub_frame_queue_vectors (&q2, v2, 2), ==, 2);
  g_assert_true (v1[0].buffer == v2[0].buffer);
  g_assert_true (v2[0].buffer == v2[1].buffer);

  /* Each queue keeps its own progress through the same frame. */
  pubsub_frame_queue_consume (&q1, 3);
  pubsub_frame_queue_consume (&q2, 8 + 5);
  g_assert_cmpuint (pubsub_frame_queue_vectors (&q1, v1, 2), ==, 1);
  g_assert_cmpuint (pubsub_frame_queue_vectors (&q2, v2, 2), ==, 1);
  g_assert_cmpuint (v1[0].size, ==, 5);
  g_assert_cmpuint (v2[0].size, ==, 3);

  pubsub_frame_queue_consume (&q1, 5);
  g_assert_cmpuint (tracker.released, ==, 0);
  pubsub_frame_queue_clear (&q1);
  g_assert_cmpuint (tracker.released, ==, 0);
  pubsub_frame_queue_clear (&q2);
  g_assert_cmpuint (tracker.released, ==, 1);
}

/* Random pushes and partial writes against a model. */
static void
test_model (void)
{
  Tracker tracker = { 0 };
  PubsubFrameQueue queue;
  g_autoptr(GByteArray) expected = g_byte_array_new ();   /* everything pushed */
  g_autoptr(GByteArray) written = g_byte_array_new ();    /* everything "sent" */
  g_autoptr(GArray) sizes = g_array_new (FALSE, FALSE, sizeof (gsize));   /* queued frames */
  guint model_head = 0;     /* index in sizes of the head frame */
  gsize model_sent = 0;     /* bytes of it already sent */
  guint pushed = 0;
  guint completed = 0;

  pubsub_frame_queue_init (&queue);
  for (guint step = 0; step < 4000; step++)
    {
      guint queued = sizes->len - model_head;

      /* Bias towards growth in the first half, draining in the second. */
      if (queued == 0 || g_test_rand_int_range (0, 100) < (step < 2000 ? 60 : 35))
        {
          gsize size = (gsize) g_test_rand_int_range (1, 40);
          guint8 seed = (guint8) g_test_rand_int ();
          g_autoptr(GBytes) frame = tracked_frame (&tracker, size, seed);

          pubsub_frame_queue_push (&queue, frame);
          g_byte_array_append (expected, g_bytes_get_data (frame, NULL), (guint) size);
          g_array_append_val (sizes, size);
          pushed++;
        }
      else
        {
          GOutputVector vectors[8];
          guint max = (guint) g_test_rand_int_range (1, 9);
          guint n = pubsub_frame_queue_vectors (&queue, vectors, max);
          gsize available = 0;
          gsize amount;

          g_assert_cmpuint (n, ==, MIN (max, queued));
          for (guint i = 0; i < n; i++)
            available += vectors[i].size;
          /* The kernel takes some prefix of what was described. */
          amount = (gsize) g_test_rand_int_range (0, (gint32) available + 1);
          for (guint i = 0, left = (guint) amount; i < n && left > 0; i++)
            {
              guint chunk = MIN (left, (guint) vectors[i].size);

              g_byte_array_append (written, vectors[i].buffer, chunk);
              left -= chunk;
            }
          pubsub_frame_queue_consume (&queue, amount);

          /* The model. */
          while (amount > 0)
            {
              gsize remaining = g_array_index (sizes, gsize, model_head) - model_sent;

              if (amount < remaining)
                {
                  model_sent += amount;
                  amount = 0;
                }
              else
                {
                  amount -= remaining;
                  model_head++;
                  model_sent = 0;
                  completed++;
                }
            }
        }

      g_assert_cmpuint (pubsub_frame_queue_length (&queue), ==, sizes->len - model_head);
      g_assert_cmpuint (queue.head_sent, ==, model_sent);
      g_assert_cmpuint (tracker.released, ==, completed);
      g_assert_cmpmem (written->data, written->len, expected->data, written->len);
    }

  /* Drain the rest in one go. */
  {
    GOutputVector vectors[64];
    guint n;

    while ((n = pubsub_frame_queue_vectors (&queue, vectors, G_N_ELEMENTS (vectors))) > 0)
      {
        gsize amount = 0;

        for (guint i = 0; i < n; i++)
          {
            g_byte_array_append (written, vectors[i].buffer, (guint) vectors[i].size);
            amount += vectors[i].size;
          }
        pubsub_frame_queue_consume (&queue, amount);
      }
  }
  g_assert_cmpmem (written->data, written->len, expected->data, expected->len);
  g_assert_cmpuint (tracker.released, ==, pushed);
  pubsub_frame_queue_clear (&queue);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/frame-queue/empty", test_empty);
  g_test_add_func ("/frame-queue/push-vectors", test_push_vectors);
  g_test_add_func ("/frame-queue/partial-writes", test_partial_writes);
  g_test_add_func ("/frame-queue/growth-wraparound", test_growth_wraparound);
  g_test_add_func ("/frame-queue/vectors-max", test_vectors_max);
  g_test_add_func ("/frame-queue/clear-releases", test_clear_releases);
  g_test_add_func ("/frame-queue/shared-frame", test_shared_frame);
  g_test_add_func ("/frame-queue/model", test_model);

  return g_test_run ();
}
