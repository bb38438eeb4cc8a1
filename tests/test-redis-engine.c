/* test-redis-engine.c: the Redis engine (src/cluster), two nodes in one
 * process
 *
 * Two brokers, each with its own PubsubRedisEngine (nodes "A" and "B"), on
 * one private redis-server (tests/pubsub-test-redis.c): replication of
 * topics and messages, seq order across nodes, idempotent publish, the sync
 * barrier, and the faults of SPEC §9: Redis killed and restarted empty, a
 * node's connections cut while the other publishes, deletes and trimming
 * while a node is away. Every wait runs the main loop until a condition
 * holds, with a deadline.
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <string.h>

#include <glib-object.h>

#include "pubsub-broker.h"
#include "pubsub-error.h"
#include "pubsub-protocol.h"
#include "pubsub-redis-engine.h"
#include "pubsub-test-redis.h"
#include "pubsub-test-util.h"
#include "pubsub-topic.h"

#define HISTORY 5
#define DEADLINE_MS 10000

/* What one node's topic told its listener. */
typedef struct {
  PubsubTopicListener listener;
  GArray  *seqs;       /* guint64: every event, in order */
  guint    lost;
  guint    deleted;
  guint    unavailable;
} Watch;

typedef struct {
  PubsubTestRedis *redis;
  PubsubBroker    *a;
  PubsubBroker    *b;
  guint            a_down;   /* notify::available to FALSE */
  guint            b_down;
} Fixture;

/* A UUID of its own for message @n. */
static char *
uuid_n (guint n)
{
  return g_strdup_printf ("00000000-0000-4000-8000-%012u", n);
}

/* ---- calls, answered at once or later --------------------------------- */

typedef struct {
  gboolean done;
  GError  *error;
  guint64  seq;
  gboolean duplicate;
  char     epoch[PUBSUB_EPOCH_LEN + 1];
} Result;

static void
result_take (Result                  *result,
             const PubsubEngineReply *reply)
{
  result->done = TRUE;
  result->error = reply->error != NULL ? g_error_copy (reply->error) : NULL;
  result->seq = reply->seq;
  result->duplicate = reply->duplicate;
  memcpy (result->epoch, reply->epoch, sizeof result->epoch);
}

static void
on_reply (PubsubEngine            *engine,
          const PubsubEngineReply *reply,
          GObject                 *owner)
{
  result_take (g_object_get_data (owner, "result"), reply);
}

static GObject *
owner_for (Result *result)
{
  GObject *owner = g_object_new (G_TYPE_OBJECT, NULL);

  memset (result, 0, sizeof *result);
  g_object_set_data (owner, "result", result);
  return owner;
}

/* Starts a publish; the result may come later. */
static void
publish_start (PubsubBroker *broker,
               const char   *topic,
               const char   *id,
               const char   *payload,
               Result       *result)
{
  g_autoptr(GObject) owner = owner_for (result);
  g_auto(PubsubEngineReply) reply = { 0 };

  if (pubsub_broker_publish (broker, topic, id, payload, strlen (payload), &reply, owner, on_reply))
    result_take (result, &reply);
}

static void
result_wait (Result *result)
{
  pubsub_test_wait_for (result->done, DEADLINE_MS);
}

static void
result_clear (Result *result)
{
  g_clear_error (&result->error);
}

static guint64
publish (PubsubBroker *broker,
         const char   *topic,
         const char   *id)
{
  Result result;
  guint64 seq;

  publish_start (broker, topic, id, "{\"x\":1}", &result);
  result_wait (&result);
  g_assert_no_error (result.error);
  seq = result.seq;
  result_clear (&result);
  return seq;
}

static void
topic_call (PubsubBroker *broker,
            gboolean      create,
            const char   *name,
            Result       *result)
{
  g_autoptr(GObject) owner = owner_for (result);
  g_auto(PubsubEngineReply) reply = { 0 };
  gboolean at_once = create ? pubsub_broker_create_topic (broker, name, &reply, owner, on_reply)
                            : pubsub_broker_delete_topic (broker, name, &reply, owner, on_reply);

  if (at_once)
    result_take (result, &reply);
  result_wait (result);
}

static void
create_topic (PubsubBroker *broker,
              const char   *name)
{
  Result result;

  topic_call (broker, TRUE, name, &result);
  g_assert_no_error (result.error);
  g_assert_true (pubsub_epoch_is_valid (result.epoch));
  /* In the replica when the answer comes. */
  g_assert_nonnull (pubsub_broker_lookup_topic (broker, name));
  result_clear (&result);
}

static void
sync_node (PubsubBroker *broker)
{
  Result result;
  g_autoptr(GObject) owner = owner_for (&result);
  g_auto(PubsubEngineReply) reply = { 0 };

  if (pubsub_broker_sync (broker, &reply, owner, on_reply))
    result_take (&result, &reply);
  result_wait (&result);
  g_assert_no_error (result.error);
  result_clear (&result);
}

/* ---- watching a topic -------------------------------------------------- */

static void
watch_event (PubsubTopic   *topic,
             PubsubMessage *message,
             gpointer       user_data)
{
  Watch *watch = user_data;
  guint64 seq = pubsub_message_get_seq (message);

  g_array_append_val (watch->seqs, seq);
}

static void
watch_deleted (PubsubTopic *topic,
               gpointer     user_data)
{
  ((Watch *) user_data)->deleted++;
}

static void
watch_lost (PubsubTopic *topic,
            gpointer     user_data)
{
  ((Watch *) user_data)->lost++;
}

static void
watch_availability (PubsubTopic *topic,
                    gboolean     available,
                    gpointer     user_data)
{
  if (!available)
    ((Watch *) user_data)->unavailable++;
}

static Watch *
watch_new (PubsubBroker *broker,
           const char   *name)
{
  Watch *watch = g_new0 (Watch, 1);

  watch->seqs = g_array_new (FALSE, FALSE, sizeof (guint64));
  watch->listener.event = watch_event;
  watch->listener.deleted = watch_deleted;
  watch->listener.lost = watch_lost;
  watch->listener.availability = watch_availability;
  watch->listener.user_data = watch;
  pubsub_topic_add_listener (pubsub_broker_lookup_topic (broker, name), &watch->listener);
  return watch;
}

/* The topic still exists (a deleted topic has dropped its listeners). */
static void
watch_free (Watch        *watch,
            PubsubBroker *broker,
            const char   *name)
{
  PubsubTopic *topic = pubsub_broker_lookup_topic (broker, name);

  if (topic != NULL && watch->deleted == 0)
    pubsub_topic_remove_listener (topic, &watch->listener);
  g_array_unref (watch->seqs);
  g_free (watch);
}

/* Events came in order, each the one after the last. */
static void
assert_consecutive (Watch  *watch,
                    guint64 first)
{
  for (guint i = 0; i < watch->seqs->len; i++)
    g_assert_cmpuint (g_array_index (watch->seqs, guint64, i), ==, first + i);
}

/* ---- the fixture ------------------------------------------------------- */

static void
on_available (PubsubBroker *broker,
              GParamSpec   *pspec,
              guint        *downs)
{
  if (!pubsub_broker_is_available (broker))
    (*downs)++;
}

static PubsubBroker *
node_new_full (Fixture    *fixture,
               const char *id,
               guint       history,
               guint       max_topics,
               guint      *downs)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(PubsubEngine) engine = NULL;
  PubsubBroker *broker;

  engine = pubsub_redis_engine_new (pubsub_test_redis_get_url (fixture->redis), "t", id, &error);
  g_assert_no_error (error);
  broker = pubsub_broker_new (engine, pubsub_frame_new_event, history, max_topics);
  g_signal_connect (broker, "notify::available", G_CALLBACK (on_available), downs);
  return broker;
}

static PubsubBroker *
node_new (Fixture    *fixture,
          const char *id,
          guint      *downs)
{
  return node_new_full (fixture, id, HISTORY, 100, downs);
}

static void
fixture_set_up (Fixture       *fixture,
                gconstpointer  data)
{
  if (!pubsub_test_redis_available ())
    {
      g_test_skip ("redis-server is not installed");
      return;
    }
  fixture->redis = pubsub_test_redis_start ();
  fixture->a = node_new (fixture, "A", &fixture->a_down);
  fixture->b = node_new (fixture, "B", &fixture->b_down);
  pubsub_test_wait_for (pubsub_broker_is_available (fixture->a) &&
                        pubsub_broker_is_available (fixture->b), DEADLINE_MS);
}

static void
fixture_tear_down (Fixture       *fixture,
                   gconstpointer  data)
{
  g_clear_object (&fixture->a);
  g_clear_object (&fixture->b);
  g_clear_pointer (&fixture->redis, pubsub_test_redis_free);
}

/* The Redis client id of one of node @node's connections (@role cmd or
 * sub), by the name the engine gives it. */
static char *
client_id (Fixture    *fixture,
           const char *node,
           const char *role)
{
  g_autofree char *list = pubsub_test_redis_command (fixture->redis, "CLIENT", "LIST", NULL);
  g_autofree char *name = g_strdup_printf (" name=pubsub:%s:%s ", node, role);
  g_auto(GStrv) lines = g_strsplit (list, "\n", -1);

  for (guint i = 0; lines[i] != NULL; i++)
    if (strstr (lines[i], name) != NULL && g_str_has_prefix (lines[i], "id="))
      return g_strndup (lines[i] + 3, strcspn (lines[i] + 3, " "));
  g_error ("no Redis client named pubsub:%s:%s in:\n%s", node, role, list);
}

static void
kill_client (Fixture    *fixture,
             const char *node,
             const char *role)
{
  g_autofree char *id = client_id (fixture, node, role);
  g_autofree char *answer = pubsub_test_redis_command (fixture->redis, "CLIENT", "KILL", "ID", id, NULL);

  g_assert_cmpstr (answer, ==, "1");
}

/* ---- the cases --------------------------------------------------------- */

static void
test_create_replicated (Fixture       *fixture,
                        gconstpointer  data)
{
  PubsubTopic *on_a, *on_b;
  Result result;

  if (fixture->redis == NULL)
    return;
  create_topic (fixture->a, "orders");
  sync_node (fixture->b);
  on_a = pubsub_broker_lookup_topic (fixture->a, "orders");
  on_b = pubsub_broker_lookup_topic (fixture->b, "orders");
  g_assert_nonnull (on_b);
  g_assert_cmpstr (pubsub_topic_get_epoch (on_a), ==, pubsub_topic_get_epoch (on_b));

  topic_call (fixture->b, TRUE, "orders", &result);
  g_assert_error (result.error, PUBSUB_ERROR, PUBSUB_ERROR_TOPIC_EXISTS);
  result_clear (&result);
  topic_call (fixture->b, FALSE, "orders", &result);
  g_assert_no_error (result.error);
  result_clear (&result);
  g_assert_null (pubsub_broker_lookup_topic (fixture->b, "orders"));
  sync_node (fixture->a);
  g_assert_null (pubsub_broker_lookup_topic (fixture->a, "orders"));
  topic_call (fixture->a, FALSE, "orders", &result);
  g_assert_error (result.error, PUBSUB_ERROR, PUBSUB_ERROR_TOPIC_NOT_FOUND);
  g_assert_cmpstr (result.error->message, ==, "topic 'orders' does not exist");
  result_clear (&result);
  publish_start (fixture->a, "orders", "00000000-0000-4000-8000-000000000000", "1", &result);
  result_wait (&result);
  g_assert_error (result.error, PUBSUB_ERROR, PUBSUB_ERROR_TOPIC_NOT_FOUND);
  /* Worded as the memory engine words it. */
  g_assert_cmpstr (result.error->message, ==, "topic 'orders' does not exist");
  result_clear (&result);
}

/* Publishes from both nodes at once: one order, the same on both. */
static void
test_interleaved (Fixture       *fixture,
                  gconstpointer  data)
{
  enum { N = 60 };
  Result results[N];
  Watch *on_a, *on_b;
  PubsubTopic *topic_a, *topic_b;

  if (fixture->redis == NULL)
    return;
  create_topic (fixture->a, "mix");
  sync_node (fixture->b);
  on_a = watch_new (fixture->a, "mix");
  on_b = watch_new (fixture->b, "mix");
  /* All in flight together: nothing waits for a reply before sending. */
  for (guint i = 0; i < N; i++)
    {
      g_autofree char *id = uuid_n (i + 1);

      publish_start (i % 2 ? fixture->b : fixture->a, "mix", id, "{\"n\":1}", &results[i]);
      g_assert_false (results[i].done);
    }
  for (guint i = 0; i < N; i++)
    {
      result_wait (&results[i]);
      g_assert_no_error (results[i].error);
      g_assert_false (results[i].duplicate);
    }
  /* Each node's acks come in its own order. */
  for (guint i = 2; i < N; i++)
    g_assert_cmpuint (results[i].seq, >, results[i - 2].seq);
  sync_node (fixture->a);
  sync_node (fixture->b);

  topic_a = pubsub_broker_lookup_topic (fixture->a, "mix");
  topic_b = pubsub_broker_lookup_topic (fixture->b, "mix");
  g_assert_cmpuint (pubsub_topic_get_messages (topic_a), ==, N);
  g_assert_cmpuint (pubsub_topic_get_messages (topic_b), ==, N);
  g_assert_cmpuint (on_a->seqs->len, ==, N);
  g_assert_cmpuint (on_b->seqs->len, ==, N);
  assert_consecutive (on_a, 1);
  assert_consecutive (on_b, 1);
  g_assert_cmpuint (pubsub_topic_get_history_length (topic_b), ==, HISTORY);
  for (guint i = 0; i < HISTORY; i++)
    {
      PubsubMessage *ma = pubsub_topic_get_history_item (topic_a, i);
      PubsubMessage *mb = pubsub_topic_get_history_item (topic_b, i);

      g_assert_cmpuint (pubsub_message_get_seq (ma), ==, pubsub_message_get_seq (mb));
      g_assert_cmpstr (pubsub_message_get_id (ma), ==, pubsub_message_get_id (mb));
      g_assert_cmpint (pubsub_message_get_time (ma), ==, pubsub_message_get_time (mb));
      /* The same bytes on both nodes: serialized once, by the publisher. */
      g_assert_true (g_bytes_equal (pubsub_message_get_frame (ma), pubsub_message_get_frame (mb)));
    }
  g_assert_cmpuint (on_a->lost + on_b->lost, ==, 0);
  for (guint i = 0; i < N; i++)
    result_clear (&results[i]);
  watch_free (on_a, fixture->a, "mix");
  watch_free (on_b, fixture->b, "mix");
}

/* Publishes made in one main-loop iteration go to Redis as one batch:
 * each is still answered on its own, in order, with its own NOTFOUND or
 * duplicate, and a batch longer than the history trims as one publish at
 * a time would. */
static void
test_batch (Fixture       *fixture,
            gconstpointer  data)
{
  enum { N = 3 * HISTORY };
  Result results[N], missing;
  g_autofree char *len = NULL;
  g_autofree char *ids_len = NULL;
  g_autofree char *expected = NULL;
  g_autofree char *kept = NULL;
  g_autofree char *trimmed = NULL;
  g_autofree char *seq_text = NULL;
  Watch *on_b;

  if (fixture->redis == NULL)
    return;
  create_topic (fixture->a, "batch");
  sync_node (fixture->b);
  on_b = watch_new (fixture->b, "batch");
  for (guint i = 0; i < N; i++)
    {
      /* 2 repeats 0's id while it is stored; N - 1 repeats 1's once it
       * was trimmed, within the same batch. */
      g_autofree char *id = uuid_n (i == 2 ? 0 : i == N - 1 ? 1 : i);

      publish_start (fixture->a, "batch", id, "{\"n\":1}", &results[i]);
      if (i == 4)
        publish_start (fixture->a, "no-such-topic", id, "1", &missing);
    }
  result_wait (&missing);
  g_assert_error (missing.error, PUBSUB_ERROR, PUBSUB_ERROR_TOPIC_NOT_FOUND);
  for (guint i = 0; i < N; i++)
    {
      result_wait (&results[i]);
      g_assert_no_error (results[i].error);
      g_assert_cmpint (results[i].duplicate, ==, i == 2);
      g_assert_cmpuint (results[i].seq, ==, i < 2 ? i + 1 : i == 2 ? 1 : i);
    }
  sync_node (fixture->b);
  g_assert_cmpuint (on_b->seqs->len, ==, N - 1);
  assert_consecutive (on_b, 1);
  len = pubsub_test_redis_command (fixture->redis, "XLEN", "t:s:batch", NULL);
  g_assert_cmpstr (len, ==, G_STRINGIFY (HISTORY));
  ids_len = pubsub_test_redis_command (fixture->redis, "HLEN", "t:ids:batch", NULL);
  expected = g_strdup_printf ("%u", HISTORY);
  g_assert_cmpstr (ids_len, ==, expected);
  kept = g_strdup_printf ("%u", N - 1);
  seq_text = pubsub_test_redis_command (fixture->redis, "HGET", "t:ids:batch",
                                        "00000000-0000-4000-8000-000000000001", NULL);
  g_assert_cmpstr (seq_text, ==, kept);
  trimmed = pubsub_test_redis_command (fixture->redis, "HGET", "t:ids:batch",
                                       "00000000-0000-4000-8000-000000000000", NULL);
  g_assert_cmpstr (trimmed, ==, "(nil)");
  for (guint i = 0; i < N; i++)
    result_clear (&results[i]);
  result_clear (&missing);
  watch_free (on_b, fixture->b, "batch");
}

/* A batch on the bus whose framing or events are wrong is ignored. */
static void
test_bad_batch (Fixture       *fixture,
                gconstpointer  data)
{
  /* RS is "\x1e" "": a letter after it would extend the escape. */
  const char *bad[] = { "b", "b\x1e", "b\x1e\x1e", "b\x1e" "x\x1e", "bx\x1e" "y",
                        "b\x1e" "x\x1e\x1e" "y", "babc", "b\x1e" "abc" };
  Watch *on_b;

  if (fixture->redis == NULL)
    return;
  create_topic (fixture->a, "framing");
  sync_node (fixture->b);
  on_b = watch_new (fixture->b, "framing");
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    g_free (pubsub_test_redis_command (fixture->redis, "PUBLISH", "t:bus", bad[i], NULL));
  publish (fixture->a, "framing", "00000000-0000-4000-8000-000000000001");
  sync_node (fixture->b);
  g_assert_cmpuint (on_b->seqs->len, ==, 1);
  assert_consecutive (on_b, 1);
  g_assert_true (pubsub_broker_is_available (fixture->b));
  watch_free (on_b, fixture->b, "framing");
}

/* The frame a node builds from the bus is the one the memory engine
 * would build: the event layout of pubsub_frame_new_event(). */
static void
test_event_frame (Fixture       *fixture,
                  gconstpointer  data)
{
  g_autofree char *id = uuid_n (7);
  PubsubTopic *topic;
  PubsubMessage *message;
  PubsubMessageInfo info = { 0 };
  g_autoptr(GBytes) expected = NULL;
  gsize offset, len;
  const char *payload;

  if (fixture->redis == NULL)
    return;
  create_topic (fixture->a, "frame");
  Result result;

  publish_start (fixture->a, "frame", id, "[1,\"\\u00e9\",{\"k\":null}]", &result);
  result_wait (&result);
  g_assert_no_error (result.error);
  sync_node (fixture->b);
  topic = pubsub_broker_lookup_topic (fixture->b, "frame");
  g_assert_cmpuint (pubsub_topic_get_messages (topic), ==, 1);
  message = pubsub_topic_get_message (topic, 1);
  payload = pubsub_message_get_payload (message, &len);
  g_assert_cmpmem (payload, len, "[1,\"\\u00e9\",{\"k\":null}]", strlen ("[1,\"\\u00e9\",{\"k\":null}]"));
  info.topic = "frame";
  info.epoch = pubsub_topic_get_epoch (topic);
  info.seq = 1;
  info.id = id;
  info.payload = payload;
  info.payload_len = len;
  info.time_us = pubsub_message_get_time (message);
  expected = pubsub_frame_new_event (&info, &offset);
  g_assert_true (g_bytes_equal (expected, pubsub_message_get_frame (message)));
}

static void
test_duplicate (Fixture       *fixture,
                gconstpointer  data)
{
  g_autofree char *id = uuid_n (42);
  g_autofree char *first = uuid_n (1);
  g_autofree char *ids_len = NULL;
  g_autofree char *expected = NULL;
  Result result;
  guint64 seq;

  if (fixture->redis == NULL)
    return;
  create_topic (fixture->a, "dup");
  publish (fixture->a, "dup", first);
  seq = publish (fixture->a, "dup", id);
  g_assert_cmpuint (seq, ==, 2);
  publish_start (fixture->b, "dup", id, "{\"again\":true}", &result);
  result_wait (&result);
  g_assert_no_error (result.error);
  g_assert_true (result.duplicate);
  g_assert_cmpuint (result.seq, ==, seq);
  result_clear (&result);
  sync_node (fixture->b);
  g_assert_cmpuint (pubsub_topic_get_messages (pubsub_broker_lookup_topic (fixture->b, "dup")), ==, 2);

  /* Trimmed out of the history: the id is free again (SPEC §8). */
  for (guint i = 0; i < HISTORY; i++)
    {
      g_autofree char *other = uuid_n (100 + i);

      publish (fixture->b, "dup", other);
    }
  publish_start (fixture->b, "dup", id, "1", &result);
  result_wait (&result);
  g_assert_false (result.duplicate);
  g_assert_cmpuint (result.seq, ==, 3 + HISTORY);
  result_clear (&result);
  /* id → seq for each stored message, nothing more. */
  ids_len = pubsub_test_redis_command (fixture->redis, "HLEN", "t:ids:dup", NULL);
  expected = g_strdup_printf ("%u", HISTORY);
  g_assert_cmpstr (ids_len, ==, expected);
}

/* Read-your-writes: after a publish's ack on A, a sync on B answers only
 * once B's replica has the message; no waiting loop here. */
static void
test_sync_barrier (Fixture       *fixture,
                   gconstpointer  data)
{
  PubsubTopic *topic;

  if (fixture->redis == NULL)
    return;
  create_topic (fixture->a, "rw");
  sync_node (fixture->b);
  topic = pubsub_broker_lookup_topic (fixture->b, "rw");
  for (guint i = 1; i <= 20; i++)
    {
      g_autofree char *id = uuid_n (i);

      g_assert_cmpuint (publish (fixture->a, "rw", id), ==, i);
      sync_node (fixture->b);
      g_assert_cmpuint (pubsub_topic_get_messages (topic), ==, i);
    }
}

/* Redis killed: both nodes down (once), calls UNAVAILABLE at once; Redis
 * back empty: the topics come back with new epochs, subscribers are told
 * messages were lost, and seq starts again at 1. */
static void
test_redis_restarted_empty (Fixture       *fixture,
                            gconstpointer  data)
{
  g_autofree char *old_epoch = NULL;
  Watch *on_a, *on_b;
  Result result;
  PubsubTopic *topic_a, *topic_b;

  if (fixture->redis == NULL)
    return;
  create_topic (fixture->a, "keep");
  publish (fixture->a, "keep", "00000000-0000-4000-8000-000000000001");
  sync_node (fixture->b);
  old_epoch = g_strdup (pubsub_topic_get_epoch (pubsub_broker_lookup_topic (fixture->a, "keep")));
  on_a = watch_new (fixture->a, "keep");
  on_b = watch_new (fixture->b, "keep");

  pubsub_test_redis_kill (fixture->redis);
  pubsub_test_wait_for (!pubsub_broker_is_available (fixture->a) &&
                        !pubsub_broker_is_available (fixture->b), DEADLINE_MS);
  g_assert_cmpuint (fixture->a_down, ==, 1);
  g_assert_cmpuint (fixture->b_down, ==, 1);
  g_assert_cmpuint (on_a->unavailable, ==, 1);
  g_assert_cmpuint (on_b->unavailable, ==, 1);
  publish_start (fixture->a, "keep", "00000000-0000-4000-8000-000000000002", "1", &result);
  g_assert_true (result.done);
  g_assert_error (result.error, PUBSUB_ERROR, PUBSUB_ERROR_UNAVAILABLE);
  result_clear (&result);
  /* Still down after a few reconnect attempts: told once per outage. */
  for (guint i = 0; i < 100; i++)
    pubsub_test_iterate ();
  g_assert_cmpuint (fixture->a_down, ==, 1);

  pubsub_test_redis_restart (fixture->redis, FALSE);
  pubsub_test_wait_for (pubsub_broker_is_available (fixture->a) &&
                        pubsub_broker_is_available (fixture->b), DEADLINE_MS);
  sync_node (fixture->a);
  sync_node (fixture->b);
  topic_a = pubsub_broker_lookup_topic (fixture->a, "keep");
  topic_b = pubsub_broker_lookup_topic (fixture->b, "keep");
  g_assert_nonnull (topic_a);
  g_assert_nonnull (topic_b);
  g_assert_cmpstr (pubsub_topic_get_epoch (topic_a), !=, old_epoch);
  g_assert_cmpstr (pubsub_topic_get_epoch (topic_a), ==, pubsub_topic_get_epoch (topic_b));
  g_assert_cmpuint (pubsub_topic_get_messages (topic_a), ==, 0);
  g_assert_cmpuint (pubsub_topic_get_messages (topic_b), ==, 0);
  g_assert_cmpuint (on_a->lost, ==, 1);
  g_assert_cmpuint (on_b->lost, ==, 1);
  g_assert_cmpuint (on_a->deleted + on_b->deleted, ==, 0);
  g_assert_cmpuint (publish (fixture->b, "keep", "00000000-0000-4000-8000-000000000003"), ==, 1);
  watch_free (on_a, fixture->a, "keep");
  watch_free (on_b, fixture->b, "keep");
}

/* Redis back from an older snapshot (the marker kept, a lower seq than
 * the nodes delivered): one new epoch for the topic, whichever node gives
 * it, and both nodes' subscribers told messages were lost, not that the
 * topic was deleted. */
static void
test_redis_rolled_back (Fixture       *fixture,
                        gconstpointer  data)
{
  g_autofree char *old_epoch = NULL;
  g_autofree char *saved = NULL;
  Watch *on_a, *on_b;
  PubsubTopic *topic_a, *topic_b;

  if (fixture->redis == NULL)
    return;
  create_topic (fixture->a, "back");
  publish (fixture->a, "back", "00000000-0000-4000-8000-000000000001");
  saved = pubsub_test_redis_command (fixture->redis, "SAVE", NULL);
  g_assert_cmpstr (saved, ==, "OK");
  publish (fixture->b, "back", "00000000-0000-4000-8000-000000000002");
  sync_node (fixture->a);
  sync_node (fixture->b);
  old_epoch = g_strdup (pubsub_topic_get_epoch (pubsub_broker_lookup_topic (fixture->a, "back")));
  on_a = watch_new (fixture->a, "back");
  on_b = watch_new (fixture->b, "back");

  pubsub_test_redis_kill (fixture->redis);
  pubsub_test_wait_for (!pubsub_broker_is_available (fixture->a) &&
                        !pubsub_broker_is_available (fixture->b), DEADLINE_MS);
  pubsub_test_redis_restart (fixture->redis, TRUE);
  pubsub_test_wait_for (pubsub_broker_is_available (fixture->a) &&
                        pubsub_broker_is_available (fixture->b), DEADLINE_MS);
  sync_node (fixture->a);
  sync_node (fixture->b);
  topic_a = pubsub_broker_lookup_topic (fixture->a, "back");
  topic_b = pubsub_broker_lookup_topic (fixture->b, "back");
  g_assert_nonnull (topic_a);
  g_assert_nonnull (topic_b);
  g_assert_cmpstr (pubsub_topic_get_epoch (topic_a), !=, old_epoch);
  g_assert_cmpstr (pubsub_topic_get_epoch (topic_a), ==, pubsub_topic_get_epoch (topic_b));
  g_assert_cmpuint (on_a->lost, ==, 1);
  g_assert_cmpuint (on_b->lost, ==, 1);
  g_assert_cmpuint (on_a->deleted + on_b->deleted, ==, 0);
  /* The new epoch starts again at seq 1. */
  g_assert_cmpuint (pubsub_topic_get_messages (topic_b), ==, 0);
  g_assert_cmpuint (publish (fixture->a, "back", "00000000-0000-4000-8000-000000000003"), ==, 1);
  watch_free (on_a, fixture->a, "back");
  watch_free (on_b, fixture->b, "back");
}

/* B's subscriber connection killed while A publishes: B reconnects and
 * catches up from the stream, in order, without a gap or a reset. */
static void
test_sub_killed_catch_up (Fixture       *fixture,
                          gconstpointer  data)
{
  /* Within the history: nothing may be lost. */
  enum { N = HISTORY / 2 };
  Result results[2 * N];
  Watch *on_b;

  if (fixture->redis == NULL)
    return;
  create_topic (fixture->a, "cut");
  sync_node (fixture->b);
  on_b = watch_new (fixture->b, "cut");
  for (guint i = 0; i < 2 * N; i++)
    {
      g_autofree char *id = uuid_n (i + 1);

      publish_start (fixture->a, "cut", id, "1", &results[i]);
      if (i == N - 1)
        {
          /* The first ones stored (B may or may not have heard them),
           * then B's bus is cut while the rest are published. */
          for (guint k = 0; k < N; k++)
            result_wait (&results[k]);
          kill_client (fixture, "B", "sub");
        }
    }
  for (guint i = 0; i < 2 * N; i++)
    {
      result_wait (&results[i]);
      g_assert_no_error (results[i].error);
      result_clear (&results[i]);
    }
  pubsub_test_wait_for (fixture->b_down == 1 && pubsub_broker_is_available (fixture->b),
                        DEADLINE_MS);
  sync_node (fixture->b);
  g_assert_cmpuint (on_b->lost, ==, 0);
  g_assert_cmpuint (on_b->seqs->len, ==, 2 * N);
  assert_consecutive (on_b, 1);
  g_assert_cmpuint (fixture->a_down, ==, 0);
  watch_free (on_b, fixture->b, "cut");
}

/* Cuts both of B's connections; B reconnects after its backoff (200 ms). */
static void
cut_b (Fixture *fixture)
{
  kill_client (fixture, "B", "sub");
  kill_client (fixture, "B", "cmd");
}

/* A topic deleted while B was away: B's subscribers get topic_deleted,
 * not messages_lost. */
static void
test_deleted_while_away (Fixture       *fixture,
                         gconstpointer  data)
{
  Watch *on_b;
  Result result;

  if (fixture->redis == NULL)
    return;
  create_topic (fixture->a, "gone");
  create_topic (fixture->a, "stays");
  sync_node (fixture->b);
  on_b = watch_new (fixture->b, "gone");
  cut_b (fixture);
  topic_call (fixture->a, FALSE, "gone", &result);
  g_assert_no_error (result.error);
  result_clear (&result);
  g_assert_false (pubsub_broker_is_available (fixture->b));
  pubsub_test_wait_for (pubsub_broker_is_available (fixture->b), DEADLINE_MS);
  g_assert_null (pubsub_broker_lookup_topic (fixture->b, "gone"));
  g_assert_nonnull (pubsub_broker_lookup_topic (fixture->b, "stays"));
  g_assert_cmpuint (on_b->deleted, ==, 1);
  g_assert_cmpuint (on_b->lost, ==, 0);
  watch_free (on_b, fixture->b, "gone");
}

/* More published while B was away than the history keeps: B goes on from
 * what Redis still has and its subscribers are told messages were lost. */
static void
test_trimmed_while_away (Fixture       *fixture,
                         gconstpointer  data)
{
  enum { N = 3 * HISTORY };
  Result results[N];
  Watch *on_b;
  PubsubTopic *topic;

  if (fixture->redis == NULL)
    return;
  create_topic (fixture->a, "trim");
  publish (fixture->a, "trim", "00000000-0000-4000-8000-000000000000");
  sync_node (fixture->b);
  on_b = watch_new (fixture->b, "trim");
  cut_b (fixture);
  for (guint i = 0; i < N; i++)
    {
      g_autofree char *id = uuid_n (i + 1);

      publish_start (fixture->a, "trim", id, "1", &results[i]);
    }
  for (guint i = 0; i < N; i++)
    {
      result_wait (&results[i]);
      g_assert_no_error (results[i].error);
      result_clear (&results[i]);
    }
  g_assert_false (pubsub_broker_is_available (fixture->b));
  pubsub_test_wait_for (pubsub_broker_is_available (fixture->b), DEADLINE_MS);
  topic = pubsub_broker_lookup_topic (fixture->b, "trim");
  g_assert_cmpuint (pubsub_topic_get_messages (topic), ==, N + 1);
  g_assert_cmpuint (on_b->lost, ==, 1);
  g_assert_cmpuint (pubsub_topic_get_first_seq (topic), ==, N + 2 - HISTORY);
  g_assert_cmpuint (on_b->seqs->len, ==, HISTORY);
  assert_consecutive (on_b, N + 2 - HISTORY);
  watch_free (on_b, fixture->b, "trim");
}

/* Subscribers on A count on B; both nodes are live. */
static void
test_remote_counts (Fixture       *fixture,
                    gconstpointer  data)
{
  PubsubEngine *engine_b;
  PubsubTopic *topic_a;

  if (fixture->redis == NULL)
    return;
  engine_b = pubsub_broker_get_engine (fixture->b);
  create_topic (fixture->a, "count");
  sync_node (fixture->b);
  topic_a = pubsub_broker_lookup_topic (fixture->a, "count");
  pubsub_topic_add_subscriber (topic_a, "client-1");
  pubsub_topic_add_subscriber (topic_a, "client-2");
  pubsub_test_wait_for (pubsub_engine_get_remote_subscribers (engine_b, "count") == 2, DEADLINE_MS);
  g_assert_cmpuint (pubsub_broker_get_topic_subscribers (fixture->b,
                      pubsub_broker_lookup_topic (fixture->b, "count")), ==, 2);
  g_assert_cmpuint (pubsub_engine_get_nodes (engine_b), ==, 2);
  g_assert_cmpstr (pubsub_engine_get_node_id (engine_b), ==, "B");
  g_assert_cmpstr (pubsub_engine_get_cluster (engine_b), ==, pubsub_test_redis_get_url (fixture->redis));
  pubsub_topic_remove_subscriber (topic_a, "client-1", PUBSUB_LEAVE_UNSUBSCRIBED);
  pubsub_test_wait_for (pubsub_engine_get_remote_subscribers (engine_b, "count") == 1, DEADLINE_MS);
  pubsub_topic_remove_subscriber (topic_a, "client-2", PUBSUB_LEAVE_UNSUBSCRIBED);
}

/* SIGSTOP takes effect a moment after kill() returns. */
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

/* Redis frozen (SIGSTOP): hiredis has no timeout of its own, the engine's
 * heartbeat notices; calls in flight are answered UNAVAILABLE, not lost;
 * Redis thawed: both nodes come back with their data (marker kept). */
static void
test_redis_paused (Fixture       *fixture,
                   gconstpointer  data)
{
  Result result;
  Watch *on_b;
  g_autofree char *epoch = NULL;

  if (fixture->redis == NULL)
    return;
  create_topic (fixture->a, "frozen");
  publish (fixture->a, "frozen", "00000000-0000-4000-8000-000000000001");
  sync_node (fixture->b);
  epoch = g_strdup (pubsub_topic_get_epoch (pubsub_broker_lookup_topic (fixture->b, "frozen")));
  on_b = watch_new (fixture->b, "frozen");

  pubsub_test_redis_pause (fixture->redis);
  pubsub_test_wait_for (process_stopped (pubsub_test_redis_get_pid (fixture->redis)), 5000);
  publish_start (fixture->a, "frozen", "00000000-0000-4000-8000-000000000002", "2", &result);
  g_assert_false (result.done);
  /* Heartbeat every second, 3 s without an answer: down. */
  pubsub_test_wait_for (result.done, 6000);
  g_assert_error (result.error, PUBSUB_ERROR, PUBSUB_ERROR_UNAVAILABLE);
  result_clear (&result);
  pubsub_test_wait_for (!pubsub_broker_is_available (fixture->a) &&
                        !pubsub_broker_is_available (fixture->b), 6000);
  g_assert_cmpuint (on_b->unavailable, ==, 1);

  pubsub_test_redis_resume (fixture->redis);
  pubsub_test_wait_for (pubsub_broker_is_available (fixture->a) &&
                        pubsub_broker_is_available (fixture->b), DEADLINE_MS);
  g_assert_cmpuint (fixture->a_down, ==, 1);
  g_assert_cmpuint (fixture->b_down, ==, 1);
  /* The publish that timed out may or may not have been stored: if it was,
   * B has it too, after the first; nothing was lost or reset. */
  publish (fixture->a, "frozen", "00000000-0000-4000-8000-000000000003");
  sync_node (fixture->b);
  g_assert_cmpstr (pubsub_topic_get_epoch (pubsub_broker_lookup_topic (fixture->b, "frozen")), ==, epoch);
  g_assert_cmpuint (on_b->lost, ==, 0);
  g_assert_cmpuint (on_b->deleted, ==, 0);
  assert_consecutive (on_b, 2);
  watch_free (on_b, fixture->b, "frozen");
}

/* A subscriber connection over Redis's client-output-buffer-limit is
 * closed by Redis: the same path as any other loss, then a catch-up from
 * the stream. */
static void
test_output_buffer_limit (Fixture       *fixture,
                          gconstpointer  data)
{
  g_autoptr(GString) payload = g_string_new ("\"");
  Result result;
  Watch *on_b;

  if (fixture->redis == NULL)
    return;
  create_topic (fixture->a, "big");
  sync_node (fixture->b);
  on_b = watch_new (fixture->b, "big");
  pubsub_test_redis_config_set (fixture->redis, "client-output-buffer-limit", "pubsub 4096 0 0");
  for (guint i = 0; i < 64 * 1024; i++)
    g_string_append_c (payload, 'x');
  g_string_append_c (payload, '"');
  publish_start (fixture->a, "big", "00000000-0000-4000-8000-000000000001", payload->str, &result);
  result_wait (&result);
  g_assert_no_error (result.error);
  g_assert_cmpuint (result.seq, ==, 1);
  pubsub_test_wait_for (fixture->a_down == 1 && fixture->b_down == 1, DEADLINE_MS);
  pubsub_test_wait_for (pubsub_broker_is_available (fixture->a) &&
                        pubsub_broker_is_available (fixture->b), DEADLINE_MS);
  sync_node (fixture->b);
  g_assert_cmpuint (on_b->seqs->len, ==, 1);
  g_assert_cmpuint (on_b->lost, ==, 0);
  g_assert_cmpuint (pubsub_topic_get_messages (pubsub_broker_lookup_topic (fixture->a, "big")), ==, 1);
  watch_free (on_b, fixture->b, "big");
}

/* A node that stops reporting drops out of the counts within 15 s. */
static void
test_node_drops_out (Fixture       *fixture,
                     gconstpointer  data)
{
  PubsubEngine *engine_a;
  gint64 start;

  if (fixture->redis == NULL)
    return;
  engine_a = pubsub_broker_get_engine (fixture->a);
  create_topic (fixture->b, "left");
  pubsub_topic_add_subscriber (pubsub_broker_lookup_topic (fixture->b, "left"), "client");
  pubsub_test_wait_for (pubsub_engine_get_nodes (engine_a) == 2 &&
                        pubsub_engine_get_remote_subscribers (engine_a, "left") == 1, DEADLINE_MS);
  start = g_get_monotonic_time ();
  g_clear_object (&fixture->b);
  pubsub_test_wait_for (pubsub_engine_get_nodes (engine_a) == 1 &&
                        pubsub_engine_get_remote_subscribers (engine_a, "left") == 0, 15000);
  g_assert_cmpint (g_get_monotonic_time () - start, <, 15 * G_USEC_PER_SEC);
}

/* history-size 0: nothing stored, no idempotency (as the memory engine);
 * what a node missed cannot be fetched, so it is a reset. */
static void
test_no_history (Fixture       *fixture,
                 gconstpointer  data)
{
  g_autoptr(PubsubBroker) c = NULL;
  g_autoptr(PubsubBroker) d = NULL;
  guint c_down = 0, d_down = 0;
  g_autofree char *stored = NULL;
  Watch *on_d;
  Result result;

  if (fixture->redis == NULL)
    return;
  c = node_new_full (fixture, "C", 0, 100, &c_down);
  d = node_new_full (fixture, "D", 0, 100, &d_down);
  pubsub_test_wait_for (pubsub_broker_is_available (c) && pubsub_broker_is_available (d),
                        DEADLINE_MS);
  create_topic (c, "nohist");
  sync_node (d);
  on_d = watch_new (d, "nohist");
  g_assert_cmpuint (publish (c, "nohist", "00000000-0000-4000-8000-000000000001"), ==, 1);
  publish_start (d, "nohist", "00000000-0000-4000-8000-000000000001", "1", &result);
  result_wait (&result);
  g_assert_no_error (result.error);
  g_assert_false (result.duplicate);
  g_assert_cmpuint (result.seq, ==, 2);
  sync_node (d);
  g_assert_cmpuint (on_d->seqs->len, ==, 2);
  stored = pubsub_test_redis_command (fixture->redis, "EXISTS", "t:s:nohist", "t:ids:nohist", NULL);
  g_assert_cmpstr (stored, ==, "0");

  kill_client (fixture, "D", "sub");
  kill_client (fixture, "D", "cmd");
  publish (c, "nohist", "00000000-0000-4000-8000-000000000003");
  pubsub_test_wait_for (pubsub_broker_is_available (d), DEADLINE_MS);
  g_assert_cmpuint (d_down, ==, 1);
  g_assert_cmpuint (pubsub_topic_get_messages (pubsub_broker_lookup_topic (d, "nohist")), ==, 3);
  g_assert_cmpuint (on_d->lost, ==, 1);
  watch_free (on_d, d, "nohist");
  result_clear (&result);
}

/* max-topics counts the cluster's topics, wherever they were made. */
static void
test_topic_limit (Fixture       *fixture,
                  gconstpointer  data)
{
  g_autoptr(PubsubBroker) small = NULL;
  guint downs = 0;
  Result result;

  if (fixture->redis == NULL)
    return;
  small = node_new_full (fixture, "S", HISTORY, 2, &downs);
  pubsub_test_wait_for (pubsub_broker_is_available (small), DEADLINE_MS);
  create_topic (fixture->a, "one");
  create_topic (small, "two");
  topic_call (small, TRUE, "three", &result);
  g_assert_error (result.error, PUBSUB_ERROR, PUBSUB_ERROR_LIMIT_EXCEEDED);
  result_clear (&result);
  g_assert_null (pubsub_broker_lookup_topic (small, "three"));
  create_topic (fixture->b, "three");
}

static void
test_bad_address (void)
{
  const char *bad[] = { "", "redis://", "redis://h:0", "redis://h:70000", "redis://h:1/x",
                        "http://h:1", "unix:", "redis://[::1", "tcp://h" };

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(PubsubEngine) engine = pubsub_redis_engine_new (bad[i], NULL, NULL, &error);

      g_assert_null (engine);
      g_assert_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE);
    }
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

#define ADD(path, func) \
  g_test_add ("/redis-engine/" path, Fixture, NULL, fixture_set_up, func, fixture_tear_down)
  ADD ("create-replicated", test_create_replicated);
  ADD ("interleaved", test_interleaved);
  ADD ("event-frame", test_event_frame);
  ADD ("batch", test_batch);
  ADD ("bad-batch", test_bad_batch);
  ADD ("duplicate", test_duplicate);
  ADD ("sync-barrier", test_sync_barrier);
  ADD ("redis-restarted-empty", test_redis_restarted_empty);
  ADD ("redis-rolled-back", test_redis_rolled_back);
  ADD ("sub-killed-catch-up", test_sub_killed_catch_up);
  ADD ("deleted-while-away", test_deleted_while_away);
  ADD ("trimmed-while-away", test_trimmed_while_away);
  ADD ("remote-counts", test_remote_counts);
  ADD ("redis-paused", test_redis_paused);
  ADD ("output-buffer-limit", test_output_buffer_limit);
  ADD ("node-drops-out", test_node_drops_out);
  ADD ("no-history", test_no_history);
  ADD ("topic-limit", test_topic_limit);
#undef ADD
  g_test_add_func ("/redis-engine/bad-address", test_bad_address);
  return g_test_run ();
}
