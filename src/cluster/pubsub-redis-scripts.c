/* pubsub-redis-scripts.c: the Lua scripts the Redis engine runs
 *
 * Every change to the cluster's state is one script, so that Redis applies
 * it whole, in one order for every node, and announces it on the bus in the
 * same step: a node that sees the announcement can rely on the state being
 * stored. Scripts only join strings: events are serialized by the node
 * that publishes them (pubsub-event-text.c).
 *
 * Keys (P = cluster-prefix): P:marker, P:topics (name → epoch), P:seq
 * (name → last seq), P:s:{name} (stream, id "<seq>-1", fields e = event
 * text, i = message id), P:ids:{name} (message id → seq, and "#<seq>" → id
 * so that a trimmed entry's id is found without reading the entry back),
 * P:nodes (zset node → last report, Redis time in ms), P:node:{id} (topic →
 * local subscribers), P:prev (name → the epoch before a re-epoch, so that
 * a node that missed it tells messages lost from deleted and created
 * again). Bus messages on P:bus: "e" event, "c" name " " epoch
 * (created), "d" name " " epoch (deleted), "r" name " " epoch (new epoch,
 * messages lost), "n" node (a report changed).
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include "pubsub-redis-scripts.h"

/* KEYS: topics, seq, stream, ids, bus.
 * ARGV: name, id, head, tail, history-size.
 * Returns {seq, duplicate} or the error NOTFOUND. */
static const char publish_lua[] =
  "local epoch = redis.call('HGET', KEYS[1], ARGV[1])\n"
  "if not epoch then return redis.error_reply('NOTFOUND') end\n"
  "local hist = tonumber(ARGV[5])\n"
  "if hist > 0 then\n"
  "  local dup = redis.call('HGET', KEYS[4], ARGV[2])\n"
  "  if dup then return {tonumber(dup), 1} end\n"
  "end\n"
  "local seq = redis.call('HINCRBY', KEYS[2], ARGV[1], 1)\n"
  "local event = ARGV[3] .. seq .. ',\"epoch\":\"' .. epoch .. ARGV[4]\n"
  "if hist > 0 then\n"
  /* The stream holds seq - len … seq - 1: forget the ids MAXLEN drops. */
  "  local len = redis.call('XLEN', KEYS[3])\n"
  "  for s = seq - len, seq - len + (len - hist), 1 do\n"
  "    local old = redis.call('HGET', KEYS[4], '#' .. s)\n"
  "    if old then redis.call('HDEL', KEYS[4], old, '#' .. s) end\n"
  "  end\n"
  "  redis.call('XADD', KEYS[3], 'MAXLEN', hist, seq .. '-1', 'e', event, 'i', ARGV[2])\n"
  "  redis.call('HSET', KEYS[4], ARGV[2], seq, '#' .. seq, ARGV[2])\n"
  "end\n"
  "redis.call('PUBLISH', KEYS[5], 'e' .. event)\n"
  "return {seq, 0}\n";

/* KEYS: topics, seq, stream, ids, bus, prev. ARGV: name, epoch,
 * max-topics. Errors EXISTS, LIMIT. */
static const char create_lua[] =
  "if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return redis.error_reply('EXISTS') end\n"
  "if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then return redis.error_reply('LIMIT') end\n"
  "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])\n"
  "redis.call('HSET', KEYS[2], ARGV[1], 0)\n"
  "redis.call('DEL', KEYS[3], KEYS[4])\n"
  "redis.call('HDEL', KEYS[6], ARGV[1])\n"
  "redis.call('PUBLISH', KEYS[5], 'c' .. ARGV[1] .. ' ' .. ARGV[2])\n"
  "return 'OK'\n";

/* KEYS: topics, seq, stream, ids, bus, prev. ARGV: name. Returns the
 * epoch the topic had; error NOTFOUND. */
static const char delete_lua[] =
  "local epoch = redis.call('HGET', KEYS[1], ARGV[1])\n"
  "if not epoch then return redis.error_reply('NOTFOUND') end\n"
  "redis.call('HDEL', KEYS[1], ARGV[1])\n"
  "redis.call('HDEL', KEYS[2], ARGV[1])\n"
  "redis.call('HDEL', KEYS[6], ARGV[1])\n"
  "redis.call('DEL', KEYS[3], KEYS[4])\n"
  "redis.call('PUBLISH', KEYS[5], 'd' .. ARGV[1] .. ' ' .. epoch)\n"
  "return epoch\n";

/* After a (re)connect. KEYS: marker, topics, seq, bus, prev. ARGV: prefix,
 * a new generation, then name, epoch pairs: the topics this node knows,
 * each with a new epoch. Marker there: returns {0, generation, HGETALL
 * topics, HGETALL seq, HGETALL prev}, one snapshot. Marker gone (first start, or Redis lost its
 * data): sets it to the new generation and registers the node's topics in
 * the same step, so that no other node can see the marker without them,
 * and returns {1}. A node that finds another generation than the one it
 * knew learns that data was lost, not that its topics were deleted. */
static const char hello_lua[] =
  "local gen = redis.call('GET', KEYS[1])\n"
  "if gen then\n"
  "  return {0, gen, redis.call('HGETALL', KEYS[2]), redis.call('HGETALL', KEYS[3]),\n"
  "          redis.call('HGETALL', KEYS[5])}\n"
  "end\n"
  "redis.call('SET', KEYS[1], ARGV[2])\n"
  "redis.call('DEL', KEYS[5])\n"
  "for k = 3, #ARGV, 2 do\n"
  "  redis.call('HSET', KEYS[2], ARGV[k], ARGV[k + 1])\n"
  "  redis.call('HSET', KEYS[3], ARGV[k], 0)\n"
  "  redis.call('DEL', ARGV[1] .. ':s:' .. ARGV[k], ARGV[1] .. ':ids:' .. ARGV[k])\n"
  "  redis.call('PUBLISH', KEYS[4], 'r' .. ARGV[k] .. ' ' .. ARGV[k + 1])\n"
  "end\n"
  "return {1}\n";

/* A topic whose stored seq went back (SPEC §9): a new epoch, unless another
 * node gave it one already. KEYS: topics, seq, stream, ids, bus, prev.
 * ARGV: name, old epoch, new epoch. Returns {epoch, seq}; error NOTFOUND. */
static const char reepoch_lua[] =
  "local cur = redis.call('HGET', KEYS[1], ARGV[1])\n"
  "if not cur then return redis.error_reply('NOTFOUND') end\n"
  "if cur == ARGV[2] then\n"
  "  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])\n"
  "  redis.call('HSET', KEYS[6], ARGV[1], ARGV[2])\n"
  "  redis.call('HSET', KEYS[2], ARGV[1], 0)\n"
  "  redis.call('DEL', KEYS[3], KEYS[4])\n"
  "  redis.call('PUBLISH', KEYS[5], 'r' .. ARGV[1] .. ' ' .. ARGV[3])\n"
  "  cur = ARGV[3]\n"
  "end\n"
  "return {cur, tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')}\n";

/* KEYS: node hash, nodes, bus. ARGV: node id, changed (0/1), then topic,
 * count pairs. Redis's clock, not ours: nodes may disagree. */
static const char report_lua[] =
  "local t = redis.call('TIME')\n"
  "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
  "redis.call('DEL', KEYS[1])\n"
  "for k = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[k], ARGV[k + 1]) end\n"
  "redis.call('PEXPIRE', KEYS[1], 10000)\n"
  "redis.call('ZADD', KEYS[2], now, ARGV[1])\n"
  "if ARGV[2] == '1' then redis.call('PUBLISH', KEYS[3], 'n' .. ARGV[1]) end\n"
  "return now\n";

/* KEYS: nodes. ARGV: prefix. Drops nodes silent for 10 s and returns
 * {node, HGETALL its report, node, …}. */
static const char nodes_lua[] =
  "local t = redis.call('TIME')\n"
  "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
  "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 10000)\n"
  "local out = {}\n"
  "for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do\n"
  "  out[#out + 1] = id\n"
  "  out[#out + 1] = redis.call('HGETALL', ARGV[1] .. ':node:' .. id)\n"
  "end\n"
  "return out\n";

static const char * const texts[PUBSUB_REDIS_N_SCRIPTS] = {
  [PUBSUB_REDIS_SCRIPT_PUBLISH] = publish_lua,
  [PUBSUB_REDIS_SCRIPT_CREATE] = create_lua,
  [PUBSUB_REDIS_SCRIPT_DELETE] = delete_lua,
  [PUBSUB_REDIS_SCRIPT_HELLO] = hello_lua,
  [PUBSUB_REDIS_SCRIPT_REEPOCH] = reepoch_lua,
  [PUBSUB_REDIS_SCRIPT_REPORT] = report_lua,
  [PUBSUB_REDIS_SCRIPT_NODES] = nodes_lua,
};

const char *
pubsub_redis_script_get_text (PubsubRedisScript script)
{
  g_return_val_if_fail (script < PUBSUB_REDIS_N_SCRIPTS, NULL);

  return texts[script];
}

/* The SHA1 EVALSHA names it by, computed here as Redis does. */
const char *
pubsub_redis_script_get_sha (PubsubRedisScript script)
{
  static char *shas[PUBSUB_REDIS_N_SCRIPTS];

  g_return_val_if_fail (script < PUBSUB_REDIS_N_SCRIPTS, NULL);

  if (g_once_init_enter (&shas[script]))
    g_once_init_leave (&shas[script],
                       g_compute_checksum_for_string (G_CHECKSUM_SHA1, texts[script], -1));
  return shas[script];
}
