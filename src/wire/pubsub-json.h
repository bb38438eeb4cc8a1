/* pubsub-json.h: a strict, single-pass RFC 8259 reader
 *
 * json-glib 1.6 accepts text that is not JSON (single quotes, comments, hex,
 * leading zeros) and cannot round-trip every JSON value (big integers, 1e400,
 * "\u0000"). The broker therefore validates frames itself and forwards the
 * payload's original text; this reader finds the spans it needs without
 * building a tree.
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Deeper nesting is refused rather than risking the stack. */
#define PUBSUB_JSON_MAX_DEPTH 512

typedef enum {
  PUBSUB_JSON_NULL,
  PUBSUB_JSON_FALSE,
  PUBSUB_JSON_TRUE,
  PUBSUB_JSON_NUMBER,
  PUBSUB_JSON_STRING,
  PUBSUB_JSON_ARRAY,
  PUBSUB_JSON_OBJECT,
} PubsubJsonKind;

/* A value's text inside the parsed buffer; strings include their quotes. */
typedef struct {
  PubsubJsonKind  kind;
  const char     *text;
  gsize           len;
} PubsubJsonValue;

/* n_children of a member whose members were not gathered. */
#define PUBSUB_JSON_CHILDREN_UNKNOWN G_MAXUINT

typedef struct {
  PubsubJsonValue key;    /* always a PUBSUB_JSON_STRING */
  PubsubJsonValue value;
  /* See pubsub_json_parse_utf8_members(); otherwise n_children is
   * PUBSUB_JSON_CHILDREN_UNKNOWN. */
  guint           first_child;
  guint           n_children;
} PubsubJsonMember;

gboolean  pubsub_json_validate       (const char       *text,
                                      gsize             len,
                                      PubsubJsonValue  *out_value,
                                      GError          **error) G_GNUC_WARN_UNUSED_RESULT;
gboolean  pubsub_json_parse_utf8_object (const char        *text,
                                         gsize              len,
                                         PubsubJsonValue   *out_value,
                                         PubsubJsonMember  *members,
                                         guint              max_members,
                                         guint             *n_members,
                                         GError           **error) G_GNUC_WARN_UNUSED_RESULT;
gboolean  pubsub_json_parse_utf8_members (const char        *text,
                                          gsize              len,
                                          PubsubJsonValue   *out_value,
                                          PubsubJsonMember  *members,
                                          guint              max_members,
                                          guint             *n_members,
                                          PubsubJsonMember  *children,
                                          guint              max_children,
                                          GError           **error) G_GNUC_WARN_UNUSED_RESULT;
gboolean  pubsub_json_object_members (const PubsubJsonValue *object,
                                      PubsubJsonMember      *members,
                                      guint                  max_members,
                                      guint                 *n_members);
gboolean  pubsub_json_key_equal      (const PubsubJsonValue *key,
                                      const char            *name);
const PubsubJsonValue *
          pubsub_json_find_member    (const PubsubJsonMember *members,
                                      guint                   n_members,
                                      const char             *name,
                                      gsize                   name_len);
char     *pubsub_json_string_decode  (const PubsubJsonValue *string,
                                      gsize                 *out_len);

void      pubsub_json_append_string  (GString               *out,
                                      const char            *text);

G_END_DECLS
