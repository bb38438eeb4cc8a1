/* pubsub-error.c: the one error domain of pubsubd and its mappings
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include "pubsub-error.h"

G_DEFINE_QUARK (pubsub-error-quark, pubsub_error)

static const struct {
  const char *code;
  guint       http_status;
} error_table[] = {
  [PUBSUB_ERROR_BAD_REQUEST]     = { "BAD_REQUEST", 400 },
  [PUBSUB_ERROR_TOPIC_NOT_FOUND] = { "TOPIC_NOT_FOUND", 404 },
  [PUBSUB_ERROR_TOPIC_EXISTS]    = { "TOPIC_EXISTS", 409 },
  [PUBSUB_ERROR_LIMIT_EXCEEDED]  = { "LIMIT_EXCEEDED", 429 },
  [PUBSUB_ERROR_SLOW_CONSUMER]   = { "SLOW_CONSUMER", 503 },
  [PUBSUB_ERROR_UNAUTHORIZED]    = { "UNAUTHORIZED", 401 },
  [PUBSUB_ERROR_INTERNAL]        = { "INTERNAL", 500 },
};

/* Errors from other domains (GIO, json-glib) never reach a client as
 * themselves: they are server-side failures. */
static gboolean
is_pubsub_error (const GError *error)
{
  return error->domain == PUBSUB_ERROR &&
         error->code >= 0 && (gsize) error->code < G_N_ELEMENTS (error_table);
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
  g_return_val_if_fail (error != NULL, "INTERNAL");

  if (!is_pubsub_error (error))
    return error_table[PUBSUB_ERROR_INTERNAL].code;
  return error_table[error->code].code;
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
  g_return_val_if_fail (error != NULL, 500);

  if (!is_pubsub_error (error))
    return error_table[PUBSUB_ERROR_INTERNAL].http_status;
  return error_table[error->code].http_status;
}
