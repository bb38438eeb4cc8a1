/* pubsub-error.h: the one error domain of pubsubd and its mappings
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define PUBSUB_ERROR (pubsub_error_quark ())

/**
 * PubsubError:
 * @PUBSUB_ERROR_BAD_REQUEST: malformed input (frame, body, argument)
 * @PUBSUB_ERROR_TOPIC_NOT_FOUND: the named topic does not exist
 * @PUBSUB_ERROR_TOPIC_EXISTS: the topic already exists
 * @PUBSUB_ERROR_LIMIT_EXCEEDED: a configured limit (max-topics) is reached
 * @PUBSUB_ERROR_SLOW_CONSUMER: the outgoing queue overflowed
 * @PUBSUB_ERROR_UNAUTHORIZED: missing or wrong API key
 * @PUBSUB_ERROR_INTERNAL: a bug or a resource failure on the server
 *
 * The values double as protocol error codes (see pubsub_error_to_code()).
 */
typedef enum {
  PUBSUB_ERROR_BAD_REQUEST,
  PUBSUB_ERROR_TOPIC_NOT_FOUND,
  PUBSUB_ERROR_TOPIC_EXISTS,
  PUBSUB_ERROR_LIMIT_EXCEEDED,
  PUBSUB_ERROR_SLOW_CONSUMER,
  PUBSUB_ERROR_UNAUTHORIZED,
  PUBSUB_ERROR_INTERNAL,
} PubsubError;

GQuark       pubsub_error_quark       (void);
const char  *pubsub_error_to_code     (const GError *error);
guint        pubsub_error_http_status (const GError *error);

G_END_DECLS
