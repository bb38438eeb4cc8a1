/* pubsub-rest.h: the REST API's request bodies, read strictly: pure
 * functions, so that they can be tested and fuzzed without a server
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <glib.h>

#include "pubsub-message.h"

G_BEGIN_DECLS

/* Fields a POST /topics body may have. */
#define PUBSUB_REST_MAX_FIELDS 64

char  *pubsub_rest_parse_topic_body (const char  *text,
                                     gsize        len,
                                     GError     **error) G_GNUC_WARN_UNUSED_RESULT;

/* A POST /topics/{name}/messages body: {"payload": any, "id": UUID?}. */
typedef struct {
  char        id[PUBSUB_UUID_LEN + 1];   /* "" when the body has none */
  const char *payload;                   /* points into the body */
  gsize       payload_len;
} PubsubRestPublish;

gboolean pubsub_rest_parse_publish_body (const char         *text,
                                         gsize               len,
                                         PubsubRestPublish  *out,
                                         GError            **error) G_GNUC_WARN_UNUSED_RESULT;
gboolean pubsub_rest_parse_count        (const char         *name,
                                         const char         *text,
                                         guint64            *out,
                                         GError            **error) G_GNUC_WARN_UNUSED_RESULT;
void     pubsub_rest_append_message     (GString            *out,
                                         PubsubMessage      *message);

G_END_DECLS
