/* pubsub-uring.h: the flush pass's sends, many sockets per system call
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct _PubsubUring PubsubUring;

/**
 * PubsubUringDone:
 * @object: the object given with the send, still alive
 * @result: bytes the kernel took, or a negative errno (-EAGAIN: the socket
 *   is full)
 */
typedef void (*PubsubUringDone) (GObject *object,
                                 gssize   result);

PubsubUring *pubsub_uring_new   (GError              **error);
void         pubsub_uring_free  (PubsubUring          *self);
GOutputVector *pubsub_uring_reserve (PubsubUring    *self,
                                     guint           max_vectors);
void         pubsub_uring_send  (PubsubUring          *self,
                                 int                   fd,
                                 guint                 n_vectors,
                                 GObject              *object,
                                 PubsubUringDone       done);
guint        pubsub_uring_submit (PubsubUring         *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PubsubUring, pubsub_uring_free)

G_END_DECLS
