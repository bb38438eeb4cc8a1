/* test-cluster.c: cluster mode (SPEC §9), two or three real pubsubd nodes
 * sharing one private redis-server, which the tests break on purpose
 *
 * Every case starts its own redis-server (tests/pubsub-test-redis.c) on a
 * Unix socket and its own nodes on port 0 with --cluster unix:SOCKET and a
 * --node-id of their own ("node-a", "node-b", "node-c").
 *
 * Subscribers are checked as frames arrive (sub_on_frame()): every event
 * must carry the next seq of the current epoch (no gap, no duplicate, no
 * reordering); the only ways to move on otherwise are a messages_lost info
 * (a later seq, or a new epoch) and topic_deleted. So "no silent gap" is
 * checked on every frame of every case, whatever the timing.
 *
 * Two ways of cutting one node off Redis deterministically:
 *  - freeze the node (SIGSTOP), close its subscriber connection from the
 *    Redis side (CLIENT KILL), act through another node, thaw it: when it
 *    runs again it finds its connection gone and everything that happened
 *    meanwhile missed;
 *  - freeze, kill or restart Redis itself.
 * The node's subscriber connection is the Redis client named
 * "…:<node-id>:sub" if the nodes name their connections so (CLIENT
 * SETNAME), else the one in pub/sub mode among the node's own sockets.
 *
 * Skipped (g_test_skip) only when redis-server is not installed.
 *
 * SPDX-License-Identifier: MIT
 */
#include <signal.h>
#include <string.h>

#include <unistd.h>

#include <gio/gunixsocketaddress.h>
#include <glib/gstdio.h>

#include "pubsub-test-redis.h"
#include "pubsub-test-util.h"

#define MAX_NODES 4

/* ---------------------------------------------------------------------- */
/* JSON                                                                   */

static gint64
object_int (JsonObject *object,
            const char *member,
            const char *context)
{
  JsonNode *node = json_object_get_member (object, member);

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) ||
      json_node_get_value_type (node) != G_TYPE_INT64)
    g_error ("no integer '%s' in %s", member, context);
  return json_node_get_int (node);
}

static const char *
object_string (JsonObject *object,
               const char *member,
               const char *context)
{
  JsonNode *node = json_object_get_member (object, member);

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) ||
      json_node_get_value_type (node) != G_TYPE_STRING)
    g_error ("no string '%s' in %s", member, context);
  return json_node_get_string (node);
}

static gboolean
object_bool (JsonObject *object,
             const char *member,
             const char *context)
{
  JsonNode *node = json_object_get_member (object, member);

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) ||
      json_node_get_value_type (node) != G_TYPE_BOOLEAN)
    g_error ("no boolean '%s' in %s", member, context);
  return json_node_get_boolean (node);
}

static JsonObject *
frame_object (PubsubTestFrame *frame)
{
  return json_node_get_object (frame->root);
}

static JsonObject *
response_object (PubsubTestResponse *response)
{
  return json_node_get_object (response->json);
}

static void
assert_epoch_shape (const char *epoch)
{
  g_assert_nonnull (epoch);
  g_assert_cmpuint (strlen (epoch), ==, 16);
  g_assert_cmpuint (strspn (epoch, "0123456789abcdef"), ==, 16);
}

/* ---------------------------------------------------------------------- */
/* The cluster fixture                                                    */

typedef struct {
  guint       n_nodes;
  const char *history_size;    /* NULL: the default (100) */
  const char *queue_size;      /* NULL: the default (100) */
  const char *prefix;          /* NULL: the default ("pubsub") */
} ClusterSetup;

typedef struct {
  const ClusterSetup *setup;
  PubsubTestRedis    *redis;        /* NULL: skipped */
  PubsubTestServer   *nodes[MAX_NODES];
  char               *node_ids[MAX_NODES];
  gboolean            frozen[MAX_NODES];
} Cluster;

static const char *const node_names[MAX_NODES] = { "node-a", "node-b", "node-c", "node-d" };

static PubsubTestServer *
start_node (Cluster    *cluster,
            guint       i,
            const char *prefix)
{
  g_autoptr(GPtrArray) args = g_ptr_array_new ();
  const ClusterSetup *setup = cluster->setup;

  g_assert_cmpuint (i, <, MAX_NODES);
  g_assert_null (cluster->nodes[i]);
  g_ptr_array_add (args, (gpointer) "--cluster");
  g_ptr_array_add (args, (gpointer) pubsub_test_redis_get_url (cluster->redis));
  g_ptr_array_add (args, (gpointer) "--node-id");
  g_ptr_array_add (args, (gpointer) node_names[i]);
  if (prefix != NULL)
    {
      g_ptr_array_add (args, (gpointer) "--cluster-prefix");
      g_ptr_array_add (args, (gpointer) prefix);
    }
  if (setup->history_size != NULL)
    {
      g_ptr_array_add (args, (gpointer) "--history-size");
      g_ptr_array_add (args, (gpointer) setup->history_size);
    }
  if (setup->queue_size != NULL)
    {
      g_ptr_array_add (args, (gpointer) "--queue-size");
      g_ptr_array_add (args, (gpointer) setup->queue_size);
    }
  g_ptr_array_add (args, NULL);
  /* Today's pubsubd (before cluster mode) exits with status 2 on the
   * unknown option: pubsub_test_server_start_full() fails the test with its
   * log, at once. */
  cluster->nodes[i] = pubsub_test_server_start_full (PUBSUB_TEST_SERVER_DEFAULT, NULL,
                                                     (const char * const *) args->pdata);
  cluster->node_ids[i] = g_strdup (node_names[i]);
  return cluster->nodes[i];
}

typedef struct {
  guint    status;
  char    *cluster;     /* "up", "down" */
  char    *node;
  gint64   nodes;       /* -1: missing */
} Health;

static void
health_clear (Health *health)
{
  g_free (health->cluster);
  g_free (health->node);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Health, health_clear)

/* GET /health. "nodes" is read as a count, or as the length of a list of
 * node ids (then this node's id must be in it). */
static void
get_health (PubsubTestServer *node,
            Health           *out)
{
  g_autoptr(PubsubTestResponse) response = pubsub_test_request_lax (node, "GET", "/health");
  JsonObject *object = response_object (response);
  JsonNode *nodes;
  JsonNode *member;

  memset (out, 0, sizeof *out);
  out->status = response->status;
  out->nodes = -1;
  member = json_object_get_member (object, "cluster");
  if (member != NULL && JSON_NODE_HOLDS_VALUE (member))
    out->cluster = g_strdup (json_node_get_string (member));
  member = json_object_get_member (object, "node");
  if (member != NULL && JSON_NODE_HOLDS_VALUE (member))
    out->node = g_strdup (json_node_get_string (member));
  nodes = json_object_get_member (object, "nodes");
  if (nodes != NULL && JSON_NODE_HOLDS_VALUE (nodes) &&
      json_node_get_value_type (nodes) == G_TYPE_INT64)
    out->nodes = json_node_get_int (nodes);
  else if (nodes != NULL && JSON_NODE_HOLDS_ARRAY (nodes))
    {
      JsonArray *list = json_node_get_array (nodes);
      gboolean self = FALSE;

      out->nodes = json_array_get_length (list);
      for (guint i = 0; i < json_array_get_length (list); i++)
        if (g_strcmp0 (json_array_get_string_element (list, i), out->node) == 0)
          self = TRUE;
      g_assert_true (self);
    }
}

static gboolean
health_is (PubsubTestServer *node,
           guint             status,
           const char       *cluster,
           gint64            nodes)
{
  g_auto(Health) health = { 0, };

  get_health (node, &health);
  return health.status == status && g_strcmp0 (health.cluster, cluster) == 0 &&
         (nodes < 0 || health.nodes == nodes);
}

/* Every running node up, and seeing @n live nodes. */
static void
wait_cluster_up (Cluster *cluster,
                 gint64   n)
{
  for (guint i = 0; i < MAX_NODES; i++)
    if (cluster->nodes[i] != NULL && !cluster->nodes[i]->exited)
      pubsub_test_wait_for (health_is (cluster->nodes[i], 200, "up", n), 15000);
}

static void
cluster_setup (Cluster       *cluster,
               gconstpointer  data)
{
  const ClusterSetup *setup = data;

  cluster->setup = setup;
  if (!pubsub_test_redis_available ())
    {
      g_test_skip ("redis-server is not installed (Debian: redis-server)");
      return;
    }
  cluster->redis = pubsub_test_redis_start ();
  for (guint i = 0; i < setup->n_nodes; i++)
    start_node (cluster, i, setup->prefix);
  wait_cluster_up (cluster, setup->n_nodes);
}

/* Nodes first (a graceful shutdown while Redis still answers), then Redis.
 * Runs after a failed (g_test_fail) case too: nothing is left behind. */
static void
cluster_teardown (Cluster       *cluster,
                  gconstpointer  data)
{
  if (cluster->redis != NULL && pubsub_test_redis_is_paused (cluster->redis))
    pubsub_test_redis_resume (cluster->redis);
  for (guint i = 0; i < MAX_NODES; i++)
    {
      if (cluster->nodes[i] == NULL)
        continue;
      if (cluster->frozen[i] && !cluster->nodes[i]->exited)
        pubsub_test_server_signal (cluster->nodes[i], SIGCONT);
      /* A node the case killed on purpose is not checked. */
      if (!cluster->nodes[i]->exited)
        pubsub_test_server_stop (cluster->nodes[i]);
      g_clear_pointer (&cluster->nodes[i], pubsub_test_server_free);
      g_clear_pointer (&cluster->node_ids[i], g_free);
    }
  g_clear_pointer (&cluster->redis, pubsub_test_redis_free);
}

static void
freeze_node (Cluster *cluster,
             guint    i)
{
  pubsub_test_server_signal (cluster->nodes[i], SIGSTOP);
  cluster->frozen[i] = TRUE;
}

static void
thaw_node (Cluster *cluster,
           guint    i)
{
  pubsub_test_server_signal (cluster->nodes[i], SIGCONT);
  cluster->frozen[i] = FALSE;
}

/* The "id=" of each line of CLIENT LIST whose name ends with @suffix. */
static GPtrArray *
client_ids_named (PubsubTestRedis *redis,
                  const char      *suffix)
{
  g_autofree char *list = pubsub_test_redis_command (redis, "CLIENT", "LIST", NULL);
  g_auto(GStrv) lines = g_strsplit (list, "\n", -1);
  GPtrArray *ids = g_ptr_array_new_with_free_func (g_free);

  for (gsize i = 0; lines[i] != NULL; i++)
    {
      g_auto(GStrv) fields = g_strsplit (lines[i], " ", -1);
      const char *id = NULL;
      const char *name = NULL;

      for (gsize j = 0; fields[j] != NULL; j++)
        {
          if (g_str_has_prefix (fields[j], "id="))
            id = fields[j] + 3;
          else if (g_str_has_prefix (fields[j], "name="))
            name = fields[j] + 5;
        }
      if (id != NULL && name != NULL && g_str_has_suffix (name, suffix))
        g_ptr_array_add (ids, g_strdup (id));
    }
  return ids;
}

/**
 * cut_subscriber_link:
 *
 * Closes, from the Redis side, the connection node @i receives the
 * cluster's messages on, and only that one: the client named
 * "…:<node-id>:sub" if the node names its connections, else the node's
 * own connections in pub/sub mode, found by their sockets
 * (pubsub_test_redis_clients_of()). Fails the test if there is none.
 */
static void
cut_subscriber_link (Cluster *cluster,
                     guint    i)
{
  g_autofree char *suffix = g_strdup_printf (":%s:sub", cluster->node_ids[i]);
  g_autoptr(GPtrArray) ids = client_ids_named (cluster->redis, suffix);

  if (ids->len == 0)
    {
      g_clear_pointer (&ids, g_ptr_array_unref);
      ids = pubsub_test_redis_clients_of (cluster->redis, cluster->nodes[i]->pid, TRUE);
      g_test_message ("no Redis client named *%s: %s's pub/sub clients by socket: %u",
                      suffix, cluster->node_ids[i], ids->len);
    }
  if (ids->len == 0)
    g_error ("node %s has no pub/sub connection to Redis to cut", cluster->node_ids[i]);
  for (guint k = 0; k < ids->len; k++)
    {
      g_autofree char *killed = pubsub_test_redis_command (cluster->redis, "CLIENT", "KILL", "ID",
                                                           (const char *) ids->pdata[k], NULL);

      g_assert_cmpstr (killed, ==, "1");
    }
}

/* ---------------------------------------------------------------------- */
/* Subscribers, checked frame by frame                                    */

typedef struct {
  guint64  seq;
  GQuark   epoch;
  gint64   p;          /* payload.p: the publisher (-1: none) */
  gint64   n;          /* payload.n */
  char    *id;
} Event;

static void
event_clear (gpointer data)
{
  g_free (((Event *) data)->id);
}

typedef struct {
  PubsubTestWs *ws;
  const char   *name;        /* for messages */
  char         *topic;
  char         *epoch;       /* NULL until the subscribe ack */
  guint64       last_seq;    /* the last seq delivered (or acknowledged) */
  gint64        since_seq;   /* -1: the subscribe gave no since */
  GArray       *events;      /* of Event, in arrival order */
  guint         n_unavailable;
  guint         n_lost;
  guint64       lost_seq;    /* of the last messages_lost */
  char         *lost_epoch;
  guint         n_deleted;
} Sub;

static PubsubTestFrame *
frame_copy (PubsubTestFrame *frame)
{
  PubsubTestFrame *copy = g_new0 (PubsubTestFrame, 1);

  copy->type = frame->type;
  copy->text = g_strdup (frame->text);
  copy->len = frame->len;
  copy->root = frame->root != NULL ? json_node_ref (frame->root) : NULL;
  return copy;
}

static void
sub_on_event (Sub             *sub,
              PubsubTestFrame *frame)
{
  JsonObject *object = frame_object (frame);
  JsonObject *message;
  JsonNode *payload;
  Event event = { 0, };
  guint64 seq;
  const char *epoch;

  g_assert_cmpstr (object_string (object, "topic", frame->text), ==, sub->topic);
  if (sub->epoch == NULL)
    g_error ("%s: an event before the subscribe ack: %s", sub->name, frame->text);
  if (sub->n_deleted > 0)
    g_error ("%s: an event after topic_deleted: %s", sub->name, frame->text);
  seq = (guint64) object_int (object, "seq", frame->text);
  epoch = object_string (object, "epoch", frame->text);
  if (!g_str_equal (epoch, sub->epoch))
    g_error ("%s: an event of epoch %s while in epoch %s, without messages_lost: %s",
             sub->name, epoch, sub->epoch, frame->text);
  if (seq != sub->last_seq + 1)
    g_error ("%s: seq %" G_GUINT64_FORMAT " after %" G_GUINT64_FORMAT " (%s), without "
             "messages_lost: %s", sub->name, seq, sub->last_seq,
             seq <= sub->last_seq ? "a duplicate or reordering" : "a silent gap", frame->text);
  sub->last_seq = seq;

  message = json_object_get_object_member (object, "message");
  payload = json_object_get_member (message, "payload");
  event.seq = seq;
  event.epoch = g_quark_from_string (epoch);
  event.id = g_strdup (object_string (message, "id", frame->text));
  event.p = -1;
  event.n = -1;
  if (payload != NULL && JSON_NODE_HOLDS_OBJECT (payload))
    {
      JsonObject *fields = json_node_get_object (payload);

      if (json_object_has_member (fields, "p"))
        event.p = object_int (fields, "p", frame->text);
      if (json_object_has_member (fields, "n"))
        event.n = object_int (fields, "n", frame->text);
    }
  g_array_append_val (sub->events, event);
}

static void
sub_on_info (Sub             *sub,
             PubsubTestFrame *frame)
{
  JsonObject *object = frame_object (frame);
  const char *msg = object_string (object, "msg", frame->text);

  if (g_str_equal (msg, "ping"))
    return;
  if (g_str_equal (msg, "cluster_unavailable"))
    {
      sub->n_unavailable++;
      return;
    }
  g_assert_cmpstr (object_string (object, "topic", frame->text), ==, sub->topic);
  if (g_str_equal (msg, "topic_deleted"))
    sub->n_deleted++;
  else if (g_str_equal (msg, "messages_lost"))
    {
      guint64 seq = (guint64) object_int (object, "seq", frame->text);
      const char *epoch = object_string (object, "epoch", frame->text);

      assert_epoch_shape (epoch);
      g_assert_cmpuint (seq, >=, 1);
      /* In the same epoch it announces a real gap; else a new epoch. */
      if (g_strcmp0 (epoch, sub->epoch) == 0 && seq <= sub->last_seq + 1)
        g_error ("%s: messages_lost without a gap (next seq was %" G_GUINT64_FORMAT "): %s",
                 sub->name, sub->last_seq + 1, frame->text);
      sub->n_lost++;
      sub->lost_seq = seq;
      g_free (sub->lost_epoch);
      sub->lost_epoch = g_strdup (epoch);
      g_free (sub->epoch);
      sub->epoch = g_strdup (epoch);
      sub->last_seq = seq - 1;
    }
  else
    g_error ("%s: an unknown info: %s", sub->name, frame->text);
}

/* The ack of our subscribe ("request_id":"s") sets where the checks start. */
static void
sub_on_ack (Sub             *sub,
            PubsubTestFrame *frame)
{
  JsonObject *object = frame_object (frame);

  if (g_strcmp0 (pubsub_test_frame_get_string (frame, "request_id", NULL), "s") != 0 ||
      sub->epoch != NULL)
    return;
  sub->epoch = g_strdup (object_string (object, "epoch", frame->text));
  assert_epoch_shape (sub->epoch);
  sub->last_seq = (guint64) object_int (object, "seq", frame->text);
  if (sub->since_seq >= 0 && object_bool (object, "recovered", frame->text))
    sub->last_seq = (guint64) sub->since_seq;
}

static void
sub_on_frame (PubsubTestFrame *frame,
              gpointer         user_data)
{
  Sub *sub = user_data;
  const char *type = pubsub_test_frame_type (frame);

  if (frame->root == NULL)
    g_error ("%s: a binary frame", sub->name);
  if (g_strcmp0 (type, "event") == 0)
    sub_on_event (sub, frame);
  else if (g_strcmp0 (type, "info") == 0)
    sub_on_info (sub, frame);
  else
    {
      if (g_strcmp0 (type, "ack") == 0)
        sub_on_ack (sub, frame);
      /* Acks, errors and pongs stay queued for the case to read. */
      g_queue_push_tail (&sub->ws->frames, frame_copy (frame));
    }
}

static Sub *
sub_connect (PubsubTestServer *node,
             const char       *name,
             const char       *topic)
{
  Sub *sub = g_new0 (Sub, 1);

  sub->ws = pubsub_test_ws_connect (node, NULL, NULL);
  sub->ws->keep_frames = FALSE;
  sub->ws->on_frame = sub_on_frame;
  sub->ws->on_frame_data = sub;
  sub->name = name;
  sub->topic = g_strdup (topic);
  sub->since_seq = -1;
  sub->events = g_array_new (FALSE, TRUE, sizeof (Event));
  g_array_set_clear_func (sub->events, event_clear);
  return sub;
}

/* Subscribes (last_n 0, or @since_epoch/@since_seq) and returns the ack. */
static PubsubTestFrame *
sub_subscribe_since (Sub        *sub,
                     const char *since_epoch,
                     guint64     since_seq)
{
  PubsubTestFrame *ack;

  if (since_epoch != NULL)
    {
      sub->since_seq = (gint64) since_seq;
      pubsub_test_ws_sendf (sub->ws, "{\"type\":\"subscribe\",\"topic\":\"%s\",\"client_id\":\"%s\","
                            "\"request_id\":\"s\",\"since\":{\"seq\":%" G_GUINT64_FORMAT
                            ",\"epoch\":\"%s\"}}", sub->topic, sub->name, since_seq, since_epoch);
    }
  else
    pubsub_test_ws_sendf (sub->ws, "{\"type\":\"subscribe\",\"topic\":\"%s\",\"client_id\":\"%s\","
                          "\"request_id\":\"s\"}", sub->topic, sub->name);
  ack = pubsub_test_ws_next (sub->ws, 10000);
  if (g_strcmp0 (pubsub_test_frame_type (ack), "ack") != 0)
    g_error ("%s: expected the ack of subscribe, got: %s", sub->name, ack->text);
  g_assert_cmpstr (pubsub_test_frame_get_string (ack, "topic", NULL), ==, sub->topic);
  g_assert_cmpstr (pubsub_test_frame_get_string (ack, "status", NULL), ==, "ok");
  return ack;
}

static Sub *
sub_new (PubsubTestServer *node,
         const char       *name,
         const char       *topic)
{
  Sub *sub = sub_connect (node, name, topic);
  g_autoptr(PubsubTestFrame) ack = sub_subscribe_since (sub, NULL, 0);

  return sub;
}

static void
sub_free (Sub *sub)
{
  if (sub == NULL)
    return;
  pubsub_test_ws_free (sub->ws);
  g_array_unref (sub->events);
  g_free (sub->topic);
  g_free (sub->epoch);
  g_free (sub->lost_epoch);
  g_free (sub);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Sub, sub_free)

static void
sub_wait_seq (Sub     *sub,
              guint64  seq,
              guint    deadline_ms)
{
  pubsub_test_wait_for (sub->last_seq >= seq || sub->ws->closed, deadline_ms);
  if (sub->ws->closed)
    g_error ("%s: the connection closed (%u %s) at seq %" G_GUINT64_FORMAT,
             sub->name, sub->ws->close_code, sub->ws->close_reason, sub->last_seq);
  g_assert_cmpuint (sub->last_seq, ==, seq);
}

/* Nothing more is pending: a ping's pong is the next queued frame, and the
 * checker saw no event or info meanwhile. */
static void
sub_assert_quiet (Sub *sub)
{
  guint events = sub->events->len;
  guint infos = sub->n_unavailable + sub->n_lost + sub->n_deleted;

  pubsub_test_ws_assert_quiet (sub->ws);
  g_assert_cmpuint (sub->events->len, ==, events);
  g_assert_cmpuint (sub->n_unavailable + sub->n_lost + sub->n_deleted, ==, infos);
}

static const Event *
sub_event (Sub   *sub,
           guint  i)
{
  return &g_array_index (sub->events, Event, i);
}

/* ---------------------------------------------------------------------- */
/* Publishers                                                             */

typedef struct {
  PubsubTestWs *ws;
  char         *topic;
  guint         p;
  guint         sent;
  guint         answered;
  guint         unavailable;   /* UNAVAILABLE errors */
  GArray       *ack_seqs;      /* guint64, by n - 1; 0 until acknowledged */
  GPtrArray    *ids;           /* by n - 1 */
  gsize         padding;
} Pub;

static void
pub_on_frame (PubsubTestFrame *frame,
              gpointer         user_data)
{
  Pub *pub = user_data;
  const char *type = pubsub_test_frame_type (frame);
  const char *request_id = pubsub_test_frame_get_string (frame, "request_id", NULL);
  g_autofree char *prefix = g_strdup_printf ("p%u-", pub->p);
  guint64 n;

  if (request_id == NULL || !g_str_has_prefix (request_id, prefix) ||
      (g_strcmp0 (type, "ack") != 0 && g_strcmp0 (type, "error") != 0))
    {
      g_queue_push_tail (&pub->ws->frames, frame_copy (frame));
      return;
    }
  if (!g_ascii_string_to_unsigned (request_id + strlen (prefix), 10, 1, pub->sent, &n, NULL))
    g_error ("publisher %u: an answer to nothing it sent: %s", pub->p, frame->text);
  pub->answered++;
  if (g_str_equal (type, "error"))
    {
      if (g_strcmp0 (pubsub_test_frame_get_string (frame, "error", "code"), "UNAVAILABLE") != 0)
        g_error ("publisher %u: %s", pub->p, frame->text);
      pub->unavailable++;
      return;
    }
  g_assert_cmpstr (pubsub_test_frame_get_string (frame, "topic", NULL), ==, pub->topic);
  g_assert_false (pubsub_test_frame_has_member (frame, "duplicate"));
  if (g_array_index (pub->ack_seqs, guint64, n - 1) != 0)
    g_error ("publisher %u: a second answer for p%u-%" G_GUINT64_FORMAT, pub->p, pub->p, n);
  g_array_index (pub->ack_seqs, guint64, n - 1) = (guint64) object_int (frame_object (frame), "seq",
                                                                         frame->text);
}

static Pub *
pub_new (PubsubTestServer *node,
         guint             p,
         const char       *topic,
         gsize             padding)
{
  Pub *pub = g_new0 (Pub, 1);

  pub->ws = pubsub_test_ws_connect (node, NULL, NULL);
  pub->ws->keep_frames = FALSE;
  pub->ws->on_frame = pub_on_frame;
  pub->ws->on_frame_data = pub;
  pub->topic = g_strdup (topic);
  pub->p = p;
  pub->ack_seqs = g_array_new (FALSE, TRUE, sizeof (guint64));
  pub->ids = g_ptr_array_new_with_free_func (g_free);
  pub->padding = padding;
  return pub;
}

static void
pub_free (Pub *pub)
{
  if (pub == NULL)
    return;
  pubsub_test_ws_free (pub->ws);
  g_array_unref (pub->ack_seqs);
  g_ptr_array_unref (pub->ids);
  g_free (pub->topic);
  g_free (pub);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Pub, pub_free)

/* Sends publish n = ->sent + 1 ({"p":P,"n":n,"pad":"xxx…"}). */
static void
pub_send_one (Pub *pub)
{
  g_autofree char *id = pubsub_test_uuid ();
  g_autofree char *pad = g_strnfill (pub->padding, 'x');
  guint64 zero = 0;
  guint n = ++pub->sent;

  g_array_append_val (pub->ack_seqs, zero);
  pubsub_test_ws_sendf (pub->ws, "{\"type\":\"publish\",\"topic\":\"%s\",\"request_id\":\"p%u-%u\","
                        "\"message\":{\"id\":\"%s\",\"payload\":{\"p\":%u,\"n\":%u,\"pad\":\"%s\"}}}",
                        pub->topic, pub->p, n, id, pub->p, n, pad);
  g_ptr_array_add (pub->ids, g_steal_pointer (&id));
}

/* Keeps up to @window publishes in flight on each publisher until each has
 * sent @count more and every one is answered. */
static void
pubs_run (Pub   **pubs,
          guint   n_pubs,
          guint   count,
          guint   window)
{
  guint target[8];
  gint64 deadline = g_get_monotonic_time () +
                    (gint64) 120 * G_USEC_PER_SEC * pubsub_test_timeout_scale ();

  g_assert_cmpuint (n_pubs, <=, G_N_ELEMENTS (target));
  for (guint i = 0; i < n_pubs; i++)
    target[i] = pubs[i]->sent + count;
  for (;;)
    {
      gboolean done = TRUE;

      for (guint i = 0; i < n_pubs; i++)
        {
          Pub *pub = pubs[i];

          while (pub->sent < target[i] && pub->sent - pub->answered < window)
            pub_send_one (pub);
          if (pub->answered < target[i])
            done = FALSE;
          if (pub->ws->closed)
            g_error ("publisher %u: closed (%u %s)", pub->p, pub->ws->close_code,
                     pub->ws->close_reason);
        }
      if (done)
        return;
      if (g_get_monotonic_time () > deadline)
        g_error ("publishers: timed out with publishes unanswered");
      pubsub_test_iterate ();
    }
}

static void
pub_run (Pub   *pub,
         guint  count)
{
  pubs_run (&pub, 1, count, 32);
  g_assert_cmpuint (pub->unavailable, ==, 0);
}

/* The seq of the last acknowledged publish. */
static guint64
pub_last_seq (Pub *pub)
{
  g_assert_cmpuint (pub->ack_seqs->len, >, 0);
  return g_array_index (pub->ack_seqs, guint64, pub->ack_seqs->len - 1);
}

/* ---------------------------------------------------------------------- */
/* REST                                                                   */

static PubsubTestResponse *
rest_publish (PubsubTestServer *node,
              const char       *topic,
              const char       *id,
              const char       *payload)
{
  g_autofree char *path = g_strdup_printf ("/topics/%s/messages", topic);
  g_autofree char *body = id != NULL
    ? g_strdup_printf ("{\"id\":\"%s\",\"payload\":%s}", id, payload)
    : g_strdup_printf ("{\"payload\":%s}", payload);

  return pubsub_test_request (node, "POST", path, body, NULL);
}

static void
delete_topic (PubsubTestServer *node,
              const char       *topic)
{
  g_autofree char *path = g_strdup_printf ("/topics/%s", topic);
  g_autoptr(PubsubTestResponse) response = pubsub_test_request (node, "DELETE", path, NULL, NULL);

  g_assert_cmpuint (response->status, ==, 200);
}

/* GET /topics lists @topic (with @subscribers, unless < 0)? */
static gboolean
topics_has (PubsubTestServer *node,
            const char       *topic,
            gint64            subscribers)
{
  gint64 listed = pubsub_test_topic_subscribers (node, topic, NULL);

  return listed >= 0 && (subscribers < 0 || listed == subscribers);
}

/* GET /stats: the topic's "subscribers" or "messages", -1 if not listed. */
static gint64
stats_member (PubsubTestServer *node,
              const char       *topic,
              const char       *member)
{
  g_autoptr(PubsubTestResponse) response = pubsub_test_request (node, "GET", "/stats", NULL, NULL);
  JsonObject *topics;

  g_assert_cmpuint (response->status, ==, 200);
  topics = json_object_get_object_member (response_object (response), "topics");
  g_assert_nonnull (topics);
  if (!json_object_has_member (topics, topic))
    return -1;
  return object_int (json_object_get_object_member (topics, topic), member, "/stats");
}

static char *
topic_epoch (PubsubTestServer *node,
             const char       *topic)
{
  g_autofree char *path = g_strdup_printf ("/topics/%s", topic);
  g_autoptr(PubsubTestResponse) response = pubsub_test_request (node, "GET", path, NULL, NULL);

  g_assert_cmpuint (response->status, ==, 200);
  return g_strdup (object_string (response_object (response), "epoch", path));
}

/* Asserts @status and error code @code for a REST call. */
static void
assert_rest_error (PubsubTestServer *node,
                   const char       *method,
                   const char       *path,
                   const char       *body,
                   guint             status,
                   const char       *code)
{
  g_autoptr(PubsubTestResponse) response = pubsub_test_request (node, method, path, body, NULL);

  g_test_message ("%s %s -> %u", method, path, response->status);
  g_assert_cmpuint (response->status, ==, status);
  g_assert_cmpstr (pubsub_test_response_error_code (response), ==, code);
}

/* ---------------------------------------------------------------------- */
/* The redis helper itself                                                */

static gboolean
process_stopped (GPid pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/stat", (int) pid);
  g_autofree char *stat = NULL;
  const char *end;

  if (!g_file_get_contents (path, &stat, NULL, NULL))
    return FALSE;
  /* "PID (comm) S …": the state follows the last ')'. */
  end = strrchr (stat, ')');
  return end != NULL && (end[2] == 'T' || end[2] == 't');
}

static void
test_redis_helper (void)
{
  g_autoptr(PubsubTestRedis) redis = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *reply = NULL;
  static const char *const get[] = { "GET", "k", NULL };
  static const char *const bad[] = { "NO-SUCH-COMMAND", NULL };
  GPid pid;

  if (!pubsub_test_redis_available ())
    {
      g_test_skip ("redis-server is not installed (Debian: redis-server)");
      return;
    }
  redis = pubsub_test_redis_start ();
  g_assert_true (g_str_has_prefix (pubsub_test_redis_get_url (redis), "unix:/"));
  g_assert_true (g_file_test (pubsub_test_redis_get_socket_path (redis), G_FILE_TEST_EXISTS));

  g_clear_pointer (&reply, g_free);
  reply = pubsub_test_redis_command (redis, "SET", "k", "v 1\r\nx", NULL);
  g_assert_cmpstr (reply, ==, "OK");
  g_clear_pointer (&reply, g_free);
  reply = pubsub_test_redis_command (redis, "GET", "k", NULL);
  g_assert_cmpstr (reply, ==, "v 1\r\nx");
  g_clear_pointer (&reply, g_free);
  reply = pubsub_test_redis_command (redis, "RPUSH", "l", "a", "b", NULL);
  g_assert_cmpstr (reply, ==, "2");
  g_clear_pointer (&reply, g_free);
  reply = pubsub_test_redis_command (redis, "LRANGE", "l", "0", "-1", NULL);
  g_assert_cmpstr (reply, ==, "a\nb");
  g_clear_pointer (&reply, g_free);
  reply = pubsub_test_redis_commandv (redis, bad, &error);
  g_assert_null (reply);
  g_assert_nonnull (strstr (error->message, "unknown command"));
  g_clear_error (&error);
  pubsub_test_redis_config_set (redis, "client-output-buffer-limit", "pubsub 64kb 32kb 1");
  reply = pubsub_test_redis_command (redis, "CONFIG", "GET", "client-output-buffer-limit", NULL);
  g_assert_nonnull (strstr (reply, "pubsub 65536 32768 1"));
  g_clear_pointer (&reply, g_free);

  /* Frozen: the process is stopped; thawed, it answers again. */
  pid = pubsub_test_redis_get_pid (redis);
  pubsub_test_redis_pause (redis);
  pubsub_test_wait_for (process_stopped (pid), 5000);
  pubsub_test_redis_resume (redis);
  pubsub_test_wait_for (!process_stopped (pid), 5000);
  reply = pubsub_test_redis_command (redis, "GET", "k", NULL);
  g_assert_cmpstr (reply, ==, "v 1\r\nx");
  g_clear_pointer (&reply, g_free);

  /* SAVE, then killed: restarted with its data it has the key, restarted
   * empty it has not. */
  reply = pubsub_test_redis_command (redis, "SAVE", NULL);
  g_assert_cmpstr (reply, ==, "OK");
  g_clear_pointer (&reply, g_free);
  pubsub_test_redis_kill (redis);
  g_assert_false (pubsub_test_redis_is_running (redis));
  g_assert_null (pubsub_test_redis_commandv (redis, get, &error));
  g_assert_nonnull (error);
  g_clear_error (&error);
  pubsub_test_redis_restart (redis, TRUE);
  g_assert_cmpint (pubsub_test_redis_get_pid (redis), !=, pid);
  reply = pubsub_test_redis_command (redis, "GET", "k", NULL);
  g_assert_cmpstr (reply, ==, "v 1\r\nx");
  g_clear_pointer (&reply, g_free);
  pubsub_test_redis_restart (redis, FALSE);
  reply = pubsub_test_redis_command (redis, "GET", "k", NULL);
  g_assert_cmpstr (reply, ==, "(nil)");
  g_clear_pointer (&reply, g_free);

  /* A client of ours in pub/sub mode is found by its socket, and cut. */
  {
    g_autoptr(GSocket) socket = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM,
                                              G_SOCKET_PROTOCOL_DEFAULT, &error);
    g_autoptr(GSocketAddress) address =
      g_unix_socket_address_new (pubsub_test_redis_get_socket_path (redis));
    static const char subscribe[] = "*2\r\n$9\r\nSUBSCRIBE\r\n$2\r\nch\r\n";
    char buffer[256];
    g_autoptr(GPtrArray) ids = NULL;
    g_autofree char *killed = NULL;

    g_assert_no_error (error);
    g_socket_set_timeout (socket, 5);
    g_socket_connect (socket, address, NULL, &error);
    g_assert_no_error (error);
    g_assert_cmpint (g_socket_send (socket, subscribe, strlen (subscribe), NULL, &error), ==,
                     (gssize) strlen (subscribe));
    g_assert_cmpint (g_socket_receive (socket, buffer, sizeof buffer, NULL, &error), >, 0);
    g_assert_no_error (error);
    ids = pubsub_test_redis_clients_of (redis, getpid (), TRUE);
    g_assert_cmpuint (ids->len, ==, 1);
    killed = pubsub_test_redis_command (redis, "CLIENT", "KILL", "ID", ids->pdata[0], NULL);
    g_assert_cmpstr (killed, ==, "1");
    g_assert_cmpint (g_socket_receive (socket, buffer, sizeof buffer, NULL, &error), ==, 0);
    g_assert_no_error (error);
  }

  /* Stopped while frozen: it still goes (SIGCONT first). */
  pubsub_test_redis_pause (redis);
  pubsub_test_redis_stop (redis);
  g_assert_false (pubsub_test_redis_is_running (redis));
  g_assert_false (g_file_test (pubsub_test_redis_get_socket_path (redis), G_FILE_TEST_EXISTS));
}

/* ---------------------------------------------------------------------- */
/* Settings                                                               */

/* PUBSUB_CLUSTER and the config key "cluster" select cluster mode as the
 * option does; a bad value is exit status 2 naming the setting. */
static void
test_settings (Cluster       *cluster,
               gconstpointer  data)
{
  static const char *const bad_values[] = { "bogus", "unix:", "redis://127.0.0.1:notaport" };
  g_autofree char *env_value = NULL;
  g_autofree char *conf_dir = NULL;
  g_autofree char *conf = NULL;
  g_autofree char *conf_text = NULL;
  g_autoptr(GError) error = NULL;

  if (cluster->redis == NULL)
    return;

  env_value = g_strconcat ("PUBSUB_CLUSTER=", pubsub_test_redis_get_url (cluster->redis), NULL);
  {
    const char *env[] = { env_value, NULL };
    const char *args[] = { "--node-id", "by-env", NULL };
    g_autoptr(PubsubTestServer) node =
      pubsub_test_server_start_full (PUBSUB_TEST_SERVER_DEFAULT, env, args);
    g_auto(Health) health = { 0, };

    pubsub_test_wait_for (health_is (node, 200, "up", -1), 10000);
    get_health (node, &health);
    g_assert_cmpstr (health.node, ==, "by-env");
    pubsub_test_server_stop (node);
  }

  conf_dir = g_build_filename (g_get_user_config_dir (), "cluster-test", NULL);
  g_assert_cmpint (g_mkdir_with_parents (conf_dir, 0700), ==, 0);
  conf = g_build_filename (conf_dir, "pubsub.conf", NULL);
  conf_text = g_strdup_printf ("[pubsub]\ncluster=%s\n", pubsub_test_redis_get_url (cluster->redis));
  g_file_set_contents (conf, conf_text, -1, &error);
  g_assert_no_error (error);
  {
    const char *args[] = { "--config", conf, "--node-id", "by-file", NULL };
    g_autoptr(PubsubTestServer) node =
      pubsub_test_server_start_full (PUBSUB_TEST_SERVER_DEFAULT, NULL, args);
    g_auto(Health) health = { 0, };

    pubsub_test_wait_for (health_is (node, 200, "up", -1), 10000);
    get_health (node, &health);
    g_assert_cmpstr (health.node, ==, "by-file");
    pubsub_test_server_stop (node);
  }

  for (gsize i = 0; i < G_N_ELEMENTS (bad_values); i++)
    {
      const char *args[] = { "--cluster", bad_values[i], "--bus", "none",
                             "--listen", "127.0.0.1:0", NULL };
      g_autofree char *err = NULL;

      g_test_message ("--cluster %s", bad_values[i]);
      g_assert_cmpint (pubsub_test_run (NULL, args, NULL, &err), ==, 2);
      g_assert_nonnull (strstr (err, "cluster"));
    }
}

/* ---------------------------------------------------------------------- */
/* The cases                                                              */

/* /health in cluster mode: this node's id, the live nodes; GET /topics and
 * /stats sum the subscribers of every node, /stats counts every node's
 * publishes. */
static void
test_health_and_counts (Cluster       *cluster,
                        gconstpointer  data)
{
  PubsubTestServer *a, *b;
  g_autoptr(Sub) sub_a = NULL;
  g_autoptr(Sub) sub_b1 = NULL;
  g_autoptr(Sub) sub_b2 = NULL;
  g_autoptr(PubsubTestWs) both = NULL;
  g_autoptr(PubsubTestFrame) ack = NULL;

  if (cluster->redis == NULL)
    return;
  a = cluster->nodes[0];
  b = cluster->nodes[1];
  for (guint i = 0; i < 2; i++)
    {
      g_auto(Health) health = { 0, };

      get_health (cluster->nodes[i], &health);
      g_assert_cmpuint (health.status, ==, 200);
      g_assert_cmpstr (health.cluster, ==, "up");
      g_assert_cmpstr (health.node, ==, cluster->node_ids[i]);
      g_assert_cmpint (health.nodes, ==, 2);
    }

  pubsub_test_create_topic (a, "t", NULL);
  pubsub_test_create_topic (b, "u", NULL);
  sub_a = sub_new (a, "sub-a", "t");
  sub_b1 = sub_new (b, "sub-b1", "t");
  sub_b2 = sub_new (b, "sub-b2", "t");
  /* One connection on two topics counts once in each. */
  both = pubsub_test_ws_connect (b, NULL, NULL);
  pubsub_test_ws_subscribe (both, "t", 0);
  pubsub_test_ws_subscribe (both, "u", 0);

  for (guint i = 0; i < 2; i++)
    {
      pubsub_test_wait_for (topics_has (cluster->nodes[i], "t", 4), 10000);
      pubsub_test_wait_for (topics_has (cluster->nodes[i], "u", 1), 10000);
      pubsub_test_wait_for (stats_member (cluster->nodes[i], "t", "subscribers") == 4, 10000);
    }

  {
    g_autoptr(PubsubTestResponse) r1 = rest_publish (a, "t", NULL, "1");
    g_autoptr(PubsubTestResponse) r2 = rest_publish (b, "t", NULL, "2");
    g_autoptr(PubsubTestResponse) r3 = rest_publish (a, "t", NULL, "3");

    g_assert_cmpuint (r3->status, ==, 201);
    g_assert_cmpint (object_int (response_object (r3), "seq", "publish"), ==, 3);
  }
  sub_wait_seq (sub_a, 3, 5000);
  sub_wait_seq (sub_b1, 3, 5000);
  g_assert_cmpint (stats_member (a, "t", "messages"), ==, 3);
  g_assert_cmpint (stats_member (b, "t", "messages"), ==, 3);
  g_assert_cmpint (stats_member (b, "u", "messages"), ==, 0);

  /* An unsubscribe on one node shows on the other. */
  pubsub_test_ws_send (both, "{\"type\":\"unsubscribe\",\"topic\":\"t\",\"client_id\":\"c\","
                       "\"request_id\":\"un\"}");
  ack = pubsub_test_ws_take (both, "ack", 5000);
  g_assert_cmpstr (pubsub_test_frame_get_string (ack, "request_id", NULL), ==, "un");
  pubsub_test_wait_for (topics_has (a, "t", 3), 10000);
  pubsub_test_wait_for (stats_member (a, "t", "subscribers") == 3, 10000);
}

/* Topics created or deleted on one node exist or are gone on every node;
 * subscribers on every node get topic_deleted; the cluster's keys are all
 * under --cluster-prefix, and a cluster with another prefix on the same
 * Redis sees nothing of it. */
static void
test_topics_everywhere (Cluster       *cluster,
                        gconstpointer  data)
{
  PubsubTestServer *a, *b, *c, *other;
  g_autoptr(Sub) sub_a = NULL;
  g_autoptr(Sub) sub_b = NULL;
  g_autoptr(Sub) sub_c = NULL;
  g_autofree char *epoch = NULL;
  g_autofree char *new_epoch = NULL;
  g_autofree char *keys = NULL;
  g_auto(GStrv) key_list = NULL;
  g_autoptr(PubsubTestWs) late = NULL;
  g_autoptr(PubsubTestFrame) error = NULL;

  if (cluster->redis == NULL)
    return;
  a = cluster->nodes[0];
  b = cluster->nodes[1];
  c = cluster->nodes[2];

  pubsub_test_create_topic (a, "orders", NULL);
  pubsub_test_wait_for (topics_has (b, "orders", 0), 5000);
  pubsub_test_wait_for (topics_has (c, "orders", 0), 5000);
  assert_rest_error (c, "POST", "/topics", "{\"name\":\"orders\"}", 409, "TOPIC_EXISTS");
  epoch = topic_epoch (a, "orders");
  {
    g_autofree char *on_b = topic_epoch (b, "orders");

    g_assert_cmpstr (on_b, ==, epoch);
  }

  sub_a = sub_new (a, "sub-a", "orders");
  sub_b = sub_new (b, "sub-b", "orders");
  sub_c = sub_new (c, "sub-c", "orders");
  g_assert_cmpstr (sub_b->epoch, ==, epoch);
  g_assert_cmpstr (sub_c->epoch, ==, epoch);
  {
    g_autoptr(PubsubTestResponse) published = rest_publish (b, "orders", NULL, "{\"n\":1}");

    g_assert_cmpuint (published->status, ==, 201);
  }
  sub_wait_seq (sub_a, 1, 5000);
  sub_wait_seq (sub_b, 1, 5000);
  sub_wait_seq (sub_c, 1, 5000);

  delete_topic (c, "orders");
  pubsub_test_wait_for (sub_a->n_deleted == 1 && sub_b->n_deleted == 1 && sub_c->n_deleted == 1,
                        10000);
  for (guint i = 0; i < 3; i++)
    pubsub_test_wait_for (!topics_has (cluster->nodes[i], "orders", -1), 5000);
  assert_rest_error (a, "DELETE", "/topics/orders", NULL, 404, "TOPIC_NOT_FOUND");
  assert_rest_error (b, "POST", "/topics/orders/messages", "{\"payload\":1}", 404,
                     "TOPIC_NOT_FOUND");
  late = pubsub_test_ws_connect (a, NULL, NULL);
  pubsub_test_ws_send (late, "{\"type\":\"subscribe\",\"topic\":\"orders\",\"client_id\":\"c\","
                       "\"request_id\":\"late\"}");
  error = pubsub_test_ws_next (late, 5000);
  g_assert_cmpstr (pubsub_test_frame_get_string (error, "error", "code"), ==, "TOPIC_NOT_FOUND");
  /* The subscribers stayed connected, and were unsubscribed. */
  sub_assert_quiet (sub_a);
  sub_assert_quiet (sub_c);

  /* Created again, elsewhere: a new epoch, seq from 1. */
  pubsub_test_create_topic (b, "orders", NULL);
  new_epoch = topic_epoch (c, "orders");
  assert_epoch_shape (new_epoch);
  g_assert_cmpstr (new_epoch, !=, epoch);

  /* Every key of the cluster is under its prefix. */
  keys = pubsub_test_redis_command (cluster->redis, "KEYS", "*", NULL);
  key_list = g_strsplit (keys, "\n", -1);
  g_assert_cmpuint (g_strv_length (key_list), >, 0);
  for (gsize i = 0; key_list[i] != NULL; i++)
    if (!g_str_has_prefix (key_list[i], cluster->setup->prefix))
      g_error ("Redis key '%s' is not under --cluster-prefix %s", key_list[i],
               cluster->setup->prefix);

  /* Another cluster on the same Redis. */
  other = start_node (cluster, 3, "pother");
  pubsub_test_wait_for (health_is (other, 200, "up", 1), 10000);
  g_assert_false (topics_has (other, "orders", -1));
  pubsub_test_create_topic (other, "orders", NULL);
  {
    g_autofree char *theirs = topic_epoch (other, "orders");
    g_autofree char *ours = topic_epoch (a, "orders");

    g_assert_cmpstr (theirs, !=, ours);
    g_assert_cmpstr (ours, ==, new_epoch);
  }
}

/* Two publishers on two nodes at once, a subscriber on each of three
 * nodes: every subscriber gets every message once, seq 1…N in order, in one
 * epoch, and all of them the same sequence; each publisher's messages keep
 * its order; each ack's seq is where its message is. */
static void
test_order (Cluster       *cluster,
            gconstpointer  data)
{
  guint count = pubsub_test_scale_count (2000, 100);
  g_autoptr(Pub) pub_a = NULL;
  g_autoptr(Pub) pub_b = NULL;
  Sub *subs[3];
  Pub *pubs[2];

  if (cluster->redis == NULL)
    return;
  pubsub_test_create_topic (cluster->nodes[2], "t", NULL);
  for (guint i = 0; i < 3; i++)
    {
      subs[i] = sub_new (cluster->nodes[i], node_names[i], "t");
      g_assert_cmpuint (subs[i]->last_seq, ==, 0);
    }
  pub_a = pub_new (cluster->nodes[0], 1, "t", 0);
  pub_b = pub_new (cluster->nodes[1], 2, "t", 0);
  pubs[0] = pub_a;
  pubs[1] = pub_b;
  pubs_run (pubs, 2, count, 64);
  g_assert_cmpuint (pub_a->unavailable + pub_b->unavailable, ==, 0);

  for (guint i = 0; i < 3; i++)
    sub_wait_seq (subs[i], 2 * count, 30000);

  for (guint i = 0; i < 3; i++)
    {
      gint64 next_n[3] = { 0, 1, 1 };

      g_assert_cmpuint (subs[i]->events->len, ==, 2 * count);
      g_assert_cmpuint (subs[i]->n_lost, ==, 0);
      for (guint k = 0; k < subs[i]->events->len; k++)
        {
          const Event *event = sub_event (subs[i], k);
          const Event *first = sub_event (subs[0], k);
          Pub *pub;

          g_assert_cmpuint (event->seq, ==, k + 1);
          g_assert_cmpuint (event->epoch, ==, first->epoch);
          g_assert_cmpint (event->p, ==, first->p);
          g_assert_cmpint (event->n, ==, first->n);
          g_assert_cmpstr (event->id, ==, first->id);
          g_assert_true (event->p == 1 || event->p == 2);
          g_assert_cmpint (event->n, ==, next_n[event->p]);
          next_n[event->p]++;
          pub = pubs[event->p - 1];
          g_assert_cmpstr (event->id, ==, g_ptr_array_index (pub->ids, event->n - 1));
          g_assert_cmpuint (g_array_index (pub->ack_seqs, guint64, event->n - 1), ==, event->seq);
        }
    }
  for (guint i = 0; i < 3; i++)
    {
      g_assert_cmpint (stats_member (cluster->nodes[i], "t", "messages"), ==, 2 * count);
      sub_assert_quiet (subs[i]);
      sub_free (subs[i]);
    }
}

/* A client that left one node recovers on another: recovered:true and
 * exactly the messages it missed, then live ones; the shared history over
 * REST on a third. */
static void
test_since_other_node (Cluster       *cluster,
                       gconstpointer  data)
{
  PubsubTestServer *a, *b, *c;
  g_autoptr(Sub) first = NULL;
  g_autoptr(Sub) back = NULL;
  g_autoptr(Pub) pub = NULL;
  g_autoptr(PubsubTestFrame) ack = NULL;
  g_autoptr(PubsubTestResponse) history = NULL;
  g_autoptr(PubsubTestResponse) last = NULL;
  g_autoptr(PubsubTestResponse) info = NULL;
  g_autofree char *epoch = NULL;
  JsonArray *messages;

  if (cluster->redis == NULL)
    return;
  a = cluster->nodes[0];
  b = cluster->nodes[1];
  c = cluster->nodes[2];
  pubsub_test_create_topic (a, "t", NULL);
  first = sub_new (a, "first", "t");
  epoch = g_strdup (first->epoch);
  pub = pub_new (b, 1, "t", 0);
  pub_run (pub, 3);
  sub_wait_seq (first, 3, 5000);
  g_clear_pointer (&first, sub_free);

  pub_run (pub, 5);                             /* 4…8 while away */
  g_assert_cmpuint (pub_last_seq (pub), ==, 8);

  back = sub_connect (c, "back", "t");
  ack = sub_subscribe_since (back, epoch, 3);
  g_assert_true (object_bool (frame_object (ack), "recovered", ack->text));
  g_assert_cmpint (object_int (frame_object (ack), "seq", ack->text), ==, 8);
  g_assert_cmpstr (pubsub_test_frame_get_string (ack, "epoch", NULL), ==, epoch);
  sub_wait_seq (back, 8, 5000);
  g_assert_cmpuint (back->events->len, ==, 5);
  for (guint k = 0; k < 5; k++)
    {
      g_assert_cmpint (sub_event (back, k)->n, ==, 4 + k);
      g_assert_cmpstr (sub_event (back, k)->id, ==, g_ptr_array_index (pub->ids, 3 + k));
    }
  pub_run (pub, 1);
  sub_wait_seq (back, 9, 5000);
  sub_assert_quiet (back);

  /* The history, from a node that published nothing. */
  history = pubsub_test_request (a, "GET", "/topics/t/messages?since=3", NULL, NULL);
  g_assert_cmpuint (history->status, ==, 200);
  g_assert_cmpstr (object_string (response_object (history), "epoch", "history"), ==, epoch);
  g_assert_cmpint (object_int (response_object (history), "seq", "history"), ==, 9);
  messages = json_object_get_array_member (response_object (history), "messages");
  g_assert_cmpuint (json_array_get_length (messages), ==, 6);
  for (guint k = 0; k < 6; k++)
    {
      JsonObject *message = json_array_get_object_element (messages, k);

      g_assert_cmpint (object_int (message, "seq", "history"), ==, 4 + k);
      g_assert_cmpstr (object_string (message, "id", "history"), ==,
                       g_ptr_array_index (pub->ids, 3 + k));
      pubsub_test_assert_timestamp (object_string (message, "ts", "history"));
    }
  last = pubsub_test_request (c, "GET", "/topics/t/messages?last_n=2", NULL, NULL);
  messages = json_object_get_array_member (response_object (last), "messages");
  g_assert_cmpuint (json_array_get_length (messages), ==, 2);
  g_assert_cmpint (object_int (json_array_get_object_element (messages, 0), "seq", "last_n"), ==, 8);
  info = pubsub_test_request (b, "GET", "/topics/t", NULL, NULL);
  g_assert_cmpuint (info->status, ==, 200);
  g_assert_cmpint (object_int (response_object (info), "seq", "info"), ==, 9);
  g_assert_cmpint (object_int (response_object (info), "messages", "info"), ==, 9);
  g_assert_cmpint (object_int (response_object (info), "stored", "info"), ==, 9);
  pubsub_test_wait_for (topics_has (b, "t", 1), 10000);
}

/* A publish retried on another node with the same id: duplicate:true, the
 * same seq, delivered once on every node. */
static void
test_idempotent_other_node (Cluster       *cluster,
                            gconstpointer  data)
{
  g_autofree char *id = pubsub_test_uuid ();
  g_autoptr(PubsubTestWs) ws_a = NULL;
  g_autoptr(PubsubTestWs) ws_b = NULL;
  g_autoptr(PubsubTestFrame) first = NULL;
  g_autoptr(PubsubTestFrame) again = NULL;
  g_autoptr(PubsubTestResponse) rest_again = NULL;
  g_autoptr(PubsubTestResponse) next = NULL;
  Sub *subs[3];

  if (cluster->redis == NULL)
    return;
  pubsub_test_create_topic (cluster->nodes[0], "t", NULL);
  for (guint i = 0; i < 3; i++)
    subs[i] = sub_new (cluster->nodes[i], node_names[i], "t");

  ws_a = pubsub_test_ws_connect (cluster->nodes[0], NULL, NULL);
  ws_b = pubsub_test_ws_connect (cluster->nodes[1], NULL, NULL);
  pubsub_test_ws_sendf (ws_a, "{\"type\":\"publish\",\"topic\":\"t\",\"request_id\":\"r1\","
                        "\"message\":{\"id\":\"%s\",\"payload\":{\"n\":1}}}", id);
  first = pubsub_test_ws_take (ws_a, "ack", 5000);
  g_assert_cmpint (object_int (frame_object (first), "seq", first->text), ==, 1);
  g_assert_false (pubsub_test_frame_has_member (first, "duplicate"));

  pubsub_test_ws_sendf (ws_b, "{\"type\":\"publish\",\"topic\":\"t\",\"request_id\":\"r2\","
                        "\"message\":{\"id\":\"%s\",\"payload\":{\"n\":1}}}", id);
  again = pubsub_test_ws_take (ws_b, "ack", 5000);
  g_assert_cmpint (object_int (frame_object (again), "seq", again->text), ==, 1);
  g_assert_true (object_bool (frame_object (again), "duplicate", again->text));

  rest_again = rest_publish (cluster->nodes[2], "t", id, "{\"n\":1}");
  g_assert_cmpuint (rest_again->status, ==, 200);
  g_assert_cmpint (object_int (response_object (rest_again), "seq", "publish"), ==, 1);
  g_assert_true (object_bool (response_object (rest_again), "duplicate", "publish"));

  next = rest_publish (cluster->nodes[2], "t", NULL, "{\"n\":2}");
  g_assert_cmpuint (next->status, ==, 201);
  g_assert_cmpint (object_int (response_object (next), "seq", "publish"), ==, 2);
  for (guint i = 0; i < 3; i++)
    {
      sub_wait_seq (subs[i], 2, 5000);
      g_assert_cmpuint (subs[i]->events->len, ==, 2);
      g_assert_cmpstr (sub_event (subs[i], 0)->id, ==, id);
      sub_assert_quiet (subs[i]);
      sub_free (subs[i]);
    }
  g_assert_cmpint (stats_member (cluster->nodes[1], "t", "messages"), ==, 2);
}

/* While Redis is down every call that needs it is UNAVAILABLE; /health is
 * 503 "down"; each subscribed connection is told once, and stays. */
static void
assert_unavailable (Cluster *cluster,
                    guint    i)
{
  PubsubTestServer *node = cluster->nodes[i];
  g_autoptr(PubsubTestWs) ws = pubsub_test_ws_connect (node, NULL, NULL);
  g_autoptr(PubsubTestFrame) publish_error = NULL;
  g_autoptr(PubsubTestFrame) subscribe_error = NULL;
  g_autoptr(PubsubTestFrame) pong = NULL;
  g_autofree char *id = pubsub_test_uuid ();
  g_auto(Health) health = { 0, };

  get_health (node, &health);
  g_assert_cmpuint (health.status, ==, 503);
  g_assert_cmpstr (health.cluster, ==, "down");
  g_assert_cmpstr (health.node, ==, cluster->node_ids[i]);

  assert_rest_error (node, "POST", "/topics/t/messages", "{\"payload\":1}", 503, "UNAVAILABLE");
  assert_rest_error (node, "POST", "/topics", "{\"name\":\"new\"}", 503, "UNAVAILABLE");
  assert_rest_error (node, "DELETE", "/topics/t", NULL, 503, "UNAVAILABLE");
  assert_rest_error (node, "GET", "/topics", NULL, 503, "UNAVAILABLE");
  assert_rest_error (node, "GET", "/stats", NULL, 503, "UNAVAILABLE");
  assert_rest_error (node, "GET", "/topics/t/messages", NULL, 503, "UNAVAILABLE");

  pubsub_test_ws_sendf (ws, "{\"type\":\"publish\",\"topic\":\"t\",\"request_id\":\"down-p\","
                        "\"message\":{\"id\":\"%s\",\"payload\":1}}", id);
  publish_error = pubsub_test_ws_next (ws, 10000);
  g_assert_cmpstr (pubsub_test_frame_type (publish_error), ==, "error");
  g_assert_cmpstr (pubsub_test_frame_get_string (publish_error, "request_id", NULL), ==, "down-p");
  g_assert_cmpstr (pubsub_test_frame_get_string (publish_error, "error", "code"), ==,
                   "UNAVAILABLE");
  pubsub_test_ws_send (ws, "{\"type\":\"subscribe\",\"topic\":\"t\",\"client_id\":\"c\","
                       "\"request_id\":\"down-s\"}");
  subscribe_error = pubsub_test_ws_next (ws, 10000);
  g_assert_cmpstr (pubsub_test_frame_get_string (subscribe_error, "error", "code"), ==,
                   "UNAVAILABLE");
  pubsub_test_ws_send (ws, "{\"type\":\"ping\",\"request_id\":\"still\"}");
  pong = pubsub_test_ws_next (ws, 5000);
  g_assert_cmpstr (pubsub_test_frame_type (pong), ==, "pong");
}

/* Redis killed and restarted empty with clients connected. */
static void
test_redis_lost (Cluster       *cluster,
                 gconstpointer  data)
{
  g_autoptr(Sub) sub_a = NULL;
  g_autoptr(Sub) sub_b = NULL;
  g_autoptr(Pub) pub = NULL;
  g_autofree char *old_epoch = NULL;
  g_autofree char *epoch = NULL;

  if (cluster->redis == NULL)
    return;
  pubsub_test_create_topic (cluster->nodes[0], "t", NULL);
  sub_a = sub_new (cluster->nodes[0], "sub-a", "t");
  sub_b = sub_new (cluster->nodes[1], "sub-b", "t");
  old_epoch = g_strdup (sub_a->epoch);
  pub = pub_new (cluster->nodes[1], 1, "t", 0);
  pub_run (pub, 3);
  sub_wait_seq (sub_a, 3, 5000);
  sub_wait_seq (sub_b, 3, 5000);

  pubsub_test_redis_kill (cluster->redis);
  pubsub_test_wait_for (sub_a->n_unavailable == 1 && sub_b->n_unavailable == 1, 10000);
  assert_unavailable (cluster, 0);
  assert_unavailable (cluster, 1);
  g_assert_false (sub_a->ws->closed);
  g_assert_false (sub_b->ws->closed);

  pubsub_test_redis_restart (cluster->redis, FALSE);
  /* Both nodes register the topic again; one epoch wins, new, from seq 1. */
  pubsub_test_wait_for (sub_a->n_lost == 1 && sub_b->n_lost == 1, 20000);
  g_assert_cmpstr (sub_a->lost_epoch, !=, old_epoch);
  g_assert_cmpstr (sub_a->lost_epoch, ==, sub_b->lost_epoch);
  g_assert_cmpuint (sub_a->lost_seq, ==, 1);
  g_assert_cmpuint (sub_b->lost_seq, ==, 1);
  epoch = g_strdup (sub_a->lost_epoch);
  wait_cluster_up (cluster, 2);

  pub_run (pub, 1);
  g_assert_cmpuint (pub_last_seq (pub), ==, 1);
  sub_wait_seq (sub_a, 1, 5000);
  sub_wait_seq (sub_b, 1, 5000);
  g_assert_cmpuint (sub_event (sub_a, 3)->epoch, ==, g_quark_from_string (epoch));
  {
    g_autofree char *listed = topic_epoch (cluster->nodes[0], "t");

    g_assert_cmpstr (listed, ==, epoch);
  }
  pubsub_test_wait_for (topics_has (cluster->nodes[1], "t", 2), 10000);
  /* Once per outage. */
  sub_assert_quiet (sub_a);
  sub_assert_quiet (sub_b);
  g_assert_cmpuint (sub_a->n_unavailable, ==, 1);
  g_assert_cmpuint (sub_b->n_unavailable, ==, 1);
  g_assert_cmpuint (sub_a->n_lost, ==, 1);
}

/* Redis comes back from an older snapshot: the marker is there, the topic
 * too, but with a lower seq than the nodes delivered: a new epoch and
 * messages_lost, not a silent rewind. */
static void
test_redis_rolled_back (Cluster       *cluster,
                        gconstpointer  data)
{
  g_autoptr(Sub) sub_a = NULL;
  g_autoptr(Sub) sub_b = NULL;
  g_autoptr(Pub) pub = NULL;
  g_autofree char *old_epoch = NULL;
  g_autofree char *saved = NULL;

  if (cluster->redis == NULL)
    return;
  pubsub_test_create_topic (cluster->nodes[0], "t", NULL);
  sub_a = sub_new (cluster->nodes[0], "sub-a", "t");
  sub_b = sub_new (cluster->nodes[1], "sub-b", "t");
  old_epoch = g_strdup (sub_a->epoch);
  pub = pub_new (cluster->nodes[1], 1, "t", 0);
  pub_run (pub, 3);
  saved = pubsub_test_redis_command (cluster->redis, "SAVE", NULL);
  g_assert_cmpstr (saved, ==, "OK");
  pub_run (pub, 3);
  sub_wait_seq (sub_a, 6, 5000);
  sub_wait_seq (sub_b, 6, 5000);

  pubsub_test_redis_kill (cluster->redis);
  pubsub_test_wait_for (sub_a->n_unavailable == 1 && sub_b->n_unavailable == 1, 10000);
  pubsub_test_redis_restart (cluster->redis, TRUE);
  pubsub_test_wait_for (sub_a->n_lost == 1 && sub_b->n_lost == 1, 20000);
  g_assert_cmpstr (sub_a->lost_epoch, !=, old_epoch);
  g_assert_cmpstr (sub_a->lost_epoch, ==, sub_b->lost_epoch);
  wait_cluster_up (cluster, 2);

  /* The next message is the seq messages_lost announced, in the new epoch. */
  pub_run (pub, 1);
  g_assert_cmpuint (pub_last_seq (pub), ==, sub_a->lost_seq);
  sub_wait_seq (sub_a, sub_a->lost_seq, 5000);
  sub_wait_seq (sub_b, sub_b->lost_seq, 5000);
  sub_assert_quiet (sub_a);
  sub_assert_quiet (sub_b);
}

/* One node cut off (frozen, its subscriber connection closed by Redis)
 * while another publishes: thawed, it catches its subscribers up from the
 * shared history, in order, by itself (no further publish needed); with a
 * history too short, messages_lost at the first seq they will see. */
static void
test_catch_up (Cluster       *cluster,
               gconstpointer  data)
{
  gboolean trimmed = g_strcmp0 (cluster->setup->history_size, "5") == 0;
  g_autoptr(Sub) sub_a = NULL;
  g_autoptr(Sub) sub_b = NULL;
  g_autoptr(Pub) pub = NULL;

  if (cluster->redis == NULL)
    return;
  pubsub_test_create_topic (cluster->nodes[0], "t", NULL);
  sub_a = sub_new (cluster->nodes[0], "sub-a", "t");
  sub_b = sub_new (cluster->nodes[1], "sub-b", "t");
  pub = pub_new (cluster->nodes[1], 1, "t", 0);
  pub_run (pub, 5);
  sub_wait_seq (sub_a, 5, 5000);

  freeze_node (cluster, 0);
  cut_subscriber_link (cluster, 0);
  pub_run (pub, 20);                            /* 6…25, node-a away */
  g_assert_cmpuint (pub_last_seq (pub), ==, 25);
  sub_wait_seq (sub_b, 25, 10000);
  thaw_node (cluster, 0);

  sub_wait_seq (sub_a, 25, 15000);
  if (trimmed)
    {
      /* History 5: 21…25 are stored, 6…20 are gone. */
      g_assert_cmpuint (sub_a->n_lost, ==, 1);
      g_assert_cmpuint (sub_a->lost_seq, ==, 21);
      g_assert_cmpstr (sub_a->lost_epoch, ==, sub_b->epoch);
      g_assert_cmpuint (sub_a->events->len, ==, 5 + 5);
    }
  else
    {
      g_assert_cmpuint (sub_a->n_lost, ==, 0);
      g_assert_cmpuint (sub_a->events->len, ==, 25);
      for (guint k = 0; k < 25; k++)
        g_assert_cmpstr (sub_event (sub_a, k)->id, ==, g_ptr_array_index (pub->ids, k));
    }
  g_assert_cmpuint (sub_b->n_lost, ==, 0);
  g_assert_cmpuint (sub_b->n_unavailable, ==, 0);

  pub_run (pub, 1);
  sub_wait_seq (sub_a, 26, 5000);
  sub_wait_seq (sub_b, 26, 5000);
  sub_assert_quiet (sub_a);
  sub_assert_quiet (sub_b);
}

/* Redis frozen for a while under load (publishers on both nodes): every
 * publish is answered (an ack, or UNAVAILABLE); subscribers on both nodes
 * see one gapless sequence with every acknowledged message at its seq, no
 * id twice, nothing that was not sent; then it works again. */
static void
test_redis_paused (Cluster       *cluster,
                   gconstpointer  data)
{
  guint count = pubsub_test_scale_count (400, 40);
  g_autoptr(Pub) pub_a = NULL;
  g_autoptr(Pub) pub_b = NULL;
  g_autoptr(Sub) sub_a = NULL;
  g_autoptr(Sub) sub_b = NULL;
  g_autoptr(GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  Pub *pubs[2];
  gint64 resume_at;
  guint64 last;

  if (cluster->redis == NULL)
    return;
  pubsub_test_create_topic (cluster->nodes[0], "t", NULL);
  sub_a = sub_new (cluster->nodes[0], "sub-a", "t");
  sub_b = sub_new (cluster->nodes[1], "sub-b", "t");
  pub_a = pub_new (cluster->nodes[0], 1, "t", 0);
  pub_b = pub_new (cluster->nodes[1], 2, "t", 0);
  pubs[0] = pub_a;
  pubs[1] = pub_b;
  pubs_run (pubs, 2, count / 4, 16);

  /* Publishes in flight when Redis freezes, and more sent during it. */
  for (guint k = 0; k < 16; k++)
    {
      pub_send_one (pub_a);
      pub_send_one (pub_b);
    }
  pubsub_test_redis_pause (cluster->redis);
  for (guint k = 0; k < 16; k++)
    {
      pub_send_one (pub_a);
      pub_send_one (pub_b);
    }
  /* The outage itself lasts 3 s (a stimulus, not an assertion). */
  resume_at = g_get_monotonic_time () + 3 * G_USEC_PER_SEC;
  while (g_get_monotonic_time () < resume_at)
    pubsub_test_iterate ();
  pubsub_test_redis_resume (cluster->redis);
  pubs_run (pubs, 2, count - count / 4, 16);
  wait_cluster_up (cluster, 2);

  /* A last publish after everything: every subscriber reaches its seq. */
  pub_run (pub_a, 1);
  last = pub_last_seq (pub_a);
  g_test_message ("%u + %u publishes, %u + %u UNAVAILABLE, last seq %" G_GUINT64_FORMAT,
                  pub_a->sent, pub_b->sent, pub_a->unavailable, pub_b->unavailable, last);
  sub_wait_seq (sub_a, last, 20000);
  sub_wait_seq (sub_b, last, 20000);

  g_assert_cmpuint (sub_a->n_unavailable, <=, 1);
  g_assert_cmpuint (sub_b->n_unavailable, <=, 1);
  g_assert_cmpuint (sub_a->n_lost, ==, 0);
  g_assert_cmpuint (sub_b->n_lost, ==, 0);
  g_assert_cmpuint (sub_a->events->len, ==, sub_b->events->len);
  for (guint k = 0; k < sub_a->events->len; k++)
    {
      const Event *event = sub_event (sub_a, k);
      Pub *pub;
      guint64 acked;

      g_assert_cmpstr (event->id, ==, sub_event (sub_b, k)->id);
      g_assert_true (event->p == 1 || event->p == 2);
      pub = pubs[event->p - 1];
      g_assert_cmpint (event->n, >=, 1);
      g_assert_cmpint (event->n, <=, pub->sent);
      g_assert_cmpstr (event->id, ==, g_ptr_array_index (pub->ids, event->n - 1));
      acked = g_array_index (pub->ack_seqs, guint64, event->n - 1);
      g_assert_true (acked == 0 || acked == event->seq);
      g_assert_false (g_hash_table_contains (seen, event->id));
      g_hash_table_add (seen, event->id);
    }
  /* Every acknowledged publish was delivered. */
  for (guint p = 0; p < 2; p++)
    for (guint k = 0; k < pubs[p]->ack_seqs->len; k++)
      if (g_array_index (pubs[p]->ack_seqs, guint64, k) != 0)
        g_assert_true (g_hash_table_contains (seen, g_ptr_array_index (pubs[p]->ids, k)));
}

/* Redis closes a subscriber connection that does not read (a tiny pub/sub
 * output buffer limit, the node frozen under a burst from another node):
 * once thawed, its subscribers are caught up or told messages_lost, never
 * left with a silent gap. */
static void
test_output_buffer_limit (Cluster       *cluster,
                          gconstpointer  data)
{
  g_autoptr(Sub) sub_a = NULL;
  g_autoptr(Sub) sub_b = NULL;
  g_autoptr(Pub) pub = NULL;
  gboolean tripped = FALSE;
  guint64 last;

  if (cluster->redis == NULL)
    return;
  pubsub_test_redis_config_set (cluster->redis, "client-output-buffer-limit",
                                "pubsub 64kb 32kb 1");
  pubsub_test_create_topic (cluster->nodes[0], "t", NULL);
  sub_a = sub_new (cluster->nodes[0], "sub-a", "t");
  sub_b = sub_new (cluster->nodes[1], "sub-b", "t");
  pub = pub_new (cluster->nodes[1], 1, "t", 2000);
  pub_run (pub, 5);
  sub_wait_seq (sub_a, 5, 5000);

  freeze_node (cluster, 0);
  /* Bursts until Redis says it closed a client for its output buffer (the
   * kernel's socket buffer takes a few hundred KB first). */
  for (guint batch = 0; batch < 40 && !tripped; batch++)
    {
      g_autofree char *log = NULL;

      pub_run (pub, 100);
      log = pubsub_test_redis_dup_log (cluster->redis);
      tripped = strstr (log, "overcoming of output buffer limits") != NULL;
    }
  if (!tripped)
    g_error ("Redis never closed node-a's subscriber connection for its output buffer, "
             "after %u messages of 2 KB", pub->sent);
  last = pub_last_seq (pub);
  sub_wait_seq (sub_b, last, 20000);
  thaw_node (cluster, 0);

  sub_wait_seq (sub_a, last, 30000);
  g_test_message ("sub-a: %u events, %u messages_lost", sub_a->events->len, sub_a->n_lost);
  pub_run (pub, 1);
  sub_wait_seq (sub_a, last + 1, 5000);
  sub_wait_seq (sub_b, last + 1, 5000);
  g_assert_cmpuint (sub_b->n_lost, ==, 0);
  sub_assert_quiet (sub_a);
}

/* A topic deleted while a node was cut off: its subscribers there get
 * topic_deleted (the marker is still in Redis), not messages_lost; its
 * other topics carry on. */
static void
test_deleted_while_cut_off (Cluster       *cluster,
                            gconstpointer  data)
{
  g_autoptr(Sub) sub_a = NULL;
  g_autoptr(Sub) keep_a = NULL;
  g_autoptr(Sub) sub_b = NULL;
  g_autoptr(Pub) pub = NULL;
  g_autoptr(PubsubTestWs) late = NULL;
  g_autoptr(PubsubTestFrame) error = NULL;

  if (cluster->redis == NULL)
    return;
  pubsub_test_create_topic (cluster->nodes[0], "gone", NULL);
  pubsub_test_create_topic (cluster->nodes[0], "kept", NULL);
  sub_a = sub_new (cluster->nodes[0], "sub-a", "gone");
  keep_a = sub_new (cluster->nodes[0], "keep-a", "kept");
  sub_b = sub_new (cluster->nodes[1], "sub-b", "gone");
  {
    g_autoptr(PubsubTestResponse) one = rest_publish (cluster->nodes[1], "gone", NULL, "1");

    g_assert_cmpuint (one->status, ==, 201);
  }
  sub_wait_seq (sub_a, 1, 5000);

  freeze_node (cluster, 0);
  cut_subscriber_link (cluster, 0);
  delete_topic (cluster->nodes[1], "gone");
  pubsub_test_wait_for (sub_b->n_deleted == 1, 5000);
  thaw_node (cluster, 0);

  pubsub_test_wait_for (sub_a->n_deleted == 1, 15000);
  g_assert_cmpuint (sub_a->n_lost, ==, 0);
  g_assert_false (sub_a->ws->closed);
  pubsub_test_wait_for (!topics_has (cluster->nodes[0], "gone", -1), 5000);
  late = pubsub_test_ws_connect (cluster->nodes[0], NULL, NULL);
  pubsub_test_ws_send (late, "{\"type\":\"subscribe\",\"topic\":\"gone\",\"client_id\":\"c\","
                       "\"request_id\":\"late\"}");
  error = pubsub_test_ws_next (late, 5000);
  g_assert_cmpstr (pubsub_test_frame_get_string (error, "error", "code"), ==, "TOPIC_NOT_FOUND");

  /* The topic that stayed: no loss, no deletion, still delivered. */
  pub = pub_new (cluster->nodes[1], 1, "kept", 0);
  pub_run (pub, 2);
  sub_wait_seq (keep_a, 2, 10000);
  g_assert_cmpuint (keep_a->n_lost, ==, 0);
  g_assert_cmpuint (keep_a->n_deleted, ==, 0);
  sub_assert_quiet (sub_a);
  sub_assert_quiet (keep_a);
}

/* A node killed outright: the others keep serving, and its subscribers
 * leave the cluster-wide counts (and it leaves "nodes") within 15 s. */
static void
test_node_killed (Cluster       *cluster,
                  gconstpointer  data)
{
  PubsubTestServer *a, *b, *c;
  g_autoptr(Sub) sub_a1 = NULL;
  g_autoptr(Sub) sub_a2 = NULL;
  g_autoptr(Sub) sub_b = NULL;
  g_autoptr(Sub) sub_c = NULL;
  g_autoptr(PubsubTestResponse) published = NULL;
  gint64 killed_at;
  gint64 gone_after;

  if (cluster->redis == NULL)
    return;
  a = cluster->nodes[0];
  b = cluster->nodes[1];
  c = cluster->nodes[2];
  pubsub_test_create_topic (b, "t", NULL);
  sub_a1 = sub_new (a, "sub-a1", "t");
  sub_a2 = sub_new (a, "sub-a2", "t");
  sub_b = sub_new (b, "sub-b", "t");
  sub_c = sub_new (c, "sub-c", "t");
  pubsub_test_wait_for (stats_member (b, "t", "subscribers") == 4, 10000);
  pubsub_test_wait_for (topics_has (c, "t", 4), 10000);

  pubsub_test_server_signal (a, SIGKILL);
  killed_at = g_get_monotonic_time ();
  pubsub_test_server_wait_exit (a, 5000);
  pubsub_test_ws_wait_closed (sub_a1->ws, 5000);

  published = rest_publish (b, "t", NULL, "1");
  g_assert_cmpuint (published->status, ==, 201);
  sub_wait_seq (sub_b, 1, 5000);
  sub_wait_seq (sub_c, 1, 5000);

  /* Polled; the contract's bound is 15 s (2 s of slack for the polling). */
  pubsub_test_wait_for (stats_member (b, "t", "subscribers") == 2 &&
                        topics_has (c, "t", 2) &&
                        health_is (b, 200, "up", 2) && health_is (c, 200, "up", 2), 17000);
  gone_after = (g_get_monotonic_time () - killed_at) / 1000;
  g_test_message ("node-a dropped out after %" G_GINT64_FORMAT " ms", gone_after);
  g_assert_cmpint (gone_after, <=, 15000 * (gint64) pubsub_test_timeout_scale () + 2000);
  sub_assert_quiet (sub_b);
  sub_assert_quiet (sub_c);
  g_assert_cmpuint (sub_b->n_unavailable + sub_c->n_unavailable, ==, 0);
}

/* ---------------------------------------------------------------------- */

static const ClusterSetup one_node = { 1, NULL, NULL, NULL };
static const ClusterSetup two_nodes = { 2, NULL, NULL, NULL };
static const ClusterSetup three_nodes = { 3, NULL, NULL, NULL };
static const ClusterSetup three_prefixed = { 3, NULL, NULL, "ptest" };
static const ClusterSetup order_nodes = { 3, "5000", "1000", NULL };
static const ClusterSetup short_history = { 2, "5", NULL, NULL };
static const ClusterSetup long_history = { 2, "10000", NULL, NULL };

#define ADD(path, setup, func) \
  g_test_add ("/cluster/" path, Cluster, &(setup), cluster_setup, func, cluster_teardown)

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  pubsub_test_quiet_debug ();

  g_test_add_func ("/cluster/redis-helper", test_redis_helper);
  ADD ("health-and-counts", two_nodes, test_health_and_counts);
  ADD ("settings", one_node, test_settings);
  ADD ("topics-everywhere", three_prefixed, test_topics_everywhere);
  ADD ("order", order_nodes, test_order);
  ADD ("since-other-node", three_nodes, test_since_other_node);
  ADD ("idempotent-other-node", three_nodes, test_idempotent_other_node);
  ADD ("redis-lost", two_nodes, test_redis_lost);
  ADD ("redis-rolled-back", two_nodes, test_redis_rolled_back);
  ADD ("catch-up", two_nodes, test_catch_up);
  ADD ("catch-up-trimmed", short_history, test_catch_up);
  ADD ("redis-paused", long_history, test_redis_paused);
  ADD ("output-buffer-limit", long_history, test_output_buffer_limit);
  ADD ("deleted-while-cut-off", two_nodes, test_deleted_while_cut_off);
  ADD ("node-killed", three_nodes, test_node_killed);

  return g_test_run ();
}
