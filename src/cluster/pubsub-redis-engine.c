/* pubsub-redis-engine.c: the engine of a cluster node sharing a Redis
 *
 * Owns the two hiredis connections (commands, and the subscriber that hears
 * the cluster's bus), the calls in flight, the sync barrier and the state
 * machine DOWN → CONNECTING → UP. Everything runs in the main loop: hiredis
 * pipelines, and no call ever waits for another's reply.
 *
 * Failure is one path (SPEC §9): any error, EOF, refused connect or timeout
 * on either connection takes the engine DOWN: both connections are dropped,
 * every pending call is answered UNAVAILABLE in the order it was made, the
 * broker is told once per outage, and a reconnect follows with backoff.
 * hiredis 0.14 has no command timeout: the sync barrier doubles as the
 * heartbeat (a token published on the command connection must come back on
 * the subscriber within HEARTBEAT_TIMEOUT_US), which covers a stopped Redis
 * (SIGSTOP) on both connections at once.
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <string.h>

#include "pubsub-error.h"
#include "pubsub-event-text.h"
#include "pubsub-redis-private.h"

#define BACKOFF_MIN_MS        200
#define BACKOFF_MAX_MS        2000
#define TICK_MS               1000
#define HEARTBEAT_TIMEOUT_US  (3 * G_USEC_PER_SEC)
#define CONNECT_TIMEOUT_US    (5 * G_USEC_PER_SEC)
/* Bounds on what a flood of clients can queue towards Redis. */
#define MAX_PENDING_CALLS     100000
#define MAX_PENDING_BYTES     ((gsize) 64 * 1024 * 1024)
/* A batch of publishes is sent at once when it grows this big; its
 * script's HMGET of the ids of one topic takes them all as arguments. Its
 * events go to every node as one bus message, and Redis drops a
 * subscriber as soon as one message is over its client-output-buffer-limit
 * for pubsub: a batch stays far below any sane limit (a single larger
 * event still goes alone, as it did before batching). */
#define BATCH_MAX_CALLS       256
#define BATCH_MAX_BYTES       ((gsize) 32 * 1024)

typedef enum {
  CALL_PUBLISH,
  CALL_CREATE,
  CALL_DELETE,
  CALL_SYNC,
} CallKind;

/* One call of the engine interface waiting for Redis. */
typedef struct {
  PubsubRedisEngine    *engine;
  GObject              *owner;      /* owned */
  PubsubEngineCallback  callback;
  CallKind              kind;
  gsize                 bytes;
  char                 *name;       /* owned: create, delete, publish */
  char                 *text;       /* owned: publish, until sent */
  gsize                 head_len;   /* publish: the text's two parts */
  gsize                 text_len;
  char                  id[PUBSUB_UUID_LEN + 1];
  PubsubEngineReply     reply;
} Call;

static void pubsub_redis_engine_iface_init (PubsubEngineInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (PubsubRedisEngine, pubsub_redis_engine, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (PUBSUB_TYPE_ENGINE,
                                                      pubsub_redis_engine_iface_init))

static void engine_stop (PubsubEngine *engine);
static void batch_flush (PubsubRedisEngine *self);

static void
pubsub_redis_engine_dispose (GObject *object)
{
  engine_stop (PUBSUB_ENGINE (object));

  G_OBJECT_CLASS (pubsub_redis_engine_parent_class)->dispose (object);
}

static void
pubsub_redis_engine_finalize (GObject *object)
{
  PubsubRedisEngine *self = PUBSUB_REDIS_ENGINE (object);

  pubsub_cluster_address_clear (&self->address);
  g_free (self->address_text);
  g_free (self->prefix);
  g_free (self->node_id);
  g_free (self->k_topics);
  g_free (self->k_prev);
  g_free (self->k_seq);
  g_free (self->k_bus);
  g_free (self->k_marker);
  g_free (self->k_nodes);
  g_free (self->k_node);
  g_free (self->k_sync);
  g_free (self->generation);
  g_hash_table_unref (self->fetches);
  g_hash_table_unref (self->remote);
  g_string_free (self->last_report, TRUE);

  G_OBJECT_CLASS (pubsub_redis_engine_parent_class)->finalize (object);
}

static void
pubsub_redis_engine_class_init (PubsubRedisEngineClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = pubsub_redis_engine_dispose;
  object_class->finalize = pubsub_redis_engine_finalize;
}

static void on_link_event (PubsubRedisLink      *link,
                           PubsubRedisLinkEvent  event,
                           const char           *why,
                           gpointer              user_data);

static void
pubsub_redis_engine_init (PubsubRedisEngine *self)
{
  pubsub_redis_link_init (&self->cmd, on_link_event, self);
  pubsub_redis_link_init (&self->sub, on_link_event, self);
  self->backoff_ms = BACKOFF_MIN_MS;
  self->n_nodes = 1;
  g_queue_init (&self->sync_ready);
  g_queue_init (&self->backlog);
  self->fetches = g_hash_table_new (g_str_hash, g_str_equal);
  self->remote = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->last_report = g_string_new (NULL);
}

/**
 * pubsub_redis_engine_new:
 * @address: redis://HOST[:PORT][/DB] or unix:PATH
 * @prefix: (nullable): of every key and channel; "pubsub" if %NULL
 * @node_id: (nullable): this node's name in the cluster; the host name if
 *   %NULL
 * @error: %G_OPTION_ERROR_BAD_VALUE for an address that does not parse
 *
 * Returns: (transfer full) (nullable): the engine, not connected yet:
 *   pubsub_engine_start() connects
 */
PubsubEngine *
pubsub_redis_engine_new (const char  *address,
                         const char  *prefix,
                         const char  *node_id,
                         GError     **error)
{
  g_autoptr(PubsubRedisEngine) self = g_object_new (PUBSUB_TYPE_REDIS_ENGINE, NULL);
  const char *p;

  g_return_val_if_fail (address != NULL, NULL);

  if (!pubsub_cluster_address_parse (address, &self->address, error))
    return NULL;
  self->address_text = g_strdup (address);
  self->prefix = g_strdup (prefix != NULL ? prefix : "pubsub");
  self->node_id = g_strdup (node_id != NULL ? node_id : g_get_host_name ());
  p = self->prefix;
  self->k_topics = g_strconcat (p, ":topics", NULL);
  self->k_prev = g_strconcat (p, ":prev", NULL);
  self->k_seq = g_strconcat (p, ":seq", NULL);
  self->k_bus = g_strconcat (p, ":bus", NULL);
  self->k_marker = g_strconcat (p, ":marker", NULL);
  self->k_nodes = g_strconcat (p, ":nodes", NULL);
  self->k_node = g_strconcat (p, ":node:", self->node_id, NULL);
  self->k_sync = g_strconcat (p, ":sync:", self->node_id, NULL);
  return PUBSUB_ENGINE (g_steal_pointer (&self));
}

/* P:s:{name}, P:ids:{name} */
char *
pubsub_redis_engine_topic_key (PubsubRedisEngine *self,
                               const char        *kind,
                               const char        *name)
{
  return g_strconcat (self->prefix, ":", kind, ":", name, NULL);
}

/**
 * pubsub_redis_script_error_is:
 * @code: what a script gave redis.error_reply()
 *
 * Whether @r is that error; Redis 7 puts "ERR " before a code it does not
 * know.
 */
gboolean
pubsub_redis_script_error_is (const redisReply *r,
                              const char       *code)
{
  const char *text;

  if (r->type != REDIS_REPLY_ERROR)
    return FALSE;
  text = g_str_has_prefix (r->str, "ERR ") ? r->str + 4 : r->str;
  return g_str_equal (text, code);
}

/* ---------------------------------------------------------------------- */
/* Calls                                                                  */

static Call *
call_new (PubsubRedisEngine    *self,
          CallKind              kind,
          GObject              *owner,
          PubsubEngineCallback  callback,
          gsize                 bytes)
{
  Call *call = g_new0 (Call, 1);

  call->engine = self;
  call->owner = g_object_ref (owner);
  call->callback = callback;
  call->kind = kind;
  call->bytes = bytes;
  self->n_pending++;
  self->pending_bytes += bytes;
  return call;
}

static void
call_free (Call *call)
{
  call->engine->n_pending--;
  call->engine->pending_bytes -= call->bytes;
  pubsub_engine_reply_clear (&call->reply);
  g_object_unref (call->owner);
  g_free (call->name);
  g_free (call->text);
  g_free (call);
}

static void
call_finish (Call *call)
{
  call->callback (PUBSUB_ENGINE (call->engine), &call->reply, call->owner);
  call_free (call);
}

/* Answers @call with @error, taken. */
static void
call_fail_error (Call   *call,
                 GError *error)
{
  g_clear_error (&call->reply.error);
  call->reply.error = error;
  call_finish (call);
}

static void
call_fail (Call       *call,
           PubsubError code,
           const char *message)
{
  call_fail_error (call, g_error_new_literal (PUBSUB_ERROR, code, message));
}

#define UNREACHABLE_MESSAGE "the cluster's Redis cannot be reached"

/* Whether a new call may go to Redis now; if not, @reply says why. */
static gboolean
admit (PubsubRedisEngine *self,
       PubsubEngineReply *reply,
       gsize              bytes)
{
  if (self->state != STATE_UP)
    g_set_error_literal (&reply->error, PUBSUB_ERROR, PUBSUB_ERROR_UNAVAILABLE,
                         UNREACHABLE_MESSAGE);
  else if (self->n_pending >= MAX_PENDING_CALLS ||
           self->pending_bytes + bytes > MAX_PENDING_BYTES)
    g_set_error_literal (&reply->error, PUBSUB_ERROR, PUBSUB_ERROR_UNAVAILABLE,
                         "too many calls are waiting for the cluster's Redis");
  return reply->error == NULL;
}

/* A call that could not even be queued is answered at once, not through
 * its callback. */
static gboolean
send_call (PubsubRedisEngine *self,
           Call              *call,
           redisCallbackFn   *fn,
           int                argc,
           const char       **argv,
           const size_t      *argvlen,
           PubsubEngineReply *reply)
{
  batch_flush (self);
  if (pubsub_redis_link_send (&self->cmd, fn, call, argc, argv, argvlen))
    return FALSE;
  g_set_error_literal (&reply->error, PUBSUB_ERROR, PUBSUB_ERROR_UNAVAILABLE,
                       UNREACHABLE_MESSAGE);
  call_free (call);
  return TRUE;
}

/**
 * pubsub_redis_engine_command:
 *
 * Sends an internal command (not a call) on the command connection.
 *
 * Returns: %FALSE, without calling @fn, when the connection is gone
 */
gboolean
pubsub_redis_engine_command (PubsubRedisEngine *self,
                             redisCallbackFn   *fn,
                             gpointer           privdata,
                             int                argc,
                             const char       **argv,
                             const size_t      *argvlen)
{
  batch_flush (self);
  return pubsub_redis_link_send (&self->cmd, fn, privdata, argc, argv, argvlen);
}

/**
 * pubsub_redis_engine_eval:
 * @keys_and_args: (element-type utf8): the keys, then the arguments
 * @n_keys: how many of them are keys
 *
 * EVALSHA of one of the scripts, loaded at connect.
 */
gboolean
pubsub_redis_engine_eval (PubsubRedisEngine *self,
                          PubsubRedisScript  script,
                          redisCallbackFn   *fn,
                          gpointer           privdata,
                          GPtrArray         *keys_and_args,
                          guint              n_keys)
{
  guint argc = keys_and_args->len + 3;
  g_autofree const char **argv = g_new (const char *, argc);
  g_autofree size_t *argvlen = g_new (size_t, argc);
  char n_keys_text[16];

  g_snprintf (n_keys_text, sizeof n_keys_text, "%u", n_keys);
  argv[0] = "EVALSHA";
  argv[1] = pubsub_redis_script_get_sha (script);
  argv[2] = n_keys_text;
  for (guint i = 0; i < keys_and_args->len; i++)
    argv[i + 3] = g_ptr_array_index (keys_and_args, i);
  for (guint i = 0; i < argc; i++)
    argvlen[i] = strlen (argv[i]);
  return pubsub_redis_engine_command (self, fn, privdata, (int) argc, argv, argvlen);
}

/* An error reply that is not the script's own answer: the connection or
 * Redis is unwell (NOSCRIPT after a SCRIPT FLUSH, a Lua error…). NOSCRIPT
 * is healed by reconnecting, which loads the scripts again. */
static void
unexpected_error (PubsubRedisEngine *self,
                  const redisReply  *r)
{
  g_debug ("cluster: Redis answered an error: %s", r->str);
  if (g_str_has_prefix (r->str, "NOSCRIPT"))
    pubsub_redis_engine_lost (self, "the scripts are gone from Redis");
}

/* ---------------------------------------------------------------------- */
/* Publishing, in batches                                                 */

/* Redis spends most of a publish on the script call itself: the publishes
 * of one main-loop iteration go as one call of the publish script, sent
 * from a high-priority idle (or at once when the batch is full), and each
 * is answered from its element of the reply, in order. Every other command
 * sends the batch first, so Redis applies the calls in the order they were
 * made and their replies come in that order. */

static void
batch_fail_calls (GPtrArray  *calls,
                  const char *message)
{
  for (guint i = 0; i < calls->len; i++)
    call_fail (g_ptr_array_index (calls, i), PUBSUB_ERROR_UNAVAILABLE, message);
}

/* The reply's element for one call: seq, -seq (duplicate) or 0. */
static void
batch_answer (Call      *call,
              long long  value)
{
  if (value == 0)
    {
      GError *error = NULL;

      pubsub_set_topic_not_found_error (&error, call->name);
      call_fail_error (call, error);
      return;
    }
  call->reply.seq = (guint64) ABS (value);
  call->reply.duplicate = value < 0;
  call_finish (call);
}

static gboolean
batch_reply_is_valid (const redisReply *r,
                      guint             n_calls)
{
  if (r->type != REDIS_REPLY_ARRAY || r->elements != n_calls)
    return FALSE;
  for (guint i = 0; i < n_calls; i++)
    if (r->element[i]->type != REDIS_REPLY_INTEGER)
      return FALSE;
  return TRUE;
}

static void
on_batch_reply (redisAsyncContext *ac,
                void              *reply,
                void              *privdata)
{
  g_autoptr(GPtrArray) calls = privdata;
  PubsubRedisEngine *self = ((Call *) g_ptr_array_index (calls, 0))->engine;
  g_autoptr(PubsubRedisEngine) hold = g_object_ref (self);
  redisReply *r = reply;

  if (r == NULL)
    {
      batch_fail_calls (calls, UNREACHABLE_MESSAGE);
      pubsub_redis_engine_lost (self, "connection lost");
      return;
    }
  if (!batch_reply_is_valid (r, calls->len))
    {
      batch_fail_calls (calls, "the cluster's Redis failed to store the message");
      if (r->type == REDIS_REPLY_ERROR)
        unexpected_error (self, r);
      return;
    }
  for (guint i = 0; i < calls->len; i++)
    batch_answer (g_ptr_array_index (calls, i), r->element[i]->integer);
}

/* One bulk string of RESP: $<len>\r\n<bytes>\r\n. */
static void
resp_append (GString    *out,
             const char *bytes,
             gsize       len)
{
  char digits[24];
  gsize n = sizeof digits;
  gsize value = len;

  do
    digits[--n] = (char) ('0' + value % 10);
  while ((value /= 10) != 0);
  g_string_append_c (out, '$');
  g_string_append_len (out, digits + n, (gssize) (sizeof digits - n));
  g_string_append_len (out, "\r\n", 2);
  g_string_append_len (out, bytes, (gssize) len);
  g_string_append_len (out, "\r\n", 2);
}

static void
resp_append_str (GString    *out,
                 const char *text)
{
  resp_append (out, text, strlen (text));
}

/* KEYS topics, seq, bus; ARGV prefix, history, then name, id, head, tail
 * per call. Written here in RESP rather than by hiredis's argv
 * formatting, whose sdscatfmt per argument was ~4% of a publishing
 * node's CPU. */
static gboolean
batch_send (PubsubRedisEngine *self,
            GPtrArray         *calls,
            gsize              bytes)
{
  g_autoptr(GString) command = g_string_sized_new (bytes + 256 + 96 * calls->len);
  char history[16];

  g_snprintf (history, sizeof history, "%u", pubsub_broker_get_history_size (self->broker));
  g_string_append_printf (command, "*%u\r\n", 8 + 4 * calls->len);
  resp_append_str (command, "EVALSHA");
  resp_append_str (command, pubsub_redis_script_get_sha (PUBSUB_REDIS_SCRIPT_PUBLISH));
  resp_append_str (command, "3");
  resp_append_str (command, self->k_topics);
  resp_append_str (command, self->k_seq);
  resp_append_str (command, self->k_bus);
  resp_append_str (command, self->prefix);
  resp_append_str (command, history);
  for (guint i = 0; i < calls->len; i++)
    {
      Call *call = g_ptr_array_index (calls, i);

      resp_append_str (command, call->name);
      resp_append (command, call->id, PUBSUB_UUID_LEN);
      resp_append (command, call->text, call->head_len);
      resp_append (command, call->text + call->head_len, call->text_len - call->head_len);
      g_clear_pointer (&call->text, g_free);
    }
  return pubsub_redis_link_send_formatted (&self->cmd, on_batch_reply, calls,
                                           command->str, command->len);
}

/* Sends the batch, if any. */
static void
batch_flush (PubsubRedisEngine *self)
{
  GPtrArray *calls = g_steal_pointer (&self->batch);
  gsize bytes = self->batch_bytes;

  if (calls == NULL)
    return;
  g_clear_handle_id (&self->batch_id, g_source_remove);
  self->batch_bytes = 0;
  if (batch_send (self, calls, bytes))
    return;
  /* Older calls than these are failed by going down: these come after. */
  pubsub_redis_engine_lost (self, "connection lost");
  batch_fail_calls (calls, UNREACHABLE_MESSAGE);
  g_ptr_array_unref (calls);
}

/* The engine went down before the batch was sent. */
static void
batch_drop (PubsubRedisEngine *self)
{
  g_autoptr(GPtrArray) calls = g_steal_pointer (&self->batch);

  if (calls == NULL)
    return;
  g_clear_handle_id (&self->batch_id, g_source_remove);
  self->batch_bytes = 0;
  batch_fail_calls (calls, UNREACHABLE_MESSAGE);
}

static gboolean
on_batch_idle (gpointer user_data)
{
  PubsubRedisEngine *self = user_data;

  self->batch_id = 0;
  batch_flush (self);
  return G_SOURCE_REMOVE;
}

static void
batch_add (PubsubRedisEngine *self,
           Call              *call)
{
  if (self->batch != NULL && self->batch_bytes + call->text_len > BATCH_MAX_BYTES)
    batch_flush (self);
  if (self->batch == NULL)
    {
      self->batch = g_ptr_array_new ();
      self->batch_id = g_idle_add_full (G_PRIORITY_HIGH, on_batch_idle, self, NULL);
    }
  g_ptr_array_add (self->batch, call);
  self->batch_bytes += call->text_len;
  if (self->batch->len >= BATCH_MAX_CALLS || self->batch_bytes >= BATCH_MAX_BYTES)
    batch_flush (self);
}

/* Serialized here, once: Redis only adds the seq and the epoch. */
static gboolean
redis_publish (PubsubEngine         *engine,
               const char           *name,
               const char           *id,
               const char           *payload,
               gsize                 payload_len,
               PubsubEngineReply    *reply,
               GObject              *owner,
               PubsubEngineCallback  callback)
{
  PubsubRedisEngine *self = PUBSUB_REDIS_ENGINE (engine);
  Call *call;

  if (G_UNLIKELY (!admit (self, reply, payload_len)))
    return TRUE;
  call = call_new (self, CALL_PUBLISH, owner, callback, payload_len);
  call->name = g_strdup (name);
  memcpy (call->id, id, PUBSUB_UUID_LEN);
  call->text = pubsub_event_text_new_parts (name, id, payload, payload_len, g_get_real_time (),
                                            &call->head_len, &call->text_len);
  batch_add (self, call);
  return FALSE;
}

/* ---------------------------------------------------------------------- */
/* The sync barrier                                                       */

static void sync_send (PubsubRedisEngine *self);

static void
on_sync_published (redisAsyncContext *ac,
                   void              *reply,
                   void              *privdata)
{
  if (reply == NULL)
    pubsub_redis_engine_lost (privdata, "connection lost");
}

static SyncBatch *
sync_batch_new (PubsubRedisEngine *self)
{
  SyncBatch *batch = g_new0 (SyncBatch, 1);

  g_snprintf (batch->token, sizeof batch->token, "%" G_GUINT64_FORMAT, ++self->sync_serial);
  g_queue_init (&batch->calls);
  return batch;
}

/* Every call of the batch gets UNAVAILABLE (the engine went down). */
static void
sync_batch_fail (SyncBatch *batch)
{
  Call *call;

  if (batch == NULL)
    return;
  while ((call = g_queue_pop_head (&batch->calls)) != NULL)
    call_fail (call, PUBSUB_ERROR_UNAVAILABLE, UNREACHABLE_MESSAGE);
  g_free (batch);
}

static void
sync_send (PubsubRedisEngine *self)
{
  const char *argv[3] = { "PUBLISH", self->k_sync, NULL };
  size_t argvlen[3];

  g_assert (self->sync_inflight == NULL && self->sync_open != NULL);

  self->sync_inflight = g_steal_pointer (&self->sync_open);
  self->sync_inflight->sent_us = g_get_monotonic_time ();
  argv[2] = self->sync_inflight->token;
  argvlen[0] = strlen (argv[0]);
  argvlen[1] = strlen (argv[1]);
  argvlen[2] = strlen (argv[2]);
  if (!pubsub_redis_engine_command (self, on_sync_published, self, 3, argv, argvlen))
    pubsub_redis_engine_lost (self, "connection lost");
}

/* @call is answered once everything published before now has arrived. A
 * batch collects the calls made while another token is in flight, so a
 * burst of syncs costs two round trips, not one each. */
static void
sync_join (PubsubRedisEngine *self,
           Call              *call)
{
  /* Every call waiting for a token is older than every publish waiting in
   * the batch: going down answers them in that order. */
  batch_flush (self);
  if (self->state != STATE_UP)
    {
      if (call != NULL)
        call_fail (call, PUBSUB_ERROR_UNAVAILABLE, UNREACHABLE_MESSAGE);
      return;
    }
  if (self->sync_open == NULL)
    self->sync_open = sync_batch_new (self);
  if (call != NULL)
    g_queue_push_tail (&self->sync_open->calls, call);
  if (self->sync_inflight == NULL)
    sync_send (self);
}

/* Answers the calls whose token came back, unless gaps are being filled:
 * then they wait for them. */
static void
sync_answer_ready (PubsubRedisEngine *self)
{
  Call *call;

  if (self->state != STATE_UP || pubsub_redis_replica_is_busy (self))
    return;
  while ((call = g_queue_pop_head (&self->sync_ready)) != NULL)
    call_finish (call);
}

/* A token came back on the subscriber connection. */
static void
on_sync_token (PubsubRedisEngine *self,
               const char        *token,
               gsize              len)
{
  g_autofree SyncBatch *batch = NULL;
  Call *call;

  if (self->sync_inflight == NULL || strlen (self->sync_inflight->token) != len ||
      memcmp (self->sync_inflight->token, token, len) != 0)
    return;
  batch = g_steal_pointer (&self->sync_inflight);
  while ((call = g_queue_pop_head (&batch->calls)) != NULL)
    g_queue_push_tail (&self->sync_ready, call);
  if (self->sync_open != NULL)
    sync_send (self);
  sync_answer_ready (self);
}

static gboolean
redis_sync (PubsubEngine         *engine,
            PubsubEngineReply    *reply,
            GObject              *owner,
            PubsubEngineCallback  callback)
{
  PubsubRedisEngine *self = PUBSUB_REDIS_ENGINE (engine);

  if (!admit (self, reply, 0))
    return TRUE;
  sync_join (self, call_new (self, CALL_SYNC, owner, callback, 0));
  return FALSE;
}

/* ---------------------------------------------------------------------- */
/* Topics                                                                 */

/* The caller's error for the create and delete scripts' own errors, worded
 * as the memory engine words them; NULL for any other. */
static GError *
topic_error (Call             *call,
             const redisReply *r)
{
  GError *error = NULL;

  if (pubsub_redis_script_error_is (r, "EXISTS"))
    pubsub_set_topic_exists_error (&error, call->name);
  else if (pubsub_redis_script_error_is (r, "NOTFOUND"))
    pubsub_set_topic_not_found_error (&error, call->name);
  else if (pubsub_redis_script_error_is (r, "LIMIT"))
    pubsub_set_topic_limit_error (&error, call->name,
                                  pubsub_broker_get_max_topics (call->engine->broker));
  return error;
}

/* Created or deleted in Redis: answered once the bus message that says so
 * has reached this node's replica. Applying the change from the reply
 * instead would race with the bus, which another connection carries: the
 * bus may already have told of a later delete and create. */
static void
on_topic_reply (redisAsyncContext *ac,
                void              *reply,
                void              *privdata)
{
  Call *call = privdata;
  PubsubRedisEngine *self = call->engine;
  redisReply *r = reply;
  GError *error;

  if (r == NULL)
    {
      call_fail (call, PUBSUB_ERROR_UNAVAILABLE, UNREACHABLE_MESSAGE);
      pubsub_redis_engine_lost (self, "connection lost");
      return;
    }
  if (r->type != REDIS_REPLY_ERROR)
    {
      sync_join (self, call);
      return;
    }
  error = topic_error (call, r);
  if (error != NULL)
    call_fail_error (call, error);
  else
    {
      call_fail (call, PUBSUB_ERROR_UNAVAILABLE, "the cluster's Redis failed");
      unexpected_error (self, r);
    }
}

static gboolean
topic_call (PubsubRedisEngine    *self,
            PubsubRedisScript     script,
            CallKind              kind,
            const char           *name,
            const char           *epoch,
            PubsubEngineReply    *reply,
            GObject              *owner,
            PubsubEngineCallback  callback)
{
  g_autofree char *stream = pubsub_redis_engine_topic_key (self, "s", name);
  g_autofree char *ids = pubsub_redis_engine_topic_key (self, "ids", name);
  char max_topics[16];
  const char *argv[12] = {
    "EVALSHA", pubsub_redis_script_get_sha (script), "6",
    self->k_topics, self->k_seq, stream, ids, self->k_bus, self->k_prev, name, epoch, max_topics,
  };
  size_t argvlen[12];
  int argc = kind == CALL_CREATE ? 12 : 10;
  Call *call;

  g_snprintf (max_topics, sizeof max_topics, "%u", pubsub_broker_get_max_topics (self->broker));
  for (int i = 0; i < argc; i++)
    argvlen[i] = strlen (argv[i]);
  call = call_new (self, kind, owner, callback, 0);
  call->name = g_strdup (name);
  if (epoch != NULL)
    memcpy (call->reply.epoch, epoch, sizeof call->reply.epoch);
  return send_call (self, call, on_topic_reply, argc, argv, argvlen, reply);
}

static gboolean
redis_create_topic (PubsubEngine         *engine,
                    const char           *name,
                    PubsubEngineReply    *reply,
                    GObject              *owner,
                    PubsubEngineCallback  callback)
{
  PubsubRedisEngine *self = PUBSUB_REDIS_ENGINE (engine);
  char epoch[PUBSUB_EPOCH_LEN + 1];

  if (!admit (self, reply, 0))
    return TRUE;
  pubsub_epoch_generate (epoch);
  return topic_call (self, PUBSUB_REDIS_SCRIPT_CREATE, CALL_CREATE, name, epoch,
                     reply, owner, callback);
}

static gboolean
redis_delete_topic (PubsubEngine         *engine,
                    const char           *name,
                    PubsubEngineReply    *reply,
                    GObject              *owner,
                    PubsubEngineCallback  callback)
{
  PubsubRedisEngine *self = PUBSUB_REDIS_ENGINE (engine);

  if (!admit (self, reply, 0))
    return TRUE;
  return topic_call (self, PUBSUB_REDIS_SCRIPT_DELETE, CALL_DELETE, name, NULL,
                     reply, owner, callback);
}

/* ---------------------------------------------------------------------- */
/* Connections, down and up                                               */

static void connect_links (PubsubRedisEngine *self);

static gboolean
on_reconnect (gpointer user_data)
{
  PubsubRedisEngine *self = user_data;

  self->reconnect_id = 0;
  connect_links (self);
  return G_SOURCE_REMOVE;
}

/* Drops both connections and everything that waited on them. */
static void
teardown (PubsubRedisEngine *self)
{
  Call *call;

  /* hiredis answers each pending command with a NULL reply, in order. */
  pubsub_redis_link_close (&self->cmd);
  pubsub_redis_link_close (&self->sub);
  sync_batch_fail (g_steal_pointer (&self->sync_inflight));
  sync_batch_fail (g_steal_pointer (&self->sync_open));
  while ((call = g_queue_pop_head (&self->sync_ready)) != NULL)
    call_fail (call, PUBSUB_ERROR_UNAVAILABLE, UNREACHABLE_MESSAGE);
  batch_drop (self);
  pubsub_redis_replica_reset (self);
  self->cmd_ready = FALSE;
  self->n_subscribed = 0;
  self->hello_done = FALSE;
}

/**
 * pubsub_redis_engine_lost:
 * @why: for the log
 *
 * The one way down, whatever happened; does nothing when already down.
 */
void
pubsub_redis_engine_lost (PubsubRedisEngine *self,
                          const char        *why)
{
  if (self->state == STATE_STOPPED || self->state == STATE_DOWN)
    return;
  self->state = STATE_DOWN;
  teardown (self);
  if (!self->outage_told)
    {
      g_message ("cluster %s: unavailable (%s); reconnecting", self->address_text, why);
      self->outage_told = TRUE;
      pubsub_broker_apply_availability (self->broker, FALSE);
    }
  else
    g_debug ("cluster %s: connect failed (%s)", self->address_text, why);
  if (self->state != STATE_DOWN || self->reconnect_id != 0)
    return;
  self->reconnect_id = g_timeout_add (self->backoff_ms, on_reconnect, self);
  self->backoff_ms = MIN (self->backoff_ms * 2, BACKOFF_MAX_MS);
}

static void
go_up (PubsubRedisEngine *self)
{
  self->state = STATE_UP;
  self->backoff_ms = BACKOFF_MIN_MS;
  g_message ("cluster %s: available, node %s", self->address_text, self->node_id);
  self->outage_told = FALSE;
  pubsub_broker_apply_availability (self->broker, TRUE);
  pubsub_redis_nodes_tick (self);
}

/**
 * pubsub_redis_engine_busy_done:
 *
 * A fetch or re-epoch finished: maybe the engine can come up, or syncs
 * waiting for the replica can be answered.
 */
void
pubsub_redis_engine_busy_done (PubsubRedisEngine *self)
{
  if (pubsub_redis_replica_is_busy (self))
    return;
  if (self->state == STATE_CONNECTING && self->hello_done)
    go_up (self);
  sync_answer_ready (self);
}

static void
on_setup_reply (redisAsyncContext *ac,
                void              *reply,
                void              *privdata)
{
  redisReply *r = reply;

  if (r == NULL)
    pubsub_redis_engine_lost (privdata, "connection lost");
  else if (r->type == REDIS_REPLY_ERROR)
    {
      g_autofree char *why = g_strdup_printf ("Redis refused the setup: %s", r->str);

      pubsub_redis_engine_lost (privdata, why);
    }
}

static void
maybe_hello (PubsubRedisEngine *self)
{
  if (self->state == STATE_CONNECTING && self->cmd_ready && self->n_subscribed == 2)
    pubsub_redis_replica_hello (self);
}

static void
send_setname (PubsubRedisEngine *self,
              PubsubRedisLink   *link,
              const char        *role)
{
  g_autofree char *name = g_strdup_printf ("pubsub:%s:%s", self->node_id, role);
  const char *argv[3] = { "CLIENT", "SETNAME", name };
  size_t argvlen[3] = { 6, 7, strlen (name) };

  /* Redis refuses spaces in client names. */
  g_strdelimit (name, " \n\r", '_');
  pubsub_redis_link_send (link, on_setup_reply, self, 3, argv, argvlen);
}

static void
setup_cmd (PubsubRedisEngine *self)
{
  send_setname (self, &self->cmd, "cmd");
  if (self->address.db != 0)
    {
      char db[16];
      const char *argv[2] = { "SELECT", db };
      size_t argvlen[2];

      g_snprintf (db, sizeof db, "%u", self->address.db);
      argvlen[0] = 6;
      argvlen[1] = strlen (db);
      pubsub_redis_link_send (&self->cmd, on_setup_reply, self, 2, argv, argvlen);
    }
  for (guint i = 0; i < PUBSUB_REDIS_N_SCRIPTS; i++)
    {
      const char *argv[3] = { "SCRIPT", "LOAD", pubsub_redis_script_get_text (i) };
      size_t argvlen[3] = { 6, 4, strlen (argv[2]) };

      pubsub_redis_link_send (&self->cmd, on_setup_reply, self, 3, argv, argvlen);
    }
  self->cmd_ready = TRUE;
  maybe_hello (self);
}

static gboolean
str_is (const redisReply *r,
        const char       *text)
{
  return r->type == REDIS_REPLY_STRING && r->len == strlen (text) &&
         memcmp (r->str, text, r->len) == 0;
}

/* Everything the subscriber connection receives. */
static void
on_sub_message (redisAsyncContext *ac,
                void              *reply,
                void              *privdata)
{
  PubsubRedisEngine *self = privdata;
  redisReply *r = reply;

  if (r == NULL)
    {
      pubsub_redis_engine_lost (self, "connection lost");
      return;
    }
  /* A message read in the same batch as an error that took us down. */
  if (self->state != STATE_CONNECTING && self->state != STATE_UP)
    return;
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 3)
    return;
  if (str_is (r->element[0], "subscribe"))
    {
      self->n_subscribed++;
      maybe_hello (self);
    }
  else if (str_is (r->element[0], "message") && r->element[2]->type == REDIS_REPLY_STRING)
    {
      if (str_is (r->element[1], self->k_sync))
        on_sync_token (self, r->element[2]->str, r->element[2]->len);
      else
        pubsub_redis_replica_on_bus (self, r->element[2]->str, r->element[2]->len);
    }
}

/* The bus and this node's sync channel, before anything is read, so that
 * nothing stored after the read can be missed. */
static void
setup_sub (PubsubRedisEngine *self)
{
  const char *argv[3] = { "SUBSCRIBE", self->k_bus, self->k_sync };
  size_t argvlen[3] = { 9, strlen (self->k_bus), strlen (self->k_sync) };

  send_setname (self, &self->sub, "sub");
  pubsub_redis_link_send (&self->sub, on_sub_message, self, 3, argv, argvlen);
}

static void
on_link_event (PubsubRedisLink      *link,
               PubsubRedisLinkEvent  event,
               const char           *why,
               gpointer              user_data)
{
  PubsubRedisEngine *self = user_data;

  if (event == PUBSUB_REDIS_LINK_LOST)
    pubsub_redis_engine_lost (self, why != NULL ? why : "connection lost");
  else if (self->state == STATE_CONNECTING && link == &self->cmd)
    setup_cmd (self);
  else if (self->state == STATE_CONNECTING)
    setup_sub (self);
}

static void
connect_links (PubsubRedisEngine *self)
{
  g_autoptr(GError) error = NULL;

  self->state = STATE_CONNECTING;
  self->connect_us = g_get_monotonic_time ();
  if (!pubsub_redis_link_connect (&self->cmd, &self->address, &error) ||
      !pubsub_redis_link_connect (&self->sub, &self->address, &error))
    pubsub_redis_engine_lost (self, error->message);
}

/* Every second: the heartbeat and the connect timeout; every other
 * second, the node report. */
static gboolean
on_tick (gpointer user_data)
{
  PubsubRedisEngine *self = user_data;
  gint64 now = g_get_monotonic_time ();

  self->ticks++;
  if (self->state == STATE_CONNECTING && now - self->connect_us > CONNECT_TIMEOUT_US)
    pubsub_redis_engine_lost (self, "Redis did not answer in time");
  if (self->state != STATE_UP)
    return G_SOURCE_CONTINUE;
  if (self->sync_inflight != NULL && now - self->sync_inflight->sent_us > HEARTBEAT_TIMEOUT_US)
    {
      pubsub_redis_engine_lost (self, "Redis did not answer in time");
      return G_SOURCE_CONTINUE;
    }
  if (self->sync_inflight == NULL)
    sync_join (self, NULL);
  if (self->ticks % 2 == 0)
    pubsub_redis_nodes_tick (self);
  return G_SOURCE_CONTINUE;
}

/* ---------------------------------------------------------------------- */
/* The interface                                                          */

static void
engine_start (PubsubEngine *engine,
              PubsubBroker *broker)
{
  PubsubRedisEngine *self = PUBSUB_REDIS_ENGINE (engine);

  g_return_if_fail (self->state == STATE_STOPPED && self->broker == NULL);

  self->broker = broker;
  self->tick_id = g_timeout_add (TICK_MS, on_tick, self);
  pubsub_redis_nodes_start (self);
  connect_links (self);
}

static void
engine_stop (PubsubEngine *engine)
{
  PubsubRedisEngine *self = PUBSUB_REDIS_ENGINE (engine);

  if (self->broker == NULL)
    return;
  self->state = STATE_STOPPED;
  g_clear_handle_id (&self->reconnect_id, g_source_remove);
  g_clear_handle_id (&self->tick_id, g_source_remove);
  teardown (self);
  pubsub_redis_nodes_stop (self);
  self->broker = NULL;
}

static gboolean
engine_is_available (PubsubEngine *engine)
{
  return PUBSUB_REDIS_ENGINE (engine)->state == STATE_UP;
}

static guint
engine_get_remote_subscribers (PubsubEngine *engine,
                               const char   *topic)
{
  PubsubRedisEngine *self = PUBSUB_REDIS_ENGINE (engine);

  return GPOINTER_TO_UINT (g_hash_table_lookup (self->remote, topic));
}

static guint
engine_get_nodes (PubsubEngine *engine)
{
  return PUBSUB_REDIS_ENGINE (engine)->n_nodes;
}

static const char *
engine_get_node_id (PubsubEngine *engine)
{
  return PUBSUB_REDIS_ENGINE (engine)->node_id;
}

static const char *
engine_get_cluster (PubsubEngine *engine)
{
  return PUBSUB_REDIS_ENGINE (engine)->address_text;
}

static void
pubsub_redis_engine_iface_init (PubsubEngineInterface *iface)
{
  iface->start = engine_start;
  iface->stop = engine_stop;
  iface->is_available = engine_is_available;
  iface->create_topic = redis_create_topic;
  iface->delete_topic = redis_delete_topic;
  iface->publish = redis_publish;
  iface->sync = redis_sync;
  iface->get_remote_subscribers = engine_get_remote_subscribers;
  iface->get_nodes = engine_get_nodes;
  iface->get_node_id = engine_get_node_id;
  iface->get_cluster = engine_get_cluster;
}
