/* pubsub-io-loop.h: the client sockets' share of the main loop
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <glib-object.h>

#include "pubsub-uring.h"

G_BEGIN_DECLS

/**
 * PubsubIoFunc:
 * @object: the object the watch belongs to, referenced during the call
 */
typedef void (*PubsubIoFunc) (GObject *object);

/**
 * PubsubIoBatchFunc:
 * @object: as for #PubsubIoFunc
 * @uring: the loop's ring
 *
 * The flush pass's alternative to #PubsubIoFunc when the loop has an
 * io_uring: queue the work on @uring instead of doing it.
 *
 * Returns: %FALSE if nothing was queued: then the watch's func is called
 */
typedef gboolean (*PubsubIoBatchFunc) (GObject     *object,
                                       PubsubUring *uring);

/**
 * PubsubIoWatch:
 *
 * Embedded in the object that owns it (a connection, a subscriber), so that
 * registering costs no allocation. Set @object and @func once; the rest is
 * the loop's.
 */
typedef struct {
  GObject           *object;   /* not owned: the owner of this struct */
  PubsubIoFunc       func;
  PubsubIoBatchFunc  batch;    /* optional, for scheduled watches */
  /* private */
  gboolean           registered;
  gboolean           scheduled;
} PubsubIoWatch;

#define PUBSUB_TYPE_IO_LOOP (pubsub_io_loop_get_type ())

G_DECLARE_FINAL_TYPE (PubsubIoLoop, pubsub_io_loop, PUBSUB, IO_LOOP, GObject)

PubsubIoLoop *pubsub_io_loop_new             (GError        **error);
gboolean      pubsub_io_loop_add_reader      (PubsubIoLoop   *self,
                                              int             fd,
                                              PubsubIoWatch  *watch,
                                              GError        **error) G_GNUC_WARN_UNUSED_RESULT;
void          pubsub_io_loop_remove_reader   (PubsubIoLoop   *self,
                                              int             fd,
                                              PubsubIoWatch  *watch);
void          pubsub_io_loop_schedule        (PubsubIoLoop   *self,
                                              PubsubIoWatch  *watch);
void          pubsub_io_loop_cancel          (PubsubIoLoop   *self,
                                              PubsubIoWatch  *watch);

G_END_DECLS
