/* pubsub-io-loop.c: the client sockets' share of the main loop
 *
 * Two sources, owned by one object that the HTTP server creates and hands to
 * every connection (and destroys with itself):
 *
 * - The read set. GLib's main loop walks every source and poll()s every
 *   descriptor on each iteration; with thousands of clients that was a fifth
 *   of the CPU of a 1,000-subscriber fan-out (perf). All client sockets
 *   therefore share one epoll descriptor, which is the only one GLib polls
 *   for them, and each wake-up visits just the clients with something to read.
 *
 * - The flush pass. Work scheduled during an iteration (a subscriber with
 *   frames to write) runs once, after the reads that queued it, in the same
 *   iteration (the read set runs the pass itself when it is done; the flush
 *   source runs it for work scheduled by anything else): a burst of
 *   publishes costs each subscriber one write. When
 *   the kernel allows io_uring (pubsub-uring.c), the watches that can queue
 *   their writes on it do, and the pass submits them all at once.
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <errno.h>
#include <gio/gio.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "pubsub-io-loop.h"

#define MAX_READY_PER_DISPATCH 256
#define MAX_ROUNDS_PER_DISPATCH 4

typedef struct {
  GSource       source;
  PubsubIoLoop *loop;   /* not owned: the loop owns the source */
} IoSource;

struct _PubsubIoLoop {
  GObject      parent_instance;

  int          epoll_fd;
  IoSource    *read_source;    /* owned */
  IoSource    *flush_source;   /* owned */
  GPtrArray   *pending;        /* owned: PubsubIoWatch *, each holding a ref on its object */
  GPtrArray   *spare;          /* owned, empty: the next pass's pending */
  PubsubUring *uring;          /* owned, nullable: io_uring is not available */
};

G_DEFINE_FINAL_TYPE (PubsubIoLoop, pubsub_io_loop, G_TYPE_OBJECT)

static void flush_pass (PubsubIoLoop *self);

/* One round: the clients epoll says are readable, then the writes their
 * reads queued. Returns: FALSE if none was readable. */
static gboolean
read_round (PubsubIoLoop *self)
{
  struct epoll_event events[MAX_READY_PER_DISPATCH];
  int n = epoll_wait (self->epoll_fd, events, G_N_ELEMENTS (events), 0);

  if (n <= 0)
    return FALSE;
  /* Every ready watch is registered, so its object is alive right now; hold
   * them all, since handling one may close another. */
  for (int i = 0; i < n; i++)
    g_object_ref (((PubsubIoWatch *) events[i].data.ptr)->object);
  for (int i = 0; i < n; i++)
    {
      PubsubIoWatch *watch = events[i].data.ptr;
      GObject *object = watch->object;

      if (watch->registered)
        watch->func (object);
      g_object_unref (object);
    }
  /* The writes the reads queued, in this iteration. */
  flush_pass (self);
  return TRUE;
}

static gboolean
read_dispatch (GSource     *source,
               GSourceFunc  callback,
               gpointer     user_data)
{
  PubsubIoLoop *self = ((IoSource *) source)->loop;

  /* While clients keep the server busy, more input has usually arrived by
   * the time a round is done: asking epoll again skips a main-loop
   * iteration (GLib's prepare, poll and check, about 2,500 instructions
   * and a poll()). A few rounds at most, so that timers and new
   * connections still get their turn. */
  for (guint round = 0; round < MAX_ROUNDS_PER_DISPATCH; round++)
    if (!read_round (self))
      break;
  return G_SOURCE_CONTINUE;
}

/* Runs the scheduled watches. The reads run it themselves; the flush source
 * runs it for work scheduled anywhere else (timers, REST, D-Bus). */
static void
flush_pass (PubsubIoLoop *self)
{
  GPtrArray *pending = self->pending;

  if (pending->len == 0)
    return;
  /* What the watches schedule now waits for the next pass. */
  self->pending = self->spare;
  self->spare = NULL;

  for (guint i = 0; i < pending->len; i++)
    {
      PubsubIoWatch *watch = g_ptr_array_index (pending, i);
      GObject *object = watch->object;

      /* Cancelled meanwhile: only the reference is left to drop. */
      if (watch->scheduled)
        {
          watch->scheduled = FALSE;
          if (self->uring == NULL || watch->batch == NULL || !watch->batch (object, self->uring))
            watch->func (object);
        }
    }
  if (self->uring != NULL)
    pubsub_uring_submit (self->uring);
  /* Only now: the sends on the ring need their objects until it is done. */
  for (guint i = 0; i < pending->len; i++)
    g_object_unref (((PubsubIoWatch *) g_ptr_array_index (pending, i))->object);
  g_ptr_array_set_size (pending, 0);
  self->spare = pending;
}

/* Ready while something is scheduled. Not g_source_set_ready_time(): that
 * signals the context's wakeup descriptor on every call (a write(), then a
 * read() and one more poll()), three times per publish at one subscriber
 * (strace). */
static gboolean
flush_prepare (GSource *source,
               gint    *timeout)
{
  *timeout = -1;
  return ((IoSource *) source)->loop->pending->len > 0;
}

static gboolean
flush_check (GSource *source)
{
  return ((IoSource *) source)->loop->pending->len > 0;
}

static gboolean
flush_dispatch (GSource     *source,
                GSourceFunc  callback,
                gpointer     user_data)
{
  flush_pass (((IoSource *) source)->loop);
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs read_funcs = { .dispatch = read_dispatch };
static GSourceFuncs flush_funcs = {
  .prepare = flush_prepare,
  .check = flush_check,
  .dispatch = flush_dispatch,
};

static IoSource *
io_source_new (PubsubIoLoop *self,
               GSourceFuncs *funcs,
               const char   *name)
{
  IoSource *source = (IoSource *) g_source_new (funcs, sizeof (IoSource));

  source->loop = self;
  g_source_set_static_name (&source->source, name);
  g_source_set_priority (&source->source, G_PRIORITY_DEFAULT);
  /* Otherwise GLib blocks the source around every dispatch, taking its
   * descriptor out of the poll set and putting it back, and each of those
   * signals the context's wakeup descriptor: two write()s per iteration,
   * then a read() and one more poll() (strace). Nothing here iterates the
   * main loop from inside a dispatch. */
  g_source_set_can_recurse (&source->source, TRUE);
  return source;
}

static void
io_source_destroy (IoSource **source)
{
  if (*source == NULL)
    return;
  g_source_destroy (&(*source)->source);
  g_source_unref (&(*source)->source);
  *source = NULL;
}

static void
pubsub_io_loop_dispose (GObject *object)
{
  PubsubIoLoop *self = PUBSUB_IO_LOOP (object);

  io_source_destroy (&self->read_source);
  io_source_destroy (&self->flush_source);
  if (self->pending != NULL)
    {
      for (guint i = 0; i < self->pending->len; i++)
        {
          PubsubIoWatch *watch = g_ptr_array_index (self->pending, i);

          watch->scheduled = FALSE;
          g_object_unref (watch->object);
        }
      g_clear_pointer (&self->pending, g_ptr_array_unref);
    }
  g_clear_pointer (&self->spare, g_ptr_array_unref);

  G_OBJECT_CLASS (pubsub_io_loop_parent_class)->dispose (object);
}

static void
pubsub_io_loop_finalize (GObject *object)
{
  PubsubIoLoop *self = PUBSUB_IO_LOOP (object);

  if (self->epoll_fd >= 0)
    close (self->epoll_fd);
  g_clear_pointer (&self->uring, pubsub_uring_free);

  G_OBJECT_CLASS (pubsub_io_loop_parent_class)->finalize (object);
}

static void
pubsub_io_loop_class_init (PubsubIoLoopClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = pubsub_io_loop_dispose;
  object_class->finalize = pubsub_io_loop_finalize;
}

static void
pubsub_io_loop_init (PubsubIoLoop *self)
{
  self->epoll_fd = -1;
}

/* The runtime probe: io_uring if the kernel (and a container's seccomp
 * profile) allows it. */
static PubsubUring *
new_uring (void)
{
  g_autoptr(GError) error = NULL;
  PubsubUring *uring = pubsub_uring_new (&error);

  if (uring == NULL)
    g_debug ("flush pass: one sendmsg() per client (io_uring: %s)", error->message);
  else
    g_debug ("flush pass: the sends go through io_uring");
  return uring;
}

/**
 * pubsub_io_loop_new:
 * @error: when no epoll descriptor can be made
 *
 * Attaches to the thread-default main context.
 *
 * Returns: (transfer full): a new loop, or %NULL
 */
PubsubIoLoop *
pubsub_io_loop_new (GError **error)
{
  g_autoptr(PubsubIoLoop) self = g_object_new (PUBSUB_TYPE_IO_LOOP, NULL);
  GMainContext *context = g_main_context_get_thread_default ();

  self->epoll_fd = epoll_create1 (EPOLL_CLOEXEC);
  if (self->epoll_fd < 0)
    {
      int saved = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                   "epoll_create1: %s", g_strerror (saved));
      return NULL;
    }
  self->pending = g_ptr_array_new ();
  self->spare = g_ptr_array_new ();
  self->uring = new_uring ();

  self->read_source = io_source_new (self, &read_funcs, "pubsub-read-set");
  g_source_add_unix_fd (&self->read_source->source, self->epoll_fd, G_IO_IN);
  g_source_attach (&self->read_source->source, context);

  self->flush_source = io_source_new (self, &flush_funcs, "pubsub-flush");
  g_source_attach (&self->flush_source->source, context);
  return g_steal_pointer (&self);
}

/**
 * pubsub_io_loop_add_reader:
 * @fd: a non-blocking socket
 * @watch: calls its func whenever @fd is readable, until removed
 * @error: when the kernel refuses (no memory, too many watches)
 */
gboolean
pubsub_io_loop_add_reader (PubsubIoLoop   *self,
                           int             fd,
                           PubsubIoWatch  *watch,
                           GError        **error)
{
  struct epoll_event event = { .events = EPOLLIN, .data.ptr = watch };

  g_return_val_if_fail (PUBSUB_IS_IO_LOOP (self), FALSE);
  g_return_val_if_fail (!watch->registered, FALSE);

  if (epoll_ctl (self->epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0)
    {
      int saved = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                   "epoll_ctl (ADD): %s", g_strerror (saved));
      return FALSE;
    }
  watch->registered = TRUE;
  return TRUE;
}

void
pubsub_io_loop_remove_reader (PubsubIoLoop  *self,
                              int            fd,
                              PubsubIoWatch *watch)
{
  g_return_if_fail (PUBSUB_IS_IO_LOOP (self));

  if (!watch->registered)
    return;
  watch->registered = FALSE;
  epoll_ctl (self->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
}

/**
 * pubsub_io_loop_schedule:
 * @watch: calls its func once, in the flush pass of this iteration
 *
 * The watch's object is referenced until then. Scheduling twice before the
 * pass runs calls it once.
 */
void
pubsub_io_loop_schedule (PubsubIoLoop  *self,
                         PubsubIoWatch *watch)
{
  if (watch->scheduled || self->flush_source == NULL)
    return;
  watch->scheduled = TRUE;
  g_object_ref (watch->object);
  g_ptr_array_add (self->pending, watch);
}

/**
 * pubsub_io_loop_cancel:
 * @watch: a scheduled watch
 *
 * Its func will not be called by the pass already scheduled.
 */
void
pubsub_io_loop_cancel (PubsubIoLoop  *self,
                       PubsubIoWatch *watch)
{
  watch->scheduled = FALSE;
}
