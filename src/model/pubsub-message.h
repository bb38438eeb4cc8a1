/* pubsub-message.h: one published message, serialized once
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <glib-object.h>

#include "pubsub-protocol.h"

G_BEGIN_DECLS

#define PUBSUB_TYPE_MESSAGE (pubsub_message_get_type ())

typedef struct _PubsubMessage PubsubMessage;

GType           pubsub_message_get_type  (void) G_GNUC_CONST;
PubsubMessage  *pubsub_message_new       (const char    *topic,
                                          const char    *id,
                                          const char    *payload,
                                          gsize          payload_len);
PubsubMessage  *pubsub_message_ref       (PubsubMessage *self);
void            pubsub_message_unref     (PubsubMessage *self);
const char     *pubsub_message_get_id    (PubsubMessage *self);
GBytes         *pubsub_message_get_frame (PubsubMessage *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PubsubMessage, pubsub_message_unref)

G_END_DECLS
