/* pubsub-rest.c: the REST API's request bodies, read strictly
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <string.h>

#include "pubsub-error.h"
#include "pubsub-protocol.h"
#include "pubsub-json.h"
#include "pubsub-rest.h"
#include "pubsub-topic.h"

/* pubsub-http.c hands over the data of the body's GByteArray, which is
 * NULL when the body is empty. The JSON reader computes text + len, which
 * C does not define for NULL, even plus 0: read it as "". */
static const char *
body_text (const char *text)
{
  return text != NULL ? text : "";
}

/**
 * pubsub_rest_parse_topic_body:
 * @text: (nullable): the body of a POST /topics, not necessarily
 *   NUL-terminated nor UTF-8; %NULL when @len is 0 (the data of an empty
 *   #GByteArray)
 * @len: its length in bytes
 * @error: a %PUBSUB_ERROR_BAD_REQUEST saying what is wrong
 *
 * The body must be strict JSON: json-glib 1.6 would take comments, single
 * quotes and hex, and silently cut "a\u0000b" to "a". Our strict reader
 * finds the name and decodes it with its length.
 *
 * Returns: (transfer full) (nullable): the valid topic name of the body's
 *   "name" field
 */
char *
pubsub_rest_parse_topic_body (const char  *text,
                              gsize        len,
                              GError     **error)
{
  PubsubJsonMember members[PUBSUB_REST_MAX_FIELDS];
  const PubsubJsonValue *name;
  g_autofree char *decoded = NULL;
  PubsubJsonValue root;
  gsize decoded_len;
  guint n_members;

  g_return_val_if_fail (text != NULL || len == 0, NULL);

  text = body_text (text);
  if (!pubsub_json_validate (text, len, &root, error))
    {
      g_prefix_error (error, "request body is ");
      return NULL;
    }
  if (root.kind != PUBSUB_JSON_OBJECT ||
      !pubsub_json_object_members (&root, members, G_N_ELEMENTS (members), &n_members))
    {
      g_set_error_literal (error, PUBSUB_ERROR, PUBSUB_ERROR_BAD_REQUEST,
                           "request body must be a JSON object like {\"name\":\"orders\"}");
      return NULL;
    }
  name = pubsub_json_find_member (members, n_members, "name", strlen ("name"));
  if (name == NULL || name->kind == PUBSUB_JSON_NULL)
    {
      g_set_error_literal (error, PUBSUB_ERROR, PUBSUB_ERROR_BAD_REQUEST,
                           "missing field 'name'");
      return NULL;
    }
  if (name->kind != PUBSUB_JSON_STRING)
    {
      g_set_error_literal (error, PUBSUB_ERROR, PUBSUB_ERROR_BAD_REQUEST,
                           "field 'name' must be a string");
      return NULL;
    }
  decoded = pubsub_json_string_decode (name, &decoded_len);
  if (!pubsub_topic_name_is_valid (decoded, decoded_len))
    {
      pubsub_set_topic_name_error (error);
      return NULL;
    }
  return g_steal_pointer (&decoded);
}

static gboolean
bad_request (GError     **error,
             const char  *message)
{
  g_set_error_literal (error, PUBSUB_ERROR, PUBSUB_ERROR_BAD_REQUEST, message);
  return FALSE;
}

/**
 * pubsub_rest_parse_publish_body:
 * @text: (nullable): the body of a POST /topics/{name}/messages, any bytes;
 *   %NULL when @len is 0
 * @len: its length
 * @out: (out caller-allocates): the message's id ("" to make one) and its
 *   payload's JSON text, forwarded unchanged
 * @error: a %PUBSUB_ERROR_BAD_REQUEST saying what is wrong
 *
 * The same strict reading as a WebSocket publish: the payload arrives byte
 * for byte, whatever the size of its numbers or its escapes.
 */
gboolean
pubsub_rest_parse_publish_body (const char         *text,
                                gsize               len,
                                PubsubRestPublish  *out,
                                GError            **error)
{
  PubsubJsonMember members[PUBSUB_REST_MAX_FIELDS];
  const PubsubJsonValue *payload;
  const PubsubJsonValue *id;
  g_autofree char *decoded = NULL;
  PubsubJsonValue root;
  gsize decoded_len;
  guint n_members;

  g_return_val_if_fail (text != NULL || len == 0, FALSE);

  memset (out, 0, sizeof *out);
  text = body_text (text);
  if (!pubsub_json_validate (text, len, &root, error))
    {
      g_prefix_error (error, "request body is ");
      return FALSE;
    }
  if (root.kind != PUBSUB_JSON_OBJECT ||
      !pubsub_json_object_members (&root, members, G_N_ELEMENTS (members), &n_members))
    return bad_request (error, "request body must be a JSON object like "
                               "{\"payload\":{\"order_id\":\"ORD-1\"}}");
  payload = pubsub_json_find_member (members, n_members, "payload", strlen ("payload"));
  if (payload == NULL)
    return bad_request (error, "missing field 'payload' (any JSON value)");
  out->payload = payload->text;
  out->payload_len = payload->len;

  id = pubsub_json_find_member (members, n_members, "id", strlen ("id"));
  if (id == NULL || id->kind == PUBSUB_JSON_NULL)
    return TRUE;
  if (id->kind != PUBSUB_JSON_STRING)
    return bad_request (error, "field 'id' must be a UUID string");
  decoded = pubsub_json_string_decode (id, &decoded_len);
  if (decoded_len != PUBSUB_UUID_LEN || strlen (decoded) != decoded_len ||
      !g_uuid_string_is_valid (decoded))
    return bad_request (error, "field 'id' must be a valid UUID");
  memcpy (out->id, decoded, PUBSUB_UUID_LEN + 1);
  return TRUE;
}

/**
 * pubsub_rest_parse_count:
 * @name: the query parameter's name, for the message
 * @text: its value
 * @out: (out): the integer
 * @error: a %PUBSUB_ERROR_BAD_REQUEST unless @text is a decimal integer >= 0
 */
gboolean
pubsub_rest_parse_count (const char  *name,
                         const char  *text,
                         guint64     *out,
                         GError     **error)
{
  if (text[0] == '\0' || !g_ascii_isdigit (text[0]) ||
      !g_ascii_string_to_unsigned (text, 10, 0, G_MAXUINT64, out, NULL))
    {
      g_set_error (error, PUBSUB_ERROR, PUBSUB_ERROR_BAD_REQUEST,
                   "query parameter '%s' must be an integer >= 0", name);
      return FALSE;
    }
  return TRUE;
}

/**
 * pubsub_rest_append_message:
 *
 * Appends {"seq":…,"id":"…","payload":…,"ts":"…"}: the payload is the
 * published text, byte for byte, and ts the publish time.
 */
void
pubsub_rest_append_message (GString       *out,
                            PubsubMessage *message)
{
  char ts[PUBSUB_TIMESTAMP_LEN + 1];
  const char *payload;
  gsize payload_len;

  payload = pubsub_message_get_payload (message, &payload_len);
  pubsub_format_timestamp (pubsub_message_get_time (message), ts);
  g_string_append_printf (out, "{\"seq\":%" G_GUINT64_FORMAT ",\"id\":\"%s\",\"payload\":",
                          pubsub_message_get_seq (message), pubsub_message_get_id (message));
  g_string_append_len (out, payload, (gssize) payload_len);
  g_string_append_printf (out, ",\"ts\":\"%s\"}", ts);
}
