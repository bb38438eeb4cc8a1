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
 * text, i = message id), P:ids:{name} (message id → seq of each stored
 * message; no reverse "#<seq>" → id entries: a hash this small is a
 * listpack, searched linearly, and half the entries halve every search,
 * while a batch reads the ids it trims from the stream in one XRANGE),
 * P:nodes (zset node → last report, Redis time in ms), P:node:{id} (topic →
 * local subscribers), P:prev (name → the epoch before a re-epoch, so that
 * a node that missed it tells messages lost from deleted and created
 * again). Bus messages on P:bus: "e" event, "b" events (a batch: each
 * event after an RS, 0x1e), "c" name " " epoch
 * (created), "d" name " " epoch (deleted), "r" name " " epoch (new epoch,
 * messages lost), "n" node (a report changed).
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include "pubsub-event-layout.h"
#include "pubsub-redis-scripts.h"

/* The publishes one node made in one main-loop iteration, in order.
 * KEYS: topics, seq, bus. ARGV: prefix, history-size, then name, id,
 * head, tail for each message. Returns one integer per message: its seq,
 * minus the seq of the earlier message it duplicates, or 0 when its topic
 * does not exist.
 *
 * Each message costs one XADD; the rest is paid once per topic and batch
 * (Redis spends most of a publish on calls, not on work): the topic, its
 * seq, its length and the ids' seqs are read once, the seq and the ids
 * written once, the stream trimmed once, and one bus message carries every
 * event: "e" event alone, else "b" then each event after an RS (0x1e),
 * which JSON text never holds: one table.concat, one string (Debian's
 * Lua hashes every byte of every string it makes). A message is a duplicate of one whose
 * id was still in the history when it came: the stream held seq - hist …
 * seq - 1, as it does after one publish at a time. */
static const char publish_lua[] =
  "local hist = tonumber(ARGV[2])\n"
  "local n = (#ARGV - 2) / 4\n"
  "local topics, out, events = {}, {}, {'b'}\n"
  /* Every call takes at most this many arguments (Lua's unpack limit). */
  "local function chunked(cmd, key, list)\n"
  "  for i = 1, #list, 1000 do\n"
  "    redis.call(cmd, key, unpack(list, i, math.min(i + 999, #list)))\n"
  "  end\n"
  "end\n"
  "local function load(name, ids)\n"
  "  local t = {epoch = redis.call('HGET', KEYS[1], name)}\n"
  "  if not t.epoch then return t end\n"
  "  t.first = tonumber(redis.call('HGET', KEYS[2], name) or '0') + 1\n"
  "  t.seq, t.known, t.new = t.first - 1, {}, {}\n"
  "  t.stream, t.ids = ARGV[1] .. ':s:' .. name, ARGV[1] .. ':ids:' .. name\n"
  "  if hist > 0 then\n"
  "    t.len = redis.call('XLEN', t.stream)\n"
  "    local seqs = redis.call('HMGET', t.ids, unpack(ids))\n"
  "    for i, id in ipairs(ids) do if seqs[i] then t.known[id] = tonumber(seqs[i]) end end\n"
  "  end\n"
  "  return t\n"
  "end\n"
  /* Each topic once, with the ids its messages carry (at most 256). */
  "local want = {}\n"
  "for m = 0, n - 1 do\n"
  "  local name = ARGV[3 + 4 * m]\n"
  "  want[name] = want[name] or {}\n"
  "  table.insert(want[name], ARGV[4 + 4 * m])\n"
  "end\n"
  "for name, ids in pairs(want) do topics[name] = load(name, ids) end\n"
  "for m = 0, n - 1 do\n"
  "  local t, id = topics[ARGV[3 + 4 * m]], ARGV[4 + 4 * m]\n"
  "  local dup = hist > 0 and t.known and t.known[id]\n"
  "  if not t.epoch then out[m + 1] = 0\n"
  "  elseif dup and dup > t.seq - hist then out[m + 1] = -dup\n"
  "  else\n"
  "    t.seq = t.seq + 1\n"
  /* tostring() is a "%.14g" sprintf, costly: "%d" once per message. */
  "    local seq = string.format('%d', t.seq)\n"
  "    local event = ARGV[5 + 4 * m] .. seq .. '" PUBSUB_EVENT_EPOCH "' .. t.epoch ..\n"
  "                  ARGV[6 + 4 * m]\n"
  "    if hist > 0 then\n"
  "      redis.call('XADD', t.stream, seq .. '-1', 'e', event, 'i', id)\n"
  "      t.known[id] = t.seq\n"
  "      t.new[#t.new + 1] = id\n"
  "      t.new[#t.new + 1] = seq\n"
  "    end\n"
  "    events[#events + 1] = event\n"
  "    out[m + 1] = t.seq\n"
  "  end\n"
  "end\n"
  /* The ids of what the stream no longer holds are read from the entries
   * before they go, and forgotten first: an id trimmed and used again in
   * this batch is then stored again. */
  "local function store(name, t)\n"
  "  redis.call('HSET', KEYS[2], name, t.seq)\n"
  "  if hist == 0 then return end\n"
  "  local drop = t.len + (t.seq - t.first + 1) - hist\n"
  "  if drop > 0 then\n"
  "    local gone = {}\n"
  "    if t.len > 0 then\n"
  "      local old = redis.call('XRANGE', t.stream, '-', '+', 'COUNT', math.min(drop, t.len))\n"
  "      for _, entry in ipairs(old) do\n"
  "        for j = 1, #entry[2], 2 do\n"
  "          if entry[2][j] == 'i' then gone[#gone + 1] = entry[2][j + 1] end\n"
  "        end\n"
  "      end\n"
  "    end\n"
  "    if #gone > 0 then chunked('HDEL', t.ids, gone) end\n"
  "    redis.call('XTRIM', t.stream, 'MAXLEN', hist)\n"
  "  end\n"
  "  local fields = {}\n"
  "  for i = 1, #t.new, 2 do\n"
  "    if t.first + (i - 1) / 2 > t.seq - hist then\n"
  "      fields[#fields + 1] = t.new[i]; fields[#fields + 1] = t.new[i + 1]\n"
  "    end\n"
  "  end\n"
  "  if #fields > 0 then chunked('HSET', t.ids, fields) end\n"
  "end\n"
  "for name, t in pairs(topics) do\n"
  "  if t.epoch and t.seq >= t.first then store(name, t) end\n"
  "end\n"
  "if #events == 2 then redis.call('PUBLISH', KEYS[3], 'e' .. events[2])\n"
  "elseif #events > 2 then redis.call('PUBLISH', KEYS[3], table.concat(events, '\\30'))\n"
  "end\n"
  "return out\n";

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
