/* fuzz-rest.c: what the REST API reads from a client: the body of
 * POST /topics (pubsub_rest_parse_topic_body()) and the name in
 * DELETE /topics/{name}, percent-decoded as libsoup does
 *
 * Input: the body, and also (up to its first NUL, as a request line cannot
 * hold one) the text after "/topics/" in the request's path and the value
 * of a query parameter. Checked:
 *
 *  - a POST /topics body either gives a valid topic name, which the same
 *    body built afresh around that name gives again, or a BAD_REQUEST error
 *    with a UTF-8 message (it goes into a JSON reply);
 *  - a POST /topics/{name}/messages body either gives a payload that is
 *    exactly one JSON value of the body and an id that is "" or a UUID, or
 *    a BAD_REQUEST; a message made of it is listed by GET .../messages as
 *    valid JSON with the payload byte for byte;
 *  - a count parameter (limit, since, last_n) is accepted exactly when it
 *    is a decimal integer that fits 64 bits;
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
#include "pubsub-protocol.h"
#include "pubsub-rest.h"
#include "pubsub-topic.h"

#define TOPICS_PREFIX "/topics/"
#define EPOCH         "0123456789abcdef"
#define MESSAGE_ID    "3f2504e0-4f89-41d3-9a0c-0305e82c3301"

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

/* What GET /topics/{name}/messages says of a message with @payload. */
static void
check_listed_message (const char *payload,
                      gsize       payload_len,
                      const char *id)
{
  const PubsubMessageInfo info = {
    .topic = "t",
    .epoch = EPOCH,
    .seq = G_MAXUINT64 - payload_len,
    .id = id,
    .payload = payload,
    .payload_len = payload_len,
    .time_us = G_GINT64_CONSTANT (1764237600123456),
  };
  g_autoptr(PubsubMessage) message = pubsub_message_new (&info, pubsub_frame_new_event);
  g_autoptr(GString) listed = g_string_new (NULL);
  g_autofree char *seq = g_strdup_printf ("%" G_GUINT64_FORMAT, info.seq);
  PubsubJsonMember members[8];
  const PubsubJsonValue *value;
  PubsubJsonValue root;
  guint n_members;

  pubsub_rest_append_message (listed, message);
  g_assert_true (pubsub_json_validate (listed->str, listed->len, &root, NULL));
  g_assert_true (pubsub_json_parse_utf8_object (listed->str, listed->len, &root, members,
                                                G_N_ELEMENTS (members), &n_members, NULL));
  value = pubsub_json_find_member (members, n_members, "payload", strlen ("payload"));
  g_assert_nonnull (value);
  g_assert_cmpmem (value->text, value->len, payload, payload_len);
  value = pubsub_json_find_member (members, n_members, "seq", strlen ("seq"));
  g_assert_nonnull (value);
  g_assert_cmpmem (value->text, value->len, seq, strlen (seq));
}

static void
check_publish_body (const char *text,
                    gsize       len)
{
  g_autoptr(GError) error = NULL;
  PubsubRestPublish publish;
  PubsubJsonValue payload;

  if (!pubsub_rest_parse_publish_body (text, len, &publish, &error))
    {
      g_assert_error (error, PUBSUB_ERROR, PUBSUB_ERROR_BAD_REQUEST);
      g_assert_true (g_utf8_validate (error->message, -1, NULL));
      return;
    }

  g_assert_no_error (error);
  g_assert_true (pubsub_json_validate (text, len, NULL, NULL));
  /* The payload is one whole value of the body, forwarded as it is. */
  g_assert_true (publish.payload >= text);
  g_assert_cmpuint (publish.payload_len, <=, len - (gsize) (publish.payload - text));
  g_assert_true (pubsub_json_validate (publish.payload, publish.payload_len, &payload, NULL));
  g_assert_true (payload.text == publish.payload);
  g_assert_cmpuint (payload.len, ==, publish.payload_len);
  g_assert_true (publish.id[0] == '\0' || g_uuid_string_is_valid (publish.id));
  check_listed_message (publish.payload, publish.payload_len,
                        publish.id[0] != '\0' ? publish.id : MESSAGE_ID);
}

/* limit, since, last_n: a query value is a C string (no NUL in it). */
static void
check_count (const char *text,
             gsize       len)
{
  g_autofree char *value = g_strndup (text, len);
  g_autoptr(GError) error = NULL;
  gboolean digits = value[0] != '\0';
  guint64 expected = 0;
  gboolean fits = TRUE;
  guint64 count = 0;

  for (const char *p = value; *p != '\0'; p++)
    {
      guint digit = (guint) (*p - '0');

      if (!g_ascii_isdigit (*p))
        {
          digits = FALSE;
          break;
        }
      if (expected > (G_MAXUINT64 - digit) / 10)
        fits = FALSE;
      expected = expected * 10 + digit;
    }

  if (pubsub_rest_parse_count ("limit", value, &count, &error))
    {
      g_assert_no_error (error);
      g_assert_true (digits && fits);
      g_assert_cmpuint (count, ==, expected);
    }
  else
    {
      g_assert_false (digits && fits);
      g_assert_error (error, PUBSUB_ERROR, PUBSUB_ERROR_BAD_REQUEST);
    }
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
  check_publish_body (size > 0 ? (const char *) data : NULL, size);
  check_path ((const char *) data, size);
  check_count ((const char *) data, size);
  return 0;
}
