/* pubsub-message.c: one published message, serialized once
 *
 * A message owns the complete event frame (WebSocket header and JSON) built
 * at publish time. Every subscriber queue and the topic history hold a
 * reference to the same bytes; nothing is copied per subscriber.
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include "pubsub-message.h"

struct _PubsubMessage {
  gatomicrefcount  ref_count;
  char             id[PUBSUB_UUID_LEN + 1];
  GBytes          *frame;   /* owned */
};

G_DEFINE_BOXED_TYPE (PubsubMessage, pubsub_message, pubsub_message_ref, pubsub_message_unref)

/**
 * pubsub_message_new:
 * @topic: a valid topic name
 * @id: a valid UUID
 * @payload: the payload's validated JSON text, forwarded unchanged
 * @payload_len: its length
 *
 * Returns: (transfer full): a message stamped with the current time
 */
PubsubMessage *
pubsub_message_new (const char *topic,
                    const char *id,
                    const char *payload,
                    gsize       payload_len)
{
  PubsubMessage *self = g_new0 (PubsubMessage, 1);

  g_atomic_ref_count_init (&self->ref_count);
  g_strlcpy (self->id, id, sizeof self->id);
  self->frame = pubsub_frame_new_event (topic, id, payload, payload_len,
                                        g_get_real_time ());
  return self;
}

PubsubMessage *
pubsub_message_ref (PubsubMessage *self)
{
  g_return_val_if_fail (self != NULL, NULL);

  g_atomic_ref_count_inc (&self->ref_count);
  return self;
}

void
pubsub_message_unref (PubsubMessage *self)
{
  g_return_if_fail (self != NULL);

  if (g_atomic_ref_count_dec (&self->ref_count))
    {
      g_bytes_unref (self->frame);
      g_free (self);
    }
}

const char *
pubsub_message_get_id (PubsubMessage *self)
{
  return self->id;
}

/**
 * pubsub_message_get_frame:
 *
 * Returns: (transfer none): the complete WebSocket event frame
 */
GBytes *
pubsub_message_get_frame (PubsubMessage *self)
{
  return self->frame;
}
