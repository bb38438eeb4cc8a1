/* pubsub-ws-stream.c: the stream a WebSocket connection is built on
 *
 * Reads come straight from the client socket (through libsoup's buffered
 * input, which may already hold bytes sent right after the handshake);
 * writes go to a PubsubFrameOutputStream. Closing is done synchronously on
 * the main thread: GIOStream's default close_async would run close_fn in a
 * worker thread, next to a queue only the main thread may touch.
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include "pubsub-ws-stream.h"

struct _PubsubWsStream {
  GIOStream      parent_instance;

  GIOStream     *base;     /* owned: the stolen HTTP connection */
  GOutputStream *frames;   /* owned */
};

G_DEFINE_FINAL_TYPE (PubsubWsStream, pubsub_ws_stream, G_TYPE_IO_STREAM)

static GInputStream *
pubsub_ws_stream_get_input_stream (GIOStream *stream)
{
  return g_io_stream_get_input_stream (PUBSUB_WS_STREAM (stream)->base);
}

static GOutputStream *
pubsub_ws_stream_get_output_stream (GIOStream *stream)
{
  return PUBSUB_WS_STREAM (stream)->frames;
}

static gboolean
pubsub_ws_stream_close (GIOStream     *stream,
                        GCancellable  *cancellable,
                        GError       **error)
{
  PubsubWsStream *self = PUBSUB_WS_STREAM (stream);
  gboolean ok;

  ok = g_output_stream_close (self->frames, cancellable, NULL);
  ok = g_io_stream_close (self->base, cancellable, ok ? error : NULL) && ok;
  return ok;
}

static void
pubsub_ws_stream_close_async (GIOStream           *stream,
                              int                  io_priority,
                              GCancellable        *cancellable,
                              GAsyncReadyCallback  callback,
                              gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (stream, cancellable, callback, user_data);
  GError *error = NULL;

  g_task_set_source_tag (task, pubsub_ws_stream_close_async);
  if (pubsub_ws_stream_close (stream, cancellable, &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

static gboolean
pubsub_ws_stream_close_finish (GIOStream     *stream,
                               GAsyncResult  *result,
                               GError       **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
pubsub_ws_stream_finalize (GObject *object)
{
  PubsubWsStream *self = PUBSUB_WS_STREAM (object);

  g_clear_object (&self->frames);
  g_clear_object (&self->base);

  G_OBJECT_CLASS (pubsub_ws_stream_parent_class)->finalize (object);
}

static void
pubsub_ws_stream_class_init (PubsubWsStreamClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GIOStreamClass *stream_class = G_IO_STREAM_CLASS (klass);

  object_class->finalize = pubsub_ws_stream_finalize;
  stream_class->get_input_stream = pubsub_ws_stream_get_input_stream;
  stream_class->get_output_stream = pubsub_ws_stream_get_output_stream;
  stream_class->close_fn = pubsub_ws_stream_close;
  stream_class->close_async = pubsub_ws_stream_close_async;
  stream_class->close_finish = pubsub_ws_stream_close_finish;
}

static void
pubsub_ws_stream_init (PubsubWsStream *self)
{
}

/**
 * pubsub_ws_stream_new:
 * @base: the client connection, stolen from the HTTP server
 * @frames: where libsoup's writes go
 */
GIOStream *
pubsub_ws_stream_new (GIOStream     *base,
                      GOutputStream *frames)
{
  PubsubWsStream *self = g_object_new (PUBSUB_TYPE_WS_STREAM, NULL);

  self->base = g_object_ref (base);
  self->frames = g_object_ref (frames);
  return G_IO_STREAM (self);
}
