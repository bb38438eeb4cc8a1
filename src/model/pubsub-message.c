/* pubsub-message.c: one published message, serialized once
 *
 * A message owns its encoded form (for WebSocket clients: the complete event
 * frame), built by the encoder the broker was given, at publish time. Every
 * subscriber queue and the topic history hold a reference to the same bytes;
 * nothing is copied per subscriber. The payload is not kept twice: it is a
 * view into those bytes.
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <string.h>

#include "pubsub-message.h"

struct _PubsubMessage {
  gatomicrefcount  ref_count;
  char             id[PUBSUB_UUID_LEN + 1];
  guint64          seq;
  gint64           time_us;
  gint64           accepted_us;   /* monotonic, for the delivery latency */
  gsize            payload_offset;
  gsize            payload_len;
  GBytes          *frame;   /* owned */
};

G_DEFINE_BOXED_TYPE (PubsubMessage, pubsub_message, pubsub_message_ref, pubsub_message_unref)

/* Every field but the frame and the payload's offset in it. The id is a
 * valid UUID, exactly PUBSUB_UUID_LEN bytes: copied without g_strlcpy()'s
 * strlen(). */
static PubsubMessage *
message_alloc (const PubsubMessageInfo *info)
{
  PubsubMessage *self = g_new (PubsubMessage, 1);

  g_atomic_ref_count_init (&self->ref_count);
  memcpy (self->id, info->id, PUBSUB_UUID_LEN);
  self->id[PUBSUB_UUID_LEN] = '\0';
  self->seq = info->seq;
  self->time_us = info->time_us;
  self->accepted_us = g_get_monotonic_time ();
  self->payload_len = info->payload_len;
  return self;
}

/**
 * pubsub_message_new:
 * @info: the message's parts
 * @encode: builds its encoded form
 *
 * Returns: (transfer full): the message
 */
PubsubMessage *
pubsub_message_new (const PubsubMessageInfo *info,
                    PubsubMessageEncoder     encode)
{
  PubsubMessage *self = message_alloc (info);

  self->frame = encode (info, &self->payload_offset);
  g_assert (self->payload_offset + self->payload_len <= g_bytes_get_size (self->frame));
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
 * pubsub_message_get_seq:
 *
 * Returns: the message's place in its topic: 1, 2, 3, … within an epoch
 */
guint64
pubsub_message_get_seq (PubsubMessage *self)
{
  return self->seq;
}

/**
 * pubsub_message_get_time:
 *
 * Returns: the publish time, µs since the epoch
 */
gint64
pubsub_message_get_time (PubsubMessage *self)
{
  return self->time_us;
}

/**
 * pubsub_message_get_accepted:
 *
 * Returns: when the publish was accepted (the message made), on the
 *   monotonic clock, µs; always > 0
 */
gint64
pubsub_message_get_accepted (PubsubMessage *self)
{
  return self->accepted_us;
}

/**
 * pubsub_message_get_payload:
 * @out_len: (out): the length of the payload's JSON text
 *
 * Returns: (transfer none): the payload's JSON text, not NUL-terminated
 */
const char *
pubsub_message_get_payload (PubsubMessage *self,
                            gsize         *out_len)
{
  const char *data = g_bytes_get_data (self->frame, NULL);

  *out_len = self->payload_len;
  return data + self->payload_offset;
}

/**
 * pubsub_message_get_frame:
 *
 * Returns: (transfer none): the encoded message (the WebSocket event frame)
 */
GBytes *
pubsub_message_get_frame (PubsubMessage *self)
{
  return self->frame;
}

/**
 * pubsub_message_new_for_frame:
 * @info: the message (its payload must lie inside @frame)
 * @frame: the message already encoded, by another node of a cluster
 * @payload_offset: where @info's payload starts in @frame
 *
 * A message that was serialized elsewhere: kept as it is, not encoded
 * again (one serialization per publish, cluster-wide).
 *
 * Returns: (transfer full): the message
 */
PubsubMessage *
pubsub_message_new_for_frame (const PubsubMessageInfo *info,
                              GBytes                  *frame,
                              gsize                    payload_offset)
{
  PubsubMessage *self;

  g_return_val_if_fail (payload_offset + info->payload_len <= g_bytes_get_size (frame), NULL);

  self = message_alloc (info);
  self->payload_offset = payload_offset;
  self->frame = g_bytes_ref (frame);
  return self;
}
