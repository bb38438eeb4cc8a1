/* pubsub-memory-engine.h: the engine of one process alone
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include "pubsub-engine.h"

G_BEGIN_DECLS

#define PUBSUB_TYPE_MEMORY_ENGINE (pubsub_memory_engine_get_type ())

G_DECLARE_FINAL_TYPE (PubsubMemoryEngine, pubsub_memory_engine, PUBSUB, MEMORY_ENGINE, GObject)

PubsubEngine   *pubsub_memory_engine_new (const char *node_id);

G_END_DECLS
