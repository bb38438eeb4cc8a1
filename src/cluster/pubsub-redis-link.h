/* pubsub-redis-link.h: one hiredis connection in the GLib main loop
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <glib.h>
#include <hiredis/async.h>

#include "pubsub-settings.h"

G_BEGIN_DECLS

typedef struct _PubsubRedisLink PubsubRedisLink;

/**
 * PubsubRedisLinkEvent:
 * @PUBSUB_REDIS_LINK_CONNECTED: the connection is established
 * @PUBSUB_REDIS_LINK_LOST: it failed, or Redis closed it; the link is idle
 *   again (its pending commands were answered with a %NULL reply first)
 */
typedef enum {
  PUBSUB_REDIS_LINK_CONNECTED,
  PUBSUB_REDIS_LINK_LOST,
} PubsubRedisLinkEvent;

typedef void (*PubsubRedisLinkFunc) (PubsubRedisLink      *link,
                                     PubsubRedisLinkEvent  event,
                                     const char           *why,
                                     gpointer              user_data);

struct _PubsubRedisLink {
  /*< private >*/
  redisAsyncContext *ac;        /* owned through hiredis; NULL when idle */
  GSource           *source;    /* owned: the socket in the main loop */
  PubsubRedisLinkFunc func;
  gpointer           user_data;
};

void     pubsub_redis_link_init    (PubsubRedisLink          *link,
                                    PubsubRedisLinkFunc       func,
                                    gpointer                  user_data);
gboolean pubsub_redis_link_connect (PubsubRedisLink          *link,
                                    const PubsubClusterAddress *address,
                                    GError                  **error);
void     pubsub_redis_link_close   (PubsubRedisLink          *link);
gboolean pubsub_redis_link_is_open (PubsubRedisLink          *link);
gboolean pubsub_redis_link_send    (PubsubRedisLink          *link,
                                    redisCallbackFn          *fn,
                                    gpointer                  privdata,
                                    int                       argc,
                                    const char              **argv,
                                    const size_t             *argvlen);
gboolean pubsub_redis_link_send_formatted (PubsubRedisLink *link,
                                           redisCallbackFn *fn,
                                           gpointer         privdata,
                                           const char      *command,
                                           gsize            len);

G_END_DECLS
