/* pubsub-error.c: the one error domain of pubsubd and its table of
 * protocol codes, HTTP statuses and D-Bus error names
 *
 * Every way a client learns of an error (a REST body and status, a WebSocket
 * error frame, a D-Bus error reply) reads the same row, so a code cannot mean
 * one thing on one transport and another elsewhere. The D-Bus layer registers
 * the names with GDBus from this table (pubsub_dbus_error_register()); this
 * file stays GLib-only.
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include "pubsub-error.h"

G_DEFINE_QUARK (pubsub-error-quark, pubsub_error)

#define DBUS_ERROR(name) "dev.pubsub.Error." name

/* The codes, statuses and names are part of the contract (SPEC.md §2, §3,
 * §5, §8, §9): clients match on them. BAD_REQUEST is InvalidArgument on
 * D-Bus, the name D-Bus callers know for a bad argument. */
static const PubsubErrorInfo error_table[] = {
  [PUBSUB_ERROR_BAD_REQUEST] =
    { "BAD_REQUEST", 400, DBUS_ERROR ("InvalidArgument") },
  [PUBSUB_ERROR_TOPIC_NOT_FOUND] =
    { "TOPIC_NOT_FOUND", 404, DBUS_ERROR ("TopicNotFound") },
  [PUBSUB_ERROR_TOPIC_EXISTS] =
    { "TOPIC_EXISTS", 409, DBUS_ERROR ("TopicExists") },
  [PUBSUB_ERROR_LIMIT_EXCEEDED] =
    { "LIMIT_EXCEEDED", 429, DBUS_ERROR ("LimitExceeded") },
  [PUBSUB_ERROR_SLOW_CONSUMER] =
    { "SLOW_CONSUMER", 503, DBUS_ERROR ("SlowConsumer") },
  [PUBSUB_ERROR_UNAUTHORIZED] =
    { "UNAUTHORIZED", 401, DBUS_ERROR ("Unauthorized") },
  [PUBSUB_ERROR_INTERNAL] =
    { "INTERNAL", 500, DBUS_ERROR ("Internal") },
  [PUBSUB_ERROR_NOT_FOUND] =
    { "NOT_FOUND", 404, DBUS_ERROR ("NotFound") },
  [PUBSUB_ERROR_METHOD_NOT_ALLOWED] =
    { "METHOD_NOT_ALLOWED", 405, DBUS_ERROR ("MethodNotAllowed") },
  [PUBSUB_ERROR_PAYLOAD_TOO_LARGE] =
    { "PAYLOAD_TOO_LARGE", 413, DBUS_ERROR ("PayloadTooLarge") },
  [PUBSUB_ERROR_TOO_MANY_CONNECTIONS] =
    { "TOO_MANY_CONNECTIONS", 503, DBUS_ERROR ("TooManyConnections") },
  [PUBSUB_ERROR_UNAVAILABLE] =
    { "UNAVAILABLE", 503, DBUS_ERROR ("Unavailable") },
  [PUBSUB_ERROR_REQUEST_HEADER_TOO_LARGE] =       /* 431, RFC 6585 §5 */
    { "REQUEST_HEADER_TOO_LARGE", 431, DBUS_ERROR ("RequestHeaderTooLarge") },
  [PUBSUB_ERROR_REQUEST_TIMEOUT] =
    { "REQUEST_TIMEOUT", 408, DBUS_ERROR ("RequestTimeout") },
  [PUBSUB_ERROR_URI_TOO_LONG] =
    { "URI_TOO_LONG", 414, DBUS_ERROR ("UriTooLong") },
};

/* A value added to the enum without a row fails here; a row left out in the
 * middle is an all-NULL row, which tests/test-error.c catches. */
G_STATIC_ASSERT (G_N_ELEMENTS (error_table) == PUBSUB_ERROR_LAST);

/**
 * pubsub_error_get_info:
 * @code: a #PubsubError
 *
 * Returns: (transfer none): the row of @code
 */
const PubsubErrorInfo *
pubsub_error_get_info (PubsubError code)
{
  g_return_val_if_fail ((guint) code < PUBSUB_ERROR_LAST, &error_table[PUBSUB_ERROR_INTERNAL]);

  return &error_table[code];
}

/**
 * pubsub_error_lookup:
 * @error: any error
 *
 * Errors from other domains (GIO, json-glib) never reach a client as
 * themselves: they are server-side failures, and get INTERNAL's row.
 *
 * Returns: (transfer none): the row a client is answered with for @error
 */
const PubsubErrorInfo *
pubsub_error_lookup (const GError *error)
{
  g_return_val_if_fail (error != NULL, &error_table[PUBSUB_ERROR_INTERNAL]);

  if (error->domain != PUBSUB_ERROR || error->code < 0 || error->code >= PUBSUB_ERROR_LAST)
    return &error_table[PUBSUB_ERROR_INTERNAL];
  return &error_table[error->code];
}

/**
 * pubsub_error_to_code:
 * @error: any error
 *
 * Returns: the protocol code ("BAD_REQUEST", …) for @error.
 */
const char *
pubsub_error_to_code (const GError *error)
{
  return pubsub_error_lookup (error)->code;
}

/**
 * pubsub_error_http_status:
 * @error: any error
 *
 * Returns: the HTTP status a REST call answers @error with.
 */
guint
pubsub_error_http_status (const GError *error)
{
  return pubsub_error_lookup (error)->http_status;
}
