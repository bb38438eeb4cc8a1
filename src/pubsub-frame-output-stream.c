/* pubsub-frame-output-stream.c: libsoup's output, routed into a subscriber
 *
 * SoupWebsocketConnection keeps its own unbounded, invisible queue and writes
 * one frame per write() call. We never let it: this stream is the output side
 * it is given, and every write is accepted whole and appended, as one frame,
 * to the subscriber's bounded queue — behind the events and replies already
 * there. libsoup only writes control frames here (pongs, close), because the
 * broker builds and queues its text frames itself.
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include "pubsub-frame-output-stream.h"

struct _PubsubFrameOutputStream {
  GOutputStream     parent_instance;

  PubsubSubscriber *subscriber;   /* weak */
};

static void pollable_iface_init (GPollableOutputStreamInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (PubsubFrameOutputStream, pubsub_frame_output_stream,
                               G_TYPE_OUTPUT_STREAM,
                               G_IMPLEMENT_INTERFACE (G_TYPE_POLLABLE_OUTPUT_STREAM,
                                                      pollable_iface_init))

#define OPCODE_CLOSE 0x8

static gssize
queue_frame (PubsubFrameOutputStream  *self,
             const void               *buffer,
             gsize                     count,
             GError                  **error)
{
  g_autoptr(GBytes) frame = NULL;

  if (self->subscriber == NULL)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CLOSED, "connection closed");
      return -1;
    }
  if (count == 0)
    return 0;

  frame = g_bytes_new (buffer, count);
  /* A close frame must get out even past the bound (it follows the
   * SLOW_CONSUMER error); a pong counts like any other frame. */
  if ((((const guint8 *) buffer)[0] & 0x0F) == OPCODE_CLOSE)
    pubsub_subscriber_send_final (self->subscriber, frame);
  else
    pubsub_subscriber_send (self->subscriber, frame);
  return (gssize) count;
}

static gssize
pubsub_frame_output_stream_write (GOutputStream  *stream,
                                  const void     *buffer,
                                  gsize           count,
                                  GCancellable   *cancellable,
                                  GError        **error)
{
  return queue_frame (PUBSUB_FRAME_OUTPUT_STREAM (stream), buffer, count, error);
}

static gssize
pubsub_frame_output_stream_write_nonblocking (GPollableOutputStream  *stream,
                                              const void             *buffer,
                                              gsize                   count,
                                              GError                **error)
{
  return queue_frame (PUBSUB_FRAME_OUTPUT_STREAM (stream), buffer, count, error);
}

static gboolean
pubsub_frame_output_stream_can_poll (GPollableOutputStream *stream)
{
  return TRUE;
}

static gboolean
pubsub_frame_output_stream_is_writable (GPollableOutputStream *stream)
{
  return TRUE;
}

/* Never needed by libsoup (we never answer WOULD_BLOCK), but the interface
 * requires it: a source that is ready at once. */
static GSource *
pubsub_frame_output_stream_create_source (GPollableOutputStream *stream,
                                          GCancellable          *cancellable)
{
  g_autoptr(GSource) ready = g_timeout_source_new (0);

  return g_pollable_source_new_full (stream, ready, cancellable);
}

static gboolean
pubsub_frame_output_stream_close (GOutputStream  *stream,
                                  GCancellable   *cancellable,
                                  GError        **error)
{
  PubsubFrameOutputStream *self = PUBSUB_FRAME_OUTPUT_STREAM (stream);

  /* libsoup closes right after queueing its answer to a client's close
   * frame: give the socket what it takes of it before the stream goes. */
  if (self->subscriber != NULL)
    pubsub_subscriber_flush (self->subscriber);
  g_clear_weak_pointer (&self->subscriber);
  return TRUE;
}

static void
pubsub_frame_output_stream_dispose (GObject *object)
{
  PubsubFrameOutputStream *self = PUBSUB_FRAME_OUTPUT_STREAM (object);

  g_clear_weak_pointer (&self->subscriber);

  G_OBJECT_CLASS (pubsub_frame_output_stream_parent_class)->dispose (object);
}

static void
pollable_iface_init (GPollableOutputStreamInterface *iface)
{
  iface->can_poll = pubsub_frame_output_stream_can_poll;
  iface->is_writable = pubsub_frame_output_stream_is_writable;
  iface->create_source = pubsub_frame_output_stream_create_source;
  iface->write_nonblocking = pubsub_frame_output_stream_write_nonblocking;
}

static void
pubsub_frame_output_stream_class_init (PubsubFrameOutputStreamClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GOutputStreamClass *stream_class = G_OUTPUT_STREAM_CLASS (klass);

  object_class->dispose = pubsub_frame_output_stream_dispose;
  stream_class->write_fn = pubsub_frame_output_stream_write;
  stream_class->close_fn = pubsub_frame_output_stream_close;
}

static void
pubsub_frame_output_stream_init (PubsubFrameOutputStream *self)
{
}

/**
 * pubsub_frame_output_stream_new:
 * @subscriber: where written frames go (held weakly)
 */
GOutputStream *
pubsub_frame_output_stream_new (PubsubSubscriber *subscriber)
{
  PubsubFrameOutputStream *self = g_object_new (PUBSUB_TYPE_FRAME_OUTPUT_STREAM, NULL);

  g_set_weak_pointer (&self->subscriber, subscriber);
  return G_OUTPUT_STREAM (self);
}
