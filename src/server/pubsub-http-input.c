/* pubsub-http-input.c: the socket input libsoup reads an HTTP connection
 * through
 *
 * libsoup 3.2.3 gets each connection as a GIOStream whose input is this
 * stream (over the socket's own input stream) and whose output is the
 * socket's output stream. It lets the HTTP front see three things libsoup
 * does not tell:
 *
 * - bytes arriving (how much of a request head came in);
 * - the end of the stream between two keep-alive requests. libsoup 3.2.3
 *   drops such a connection without closing it or ever letting it go (fixed
 *   upstream in 3.3.0, commit d20c6601): the front withholds the end of
 *   stream and closes the connection itself;
 * - the close: when libsoup is done with a connection it closes the
 *   GIOStream, which closes this stream but not the socket (the socket's
 *   input and output streams do not close it). The front closes the socket
 *   then, or first answers on it (431 when libsoup gave up on a huge head).
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include "pubsub-http-input.h"

struct _PubsubHttpInput {
  GInputStream                parent_instance;

  GInputStream               *base;      /* owned: the socket's input stream */
  const PubsubHttpInputHooks *hooks;     /* static, nullable once detached */
  gpointer                    data;
  gboolean                    withheld;  /* the end was kept from the reader */
};

static void pubsub_http_input_pollable_iface_init (GPollableInputStreamInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (PubsubHttpInput, pubsub_http_input, G_TYPE_INPUT_STREAM,
                               G_IMPLEMENT_INTERFACE (G_TYPE_POLLABLE_INPUT_STREAM,
                                                      pubsub_http_input_pollable_iface_init))

/* What a read of the base returned, as the reader sees it. */
static gssize
filter_result (PubsubHttpInput  *self,
               gssize            n,
               GError          **error)
{
  if (n > 0)
    {
      if (self->hooks != NULL)
        self->hooks->received (self->data, (gsize) n);
      return n;
    }
  if (n < 0 && g_error_matches (*error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
    return n;
  if (self->hooks == NULL || !self->hooks->ended (self->data))
    return n;

  self->withheld = TRUE;
  g_clear_error (error);
  g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK,
                       "the connection is being closed");
  return -1;
}

static gssize
pubsub_http_input_read_nonblocking (GPollableInputStream  *stream,
                                    void                  *buffer,
                                    gsize                  count,
                                    GError               **error)
{
  PubsubHttpInput *self = PUBSUB_HTTP_INPUT (stream);
  g_autoptr(GError) local_error = NULL;
  gssize n;

  if (self->withheld)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK,
                           "the connection is being closed");
      return -1;
    }
  n = g_pollable_input_stream_read_nonblocking (G_POLLABLE_INPUT_STREAM (self->base), buffer,
                                                count, NULL, &local_error);
  n = filter_result (self, n, &local_error);
  if (local_error != NULL)
    g_propagate_error (error, g_steal_pointer (&local_error));
  return n;
}

/* libsoup's server reads without blocking; this is for completeness. */
static gssize
pubsub_http_input_read (GInputStream  *stream,
                        void          *buffer,
                        gsize          count,
                        GCancellable  *cancellable,
                        GError       **error)
{
  PubsubHttpInput *self = PUBSUB_HTTP_INPUT (stream);
  gssize n;

  if (self->withheld)
    return 0;
  n = g_input_stream_read (self->base, buffer, count, cancellable, error);
  if (n > 0 && self->hooks != NULL)
    self->hooks->received (self->data, (gsize) n);
  return n;
}

static gboolean
pubsub_http_input_can_poll (GPollableInputStream *stream)
{
  return TRUE;
}

static gboolean
pubsub_http_input_is_readable (GPollableInputStream *stream)
{
  PubsubHttpInput *self = PUBSUB_HTTP_INPUT (stream);

  return !self->withheld &&
         g_pollable_input_stream_is_readable (G_POLLABLE_INPUT_STREAM (self->base));
}

static GSource *
pubsub_http_input_create_source (GPollableInputStream *stream,
                                 GCancellable         *cancellable)
{
  PubsubHttpInput *self = PUBSUB_HTTP_INPUT (stream);
  g_autoptr(GSource) base_source = NULL;

  /* A pollable source without a child never fires: the reader waits until
   * the owner closes the connection. */
  if (self->withheld)
    return g_pollable_source_new_full (self, NULL, cancellable);
  base_source = g_pollable_input_stream_create_source (G_POLLABLE_INPUT_STREAM (self->base),
                                                       NULL);
  return g_pollable_source_new_full (self, base_source, cancellable);
}

static gboolean
pubsub_http_input_close (GInputStream  *stream,
                         GCancellable  *cancellable,
                         GError       **error)
{
  PubsubHttpInput *self = PUBSUB_HTTP_INPUT (stream);
  const PubsubHttpInputHooks *hooks = self->hooks;

  /* The base is the socket's own stream: closing it would not close the
   * socket, which is the owner's to close. */
  self->hooks = NULL;
  if (hooks != NULL)
    hooks->closed (self->data);
  return TRUE;
}

static void
pubsub_http_input_finalize (GObject *object)
{
  PubsubHttpInput *self = PUBSUB_HTTP_INPUT (object);

  g_clear_object (&self->base);

  G_OBJECT_CLASS (pubsub_http_input_parent_class)->finalize (object);
}

static void
pubsub_http_input_class_init (PubsubHttpInputClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GInputStreamClass *stream_class = G_INPUT_STREAM_CLASS (klass);

  object_class->finalize = pubsub_http_input_finalize;
  stream_class->read_fn = pubsub_http_input_read;
  stream_class->close_fn = pubsub_http_input_close;
}

static void
pubsub_http_input_pollable_iface_init (GPollableInputStreamInterface *iface)
{
  iface->can_poll = pubsub_http_input_can_poll;
  iface->is_readable = pubsub_http_input_is_readable;
  iface->create_source = pubsub_http_input_create_source;
  iface->read_nonblocking = pubsub_http_input_read_nonblocking;
}

static void
pubsub_http_input_init (PubsubHttpInput *self)
{
}

/**
 * pubsub_http_input_new:
 * @base: a pollable stream (the socket connection's input stream)
 * @hooks: (nullable): static hooks
 * @data: passed to the hooks
 */
PubsubHttpInput *
pubsub_http_input_new (GInputStream               *base,
                       const PubsubHttpInputHooks *hooks,
                       gpointer                    data)
{
  PubsubHttpInput *self;

  g_return_val_if_fail (G_IS_POLLABLE_INPUT_STREAM (base), NULL);

  self = g_object_new (PUBSUB_TYPE_HTTP_INPUT, NULL);
  self->base = g_object_ref (base);
  self->hooks = hooks;
  self->data = data;
  return self;
}

/**
 * pubsub_http_input_detach:
 *
 * No hook is called any more; the stream keeps reading the socket (a
 * withheld end stays withheld).
 */
void
pubsub_http_input_detach (PubsubHttpInput *self)
{
  g_return_if_fail (PUBSUB_IS_HTTP_INPUT (self));

  self->hooks = NULL;
  self->data = NULL;
}
