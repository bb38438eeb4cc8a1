/* pubsub-redis-link.c: one hiredis connection in the GLib main loop
 *
 * Owns a redisAsyncContext and the GSource that polls its socket, and turns
 * hiredis's three ways of ending a connection (a failed connect, an error
 * or EOF, and our own redisAsyncFree()) into one LOST event, after hiredis
 * has answered every pending command with a NULL reply.
 *
 * Not hiredis/adapters/glib.h: in 0.14.1 its dispatch calls
 * redisAsyncHandleRead() on a context that redisAsyncHandleWrite() may just
 * have freed (a write error frees the context, and the adapter still holds
 * the pointer), and it wakes the main context on every command. This source
 * forgets the context in hiredis's cleanup hook, and only edits its poll
 * events, which the loop reads again on its next iteration anyway: we are
 * always called from that loop's thread.
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <hiredis/hiredis.h>

#include "pubsub-error.h"
#include "pubsub-redis-link.h"

typedef struct {
  GSource            source;
  GPollFD            poll_fd;
  redisAsyncContext *ac;       /* NULL once hiredis has cleaned up */
} LinkSource;

static void
source_add_read (gpointer data)
{
  ((LinkSource *) data)->poll_fd.events |= G_IO_IN;
}

static void
source_del_read (gpointer data)
{
  ((LinkSource *) data)->poll_fd.events &= ~G_IO_IN;
}

static void
source_add_write (gpointer data)
{
  ((LinkSource *) data)->poll_fd.events |= G_IO_OUT;
}

static void
source_del_write (gpointer data)
{
  ((LinkSource *) data)->poll_fd.events &= ~G_IO_OUT;
}

static gboolean
source_prepare (GSource *source,
                gint    *timeout)
{
  *timeout = -1;
  return FALSE;
}

static gboolean
source_check (GSource *source)
{
  LinkSource *self = (LinkSource *) source;

  return self->ac != NULL && self->poll_fd.revents != 0;
}

static gboolean
source_dispatch (GSource     *source,
                 GSourceFunc  callback,
                 gpointer     user_data)
{
  LinkSource *self = (LinkSource *) source;
  gushort revents = self->poll_fd.revents;
  gushort broken = G_IO_ERR | G_IO_HUP | G_IO_NVAL;

  self->poll_fd.revents = 0;
  /* Either call may free the context: check it before each. */
  if (self->ac != NULL && (revents & (G_IO_OUT | broken)) && (self->poll_fd.events & G_IO_OUT))
    redisAsyncHandleWrite (self->ac);
  if (self->ac != NULL && (revents & (G_IO_IN | broken)))
    redisAsyncHandleRead (self->ac);
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs source_funcs = {
  .prepare = source_prepare,
  .check = source_check,
  .dispatch = source_dispatch,
};

/* hiredis is about to free the context (it may call this twice). */
static void
source_cleanup (gpointer data)
{
  LinkSource *self = data;

  if (self->ac == NULL)
    return;
  self->ac = NULL;
  g_source_remove_poll (&self->source, &self->poll_fd);
  g_source_destroy (&self->source);
}

static void
link_forget (PubsubRedisLink *link)
{
  link->ac = NULL;
  g_clear_pointer (&link->source, g_source_unref);
}

static void
on_connect (const redisAsyncContext *ac,
            int                      status)
{
  PubsubRedisLink *link = ac->data;

  if (status == REDIS_OK)
    {
      link->func (link, PUBSUB_REDIS_LINK_CONNECTED, NULL, link->user_data);
      return;
    }
  /* hiredis frees the context right after this returns: it must not be
   * freed from here. */
  link_forget (link);
  link->func (link, PUBSUB_REDIS_LINK_LOST, ac->errstr, link->user_data);
}

/* After an error, EOF or redisAsyncFree(); the context is being freed. */
static void
on_disconnect (const redisAsyncContext *ac,
               int                      status)
{
  PubsubRedisLink *link = ac->data;
  const char *why = status == REDIS_OK ? "closed" : ac->errstr;

  link_forget (link);
  link->func (link, PUBSUB_REDIS_LINK_LOST, why, link->user_data);
}

void
pubsub_redis_link_init (PubsubRedisLink     *link,
                        PubsubRedisLinkFunc  func,
                        gpointer             user_data)
{
  link->ac = NULL;
  link->source = NULL;
  link->func = func;
  link->user_data = user_data;
}

static void
attach_source (PubsubRedisLink   *link,
               redisAsyncContext *ac)
{
  LinkSource *source = (LinkSource *) g_source_new (&source_funcs, sizeof (LinkSource));

  source->ac = ac;
  source->poll_fd.fd = ac->c.fd;
  source->poll_fd.events = 0;
  g_source_add_poll (&source->source, &source->poll_fd);
  g_source_set_static_name (&source->source, "pubsub-redis-link");
  ac->ev.data = source;
  ac->ev.addRead = source_add_read;
  ac->ev.delRead = source_del_read;
  ac->ev.addWrite = source_add_write;
  ac->ev.delWrite = source_del_write;
  ac->ev.cleanup = source_cleanup;
  g_source_attach (&source->source, NULL);
  link->source = &source->source;
}

/**
 * pubsub_redis_link_connect:
 * @error: %PUBSUB_ERROR_UNAVAILABLE when even the socket cannot be made
 *
 * Starts connecting (non-blocking); CONNECTED or LOST follows. The link
 * must be idle.
 */
gboolean
pubsub_redis_link_connect (PubsubRedisLink             *link,
                           const PubsubClusterAddress  *address,
                           GError                     **error)
{
  redisAsyncContext *ac;

  g_return_val_if_fail (link->ac == NULL, FALSE);

  if (address->path != NULL)
    ac = redisAsyncConnectUnix (address->path);
  else
    ac = redisAsyncConnect (address->host, (int) address->port);
  if (ac == NULL || ac->err != 0)
    {
      g_set_error (error, PUBSUB_ERROR, PUBSUB_ERROR_UNAVAILABLE,
                   "cannot connect to Redis: %s", ac != NULL ? ac->errstr : "out of memory");
      if (ac != NULL)
        redisAsyncFree (ac);
      return FALSE;
    }
  ac->data = link;
  link->ac = ac;
  attach_source (link, ac);
  redisAsyncSetConnectCallback (ac, on_connect);
  redisAsyncSetDisconnectCallback (ac, on_disconnect);
  return TRUE;
}

/**
 * pubsub_redis_link_close:
 *
 * Drops the connection: pending commands get a %NULL reply, then LOST is
 * emitted (when the connection was established). Safe from within any of
 * the link's callbacks (hiredis then frees the context when the callback
 * returns) and on an idle link.
 */
void
pubsub_redis_link_close (PubsubRedisLink *link)
{
  redisAsyncContext *ac = link->ac;

  if (ac == NULL)
    return;
  if (!(ac->c.flags & REDIS_CONNECTED))
    {
      /* Still connecting: hiredis would not call on_disconnect. */
      link_forget (link);
      ac->onConnect = NULL;
      redisAsyncFree (ac);
      link->func (link, PUBSUB_REDIS_LINK_LOST, "closed", link->user_data);
      return;
    }
  redisAsyncFree (ac);
}

gboolean
pubsub_redis_link_is_open (PubsubRedisLink *link)
{
  return link->ac != NULL &&
         !(link->ac->c.flags & (REDIS_DISCONNECTING | REDIS_FREEING));
}

/**
 * pubsub_redis_link_send:
 *
 * Queues a command; @fn gets its reply, or %NULL when the link is lost
 * first. Never waits: hiredis pipelines.
 *
 * Returns: %FALSE, without calling @fn, when the link cannot take it
 */
gboolean
pubsub_redis_link_send (PubsubRedisLink  *link,
                        redisCallbackFn  *fn,
                        gpointer          privdata,
                        int               argc,
                        const char      **argv,
                        const size_t     *argvlen)
{
  if (!pubsub_redis_link_is_open (link))
    return FALSE;
  return redisAsyncCommandArgv (link->ac, fn, privdata, argc, argv, argvlen) == REDIS_OK;
}

/**
 * pubsub_redis_link_send_formatted:
 * @command: a whole command in Redis's protocol (RESP)
 *
 * As pubsub_redis_link_send(), for a command the caller wrote itself.
 */
gboolean
pubsub_redis_link_send_formatted (PubsubRedisLink *link,
                                  redisCallbackFn *fn,
                                  gpointer         privdata,
                                  const char      *command,
                                  gsize            len)
{
  if (!pubsub_redis_link_is_open (link))
    return FALSE;
  return redisAsyncFormattedCommand (link->ac, fn, privdata, command, len) == REDIS_OK;
}
