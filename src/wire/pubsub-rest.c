/* pubsub-rest.c: the REST API's request bodies, read strictly
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <string.h>

#include "pubsub-error.h"
#include "pubsub-json.h"
#include "pubsub-rest.h"
#include "pubsub-topic.h"

/**
 * pubsub_rest_parse_topic_body:
 * @text: the body of a POST /topics, not necessarily NUL-terminated nor UTF-8
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
