/* pubsub-redis-nodes.c: cluster-wide subscriber counts and live nodes
 *
 * Each node writes its local subscriber counts to P:node:{id} (expiring
 * after 10 s) and its heartbeat to the P:nodes zset, by Redis's clock,
 * every 2 s and within 100 ms of a change; it announces a change on the
 * bus ("n" + id), and reads the other nodes' counts back when one is
 * announced or every 2 s. A node that stops reporting drops out after
 * 10 s, 12 at worst (SPEC §9 allows 15).
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <string.h>

#include "pubsub-redis-private.h"

#define FAST_REPORT_MS 100

static void
on_report_reply (redisAsyncContext *ac,
                 void              *reply,
                 void              *privdata)
{
  redisReply *r = reply;

  if (r == NULL)
    pubsub_redis_engine_lost (privdata, "connection lost");
  else if (r->type == REDIS_REPLY_ERROR)
    g_debug ("cluster: the node report failed: %s", r->str);
}

/* topic, count pairs for the topics this node has subscribers to. */
static GPtrArray *
local_counts (PubsubRedisEngine *self)
{
  g_autoptr(GPtrArray) topics = pubsub_broker_list_topics (self->broker);
  GPtrArray *pairs = g_ptr_array_new_with_free_func (g_free);

  for (guint i = 0; i < topics->len; i++)
    {
      PubsubTopic *topic = g_ptr_array_index (topics, i);
      guint count = pubsub_topic_get_subscribers (topic);

      if (count == 0)
        continue;
      g_ptr_array_add (pairs, g_strdup (pubsub_topic_get_name (topic)));
      g_ptr_array_add (pairs, g_strdup_printf ("%u", count));
    }
  return pairs;
}

static void
report (PubsubRedisEngine *self)
{
  g_autoptr(GPtrArray) pairs = NULL;
  g_autoptr(GPtrArray) args = NULL;
  g_autoptr(GString) summary = g_string_new (NULL);
  gboolean changed;

  if (self->state != STATE_UP)
    return;
  pairs = local_counts (self);
  for (guint i = 0; i < pairs->len; i++)
    g_string_append_printf (summary, "%s ", (const char *) g_ptr_array_index (pairs, i));
  changed = !g_string_equal (summary, self->last_report);
  g_string_assign (self->last_report, summary->str);

  args = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (args, g_strdup (self->k_node));
  g_ptr_array_add (args, g_strdup (self->k_nodes));
  g_ptr_array_add (args, g_strdup (self->k_bus));
  g_ptr_array_add (args, g_strdup (self->node_id));
  g_ptr_array_add (args, g_strdup (changed ? "1" : "0"));
  g_ptr_array_extend_and_steal (args, g_steal_pointer (&pairs));
  if (!pubsub_redis_engine_eval (self, PUBSUB_REDIS_SCRIPT_REPORT, on_report_reply, self, args, 3))
    pubsub_redis_engine_lost (self, "connection lost");
}

/* The counts of the nodes in @r ([id, [topic, count, …], …]), this one
 * excepted. */
static void
store_nodes (PubsubRedisEngine *self,
             const redisReply  *r)
{
  gboolean self_seen = FALSE;
  guint n = 0;

  g_hash_table_remove_all (self->remote);
  for (gsize i = 0; i + 1 < r->elements; i += 2)
    {
      const redisReply *id = r->element[i];
      const redisReply *counts = r->element[i + 1];

      if (id->type != REDIS_REPLY_STRING || counts->type != REDIS_REPLY_ARRAY)
        continue;
      n++;
      if (g_str_equal (id->str, self->node_id))
        {
          self_seen = TRUE;
          continue;
        }
      for (gsize k = 0; k + 1 < counts->elements; k += 2)
        {
          const char *topic;
          guint count, sum;

          if (counts->element[k]->type != REDIS_REPLY_STRING ||
              counts->element[k + 1]->type != REDIS_REPLY_STRING)
            continue;
          topic = counts->element[k]->str;
          count = (guint) g_ascii_strtoull (counts->element[k + 1]->str, NULL, 10);
          sum = GPOINTER_TO_UINT (g_hash_table_lookup (self->remote, topic));
          g_hash_table_insert (self->remote, g_strdup (topic), GUINT_TO_POINTER (sum + count));
        }
    }
  self->n_nodes = n + (self_seen ? 0 : 1);
}

static void read_nodes (PubsubRedisEngine *self);

static void
on_nodes_reply (redisAsyncContext *ac,
                void              *reply,
                void              *privdata)
{
  PubsubRedisEngine *self = privdata;
  redisReply *r = reply;

  self->reading_nodes = FALSE;
  if (r == NULL)
    {
      pubsub_redis_engine_lost (self, "connection lost");
      return;
    }
  if (r->type == REDIS_REPLY_ARRAY)
    store_nodes (self, r);
  if (self->nodes_dirty)
    read_nodes (self);
}

/* One read at a time; an announcement during it asks for another. */
static void
read_nodes (PubsubRedisEngine *self)
{
  g_autoptr(GPtrArray) args = NULL;

  if (self->state != STATE_UP)
    return;
  if (self->reading_nodes)
    {
      self->nodes_dirty = TRUE;
      return;
    }
  self->nodes_dirty = FALSE;
  args = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (args, g_strdup (self->k_nodes));
  g_ptr_array_add (args, g_strdup (self->prefix));
  if (!pubsub_redis_engine_eval (self, PUBSUB_REDIS_SCRIPT_NODES, on_nodes_reply, self, args, 1))
    {
      pubsub_redis_engine_lost (self, "connection lost");
      return;
    }
  self->reading_nodes = TRUE;
}

static gboolean
on_fast_report (gpointer user_data)
{
  PubsubRedisEngine *self = user_data;

  self->report_id = 0;
  report (self);
  return G_SOURCE_REMOVE;
}

/* A subscriber came or went on this node. */
static void
on_subscriber_count (GObject    *broker,
                     GParamSpec *pspec,
                     gpointer    user_data)
{
  PubsubRedisEngine *self = user_data;

  if (self->report_id == 0)
    self->report_id = g_timeout_add (FAST_REPORT_MS, on_fast_report, self);
}

void
pubsub_redis_nodes_start (PubsubRedisEngine *self)
{
  self->notify_id = g_signal_connect (self->broker, "notify::subscriber-count",
                                      G_CALLBACK (on_subscriber_count), self);
}

void
pubsub_redis_nodes_stop (PubsubRedisEngine *self)
{
  g_clear_signal_handler (&self->notify_id, self->broker);
  g_clear_handle_id (&self->report_id, g_source_remove);
  self->reading_nodes = FALSE;
  self->nodes_dirty = FALSE;
}

/* Every 2 s while up, and when coming up. */
void
pubsub_redis_nodes_tick (PubsubRedisEngine *self)
{
  report (self);
  read_nodes (self);
}

/* "n" + id on the bus. */
void
pubsub_redis_nodes_on_report (PubsubRedisEngine *self,
                              const char        *node)
{
  if (!g_str_equal (node, self->node_id))
    read_nodes (self);
}
