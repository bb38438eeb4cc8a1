/* pubsub-error.h: the one error domain of pubsubd and its table of
 * protocol codes, HTTP statuses and D-Bus error names
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
 * @PUBSUB_ERROR_NOT_FOUND: no such HTTP endpoint
 * @PUBSUB_ERROR_METHOD_NOT_ALLOWED: a known HTTP path with the wrong method
 * @PUBSUB_ERROR_PAYLOAD_TOO_LARGE: a request body over max-message-bytes
 * @PUBSUB_ERROR_TOO_MANY_CONNECTIONS: max-connections is reached
 * @PUBSUB_ERROR_UNAVAILABLE: a backend the call needs (the cluster's Redis)
 *   cannot be reached
 * @PUBSUB_ERROR_REQUEST_HEADER_TOO_LARGE: the request's header fields are too
 *   large
 * @PUBSUB_ERROR_REQUEST_TIMEOUT: a request head or body did not arrive in
 *   time (header-timeout, idle-timeout)
 * @PUBSUB_ERROR_URI_TOO_LONG: the request target is too long
 * @PUBSUB_ERROR_LAST: the number of codes; not an error
 *
 * Each value has one row in the table of pubsub-error.c: its protocol code
 * (pubsub_error_to_code()), its HTTP status and its D-Bus error name. New
 * codes go before %PUBSUB_ERROR_LAST, with their row.
 */
typedef enum {
  PUBSUB_ERROR_BAD_REQUEST,
  PUBSUB_ERROR_TOPIC_NOT_FOUND,
  PUBSUB_ERROR_TOPIC_EXISTS,
  PUBSUB_ERROR_LIMIT_EXCEEDED,
  PUBSUB_ERROR_SLOW_CONSUMER,
  PUBSUB_ERROR_UNAUTHORIZED,
  PUBSUB_ERROR_INTERNAL,
  PUBSUB_ERROR_NOT_FOUND,
  PUBSUB_ERROR_METHOD_NOT_ALLOWED,
  PUBSUB_ERROR_PAYLOAD_TOO_LARGE,
  PUBSUB_ERROR_TOO_MANY_CONNECTIONS,
  PUBSUB_ERROR_UNAVAILABLE,
  PUBSUB_ERROR_REQUEST_HEADER_TOO_LARGE,
  PUBSUB_ERROR_REQUEST_TIMEOUT,
  PUBSUB_ERROR_URI_TOO_LONG,
  PUBSUB_ERROR_LAST
} PubsubError;

/**
 * PubsubErrorInfo:
 * @code: the code REST bodies and WebSocket error frames carry, e.g.
 *   "TOPIC_NOT_FOUND"
 * @http_status: the status of a REST response carrying the error
 * @dbus_name: the D-Bus error name, e.g. "dev.pubsub.Error.TopicNotFound"
 *
 * One row of the error table. Plain values, so that this layer needs neither
 * libsoup nor GIO; the HTTP and D-Bus layers read them.
 */
typedef struct {
  const char *code;
  guint       http_status;
  const char *dbus_name;
} PubsubErrorInfo;

GQuark                 pubsub_error_quark       (void);
const PubsubErrorInfo *pubsub_error_get_info    (PubsubError   code);
const PubsubErrorInfo *pubsub_error_lookup      (const GError *error);
const char            *pubsub_error_to_code     (const GError *error);
guint                  pubsub_error_http_status (const GError *error);

G_END_DECLS
