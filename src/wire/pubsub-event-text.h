/* pubsub-event-text.h: an event's JSON text as cluster nodes exchange it
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <glib.h>

#include "pubsub-message.h"

G_BEGIN_DECLS

char          *pubsub_event_text_new_parts (const char        *topic,
                                            const char        *id,
                                            const char        *payload,
                                            gsize              payload_len,
                                            gint64             time_us,
                                            gsize             *out_head_len,
                                            gsize             *out_len);
PubsubMessage *pubsub_event_text_to_message (const char       *text,
                                             gsize             len,
                                             char             *out_topic,
                                             char             *out_epoch,
                                             GError          **error);
gboolean       pubsub_event_text_parse     (const char        *text,
                                            gsize              len,
                                            PubsubMessageInfo *info,
                                            gsize             *out_topic_len,
                                            GError           **error);

G_END_DECLS
