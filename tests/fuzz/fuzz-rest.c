/* fuzz-rest.c: what the REST API reads from a client: the body of
 * POST /topics (pubsub_rest_parse_topic_body()) and the name in
 * DELETE /topics/{name}, percent-decoded as libsoup does
 *
 * Input: the body, and also (up to its first NUL, as a request line cannot
 * hold one) the text after "/topics/" in the request's path. Checked:
 *
 *  - a body either gives a valid topic name, which the same body built
 *    afresh around that name gives again, or a BAD_REQUEST error with a
 *    UTF-8 message (it goes into a JSON reply);
 *  - the path is decoded as libsoup 3.2 does before any handler runs
 *    (g_uri_unescape_string(), refusing %00 and "/../"); the name is then
 *    either a valid topic name, which survives escaping and decoding again,
 *    or refused with a message made valid UTF-8 as pubsub-http.c does.
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <string.h>

#include "fuzz-common.h"
#include "pubsub-error.h"
#include "pubsub-json.h"
#include "pubsub-rest.h"
#include "pubsub-topic.h"

#define TOPICS_PREFIX "/topics/"

static void
check_body (const char *text,
            gsize       len)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *name = NULL;
  g_autofree char *rebuilt = NULL;
  g_autofree char *again = NULL;

  name = pubsub_rest_parse_topic_body (text, len, &error);
  if (name == NULL)
    {
      g_assert_error (error, PUBSUB_ERROR, PUBSUB_ERROR_BAD_REQUEST);
      g_assert_true (g_utf8_validate (error->message, -1, NULL));
      return;
    }

  g_assert_no_error (error);
  g_assert_true (pubsub_topic_name_is_valid (name, strlen (name)));
  g_assert_true (pubsub_json_validate (text, len, NULL, NULL));
  rebuilt = g_strdup_printf ("{\"name\":\"%s\"}", name);
  again = pubsub_rest_parse_topic_body (rebuilt, strlen (rebuilt), &error);
  g_assert_no_error (error);
  g_assert_cmpstr (again, ==, name);
}

/* soup-server.c (3.2) call_handler(): the path as the handler sees it, or
 * NULL for the 400 that libsoup answers itself. */
static char *
decode_path_as_libsoup (const char *path)
{
  g_autofree char *decoded = g_uri_unescape_string (path, NULL);

  if (decoded == NULL || strstr (decoded, "/../") != NULL || g_str_has_suffix (decoded, "/.."))
    return NULL;
  return g_steal_pointer (&decoded);
}

static void
check_path (const char *text,
            gsize       len)
{
  g_autofree char *raw = g_strndup (text, len);   /* up to the first NUL */
  g_autofree char *path = g_strconcat (TOPICS_PREFIX, raw, NULL);
  g_autofree char *decoded = decode_path_as_libsoup (path);
  const char *name;

  if (decoded == NULL)
    return;
  g_assert_true (g_str_has_prefix (decoded, TOPICS_PREFIX));
  name = decoded + strlen (TOPICS_PREFIX);

  /* handle_delete_topic(): no valid topic has such a name, and its text
   * may not even be UTF-8; the message goes into a JSON reply. */
  if (!pubsub_topic_name_is_valid (name, strlen (name)))
    {
      g_autofree char *shown = g_utf8_make_valid (name, -1);
      g_autoptr(GError) error = NULL;

      g_set_error (&error, PUBSUB_ERROR, PUBSUB_ERROR_TOPIC_NOT_FOUND,
                   "topic '%s' does not exist", shown);
      g_assert_true (g_utf8_validate (error->message, -1, NULL));
      return;
    }

  /* A valid name is itself again once escaped by a client. */
  {
    g_autofree char *escaped = g_uri_escape_string (name, NULL, FALSE);
    g_autofree char *client_path = g_strconcat (TOPICS_PREFIX, escaped, NULL);
    g_autofree char *round_trip = decode_path_as_libsoup (client_path);

    g_assert_nonnull (round_trip);
    g_assert_cmpstr (round_trip + strlen (TOPICS_PREFIX), ==, name);
  }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  fuzz_setup_once ();
  /* An empty body reaches the parser as pubsub-http.c has it: the data of
   * an empty GByteArray, which is NULL. */
  check_body (size > 0 ? (const char *) data : NULL, size);
  check_path ((const char *) data, size);
  return 0;
}
