/* pubsub-rest.h: the REST API's request bodies, read strictly: pure
 * functions, so that they can be tested and fuzzed without a server
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Fields a POST /topics body may have. */
#define PUBSUB_REST_MAX_FIELDS 64

char  *pubsub_rest_parse_topic_body (const char  *text,
                                     gsize        len,
                                     GError     **error) G_GNUC_WARN_UNUSED_RESULT;

G_END_DECLS
