/* pubsub-subscriber.c: one client connection's subscriptions and its
 * bounded outgoing queue
 *
 * Every frame for the client (events, replies, and WebSocket control frames)
 * goes through one FIFO of shared frames. A frame
 * counts against queue-size until its last byte is in the kernel; the queue is
 * drained with vectored non-blocking writes, in the I/O loop's flush pass
 * (once per main-loop iteration for every subscriber that has something
 * pending), so a burst of publishes costs each subscriber one sendmsg()
 * rather than one write() per event; with io_uring, the pass submits every
 * subscriber's send in one system call (on_flush_batch()).
 *
 * When a frame would exceed the bound and the socket takes nothing more, the
 * subscriber turns slow: it drops its subscriptions and emits
 * "slow-consumer"; the transport then closes the connection. Nothing else
 * ever waits for it.
 *
 * The flush counts what it does in the metrics' counters, in place: bytes
 * sent, the queue's depth, and for each event whose last byte the kernel
 * took, its latency since the publish was accepted (one clock read per
 * sendmsg(), not per event). Each subscription that ends tells its topic
 * who left and why.
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <errno.h>
#include <gio/gfiledescriptorbased.h>
#include <sys/socket.h>

#include "pubsub-frame-queue.h"
#include "pubsub-protocol.h"
#include "pubsub-settings.h"
#include "pubsub-subscriber.h"

/* Frames per writev(); well under IOV_MAX. */
#define MAX_VECTORS 256
/* Room above queue-size for the SLOW_CONSUMER error and the close frame. */
#define FINAL_FRAMES_SLACK 4

typedef struct {
  PubsubSubscriber *subscriber;   /* the owner */
  PubsubTopic      *topic;        /* owned */
  char             *client_id;    /* owned: told to the topic as it comes and goes */
  PubsubTopicListener listener;   /* in the topic's fan-out */
  /* While replaying: the topic's sequence number (count of messages before
   * it) of the next message to send from the history. */
  guint64           replay_next;
  gboolean          replaying;
} Subscription;

struct _PubsubSubscriber {
  GObject                parent_instance;

  PubsubIoLoop          *io;             /* owned */
  PubsubIoWatch          flush_watch;
  GPollableOutputStream *output;         /* owned; NULL once closed */
  int                    socket_fd;      /* output's socket, or -1 */
  GSource               *output_source;  /* owned; armed while the socket is full */
  gboolean               uring_sending;  /* the queue's head is on the flush pass's ring */
  PubsubSubscriberDrainedFunc drained_func;   /* nullable: then "drained" is emitted */
  gpointer               drained_data;
  PubsubFrameQueue       queue;
  guint                  queue_size;
  GHashTable            *subscriptions;  /* owned: topic name → owned Subscription */
  guint                  n_replaying;
  gboolean               slow;
  gboolean               told_unavailable;  /* this outage of the cluster */
  PubsubLeaveReason      leave_reason;   /* of the subscriptions being dropped */
  PubsubMetrics         *metrics;        /* owned, nullable */
  PubsubCounters        *counters;       /* the metrics' or own_counters */
  PubsubCounters        *own_counters;   /* owned, without metrics (unit tests) */
};

G_DEFINE_FINAL_TYPE (PubsubSubscriber, pubsub_subscriber, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_IO_LOOP,
  PROP_OUTPUT,
  PROP_QUEUE_SIZE,
  PROP_METRICS,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

enum {
  SIGNAL_SLOW_CONSUMER,
  SIGNAL_DRAINED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static void pump_replays (PubsubSubscriber *self);

/* Runs in the I/O loop's flush pass, in the same iteration as the socket
 * reads that queued the frames, after them. */
static void
schedule_flush (PubsubSubscriber *self)
{
  if (self->output_source != NULL)
    return;
  pubsub_io_loop_schedule (self->io, &self->flush_watch);
}

static void
on_flush (GObject *object)
{
  pubsub_subscriber_flush (PUBSUB_SUBSCRIBER (object));
}

static gboolean on_flush_batch (GObject *object, PubsubUring *uring);

/* ---------------------------------------------------------------------- */

static void
subscription_free (Subscription *subscription)
{
  if (subscription->replaying)
    subscription->subscriber->n_replaying--;
  pubsub_topic_remove_listener (subscription->topic, &subscription->listener);
  pubsub_topic_remove_subscriber (subscription->topic, subscription->client_id,
                                  subscription->subscriber->leave_reason);
  g_object_unref (subscription->topic);
  g_free (subscription->client_id);
  g_free (subscription);
}

/* Removes one subscription (NULL: all of them), telling the topic why. */
static void
drop_subscriptions (PubsubSubscriber  *self,
                    const char        *topic,
                    PubsubLeaveReason  reason,
                    gboolean          *out_found)
{
  gboolean found = TRUE;

  self->leave_reason = reason;
  if (topic != NULL)
    found = g_hash_table_remove (self->subscriptions, topic);
  else
    g_hash_table_remove_all (self->subscriptions);
  self->leave_reason = PUBSUB_LEAVE_CLOSED;
  if (out_found != NULL)
    *out_found = found;
}

static void
pubsub_subscriber_dispose (GObject *object)
{
  PubsubSubscriber *self = PUBSUB_SUBSCRIBER (object);

  pubsub_subscriber_close (self);
  if (self->io != NULL)
    pubsub_io_loop_cancel (self->io, &self->flush_watch);
  g_clear_object (&self->io);

  G_OBJECT_CLASS (pubsub_subscriber_parent_class)->dispose (object);
}

static void
pubsub_subscriber_finalize (GObject *object)
{
  PubsubSubscriber *self = PUBSUB_SUBSCRIBER (object);

  g_hash_table_unref (self->subscriptions);
  pubsub_frame_queue_clear (&self->queue);
  /* Kept to the end: self->counters points into it. */
  g_clear_object (&self->metrics);
  g_free (self->own_counters);

  G_OBJECT_CLASS (pubsub_subscriber_parent_class)->finalize (object);
}

/* The descriptor under @output if it is a socket's stream, else -1. */
static int
socket_fd_of (GPollableOutputStream *output)
{
  int fd;
  int type;
  socklen_t len = sizeof type;

  if (!G_IS_FILE_DESCRIPTOR_BASED (output))
    return -1;
  fd = g_file_descriptor_based_get_fd (G_FILE_DESCRIPTOR_BASED (output));
  if (getsockopt (fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM)
    return -1;
  return fd;
}

static void
pubsub_subscriber_set_property (GObject      *object,
                                guint         prop_id,
                                const GValue *value,
                                GParamSpec   *pspec)
{
  PubsubSubscriber *self = PUBSUB_SUBSCRIBER (object);

  switch (prop_id)
    {
    case PROP_IO_LOOP:
      self->io = g_value_dup_object (value);
      break;
    case PROP_OUTPUT:
      self->output = g_value_dup_object (value);
      self->socket_fd = socket_fd_of (self->output);
      break;
    case PROP_QUEUE_SIZE:
      self->queue_size = g_value_get_uint (value);
      break;
    case PROP_METRICS:
      self->metrics = g_value_dup_object (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
pubsub_subscriber_get_property (GObject    *object,
                                guint       prop_id,
                                GValue     *value,
                                GParamSpec *pspec)
{
  PubsubSubscriber *self = PUBSUB_SUBSCRIBER (object);

  switch (prop_id)
    {
    case PROP_IO_LOOP:
      g_value_set_object (value, self->io);
      break;
    case PROP_OUTPUT:
      g_value_set_object (value, self->output);
      break;
    case PROP_QUEUE_SIZE:
      g_value_set_uint (value, self->queue_size);
      break;
    case PROP_METRICS:
      g_value_set_object (value, self->metrics);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
pubsub_subscriber_constructed (GObject *object)
{
  PubsubSubscriber *self = PUBSUB_SUBSCRIBER (object);

  G_OBJECT_CLASS (pubsub_subscriber_parent_class)->constructed (object);

  /* Counting is never skipped on the hot path: without a registry, into
   * counters nobody reads. */
  if (self->metrics != NULL)
    {
      self->counters = pubsub_metrics_get_counters (self->metrics);
      return;
    }
  self->own_counters = g_new (PubsubCounters, 1);
  pubsub_counters_init (self->own_counters);
  self->counters = self->own_counters;
}

static void
pubsub_subscriber_class_init (PubsubSubscriberClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->constructed = pubsub_subscriber_constructed;
  object_class->dispose = pubsub_subscriber_dispose;
  object_class->finalize = pubsub_subscriber_finalize;
  object_class->get_property = pubsub_subscriber_get_property;
  object_class->set_property = pubsub_subscriber_set_property;

  properties[PROP_IO_LOOP] =
    g_param_spec_object ("io-loop", NULL, NULL, PUBSUB_TYPE_IO_LOOP,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  properties[PROP_OUTPUT] =
    g_param_spec_object ("output", NULL, NULL, G_TYPE_POLLABLE_OUTPUT_STREAM,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  properties[PROP_QUEUE_SIZE] =
    g_param_spec_uint ("queue-size", NULL, NULL,
                       pubsub_setting_get_min (PUBSUB_SETTING_QUEUE_SIZE),
                       pubsub_setting_get_max (PUBSUB_SETTING_QUEUE_SIZE),
                       pubsub_setting_get_default_uint (PUBSUB_SETTING_QUEUE_SIZE),
                       G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  /* Where deliveries, bytes and slow consumers are counted; may be NULL. */
  properties[PROP_METRICS] =
    g_param_spec_object ("metrics", NULL, NULL, PUBSUB_TYPE_METRICS,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * PubsubSubscriber::slow-consumer:
   *
   * Emitted once, when the queue overflowed. The subscriber has already
   * dropped its subscriptions; the owner closes the connection.
   */
  signals[SIGNAL_SLOW_CONSUMER] =
    g_signal_new ("slow-consumer", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 0);

  /**
   * PubsubSubscriber::drained:
   *
   * Emitted when a flush empties the queue, unless the owner set a
   * drained function (pubsub_subscriber_set_drained_func()).
   */
  signals[SIGNAL_DRAINED] =
    g_signal_new ("drained", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
pubsub_subscriber_init (PubsubSubscriber *self)
{
  self->socket_fd = -1;
  self->leave_reason = PUBSUB_LEAVE_CLOSED;
  self->flush_watch.object = G_OBJECT (self);
  self->flush_watch.func = on_flush;
  self->flush_watch.batch = on_flush_batch;
  pubsub_frame_queue_init (&self->queue);
  self->subscriptions = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                               (GDestroyNotify) subscription_free);
}

/**
 * pubsub_subscriber_new:
 * @io: the I/O loop whose flush pass writes the queue
 * @output: a #GPollableOutputStream to the client (its socket)
 * @queue_size: frames that may wait for the kernel before the client is cut
 * @metrics: (nullable): where deliveries, bytes and slow consumers are counted
 */
PubsubSubscriber *
pubsub_subscriber_new (PubsubIoLoop  *io,
                       GOutputStream *output,
                       guint          queue_size,
                       PubsubMetrics *metrics)
{
  g_return_val_if_fail (PUBSUB_IS_IO_LOOP (io), NULL);
  g_return_val_if_fail (G_IS_POLLABLE_OUTPUT_STREAM (output), NULL);
  g_return_val_if_fail (metrics == NULL || PUBSUB_IS_METRICS (metrics), NULL);

  return g_object_new (PUBSUB_TYPE_SUBSCRIBER,
                       "io-loop", io,
                       "output", output,
                       "queue-size", queue_size,
                       "metrics", metrics,
                       NULL);
}

static gboolean
on_output_writable (GObject  *stream,
                    gpointer  user_data)
{
  PubsubSubscriber *self = user_data;

  g_clear_pointer (&self->output_source, g_source_unref);
  pubsub_subscriber_flush (self);
  return G_SOURCE_REMOVE;
}

static void
wait_for_writable (PubsubSubscriber *self)
{
  self->output_source = g_pollable_output_stream_create_source (self->output, NULL);
  g_source_set_static_name (self->output_source, "pubsub-subscriber-output");
  g_source_set_callback (self->output_source, G_SOURCE_FUNC (on_output_writable),
                         g_object_ref (self), g_object_unref);
  g_source_attach (self->output_source, g_main_context_get_thread_default ());
}

/* GOutputVector has the layout of struct iovec on Unix (GLib relies on it
 * too), so a socket gets one sendmsg() without GIO's per-call checks: on a
 * fan-out to 1,000 subscribers they were a tenth of the work per event. */
G_STATIC_ASSERT (sizeof (GOutputVector) == sizeof (struct iovec));
G_STATIC_ASSERT (G_STRUCT_OFFSET (GOutputVector, buffer) == G_STRUCT_OFFSET (struct iovec, iov_base));
G_STATIC_ASSERT (G_STRUCT_OFFSET (GOutputVector, size) == G_STRUCT_OFFSET (struct iovec, iov_len));

static GPollableReturn
write_vectors (PubsubSubscriber  *self,
               GOutputVector     *vectors,
               guint              n_vectors,
               gsize             *written,
               GError           **error)
{
  struct msghdr message = { .msg_iov = (struct iovec *) vectors, .msg_iovlen = n_vectors };
  gssize sent;

  if (self->socket_fd < 0)
    return g_pollable_output_stream_writev_nonblocking (self->output, vectors, n_vectors,
                                                        written, NULL, error);
  do
    sent = sendmsg (self->socket_fd, &message, MSG_NOSIGNAL | MSG_DONTWAIT);
  while (sent < 0 && errno == EINTR);
  if (sent >= 0)
    {
      *written = (gsize) sent;
      return G_POLLABLE_RETURN_OK;
    }
  if (errno == EAGAIN || errno == EWOULDBLOCK)
    return G_POLLABLE_RETURN_WOULD_BLOCK;
  g_set_error_literal (error, G_IO_ERROR, g_io_error_from_errno (errno), g_strerror (errno));
  return G_POLLABLE_RETURN_FAILED;
}

/* The peer is gone; the reading side will notice and close. */
static void
stop_writing (PubsubSubscriber *self,
              const char       *why)
{
  g_debug ("write to subscriber failed: %s", why);
  pubsub_frame_queue_clear (&self->queue);
  g_clear_object (&self->output);
  self->socket_fd = -1;
}

/* Hands queued frames to the kernel until the queue is empty or the socket
 * is full (then resumes by itself once it is writable again).
 *
 * Returns: %TRUE if the queue is empty */
static gboolean
write_queue (PubsubSubscriber *self)
{
  if (self->output == NULL || self->output_source != NULL || G_UNLIKELY (self->uring_sending))
    return FALSE;

  while (pubsub_frame_queue_length (&self->queue) > 0)
    {
      GOutputVector vectors[MAX_VECTORS];
      guint n = pubsub_frame_queue_vectors (&self->queue, vectors, MAX_VECTORS);
      g_autoptr(GError) error = NULL;
      gsize written = 0;
      GPollableReturn result;

      result = write_vectors (self, vectors, n, &written, &error);
      if (result == G_POLLABLE_RETURN_WOULD_BLOCK)
        {
          wait_for_writable (self);
          return FALSE;
        }
      if (result == G_POLLABLE_RETURN_FAILED)
        {
          stop_writing (self, error->message);
          return FALSE;
        }
      self->counters->sent_bytes += written;
      pubsub_frame_queue_consume_timed (&self->queue, written, g_get_monotonic_time (),
                                        self->counters);
    }
  return TRUE;
}

/**
 * pubsub_subscriber_flush:
 *
 * Hands as much of the queue to the kernel as it takes, without blocking,
 * refilling it from replays in progress as it empties; when the socket is
 * full, resumes by itself once it is writable again. Emits "drained" when
 * nothing is left.
 */
/* The queue's depth as a flush starts, for the metrics. */
static void
observe_depth (PubsubSubscriber *self)
{
  if (pubsub_frame_queue_length (&self->queue) > 0)
    pubsub_histogram_observe (&self->counters->queue_depth,
                              pubsub_frame_queue_length (&self->queue));
}

/* pubsub_subscriber_flush() once the depth is counted */
static void
flush_counted (PubsubSubscriber *self)
{
  while (write_queue (self) && self->n_replaying > 0)
    {
      pump_replays (self);
      if (pubsub_frame_queue_length (&self->queue) == 0)
        break;
    }

  if (self->output != NULL && pubsub_frame_queue_length (&self->queue) == 0)
    {
      if (self->drained_func != NULL)
        self->drained_func (self, self->drained_data);
      else
        g_signal_emit (self, signals[SIGNAL_DRAINED], 0);
    }
}

/**
 * pubsub_subscriber_set_drained_func:
 * @func: (nullable): called whenever a flush empties the queue, instead of
 *   emitting "drained"; %NULL to emit the signal again
 *
 * For the owner, which cares only now and then (while closing) but would
 * otherwise pay a signal emission (about 270 instructions) on every flush.
 */
void
pubsub_subscriber_set_drained_func (PubsubSubscriber            *self,
                                    PubsubSubscriberDrainedFunc  func,
                                    gpointer                     user_data)
{
  g_return_if_fail (PUBSUB_IS_SUBSCRIBER (self));

  self->drained_func = func;
  self->drained_data = user_data;
}

void
pubsub_subscriber_flush (PubsubSubscriber *self)
{
  g_return_if_fail (PUBSUB_IS_SUBSCRIBER (self));

  if (self->output == NULL || self->output_source != NULL)
    return;

  observe_depth (self);
  flush_counted (self);
}

/* The io_uring send of on_flush_batch() is done: the rest as in any flush. */
static void
on_batch_sent (GObject *object,
               gssize   result)
{
  PubsubSubscriber *self = PUBSUB_SUBSCRIBER (object);

  self->uring_sending = FALSE;
  if (self->output == NULL || self->output_source != NULL)
    return;
  if (result == -EAGAIN || result == -EWOULDBLOCK)
    {
      wait_for_writable (self);
      return;
    }
  if (result < 0)
    {
      stop_writing (self, g_strerror ((int) -result));
      return;
    }
  self->counters->sent_bytes += (guint64) result;
  pubsub_frame_queue_consume_timed (&self->queue, (gsize) result, g_get_monotonic_time (),
                                    self->counters);
  flush_counted (self);
}

/* The flush pass with io_uring: the first sendmsg() of
 * pubsub_subscriber_flush() goes on the ring, to be submitted with every
 * other subscriber's at the end of the pass. Until then nothing else writes
 * to this socket (the flush pass runs no reads and no publishes), and the
 * frames described stay in the queue.
 *
 * Returns: %FALSE if there is nothing to send that way (flush as usual) */
static gboolean
on_flush_batch (GObject     *object,
                PubsubUring *uring)
{
  PubsubSubscriber *self = PUBSUB_SUBSCRIBER (object);
  GOutputVector *vectors;
  guint n;

  if (self->socket_fd < 0 || self->output_source != NULL ||
      pubsub_frame_queue_length (&self->queue) == 0)
    return FALSE;
  observe_depth (self);
  vectors = pubsub_uring_reserve (uring, MAX_VECTORS);
  n = pubsub_frame_queue_vectors (&self->queue, vectors, MAX_VECTORS);
  pubsub_uring_send (uring, self->socket_fd, n, object, on_batch_sent);
  self->uring_sending = TRUE;
  return TRUE;
}

static void
become_slow (PubsubSubscriber *self)
{
  g_autoptr(PubsubSubscriber) hold = g_object_ref (self);

  g_debug ("subscriber exceeded its queue of %u frames", self->queue_size);
  self->slow = TRUE;
  self->counters->slow_consumers++;
  drop_subscriptions (self, NULL, PUBSUB_LEAVE_SLOW_CONSUMER, NULL);
  g_signal_emit (self, signals[SIGNAL_SLOW_CONSUMER], 0);
}

/* Queues @frame within the bound, stamped for the metrics (see
 * pubsub_frame_queue_push_stamped()). When the queue is full the socket gets
 * one more chance to take frames right now (a reading client is never cut
 * just because the flush pass has not run yet); if it takes none, the
 * subscriber is a slow consumer.
 *
 * Returns: %FALSE if the frame was dropped because the subscriber is slow
 *   or closed */
static gboolean
queue_frame (PubsubSubscriber *self,
             GBytes           *frame,
             gint64            stamp)
{
  if (G_UNLIKELY (self->slow || self->output == NULL))
    return FALSE;

  if (G_UNLIKELY (pubsub_frame_queue_length (&self->queue) >= self->queue_size))
    {
      write_queue (self);
      if (self->output == NULL)
        return FALSE;   /* the flush found the peer gone */
      if (pubsub_frame_queue_length (&self->queue) >= self->queue_size)
        {
          become_slow (self);
          return FALSE;
        }
    }

  pubsub_frame_queue_push_stamped (&self->queue, frame, stamp);
  schedule_flush (self);
  return TRUE;
}

/**
 * pubsub_subscriber_send:
 * @frame: a complete WebSocket frame, shared, not copied
 *
 * Queues @frame within the bound; a subscriber that cannot take it is a
 * slow consumer.
 *
 * Returns: %FALSE if the frame was dropped because the subscriber is slow
 *   or closed
 */
gboolean
pubsub_subscriber_send (PubsubSubscriber *self,
                        GBytes           *frame)
{
  return queue_frame (self, frame, 0);
}

/**
 * pubsub_subscriber_send_final:
 * @frame: a complete WebSocket frame
 *
 * Queues a frame that must go out even past the bound: the SLOW_CONSUMER
 * error and the close frame after it. A few at most, ever.
 */
void
pubsub_subscriber_send_final (PubsubSubscriber *self,
                              GBytes           *frame)
{
  g_return_if_fail (PUBSUB_IS_SUBSCRIBER (self));

  if (self->output == NULL ||
      pubsub_frame_queue_length (&self->queue) >= self->queue_size + FINAL_FRAMES_SLACK)
    return;

  pubsub_frame_queue_push (&self->queue, frame);
  schedule_flush (self);
}

/* Sends what the queue has room for from the history, oldest first, and
 * switches the subscription to live events once it has caught up. A replay
 * larger than queue-size goes out as fast as the client reads it; only a
 * client so far behind that the history has moved past its position is cut.
 *
 * Returns: %FALSE if the subscriber turned slow (the subscription is gone) */
static gboolean
pump_replay (Subscription *subscription)
{
  PubsubSubscriber *self = subscription->subscriber;
  PubsubTopic *topic = subscription->topic;
  guint64 published = pubsub_topic_get_messages (topic);
  guint64 oldest = published - pubsub_topic_get_history_length (topic);

  for (; subscription->replay_next < published; subscription->replay_next++)
    {
      PubsubMessage *message;

      if (subscription->replay_next < oldest)
        {
          become_slow (self);
          return FALSE;
        }
      /* Full: what the kernel takes now no longer counts; otherwise the
       * flush pass comes back here once it has taken some. */
      if (self->output == NULL)
        return TRUE;   /* the peer is gone; closing will drop the subscription */
      if (pubsub_frame_queue_length (&self->queue) >= self->queue_size)
        {
          write_queue (self);
          if (pubsub_frame_queue_length (&self->queue) >= self->queue_size)
            return TRUE;
        }
      message = pubsub_topic_get_history_item (topic, (guint) (subscription->replay_next - oldest));
      pubsub_frame_queue_push_stamped (&self->queue, pubsub_message_get_frame (message),
                                       PUBSUB_FRAME_REPLAYED);
      schedule_flush (self);
    }

  subscription->replaying = FALSE;
  self->n_replaying--;
  return TRUE;
}

static void
pump_replays (PubsubSubscriber *self)
{
  GHashTableIter iter;
  gpointer subscription;

  if (G_LIKELY (self->n_replaying == 0) || self->slow)
    return;

  g_hash_table_iter_init (&iter, self->subscriptions);
  while (g_hash_table_iter_next (&iter, NULL, &subscription))
    {
      if (((Subscription *) subscription)->replaying && !pump_replay (subscription))
        return;   /* slow: every subscription is gone */
    }
}

static void
on_topic_event (PubsubTopic   *topic,
                PubsubMessage *message,
                gpointer       user_data)
{
  Subscription *subscription = user_data;

  /* While replaying, the new message is in the history behind the others. */
  if (G_UNLIKELY (subscription->replaying))
    pump_replay (subscription);
  else
    queue_frame (subscription->subscriber, pubsub_message_get_frame (message),
                 pubsub_message_get_accepted (message));
}

static void
on_topic_deleted (PubsubTopic *topic,
                  gpointer     user_data)
{
  Subscription *subscription = user_data;
  PubsubSubscriber *self = subscription->subscriber;
  const char *name = pubsub_topic_get_name (topic);
  g_autoptr(GBytes) info = pubsub_frame_new_info ("topic_deleted", name);

  drop_subscriptions (self, name, PUBSUB_LEAVE_TOPIC_DELETED, NULL);
  pubsub_subscriber_send (self, info);
}

/* The topic goes on after a gap the engine could not fill: the client is
 * told where, instead of seeing a silent one; a replay in progress has
 * nothing left to replay. */
static void
on_topic_lost (PubsubTopic *topic,
               gpointer     user_data)
{
  Subscription *subscription = user_data;
  PubsubSubscriber *self = subscription->subscriber;
  guint64 last = pubsub_topic_get_messages (topic);
  g_autoptr(GBytes) info = pubsub_frame_new_messages_lost (pubsub_topic_get_name (topic),
                                                           last + 1,
                                                           pubsub_topic_get_epoch (topic));

  if (subscription->replaying)
    {
      subscription->replaying = FALSE;
      self->n_replaying--;
    }
  subscription->replay_next = last;
  pubsub_subscriber_send (self, info);
}

/* Once per outage and connection, however many topics it follows. */
static void
on_topic_availability (PubsubTopic *topic,
                       gboolean     available,
                       gpointer     user_data)
{
  Subscription *subscription = user_data;
  PubsubSubscriber *self = subscription->subscriber;
  g_autoptr(GBytes) info = NULL;

  if (available || self->told_unavailable)
    {
      self->told_unavailable = !available;
      return;
    }
  self->told_unavailable = TRUE;
  info = pubsub_frame_new_info ("cluster_unavailable", NULL);
  pubsub_subscriber_send (self, info);
}

/**
 * pubsub_subscriber_subscribe:
 * @topic: the topic
 * @client_id: the client's name for itself, told to the topic as it joins
 *   and leaves
 * @replay_after: the seq after which the replay starts (the topic's last
 *   seq for none): see pubsub_topic_replay_start()
 *
 * Replays the stored messages after @replay_after, oldest first, then
 * delivers live events. The replay is paced by the client: it counts
 * against queue-size, and what the kernel has taken no longer counts. The
 * daemon is single-threaded and the replay reads from the history by
 * sequence number, so nothing published meanwhile is lost or repeated.
 *
 * Returns: %FALSE if already subscribed (nothing is replayed again)
 */
gboolean
pubsub_subscriber_subscribe (PubsubSubscriber *self,
                             PubsubTopic      *topic,
                             const char       *client_id,
                             guint64           replay_after)
{
  const char *name = pubsub_topic_get_name (topic);
  Subscription *subscription;

  g_return_val_if_fail (PUBSUB_IS_SUBSCRIBER (self), FALSE);

  if (self->slow || g_hash_table_contains (self->subscriptions, name))
    return FALSE;

  subscription = g_new0 (Subscription, 1);
  subscription->subscriber = self;
  subscription->topic = g_object_ref (topic);
  subscription->client_id = g_strdup (client_id);
  subscription->listener.event = on_topic_event;
  subscription->listener.deleted = on_topic_deleted;
  subscription->listener.lost = on_topic_lost;
  subscription->listener.availability = on_topic_availability;
  subscription->listener.user_data = subscription;
  pubsub_topic_add_listener (topic, &subscription->listener);
  subscription->replay_next = replay_after;
  g_hash_table_insert (self->subscriptions, (gpointer) name, subscription);
  pubsub_topic_add_subscriber (topic, subscription->client_id);

  if (subscription->replay_next < pubsub_topic_get_messages (topic))
    {
      subscription->replaying = TRUE;
      self->n_replaying++;
      pump_replay (subscription);
    }
  return TRUE;
}

/**
 * pubsub_subscriber_unsubscribe:
 * @topic: the topic's name
 *
 * Returns: %TRUE if there was such a subscription
 */
gboolean
pubsub_subscriber_unsubscribe (PubsubSubscriber *self,
                               const char       *topic)
{
  gboolean found;

  g_return_val_if_fail (PUBSUB_IS_SUBSCRIBER (self), FALSE);

  drop_subscriptions (self, topic, PUBSUB_LEAVE_UNSUBSCRIBED, &found);
  return found;
}

/**
 * pubsub_subscriber_unsubscribe_all:
 * @reason: why, as the topics will tell
 */
void
pubsub_subscriber_unsubscribe_all (PubsubSubscriber  *self,
                                   PubsubLeaveReason  reason)
{
  g_return_if_fail (PUBSUB_IS_SUBSCRIBER (self));

  drop_subscriptions (self, NULL, reason, NULL);
}

guint
pubsub_subscriber_get_subscription_count (PubsubSubscriber *self)
{
  g_return_val_if_fail (PUBSUB_IS_SUBSCRIBER (self), 0);

  return g_hash_table_size (self->subscriptions);
}

guint
pubsub_subscriber_get_queue_length (PubsubSubscriber *self)
{
  g_return_val_if_fail (PUBSUB_IS_SUBSCRIBER (self), 0);

  return pubsub_frame_queue_length (&self->queue);
}

gboolean
pubsub_subscriber_is_slow (PubsubSubscriber *self)
{
  g_return_val_if_fail (PUBSUB_IS_SUBSCRIBER (self), FALSE);

  return self->slow;
}

/**
 * pubsub_subscriber_close:
 *
 * Drops subscriptions and pending frames and stops writing. Idempotent.
 */
void
pubsub_subscriber_close (PubsubSubscriber *self)
{
  g_return_if_fail (PUBSUB_IS_SUBSCRIBER (self));

  drop_subscriptions (self, NULL, PUBSUB_LEAVE_CLOSED, NULL);
  if (self->output_source != NULL)
    {
      g_source_destroy (self->output_source);
      g_clear_pointer (&self->output_source, g_source_unref);
    }
  g_clear_object (&self->output);
  self->socket_fd = -1;
  pubsub_frame_queue_clear (&self->queue);
}
