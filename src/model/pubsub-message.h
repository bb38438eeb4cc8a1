/* pubsub-message.h: one published message, serialized once
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

#define PUBSUB_UUID_LEN  36
#define PUBSUB_EPOCH_LEN 16   /* lowercase hex */

/* What a message is made of, before it is encoded. */
typedef struct {
  const char *topic;        /* a valid topic name */
  const char *epoch;        /* the topic's epoch, PUBSUB_EPOCH_LEN hex digits */
  guint64     seq;          /* 1 for the topic's first message of its epoch */
  const char *id;           /* a valid UUID */
  const char *payload;      /* validated JSON text, forwarded unchanged */
  gsize       payload_len;
  gint64      time_us;      /* publish time, µs since the epoch */
} PubsubMessageInfo;

/**
 * PubsubMessageEncoder:
 * @info: the message
 * @out_payload_offset: (out): where @info's payload text starts in the result
 *
 * Turns a message into the bytes every subscriber gets, once per publish.
 * The model does not know their format (the wire layer does); it only keeps
 * them, shares them and finds the payload in them.
 *
 * Returns: (transfer full): the encoded message, containing the payload text
 *   verbatim at @out_payload_offset
 */
typedef GBytes *(*PubsubMessageEncoder) (const PubsubMessageInfo *info,
                                         gsize                   *out_payload_offset);

#define PUBSUB_TYPE_MESSAGE (pubsub_message_get_type ())

typedef struct _PubsubMessage PubsubMessage;

GType           pubsub_message_get_type     (void) G_GNUC_CONST;
PubsubMessage  *pubsub_message_new          (const PubsubMessageInfo *info,
                                             PubsubMessageEncoder     encode);
PubsubMessage  *pubsub_message_new_for_frame (const PubsubMessageInfo *info,
                                               GBytes                  *frame,
                                               gsize                    payload_offset);
PubsubMessage  *pubsub_message_ref          (PubsubMessage *self);
void            pubsub_message_unref        (PubsubMessage *self);
const char     *pubsub_message_get_id       (PubsubMessage *self);
guint64         pubsub_message_get_seq      (PubsubMessage *self);
gint64          pubsub_message_get_time     (PubsubMessage *self);
gint64          pubsub_message_get_accepted (PubsubMessage *self);
const char     *pubsub_message_get_payload  (PubsubMessage *self,
                                             gsize         *out_len);
GBytes         *pubsub_message_get_frame    (PubsubMessage *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PubsubMessage, pubsub_message_unref)

G_END_DECLS
