/* pubsub-test-model.c: helpers for the in-process tests of the domain model
 *
 * SPDX-License-Identifier: MIT
 */
#include <string.h>

#include "pubsub-json.h"
#include "pubsub-protocol.h"
#include "pubsub-test-model.h"
#include "pubsub-ws-frame.h"

PubsubMessage *
pubsub_test_message_new (const char *topic,
                         const char *id,
                         const char *payload,
                         gsize       payload_len)
{
  PubsubMessageInfo info = {
    .topic = topic,
    .epoch = PUBSUB_TEST_EPOCH,
    .seq = 1,
    .id = id,
    .payload = payload,
    .payload_len = payload_len,
    .time_us = g_get_real_time (),
  };

  return pubsub_message_new (&info, pubsub_frame_new_event);
}

char *
pubsub_test_numbered_uuid (guint n)
{
  return g_strdup_printf ("00000000-0000-4000-8000-%012x", n);
}

PubsubMessage *
pubsub_test_publish_numbered (PubsubTopic *topic,
                              guint        n)
{
  g_autofree char *payload = g_strdup_printf ("{\"n\":%u}", n);
  g_autofree char *id = pubsub_test_numbered_uuid (n);
  gboolean duplicate = TRUE;
  PubsubMessage *message = pubsub_topic_publish (topic, id, payload, strlen (payload),
                                                 pubsub_frame_new_event, &duplicate);

  g_assert_false (duplicate);
  return message;
}

void
pubsub_test_event_fields (PubsubMessage  *message,
                          char          **out_payload,
                          char          **out_id,
                          char          **out_topic)
{
  GBytes *frame = pubsub_message_get_frame (message);
  gsize size;
  const char *data = g_bytes_get_data (frame, &size);
  gsize header = pubsub_ws_frame_payload_offset (frame);
  PubsubJsonMember members[8];
  PubsubJsonMember inner[4];
  PubsubJsonValue root;
  PubsubJsonValue message_value;
  guint n_members;
  guint n_inner;
  g_autoptr(GError) error = NULL;

  g_assert_true (pubsub_json_parse_utf8_object (data + header, size - header, &root, members,
                                                G_N_ELEMENTS (members), &n_members, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (n_members, ==, 6);
  g_assert_true (pubsub_json_key_equal (&members[3].key, "seq"));
  g_assert_true (pubsub_json_key_equal (&members[4].key, "epoch"));
  g_assert_true (pubsub_json_key_equal (&members[0].key, "type"));
  g_assert_true (pubsub_json_key_equal (&members[0].value, "event"));
  g_assert_true (pubsub_json_key_equal (&members[1].key, "topic"));
  g_assert_true (pubsub_json_key_equal (&members[2].key, "message"));
  message_value = members[2].value;
  g_assert_true (pubsub_json_object_members (&message_value, inner, G_N_ELEMENTS (inner),
                                             &n_inner));
  g_assert_cmpuint (n_inner, ==, 2);
  g_assert_true (pubsub_json_key_equal (&inner[0].key, "id"));
  g_assert_true (pubsub_json_key_equal (&inner[1].key, "payload"));
  if (out_payload != NULL)
    *out_payload = g_strndup (inner[1].value.text, inner[1].value.len);
  if (out_id != NULL)
    *out_id = pubsub_json_string_decode (&inner[0].value, NULL);
  if (out_topic != NULL)
    *out_topic = pubsub_json_string_decode (&members[1].value, NULL);
}

char *
pubsub_test_event_payload (PubsubMessage *message)
{
  char *payload = NULL;

  pubsub_test_event_fields (message, &payload, NULL, NULL);
  return payload;
}

void
pubsub_test_count_notify (GObject    *object,
                          GParamSpec *pspec,
                          gpointer    counter)
{
  (*(guint *) counter)++;
}

/* The broker's calls answered at once, as the memory engine answers them:
 * the model's tests read better with a result and a GError. */
static void
on_never_later (PubsubEngine            *engine,
                const PubsubEngineReply *reply,
                GObject                 *owner)
{
  g_assert_not_reached ();
}

PubsubTopic *
pubsub_test_broker_create (PubsubBroker  *broker,
                          const char    *name,
                          GError       **error)
{
  g_auto(PubsubEngineReply) reply = { 0, };

  g_assert_true (pubsub_broker_create_topic (broker, name, &reply, NULL, on_never_later));
  if (reply.error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&reply.error));
      return NULL;
    }
  return pubsub_broker_lookup_topic (broker, name);
}

gboolean
pubsub_test_broker_delete (PubsubBroker  *broker,
                          const char    *name,
                          GError       **error)
{
  g_auto(PubsubEngineReply) reply = { 0, };

  g_assert_true (pubsub_broker_delete_topic (broker, name, &reply, NULL, on_never_later));
  if (reply.error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&reply.error));
      return FALSE;
    }
  return TRUE;
}

/* Returns: (transfer full): the message published (or the stored
 * duplicate), from the topic's history */
PubsubMessage *
pubsub_test_broker_publish (PubsubBroker  *broker,
                     const char    *topic,
                     const char    *id,
                     const char    *payload,
                     gsize          payload_len,
                     gboolean      *out_duplicate,
                     GError       **error)
{
  g_auto(PubsubEngineReply) reply = { 0, };
  PubsubTopic *target;

  g_assert_true (pubsub_broker_publish (broker, topic, id, payload, payload_len,
                                        &reply, NULL, on_never_later));
  if (reply.error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&reply.error));
      return NULL;
    }
  if (out_duplicate != NULL)
    *out_duplicate = reply.duplicate;
  target = pubsub_broker_lookup_topic (broker, topic);
  g_assert_cmpuint (reply.seq, >=, pubsub_topic_get_first_seq (target));
  return pubsub_message_ref (pubsub_topic_get_message (target, reply.seq));
}

/* What the D-Bus Publish method does: the checks, then the publish. */
PubsubMessage *
pubsub_test_broker_publish_json (PubsubBroker  *broker,
                          const char    *topic,
                          const char    *id,
                          const char    *payload_json,
                          gboolean      *out_duplicate,
                          GError       **error)
{
  g_autofree char *fresh_id = NULL;
  PubsubJsonValue payload;

  if (!pubsub_publish_args_check (topic, &id, &fresh_id, payload_json, &payload, error))
    return NULL;
  return pubsub_test_broker_publish (broker, topic, id, payload.text, payload.len, out_duplicate, error);
}
