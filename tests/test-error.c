/* test-error.c: the one error table (src/model/pubsub-error.c) and its D-Bus
 * registration (src/dbus/pubsub-dbus.c)
 *
 * The contract rows below are written out by hand from SPEC.md (§2, §3, §5,
 * §8, §9) and from what the daemon answered before the table existed, so a
 * change to a code string, an HTTP status or a D-Bus name fails here and not
 * only in a client. The structural checks (a row per enum value, no duplicate,
 * well-formed names) guard the codes that are added later.
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <gio/gio.h>

#include "pubsub-dbus.h"
#include "pubsub-error.h"

typedef struct {
  PubsubError  value;
  const char  *code;
  guint        http_status;
  const char  *dbus_name;
} ContractRow;

static const ContractRow contract_rows[] = {
  { PUBSUB_ERROR_BAD_REQUEST, "BAD_REQUEST", 400, "dev.pubsub.Error.InvalidArgument" },
  { PUBSUB_ERROR_TOPIC_NOT_FOUND, "TOPIC_NOT_FOUND", 404, "dev.pubsub.Error.TopicNotFound" },
  { PUBSUB_ERROR_TOPIC_EXISTS, "TOPIC_EXISTS", 409, "dev.pubsub.Error.TopicExists" },
  { PUBSUB_ERROR_LIMIT_EXCEEDED, "LIMIT_EXCEEDED", 429, "dev.pubsub.Error.LimitExceeded" },
  { PUBSUB_ERROR_SLOW_CONSUMER, "SLOW_CONSUMER", 503, "dev.pubsub.Error.SlowConsumer" },
  { PUBSUB_ERROR_UNAUTHORIZED, "UNAUTHORIZED", 401, "dev.pubsub.Error.Unauthorized" },
  { PUBSUB_ERROR_INTERNAL, "INTERNAL", 500, "dev.pubsub.Error.Internal" },
  { PUBSUB_ERROR_NOT_FOUND, "NOT_FOUND", 404, "dev.pubsub.Error.NotFound" },
  { PUBSUB_ERROR_METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED", 405,
    "dev.pubsub.Error.MethodNotAllowed" },
  { PUBSUB_ERROR_PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE", 413, "dev.pubsub.Error.PayloadTooLarge" },
  { PUBSUB_ERROR_TOO_MANY_CONNECTIONS, "TOO_MANY_CONNECTIONS", 503,
    "dev.pubsub.Error.TooManyConnections" },
  { PUBSUB_ERROR_UNAVAILABLE, "UNAVAILABLE", 503, "dev.pubsub.Error.Unavailable" },
  { PUBSUB_ERROR_REQUEST_HEADER_TOO_LARGE, "REQUEST_HEADER_TOO_LARGE", 431,
    "dev.pubsub.Error.RequestHeaderTooLarge" },
  { PUBSUB_ERROR_REQUEST_TIMEOUT, "REQUEST_TIMEOUT", 408, "dev.pubsub.Error.RequestTimeout" },
  { PUBSUB_ERROR_URI_TOO_LONG, "URI_TOO_LONG", 414, "dev.pubsub.Error.UriTooLong" },
};

/* Every enum value has a row, and every row is complete and well formed. */
static void
test_table_complete (void)
{
  g_autoptr(GRegex) code_re = g_regex_new ("^[A-Z][A-Z_]*[A-Z]$", 0, 0, NULL);

  for (gint value = 0; value < PUBSUB_ERROR_LAST; value++)
    {
      const PubsubErrorInfo *info = pubsub_error_get_info (value);

      g_test_message ("PubsubError %d", value);
      g_assert_nonnull (info);
      g_assert_nonnull (info->code);
      g_assert_true (g_regex_match (code_re, info->code, 0, NULL));
      g_assert_cmpuint (info->http_status, >=, 400);
      g_assert_cmpuint (info->http_status, <=, 599);
      g_assert_nonnull (info->dbus_name);
      g_assert_true (g_dbus_is_error_name (info->dbus_name));
      g_assert_true (g_str_has_prefix (info->dbus_name, "dev.pubsub.Error."));
    }
}

/* One code string and one D-Bus name per value: a duplicate would make two
 * errors indistinguishable to a client, and GDBus refuses to register it. */
static void
test_table_unique (void)
{
  g_autoptr(GHashTable) codes = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GHashTable) names = g_hash_table_new (g_str_hash, g_str_equal);

  for (gint value = 0; value < PUBSUB_ERROR_LAST; value++)
    {
      const PubsubErrorInfo *info = pubsub_error_get_info (value);

      g_assert_true (g_hash_table_add (codes, (gpointer) info->code));
      g_assert_true (g_hash_table_add (names, (gpointer) info->dbus_name));
    }
  g_assert_cmpuint (g_hash_table_size (codes), ==, PUBSUB_ERROR_LAST);
}

static void
test_table_contract (void)
{
  g_assert_cmpuint (G_N_ELEMENTS (contract_rows), ==, PUBSUB_ERROR_LAST);

  for (gsize i = 0; i < G_N_ELEMENTS (contract_rows); i++)
    {
      const ContractRow *row = &contract_rows[i];
      const PubsubErrorInfo *info = pubsub_error_get_info (row->value);
      g_autoptr(GError) error = g_error_new_literal (PUBSUB_ERROR, row->value, "m");

      g_assert_cmpstr (info->code, ==, row->code);
      g_assert_cmpuint (info->http_status, ==, row->http_status);
      g_assert_cmpstr (info->dbus_name, ==, row->dbus_name);

      g_assert_true (pubsub_error_lookup (error) == info);
      g_assert_cmpstr (pubsub_error_to_code (error), ==, row->code);
      g_assert_cmpuint (pubsub_error_http_status (error), ==, row->http_status);
    }
}

/* What is not a PubsubError is a server-side failure: INTERNAL's row. */
static void
test_lookup_foreign (void)
{
  const PubsubErrorInfo *internal = pubsub_error_get_info (PUBSUB_ERROR_INTERNAL);
  g_autoptr(GError) other = g_error_new_literal (G_IO_ERROR, PUBSUB_ERROR_TOPIC_EXISTS, "m");
  g_autoptr(GError) too_big = g_error_new_literal (PUBSUB_ERROR, PUBSUB_ERROR_LAST, "m");
  g_autoptr(GError) negative = g_error_new_literal (PUBSUB_ERROR, -1, "m");

  g_assert_true (pubsub_error_lookup (other) == internal);
  g_assert_true (pubsub_error_lookup (too_big) == internal);
  g_assert_true (pubsub_error_lookup (negative) == internal);
  g_assert_cmpstr (pubsub_error_to_code (other), ==, "INTERNAL");
  g_assert_cmpuint (pubsub_error_http_status (too_big), ==, 500);
}

/* GError → D-Bus name → GError gives back the same domain, code and
 * message, through GDBus's own encoding, for every row. */
static void
test_dbus_round_trip (void)
{
  /* Twice: the second call must be harmless. */
  pubsub_dbus_error_register ();
  pubsub_dbus_error_register ();

  for (gint value = 0; value < PUBSUB_ERROR_LAST; value++)
    {
      const PubsubErrorInfo *info = pubsub_error_get_info (value);
      g_autoptr(GError) error = g_error_new (PUBSUB_ERROR, value, "message %d", value);
      g_autofree char *name = g_dbus_error_encode_gerror (error);
      g_autoptr(GError) back = NULL;
      g_autofree char *remote = NULL;
      g_autofree char *expected_message = g_strdup_printf ("message %d", value);

      g_assert_cmpstr (name, ==, info->dbus_name);
      back = g_dbus_error_new_for_dbus_error (name, error->message);
      g_assert_error (back, PUBSUB_ERROR, value);
      remote = g_dbus_error_get_remote_error (back);
      g_assert_cmpstr (remote, ==, info->dbus_name);
      g_assert_true (g_dbus_error_strip_remote_error (back));
      g_assert_cmpstr (back->message, ==, expected_message);
    }
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/error/table/complete", test_table_complete);
  g_test_add_func ("/error/table/unique", test_table_unique);
  g_test_add_func ("/error/table/contract", test_table_contract);
  g_test_add_func ("/error/lookup/foreign", test_lookup_foreign);
  g_test_add_func ("/error/dbus/round-trip", test_dbus_round_trip);

  return g_test_run ();
}
