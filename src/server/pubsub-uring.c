/* pubsub-uring.c: the flush pass's sends, many sockets per system call
 *
 * An experiment (issue 12): the flush pass hands each subscriber's queue to
 * the kernel with one sendmsg() per subscriber, so one event to 1,000
 * subscribers costs 1,000 system calls. Here the flush pass queues each send
 * as an io_uring submission instead and submits them together, one
 * io_uring_enter() per ring-full.
 *
 * Every send carries MSG_DONTWAIT, so io_uring runs it inline during the
 * submission and a full socket completes at once with -EAGAIN instead of
 * being retried in the background: nothing stays in flight after
 * pubsub_uring_submit(), the frames the vectors point at may go, and the
 * caller waits for writability exactly as it does after a short sendmsg().
 *
 * pubsub_uring_new() is the runtime probe: the kernel may lack io_uring or
 * the opcodes, and container seccomp profiles often forbid io_uring_setup().
 * Then it fails and the caller keeps its sendmsg() path. Builds without
 * liburing always fail here.
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <errno.h>
#include <sys/socket.h>

#include "pubsub-uring.h"

#ifdef HAVE_LIBURING

#include <liburing.h>

/* Submissions per io_uring_enter(); more sends are submitted in rounds. */
#define RING_ENTRIES 1024
#define SEND_FLAGS (MSG_NOSIGNAL | MSG_DONTWAIT)

typedef struct {
  int              fd;
  guint            first_vector;   /* index into vectors */
  guint            n_vectors;
  GObject         *object;         /* the caller's, alive until submit returns */
  PubsubUringDone  done;
  gssize           result;
} Send;

/* Plain arrays rather than GArrays: a flush pass at 1,000 subscribers
 * appends 1,000 sends, and GArray's bookkeeping was a tenth of the cost. */
struct _PubsubUring {
  struct io_uring  ring;
  gboolean         ring_ok;        /* FALSE after a failure: sendmsg() from then on */
  gboolean         submitting;
  Send            *sends;          /* queued since the last submit */
  struct msghdr   *headers;        /* one per send, while submitting */
  guint            n_sends;
  guint            sends_size;
  struct iovec    *vectors;        /* of the queued sends */
  guint            n_vectors;
  guint            vectors_size;
};

G_STATIC_ASSERT (sizeof (GOutputVector) == sizeof (struct iovec));

static gboolean
setup_ring (PubsubUring  *self,
            GError      **error)
{
  /* Fewer wake-ups of the submitting thread for completions, and all
   * submissions from this one thread; older kernels refuse the flags. */
  unsigned flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SINGLE_ISSUER;
  g_autofree struct io_uring_probe *probe = NULL;
  int ret = io_uring_queue_init (RING_ENTRIES, &self->ring, flags);

  if (ret == -EINVAL)
    ret = io_uring_queue_init (RING_ENTRIES, &self->ring, 0);
  if (ret < 0)
    {
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (-ret),
                   "io_uring_setup: %s", g_strerror (-ret));
      return FALSE;
    }
  self->ring_ok = TRUE;

  probe = (struct io_uring_probe *) io_uring_get_probe_ring (&self->ring);
  if (probe == NULL ||
      !io_uring_opcode_supported (probe, IORING_OP_SENDMSG) ||
      !io_uring_opcode_supported (probe, IORING_OP_SEND))
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                           "io_uring has no SEND/SENDMSG here");
      return FALSE;
    }
  return TRUE;
}

/**
 * pubsub_uring_new:
 * @error: why io_uring cannot be used here
 *
 * Returns: (transfer full) (nullable): a ring, or %NULL: use sendmsg()
 */
PubsubUring *
pubsub_uring_new (GError **error)
{
  g_autoptr(PubsubUring) self = g_new0 (PubsubUring, 1);

  if (!setup_ring (self, error))
    return NULL;
  return g_steal_pointer (&self);
}

void
pubsub_uring_free (PubsubUring *self)
{
  if (self == NULL)
    return;
  /* Only ever called between passes: nothing is queued. */
  g_warn_if_fail (self->n_sends == 0);
  if (self->ring_ok)
    io_uring_queue_exit (&self->ring);
  g_free (self->sends);
  g_free (self->headers);
  g_free (self->vectors);
  g_free (self);
}

/**
 * pubsub_uring_reserve:
 * @max_vectors: how many vectors the next send may have at most
 *
 * Returns: (transfer none): room for @max_vectors, for the caller to fill
 *   and pass to pubsub_uring_send(), in the ring's own storage
 */
GOutputVector *
pubsub_uring_reserve (PubsubUring *self,
                      guint        max_vectors)
{
  if (self->n_vectors + max_vectors > self->vectors_size)
    {
      self->vectors_size = MAX (2 * self->vectors_size, self->n_vectors + max_vectors);
      self->vectors = g_renew (struct iovec, self->vectors, self->vectors_size);
    }
  return (GOutputVector *) (self->vectors + self->n_vectors);
}

/**
 * pubsub_uring_send:
 * @fd: a non-blocking stream socket
 * @n_vectors: how many of the vectors pubsub_uring_reserve() just gave were
 *   filled, at least 1; the bytes they point at must stay until
 *   pubsub_uring_submit() returns
 * @object: kept alive by the caller until pubsub_uring_submit() returns
 * @done: called from pubsub_uring_submit() with the result
 *
 * Queues one send for the next pubsub_uring_submit().
 */
void
pubsub_uring_send (PubsubUring     *self,
                   int              fd,
                   guint            n_vectors,
                   GObject         *object,
                   PubsubUringDone  done)
{
  g_return_if_fail (n_vectors > 0 && self->n_vectors + n_vectors <= self->vectors_size);
  g_return_if_fail (!self->submitting);

  if (self->n_sends == self->sends_size)
    {
      self->sends_size = MAX (64, 2 * self->sends_size);
      self->sends = g_renew (Send, self->sends, self->sends_size);
      self->headers = g_renew (struct msghdr, self->headers, self->sends_size);
    }
  self->sends[self->n_sends++] = (Send) {
    .fd = fd,
    .first_vector = self->n_vectors,
    .n_vectors = n_vectors,
    .object = object,
    .done = done,
    .result = -EIO,
  };
  self->n_vectors += n_vectors;
}

/* The way of the ordinary flush, for when the ring has failed. */
static gssize
send_directly (const Send   *send,
               struct iovec *vectors)
{
  struct msghdr message = { .msg_iov = vectors + send->first_vector, .msg_iovlen = send->n_vectors };
  gssize sent;

  do
    sent = sendmsg (send->fd, &message, SEND_FLAGS);
  while (sent < 0 && errno == EINTR);
  return sent < 0 ? -errno : sent;
}

/* Sends @sends[@first .. @first + @n): one submission, then every completion.
 * @submitted: (out): how many of them the kernel took, in order (even if
 *   the ring failed afterwards: those must not be made again)
 * Returns: FALSE if the ring failed */
static gboolean
submit_round (PubsubUring *self,
              guint        first,
              guint        n,
              guint       *submitted)
{
  guint completed = 0;
  int ret;

  for (guint i = first; i < first + n; i++)
    {
      struct io_uring_sqe *sqe = io_uring_get_sqe (&self->ring);
      const Send *send = &self->sends[i];
      struct iovec *iov = &self->vectors[send->first_vector];

      /* A single buffer needs no msghdr for the kernel to copy. */
      if (send->n_vectors == 1)
        io_uring_prep_send (sqe, send->fd, iov->iov_base, iov->iov_len, SEND_FLAGS);
      else
        {
          self->headers[i] = (struct msghdr) { .msg_iov = iov, .msg_iovlen = send->n_vectors };
          io_uring_prep_sendmsg (sqe, send->fd, &self->headers[i], SEND_FLAGS);
        }
      io_uring_sqe_set_data64 (sqe, i);
    }

  do
    ret = io_uring_submit (&self->ring);
  while (ret == -EINTR);
  *submitted = (guint) MAX (ret, 0);
  if (ret < 0)
    {
      g_warning ("io_uring_submit failed, writing with sendmsg() from now on: %s",
                 g_strerror (-ret));
      return FALSE;
    }

  while (completed < *submitted)
    {
      struct io_uring_cqe *cqe;
      unsigned head;
      unsigned seen = 0;

      ret = io_uring_wait_cqe (&self->ring, &cqe);
      if (ret == -EINTR)
        continue;
      if (ret < 0)
        {
          /* Not expected: MSG_DONTWAIT sends complete during the submission.
           * The sends not heard of keep -EIO, and their clients are dropped. */
          g_warning ("io_uring_wait_cqe failed, writing with sendmsg() from now on: %s",
                     g_strerror (-ret));
          return FALSE;
        }
      io_uring_for_each_cqe (&self->ring, head, cqe)
        {
          self->sends[io_uring_cqe_get_data64 (cqe)].result = cqe->res;
          seen++;
        }
      io_uring_cq_advance (&self->ring, seen);
      completed += seen;
    }
  if (*submitted < n)
    {
      g_warning ("io_uring took %u of %u sends, writing with sendmsg() from now on",
                 *submitted, n);
      return FALSE;
    }
  return TRUE;
}

/**
 * pubsub_uring_submit:
 *
 * Makes every queued send, then calls each one's done function, in the
 * order they were queued. The done functions must not queue sends.
 *
 * Returns: the number of sends made
 */
guint
pubsub_uring_submit (PubsubUring *self)
{
  guint n = self->n_sends;

  if (n == 0)
    return 0;

  self->submitting = TRUE;
  for (guint first = 0; first < n; first += RING_ENTRIES)
    {
      guint round = MIN (RING_ENTRIES, n - first);
      guint submitted = 0;

      if (self->ring_ok)
        {
          if (submit_round (self, first, round, &submitted))
            continue;
          /* Unsubmitted entries must not reach the kernel later. */
          io_uring_queue_exit (&self->ring);
          self->ring_ok = FALSE;
        }
      for (guint i = first + submitted; i < first + round; i++)
        self->sends[i].result = send_directly (&self->sends[i], self->vectors);
    }

  for (guint i = 0; i < n; i++)
    self->sends[i].done (self->sends[i].object, self->sends[i].result);
  self->n_sends = 0;
  self->n_vectors = 0;
  self->submitting = FALSE;
  return n;
}

#else /* !HAVE_LIBURING */

struct _PubsubUring {
  int unused;
};

PubsubUring *
pubsub_uring_new (GError **error)
{
  g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                       "built without liburing");
  return NULL;
}

void
pubsub_uring_free (PubsubUring *self)
{
  g_free (self);
}

GOutputVector *
pubsub_uring_reserve (PubsubUring *self,
                      guint        max_vectors)
{
  g_return_val_if_reached (NULL);
}

void
pubsub_uring_send (PubsubUring     *self,
                   int              fd,
                   guint            n_vectors,
                   GObject         *object,
                   PubsubUringDone  done)
{
  g_return_if_reached ();
}

guint
pubsub_uring_submit (PubsubUring *self)
{
  return 0;
}

#endif /* HAVE_LIBURING */
