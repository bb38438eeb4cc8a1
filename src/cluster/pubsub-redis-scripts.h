/* pubsub-redis-scripts.h: the Lua scripts the Redis engine runs
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  PUBSUB_REDIS_SCRIPT_PUBLISH,
  PUBSUB_REDIS_SCRIPT_CREATE,
  PUBSUB_REDIS_SCRIPT_DELETE,
  PUBSUB_REDIS_SCRIPT_HELLO,
  PUBSUB_REDIS_SCRIPT_REEPOCH,
  PUBSUB_REDIS_SCRIPT_REPORT,
  PUBSUB_REDIS_SCRIPT_NODES,
  PUBSUB_REDIS_N_SCRIPTS,
} PubsubRedisScript;

const char *pubsub_redis_script_get_text (PubsubRedisScript script);
const char *pubsub_redis_script_get_sha  (PubsubRedisScript script);

G_END_DECLS
