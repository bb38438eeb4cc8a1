/* pubsub-redis-engine.h: the engine of a cluster node sharing a Redis
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include "pubsub-engine.h"

G_BEGIN_DECLS

#define PUBSUB_TYPE_REDIS_ENGINE (pubsub_redis_engine_get_type ())

G_DECLARE_FINAL_TYPE (PubsubRedisEngine, pubsub_redis_engine, PUBSUB, REDIS_ENGINE, GObject)

PubsubEngine *pubsub_redis_engine_new (const char  *address,
                                       const char  *prefix,
                                       const char  *node_id,
                                       GError     **error);

G_END_DECLS
