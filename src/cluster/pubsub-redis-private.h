/* pubsub-redis-private.h: the Redis engine's state, shared by its files
 *
 * pubsub-redis-engine.c: the object, the calls, the two connections, the
 *   sync barrier and going down and up;
 * pubsub-redis-replica.c: keeping the broker a replica of Redis: the bus,
 *   gaps, and reconciling after a (re)connect;
 * pubsub-redis-nodes.c: this node's report and the other nodes' counts.
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <hiredis/hiredis.h>

#include "pubsub-broker.h"
#include "pubsub-redis-engine.h"
#include "pubsub-redis-link.h"
#include "pubsub-redis-scripts.h"

G_BEGIN_DECLS

typedef enum {
  STATE_STOPPED,     /* not started, or stopped */
  STATE_DOWN,        /* waiting to reconnect */
  STATE_CONNECTING,  /* connecting, subscribing, reconciling */
  STATE_UP,
} EngineState;

/* One sync token in flight and the calls it answers. */
typedef struct {
  char     token[24];
  gint64   sent_us;    /* monotonic; 0 while not sent */
  GQueue   calls;      /* Call * */
} SyncBatch;

struct _PubsubRedisEngine {
  GObject          parent_instance;

  /* Configuration */
  PubsubClusterAddress address;
  char            *address_text;
  char            *prefix;
  char            *node_id;
  char            *k_topics;      /* P:topics … */
  char            *k_prev;
  char            *k_seq;
  char            *k_bus;
  char            *k_marker;
  char            *k_nodes;
  char            *k_node;        /* P:node:{id} */
  char            *k_sync;        /* P:sync:{id} */

  PubsubBroker    *broker;        /* unowned: the broker owns its engine */
  gulong           notify_id;     /* broker's notify::subscriber-count */

  /* Connections */
  PubsubRedisLink  cmd;
  PubsubRedisLink  sub;
  EngineState      state;
  gboolean         cmd_ready;     /* set up: named, scripts loaded */
  guint            n_subscribed;  /* subscribe confirmations */
  gboolean         hello_done;    /* the replica reflects Redis */
  char            *generation;    /* the marker's value last seen: it
                                   * changes when Redis lost its data */
  gboolean         outage_told;   /* availability FALSE applied */
  gint64           connect_us;    /* when this attempt began */
  guint            backoff_ms;
  guint            reconnect_id;
  guint            tick_id;
  guint            ticks;

  /* Calls in flight (bounded) */
  guint            n_pending;
  gsize            pending_bytes;

  /* Publishes not sent yet: one batch per main-loop iteration */
  GPtrArray       *batch;         /* Call *, in order; NULL when empty */
  gsize            batch_bytes;
  guint            batch_id;      /* the idle that sends it */

  /* The sync barrier, which doubles as the heartbeat */
  guint64          sync_serial;
  SyncBatch       *sync_inflight;
  SyncBatch       *sync_open;
  GQueue           sync_ready;    /* Call *: token seen, gaps still filling */

  /* The replica */
  GQueue           backlog;       /* GBytes *: bus messages before the hello */
  GHashTable      *fetches;       /* topic name → Fetch * */
  guint            n_busy;        /* fetches and re-epochs in flight */

  /* Nodes */
  GHashTable      *remote;        /* topic name → subscriber count elsewhere */
  guint            n_nodes;
  GString         *last_report;
  guint            report_id;
  gboolean         reading_nodes;
  gboolean         nodes_dirty;
};

/* pubsub-redis-engine.c */
void      pubsub_redis_engine_lost          (PubsubRedisEngine *self,
                                             const char        *why);
gboolean  pubsub_redis_engine_command       (PubsubRedisEngine *self,
                                             redisCallbackFn   *fn,
                                             gpointer           privdata,
                                             int                argc,
                                             const char       **argv,
                                             const size_t      *argvlen);
gboolean  pubsub_redis_engine_eval          (PubsubRedisEngine *self,
                                             PubsubRedisScript  script,
                                             redisCallbackFn   *fn,
                                             gpointer           privdata,
                                             GPtrArray         *keys_and_args,
                                             guint              n_keys);
void      pubsub_redis_engine_busy_done     (PubsubRedisEngine *self);
gboolean  pubsub_redis_script_error_is      (const redisReply  *r,
                                             const char        *code);
char     *pubsub_redis_engine_topic_key     (PubsubRedisEngine *self,
                                             const char        *kind,
                                             const char        *name);

/* pubsub-redis-replica.c */
void      pubsub_redis_replica_on_bus       (PubsubRedisEngine *self,
                                             const char        *text,
                                             gsize              len);
void      pubsub_redis_replica_hello        (PubsubRedisEngine *self);
void      pubsub_redis_replica_reset        (PubsubRedisEngine *self);
gboolean  pubsub_redis_replica_is_busy      (PubsubRedisEngine *self);

/* pubsub-redis-nodes.c */
void      pubsub_redis_nodes_start          (PubsubRedisEngine *self);
void      pubsub_redis_nodes_stop           (PubsubRedisEngine *self);
void      pubsub_redis_nodes_tick           (PubsubRedisEngine *self);
void      pubsub_redis_nodes_on_report      (PubsubRedisEngine *self,
                                             const char        *node);

G_END_DECLS
