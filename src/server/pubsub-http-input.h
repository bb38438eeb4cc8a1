/* pubsub-http-input.h: the socket input libsoup reads an HTTP connection
 * through
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/**
 * PubsubHttpInputHooks:
 * @received: @n > 0 bytes were read
 * @ended: the socket said end of stream or failed; return %TRUE to withhold
 *   that from the reader: the stream then answers "would block" for good and
 *   its sources never fire, so the owner decides what happens next
 * @closed: the stream was closed (or finalized unclosed): the reader is done
 *   with the connection
 *
 * Called with the @data given to pubsub_http_input_new(), until
 * pubsub_http_input_detach().
 */
typedef struct {
  void     (*received) (gpointer data,
                        gsize    n);
  gboolean (*ended)    (gpointer data);
  void     (*closed)   (gpointer data);
} PubsubHttpInputHooks;

#define PUBSUB_TYPE_HTTP_INPUT (pubsub_http_input_get_type ())

G_DECLARE_FINAL_TYPE (PubsubHttpInput, pubsub_http_input, PUBSUB, HTTP_INPUT, GInputStream)

PubsubHttpInput *pubsub_http_input_new    (GInputStream               *base,
                                           const PubsubHttpInputHooks *hooks,
                                           gpointer                    data);
void             pubsub_http_input_detach (PubsubHttpInput            *self);

G_END_DECLS
