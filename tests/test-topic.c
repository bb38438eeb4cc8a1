/* test-topic.c: topics, messages and the broker (src/pubsub-topic.c,
 * src/pubsub-message.c, src/pubsub-broker.c)
 *
 * - the history ring at sizes 0, 1 and N, checked against a model after
 *   every publish (wraparound keeps the last N, oldest first);
 * - counters (messages is not capped by the history) and their notify
 *   signals;
 * - the "event" fan-out: one emission per publish, every handler sees the
 *   same PubsubMessage and the same GBytes frame (no per-subscriber copy);
 * - the broker: create / duplicate / invalid / limit / delete / list order /
 *   publish / publish_json and its validation, and its signals.
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <string.h>

#include <glib-object.h>

#include "pubsub-broker.h"
#include "pubsub-error.h"
#include "pubsub-json.h"
#include "pubsub-message.h"
#include "pubsub-protocol.h"
#include "pubsub-ws-frame.h"
#include "pubsub-topic.h"

#define UUID "123e4567-e89b-12d3-a456-426614174000"

/* A message encoded as the daemon encodes it: a WebSocket event frame. */
static PubsubMessage *
message_new (const char *topic,
             const char *id,
             const char *payload,
             gsize       payload_len)
{
  PubsubMessageInfo info = { topic, id, payload, payload_len, g_get_real_time () };

  return pubsub_message_new (&info, pubsub_frame_new_event);
}

/* ---------------------------------------------------------------------- */
/* Helpers                                                                */

static PubsubMessage *
message_new_numbered (const char *topic,
                      guint       n)
{
  g_autofree char *payload = g_strdup_printf ("{\"n\":%u}", n);

  return message_new (topic, UUID, payload, strlen (payload));
}

/* The JSON text of an event frame's message.payload / message.id. */
static void
event_fields (PubsubMessage  *message,
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
  g_assert_cmpuint (n_members, ==, 4);
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

static char *
event_payload (PubsubMessage *message)
{
  char *payload = NULL;

  event_fields (message, &payload, NULL, NULL);
  return payload;
}

static void
count_notify (GObject    *object,
              GParamSpec *pspec,
              gpointer    user_data)
{
  (*(guint *) user_data)++;
}

/* ---------------------------------------------------------------------- */
/* Message                                                                */

static void
test_message (void)
{
  static const char payload[] = "[1e400,12345678901234567890,\"a\\u0000b\"]";
  gint64 before = g_get_real_time ();
  g_autoptr(PubsubMessage) message = message_new ("orders", UUID, payload, sizeof payload - 1);
  g_autofree char *got_payload = NULL;
  g_autofree char *got_id = NULL;
  g_autofree char *got_topic = NULL;
  PubsubMessage *copy;

  g_assert_cmpstr (pubsub_message_get_id (message), ==, UUID);
  event_fields (message, &got_payload, &got_id, &got_topic);
  g_assert_cmpstr (got_payload, ==, payload);
  g_assert_cmpstr (got_id, ==, UUID);
  g_assert_cmpstr (got_topic, ==, "orders");

  /* Stamped now. */
  {
    GBytes *frame = pubsub_message_get_frame (message);
    gsize size;
    const char *data = g_bytes_get_data (frame, &size);
    char ts[PUBSUB_TIMESTAMP_LEN + 1];
    char ts_before[PUBSUB_TIMESTAMP_LEN + 1];
    char ts_after[PUBSUB_TIMESTAMP_LEN + 1];

    memcpy (ts, data + size - 2 - PUBSUB_TIMESTAMP_LEN, PUBSUB_TIMESTAMP_LEN);
    ts[PUBSUB_TIMESTAMP_LEN] = '\0';
    pubsub_format_timestamp (before, ts_before);
    pubsub_format_timestamp (g_get_real_time (), ts_after);
    g_assert_cmpstr (ts, >=, ts_before);
    g_assert_cmpstr (ts, <=, ts_after);
  }

  /* A boxed type whose copy is a reference. */
  copy = g_boxed_copy (PUBSUB_TYPE_MESSAGE, message);
  g_assert_true (copy == message);
  g_assert_true (pubsub_message_get_frame (copy) == pubsub_message_get_frame (message));
  g_boxed_free (PUBSUB_TYPE_MESSAGE, copy);
  g_assert_true (pubsub_message_ref (message) == message);
  pubsub_message_unref (message);
}

/* ---------------------------------------------------------------------- */
/* Topic                                                                  */

static void
test_topic_properties (void)
{
  g_autoptr(PubsubTopic) topic = pubsub_topic_new ("orders", 7);
  g_autofree char *name = NULL;
  guint history_size = 0;
  guint subscribers = 99;
  guint64 messages = 99;

  g_assert_cmpstr (pubsub_topic_get_name (topic), ==, "orders");
  g_assert_cmpuint (pubsub_topic_get_subscribers (topic), ==, 0);
  g_assert_cmpuint (pubsub_topic_get_messages (topic), ==, 0);
  g_assert_cmpuint (pubsub_topic_get_history_length (topic), ==, 0);
  g_object_get (topic, "name", &name, "history-size", &history_size,
                "subscribers", &subscribers, "messages", &messages, NULL);
  g_assert_cmpstr (name, ==, "orders");
  g_assert_cmpuint (history_size, ==, 7);
  g_assert_cmpuint (subscribers, ==, 0);
  g_assert_cmpuint (messages, ==, 0);
}

static void
check_history (gconstpointer data)
{
  guint history_size = GPOINTER_TO_UINT (data);
  g_autoptr(PubsubTopic) topic = pubsub_topic_new ("t", history_size);
  g_autoptr(GPtrArray) published = g_ptr_array_new_with_free_func ((GDestroyNotify) pubsub_message_unref);
  guint total = history_size * 3 + 2;

  for (guint n = 0; n < total; n++)
    {
      guint expected_length = MIN (n + 1, history_size);

      g_ptr_array_add (published, message_new_numbered ("t", n));
      pubsub_topic_publish (topic, g_ptr_array_index (published, n));

      g_assert_cmpuint (pubsub_topic_get_messages (topic), ==, n + 1);
      g_assert_cmpuint (pubsub_topic_get_history_length (topic), ==, expected_length);
      /* The last expected_length messages, oldest first. */
      for (guint i = 0; i < expected_length; i++)
        {
          guint index = n + 1 - expected_length + i;

          g_assert_true (pubsub_topic_get_history_item (topic, i) ==
                         g_ptr_array_index (published, index));
        }
    }

  /* The history holds its own references: the caller's can go. */
  g_ptr_array_set_size (published, 0);
  for (guint i = 0; i < MIN (total, history_size); i++)
    {
      g_autofree char *payload = event_payload (pubsub_topic_get_history_item (topic, i));
      g_autofree char *expected = g_strdup_printf ("{\"n\":%u}", total - MIN (total, history_size) + i);

      g_assert_cmpstr (payload, ==, expected);
    }
}

static void
test_history_item_out_of_range (void)
{
  g_autoptr(PubsubTopic) topic = pubsub_topic_new ("t", 3);
  g_autoptr(PubsubMessage) message = message_new_numbered ("t", 0);

  pubsub_topic_publish (topic, message);
  g_test_expect_message ("pubsubd", G_LOG_LEVEL_CRITICAL, "*index < self->history_length*");
  g_assert_null (pubsub_topic_get_history_item (topic, 1));
  g_test_assert_expected_messages ();
}

static void
test_counters_and_notify (void)
{
  g_autoptr(PubsubTopic) topic = pubsub_topic_new ("t", 2);
  guint notify_messages = 0;
  guint notify_subscribers = 0;
  guint64 messages = 0;
  guint subscribers = 0;

  g_signal_connect (topic, "notify::messages", G_CALLBACK (count_notify), &notify_messages);
  g_signal_connect (topic, "notify::subscribers", G_CALLBACK (count_notify), &notify_subscribers);

  for (guint n = 0; n < 10; n++)
    {
      g_autoptr(PubsubMessage) message = message_new_numbered ("t", n);

      pubsub_topic_publish (topic, message);
    }
  /* Counted since creation, not capped by the history of 2. */
  g_assert_cmpuint (pubsub_topic_get_messages (topic), ==, 10);
  g_assert_cmpuint (pubsub_topic_get_history_length (topic), ==, 2);
  g_assert_cmpuint (notify_messages, ==, 10);
  g_assert_cmpuint (notify_subscribers, ==, 0);
  g_object_get (topic, "messages", &messages, NULL);
  g_assert_cmpuint (messages, ==, 10);

  pubsub_topic_add_subscriber (topic, "client");
  pubsub_topic_add_subscriber (topic, "client");
  pubsub_topic_add_subscriber (topic, "client");
  g_assert_cmpuint (pubsub_topic_get_subscribers (topic), ==, 3);
  g_assert_cmpuint (notify_subscribers, ==, 3);
  pubsub_topic_remove_subscriber (topic, "client", PUBSUB_LEAVE_UNSUBSCRIBED);
  g_assert_cmpuint (pubsub_topic_get_subscribers (topic), ==, 2);
  g_assert_cmpuint (notify_subscribers, ==, 4);
  g_object_get (topic, "subscribers", &subscribers, NULL);
  g_assert_cmpuint (subscribers, ==, 2);
  g_assert_cmpuint (notify_messages, ==, 10);
  pubsub_topic_remove_subscriber (topic, "client", PUBSUB_LEAVE_UNSUBSCRIBED);
  pubsub_topic_remove_subscriber (topic, "client", PUBSUB_LEAVE_UNSUBSCRIBED);
  g_assert_cmpuint (pubsub_topic_get_subscribers (topic), ==, 0);
  g_assert_cmpuint (notify_subscribers, ==, 6);

  /* Never below zero. */
  g_test_expect_message ("pubsubd", G_LOG_LEVEL_CRITICAL, "*subscribers > 0*");
  pubsub_topic_remove_subscriber (topic, "client", PUBSUB_LEAVE_UNSUBSCRIBED);
  g_test_assert_expected_messages ();
  g_assert_cmpuint (pubsub_topic_get_subscribers (topic), ==, 0);
  g_assert_cmpuint (notify_subscribers, ==, 6);
}

typedef struct {
  PubsubTopic   *topic;
  PubsubMessage *seen[2];
  GBytes        *frames[2];
  guint          calls[2];
  guint          history_length_seen;
  guint64        messages_seen;
} EventData;

static void
on_event_0 (PubsubTopic   *topic,
            PubsubMessage *message,
            EventData     *data)
{
  g_assert_true (topic == data->topic);
  data->seen[0] = message;
  data->frames[0] = pubsub_message_get_frame (message);
  data->calls[0]++;
  /* Emitted after the history and the counter are updated. */
  data->history_length_seen = pubsub_topic_get_history_length (topic);
  g_assert_true (pubsub_topic_get_history_item (topic, data->history_length_seen - 1) == message);
  data->messages_seen = pubsub_topic_get_messages (topic);
}

static void
on_event_1 (PubsubTopic   *topic,
            PubsubMessage *message,
            EventData     *data)
{
  data->seen[1] = message;
  data->frames[1] = pubsub_message_get_frame (message);
  data->calls[1]++;
}

static void
test_event_signal (void)
{
  g_autoptr(PubsubTopic) topic = pubsub_topic_new ("t", 4);
  EventData data = { topic, { NULL }, { NULL }, { 0 }, 0, 0 };

  g_signal_connect (topic, "event", G_CALLBACK (on_event_0), &data);
  g_signal_connect (topic, "event", G_CALLBACK (on_event_1), &data);

  for (guint n = 0; n < 6; n++)
    {
      g_autoptr(PubsubMessage) message = message_new_numbered ("t", n);
      GBytes *frame = pubsub_message_get_frame (message);

      pubsub_topic_publish (topic, message);
      /* Once per handler per publish. */
      g_assert_cmpuint (data.calls[0], ==, n + 1);
      g_assert_cmpuint (data.calls[1], ==, n + 1);
      /* The same message and the very same bytes for every handler. */
      g_assert_true (data.seen[0] == message);
      g_assert_true (data.seen[1] == message);
      g_assert_true (data.frames[0] == frame);
      g_assert_true (data.frames[1] == frame);
      g_assert_true (pubsub_message_get_frame (pubsub_topic_get_history_item (
                       topic, pubsub_topic_get_history_length (topic) - 1)) == frame);
      g_assert_cmpuint (data.history_length_seen, ==, MIN (n + 1, 4));
      g_assert_cmpuint (data.messages_seen, ==, n + 1);
    }
}

static void
count_signal (gpointer instance,
              gpointer user_data)
{
  (*(guint *) user_data)++;
}

static void
test_deleted_signal (void)
{
  g_autoptr(PubsubTopic) topic = pubsub_topic_new ("t", 1);
  guint deleted = 0;

  g_signal_connect (topic, "deleted", G_CALLBACK (count_signal), &deleted);
  g_assert_cmpuint (deleted, ==, 0);
  pubsub_topic_mark_deleted (topic);
  g_assert_cmpuint (deleted, ==, 1);
}

/* ---------------------------------------------------------------------- */
/* Broker                                                                 */

typedef struct {
  GPtrArray *created;   /* topic names, in order */
  GPtrArray *deleted;
  guint      topic_deleted_signals;   /* "deleted" on the topic itself */
  gboolean   topic_deleted_first;     /* topic's "deleted" came before the broker's signal */
} BrokerEvents;

static void
on_topic_created (PubsubBroker *broker,
                  PubsubTopic  *topic,
                  BrokerEvents *events)
{
  g_assert_true (PUBSUB_IS_TOPIC (topic));
  /* Already registered when announced. */
  g_assert_true (pubsub_broker_lookup_topic (broker, pubsub_topic_get_name (topic)) == topic);
  g_ptr_array_add (events->created, g_strdup (pubsub_topic_get_name (topic)));
}

static void
on_topic_deleted (PubsubBroker *broker,
                  PubsubTopic  *topic,
                  BrokerEvents *events)
{
  g_assert_true (PUBSUB_IS_TOPIC (topic));
  g_assert_null (pubsub_broker_lookup_topic (broker, pubsub_topic_get_name (topic)));
  events->topic_deleted_first = events->topic_deleted_signals ==
                                events->deleted->len + 1;
  g_ptr_array_add (events->deleted, g_strdup (pubsub_topic_get_name (topic)));
}

static void
on_own_topic_deleted (PubsubTopic  *topic,
                      BrokerEvents *events)
{
  events->topic_deleted_signals++;
}

static void
broker_events_init (BrokerEvents *events,
                    PubsubBroker *broker)
{
  events->created = g_ptr_array_new_with_free_func (g_free);
  events->deleted = g_ptr_array_new_with_free_func (g_free);
  events->topic_deleted_signals = 0;
  events->topic_deleted_first = FALSE;
  g_signal_connect (broker, "topic-created", G_CALLBACK (on_topic_created), events);
  g_signal_connect (broker, "topic-deleted", G_CALLBACK (on_topic_deleted), events);
}

static void
broker_events_clear (BrokerEvents *events)
{
  g_clear_pointer (&events->created, g_ptr_array_unref);
  g_clear_pointer (&events->deleted, g_ptr_array_unref);
}

static void
test_broker_create (void)
{
  g_autoptr(PubsubBroker) broker = pubsub_broker_new (pubsub_frame_new_event, 5, 100);
  g_autoptr(GError) error = NULL;
  BrokerEvents events;
  guint notify_count = 0;
  PubsubTopic *topic;
  guint history_size = 0;

  broker_events_init (&events, broker);
  g_signal_connect (broker, "notify::topic-count", G_CALLBACK (count_notify), &notify_count);

  topic = pubsub_broker_create_topic (broker, "orders", &error);
  g_assert_no_error (error);
  g_assert_nonnull (topic);
  g_assert_cmpstr (pubsub_topic_get_name (topic), ==, "orders");
  g_object_get (topic, "history-size", &history_size, NULL);
  g_assert_cmpuint (history_size, ==, 5);
  g_assert_true (pubsub_broker_lookup_topic (broker, "orders") == topic);
  g_assert_true (pubsub_broker_get_topic (broker, "orders", &error) == topic);
  g_assert_no_error (error);
  g_assert_cmpuint (pubsub_broker_get_topic_count (broker), ==, 1);
  g_assert_cmpuint (events.created->len, ==, 1);
  g_assert_cmpstr (g_ptr_array_index (events.created, 0), ==, "orders");
  g_assert_cmpuint (notify_count, ==, 1);

  /* Duplicate. */
  g_assert_null (pubsub_broker_create_topic (broker, "orders", &error));
  g_assert_error (error, PUBSUB_ERROR, PUBSUB_ERROR_TOPIC_EXISTS);
  g_assert_nonnull (strstr (error->message, "'orders'"));
  g_clear_error (&error);
  g_assert_true (pubsub_broker_lookup_topic (broker, "orders") == topic);

  /* Names are case-sensitive. */
  g_assert_nonnull (pubsub_broker_create_topic (broker, "Orders", &error));
  g_assert_no_error (error);

  /* Invalid names. */
  {
    static const char *const invalid[] = {
      "", "a b", "a/b", "caf\xc3\xa9", "x*",
      "01234567890123456789012345678901234567890123456789012345678901234567890123456789"
      "0123456789012345678901234567890123456789012345678",   /* 129 */
    };

    for (gsize i = 0; i < G_N_ELEMENTS (invalid); i++)
      {
        g_assert_null (pubsub_broker_create_topic (broker, invalid[i], &error));
        g_assert_error (error, PUBSUB_ERROR, PUBSUB_ERROR_BAD_REQUEST);
        g_assert_nonnull (strstr (error->message, "invalid topic name"));
        g_clear_error (&error);
      }
  }
  /* 128 is fine. */
  {
    g_autofree char *name = g_strnfill (128, 'n');

    g_assert_nonnull (pubsub_broker_create_topic (broker, name, &error));
    g_assert_no_error (error);
  }

  g_assert_cmpuint (pubsub_broker_get_topic_count (broker), ==, 3);
  g_assert_cmpuint (events.created->len, ==, 3);
  g_assert_cmpuint (notify_count, ==, 3);
  g_assert_cmpuint (events.deleted->len, ==, 0);
  broker_events_clear (&events);
}

static void
test_broker_max_topics (void)
{
  g_autoptr(PubsubBroker) broker = pubsub_broker_new (pubsub_frame_new_event, 1, 2);
  g_autoptr(GError) error = NULL;
  guint max_topics = 0;

  g_object_get (broker, "max-topics", &max_topics, NULL);
  g_assert_cmpuint (max_topics, ==, 2);
  g_assert_nonnull (pubsub_broker_create_topic (broker, "a", NULL));
  g_assert_nonnull (pubsub_broker_create_topic (broker, "b", NULL));

  g_assert_null (pubsub_broker_create_topic (broker, "c", &error));
  g_assert_error (error, PUBSUB_ERROR, PUBSUB_ERROR_LIMIT_EXCEEDED);
  g_assert_nonnull (strstr (error->message, "'c'"));
  g_assert_nonnull (strstr (error->message, "2"));
  g_clear_error (&error);
  g_assert_null (pubsub_broker_lookup_topic (broker, "c"));
  g_assert_cmpuint (pubsub_broker_get_topic_count (broker), ==, 2);

  /* At the limit, the other errors still say what is wrong. */
  g_assert_null (pubsub_broker_create_topic (broker, "a", &error));
  g_assert_error (error, PUBSUB_ERROR, PUBSUB_ERROR_TOPIC_EXISTS);
  g_clear_error (&error);
  g_assert_null (pubsub_broker_create_topic (broker, "no good", &error));
  g_assert_error (error, PUBSUB_ERROR, PUBSUB_ERROR_BAD_REQUEST);
  g_clear_error (&error);

  /* A deletion makes room. */
  g_assert_true (pubsub_broker_delete_topic (broker, "a", NULL));
  g_assert_nonnull (pubsub_broker_create_topic (broker, "c", &error));
  g_assert_no_error (error);
  g_assert_null (pubsub_broker_create_topic (broker, "d", &error));
  g_assert_error (error, PUBSUB_ERROR, PUBSUB_ERROR_LIMIT_EXCEEDED);
}

static void
test_broker_delete (void)
{
  g_autoptr(PubsubBroker) broker = pubsub_broker_new (pubsub_frame_new_event, 3, 10);
  g_autoptr(GError) error = NULL;
  BrokerEvents events;
  PubsubTopic *topic;
  PubsubTopic *weak;
  guint notify_topics = 0;
  guint notify_subscribers = 0;

  broker_events_init (&events, broker);
  topic = pubsub_broker_create_topic (broker, "orders", NULL);
  g_signal_connect (topic, "deleted", G_CALLBACK (on_own_topic_deleted), &events);
  weak = topic;
  g_object_add_weak_pointer (G_OBJECT (topic), (gpointer *) &weak);
  g_signal_connect (broker, "notify::topic-count", G_CALLBACK (count_notify), &notify_topics);
  g_signal_connect (broker, "notify::subscriber-count", G_CALLBACK (count_notify),
                    &notify_subscribers);

  /* Missing. */
  g_assert_false (pubsub_broker_delete_topic (broker, "nope", &error));
  g_assert_error (error, PUBSUB_ERROR, PUBSUB_ERROR_TOPIC_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "'nope'"));
  g_clear_error (&error);
  g_assert_cmpuint (events.deleted->len, ==, 0);
  g_assert_cmpuint (notify_topics, ==, 0);

  /* Existing: the topic hears "deleted" first, then the broker announces it,
   * and the broker's reference goes. */
  g_assert_true (pubsub_broker_delete_topic (broker, "orders", &error));
  g_assert_no_error (error);
  g_assert_cmpuint (events.topic_deleted_signals, ==, 1);
  g_assert_cmpuint (events.deleted->len, ==, 1);
  g_assert_cmpstr (g_ptr_array_index (events.deleted, 0), ==, "orders");
  g_assert_true (events.topic_deleted_first);
  g_assert_null (pubsub_broker_lookup_topic (broker, "orders"));
  g_assert_cmpuint (pubsub_broker_get_topic_count (broker), ==, 0);
  g_assert_cmpuint (notify_topics, ==, 1);
  g_assert_null (weak);

  /* Gone for good. */
  g_assert_false (pubsub_broker_delete_topic (broker, "orders", &error));
  g_assert_error (error, PUBSUB_ERROR, PUBSUB_ERROR_TOPIC_NOT_FOUND);
  g_clear_error (&error);
  g_assert_null (pubsub_broker_get_topic (broker, "orders", &error));
  g_assert_error (error, PUBSUB_ERROR, PUBSUB_ERROR_TOPIC_NOT_FOUND);
  g_clear_error (&error);

  /* Re-created: a fresh topic with no history. */
  topic = pubsub_broker_create_topic (broker, "orders", NULL);
  g_assert_nonnull (topic);
  g_assert_cmpuint (pubsub_topic_get_history_length (topic), ==, 0);
  g_assert_cmpuint (pubsub_topic_get_messages (topic), ==, 0);
  broker_events_clear (&events);
}

/* Somebody still holding the topic (a subscriber) keeps it alive, but it is
 * no longer the broker's and no longer tied to its counters. */
static void
test_broker_delete_held (void)
{
  g_autoptr(PubsubBroker) broker = pubsub_broker_new (pubsub_frame_new_event, 3, 10);
  g_autoptr(PubsubTopic) held = NULL;
  g_autoptr(GError) error = NULL;
  guint notify_subscribers = 0;

  held = g_object_ref (pubsub_broker_create_topic (broker, "t", NULL));
  g_signal_connect (broker, "notify::subscriber-count", G_CALLBACK (count_notify),
                    &notify_subscribers);
  pubsub_topic_add_subscriber (held, "client");
  g_assert_cmpuint (notify_subscribers, ==, 1);
  g_assert_cmpuint (pubsub_broker_get_subscriber_count (broker), ==, 1);

  g_assert_true (pubsub_broker_delete_topic (broker, "t", NULL));
  g_assert_cmpuint (pubsub_broker_get_subscriber_count (broker), ==, 0);
  notify_subscribers = 0;
  pubsub_topic_remove_subscriber (held, "client", PUBSUB_LEAVE_UNSUBSCRIBED);
  g_assert_cmpuint (notify_subscribers, ==, 0);

  g_assert_null (pubsub_broker_publish (broker, "t", UUID, "1", 1, &error));
  g_assert_error (error, PUBSUB_ERROR, PUBSUB_ERROR_TOPIC_NOT_FOUND);
}

static void
test_broker_list_sorted (void)
{
  static const char *const names[] = { "b", "a", "B", "_", "0", "a.b", ":", "a-", "A", "ab" };
  static const char *const sorted[] = { "0", ":", "A", "B", "_", "a", "a-", "a.b", "ab", "b" };
  g_autoptr(PubsubBroker) broker = pubsub_broker_new (pubsub_frame_new_event, 1, 100);
  g_autoptr(GPtrArray) list = NULL;

  list = pubsub_broker_list_topics (broker);
  g_assert_cmpuint (list->len, ==, 0);
  g_clear_pointer (&list, g_ptr_array_unref);

  for (gsize i = 0; i < G_N_ELEMENTS (names); i++)
    g_assert_nonnull (pubsub_broker_create_topic (broker, names[i], NULL));
  list = pubsub_broker_list_topics (broker);
  g_assert_cmpuint (list->len, ==, G_N_ELEMENTS (sorted));
  for (guint i = 0; i < list->len; i++)
    {
      PubsubTopic *topic = g_ptr_array_index (list, i);

      g_assert_cmpstr (pubsub_topic_get_name (topic), ==, sorted[i]);
      g_assert_true (pubsub_broker_lookup_topic (broker, sorted[i]) == topic);
    }

  /* The list holds its own references: it outlives a deletion. */
  g_assert_true (pubsub_broker_delete_topic (broker, "B", NULL));
  g_assert_cmpstr (pubsub_topic_get_name (g_ptr_array_index (list, 3)), ==, "B");
  g_clear_pointer (&list, g_ptr_array_unref);
  list = pubsub_broker_list_topics (broker);
  g_assert_cmpuint (list->len, ==, G_N_ELEMENTS (sorted) - 1);
  g_assert_cmpstr (pubsub_topic_get_name (g_ptr_array_index (list, 3)), ==, "_");
}

static void
test_broker_subscriber_count (void)
{
  g_autoptr(PubsubBroker) broker = pubsub_broker_new (pubsub_frame_new_event, 1, 10);
  PubsubTopic *a = pubsub_broker_create_topic (broker, "a", NULL);
  PubsubTopic *b = pubsub_broker_create_topic (broker, "b", NULL);
  guint notify_count = 0;
  guint count = 99;

  g_signal_connect (broker, "notify::subscriber-count", G_CALLBACK (count_notify), &notify_count);
  pubsub_topic_add_subscriber (a, "client");
  pubsub_topic_add_subscriber (a, "client");
  pubsub_topic_add_subscriber (b, "client");
  g_assert_cmpuint (pubsub_broker_get_subscriber_count (broker), ==, 3);
  g_assert_cmpuint (notify_count, ==, 3);
  g_object_get (broker, "subscriber-count", &count, NULL);
  g_assert_cmpuint (count, ==, 3);
  pubsub_topic_remove_subscriber (a, "client", PUBSUB_LEAVE_UNSUBSCRIBED);
  g_assert_cmpuint (pubsub_broker_get_subscriber_count (broker), ==, 2);
  g_assert_cmpuint (notify_count, ==, 4);

  /* Deleting a topic drops its subscriptions from the total, and says so. */
  g_assert_true (pubsub_broker_delete_topic (broker, "a", NULL));
  g_assert_cmpuint (pubsub_broker_get_subscriber_count (broker), ==, 1);
  g_assert_cmpuint (notify_count, ==, 5);
  pubsub_topic_remove_subscriber (b, "client", PUBSUB_LEAVE_UNSUBSCRIBED);
}

static void
test_broker_publish (void)
{
  static const char payload[] = "{\"big\":12345678901234567890,\"inf\":1e400}";
  g_autoptr(PubsubBroker) broker = pubsub_broker_new (pubsub_frame_new_event, 2, 10);
  g_autoptr(GError) error = NULL;
  PubsubTopic *topic = pubsub_broker_create_topic (broker, "t", NULL);
  EventData data = { topic, { NULL }, { NULL }, { 0 }, 0, 0 };

  g_signal_connect (topic, "event", G_CALLBACK (on_event_1), &data);

  g_assert_null (pubsub_broker_publish (broker, "missing", UUID, "1", 1, &error));
  g_assert_error (error, PUBSUB_ERROR, PUBSUB_ERROR_TOPIC_NOT_FOUND);
  g_assert_cmpstr (error->message, ==, "topic 'missing' does not exist");
  g_clear_error (&error);
  g_assert_cmpuint (data.calls[1], ==, 0);

  for (guint n = 0; n < 3; n++)
    {
      g_autoptr(PubsubMessage) message = pubsub_broker_publish (broker, "t", UUID, payload,
                                                                sizeof payload - 1, &error);
      g_autofree char *got = NULL;

      g_assert_no_error (error);
      g_assert_nonnull (message);
      /* The subscribers got this very message. */
      g_assert_true (data.seen[1] == message);
      g_assert_cmpuint (data.calls[1], ==, n + 1);
      g_assert_true (pubsub_topic_get_history_item (
                       topic, pubsub_topic_get_history_length (topic) - 1) == message);
      got = event_payload (message);
      g_assert_cmpstr (got, ==, payload);
    }
  g_assert_cmpuint (pubsub_topic_get_messages (topic), ==, 3);
  g_assert_cmpuint (pubsub_topic_get_history_length (topic), ==, 2);
}

typedef struct {
  const char *name;
  const char *topic;
  const char *id;          /* NULL allowed */
  const char *payload;
  gint        code;        /* -1: success */
  const char *message;     /* substring of the error message */
  const char *forwarded;   /* payload text in the event, on success */
} PublishJsonRow;

static const PublishJsonRow publish_json_rows[] = {
  { "ok", "t", UUID, "{\"a\":1}", -1, NULL, "{\"a\":1}" },
  { "ok-whitespace-trimmed", "t", UUID, " \n {\"a\" : [1, 2]}\t ", -1, NULL, "{\"a\" : [1, 2]}" },
  { "ok-big-integer", "t", UUID, "12345678901234567890", -1, NULL, "12345678901234567890" },
  { "ok-1e400", "t", UUID, "1e400", -1, NULL, "1e400" },
  { "ok-minus-zero", "t", UUID, "-0.0", -1, NULL, "-0.0" },
  { "ok-nul-escape", "t", UUID, "\"a\\u0000b\"", -1, NULL, "\"a\\u0000b\"" },
  { "ok-u001f", "t", UUID, "\"\\u001f\"", -1, NULL, "\"\\u001f\"" },
  { "ok-null", "t", UUID, "null", -1, NULL, "null" },
  { "ok-upper-uuid", "t", "123E4567-E89B-12D3-A456-426614174000", "1", -1, NULL, "1" },
  { "bad-topic-name", "a b", UUID, "1", PUBSUB_ERROR_BAD_REQUEST, "invalid topic name", NULL },
  { "bad-topic-empty", "", UUID, "1", PUBSUB_ERROR_BAD_REQUEST, "invalid topic name", NULL },
  { "missing-topic", "missing", UUID, "1", PUBSUB_ERROR_TOPIC_NOT_FOUND, "'missing'", NULL },
  { "bad-uuid", "t", "not-a-uuid", "1", PUBSUB_ERROR_BAD_REQUEST, "valid UUID", NULL },
  { "bad-uuid-long", "t", UUID "0", "1", PUBSUB_ERROR_BAD_REQUEST, "valid UUID", NULL },
  { "bad-uuid-braces", "t", "{" UUID "}", "1", PUBSUB_ERROR_BAD_REQUEST, "valid UUID", NULL },
  { "bad-json-empty", "t", UUID, "", PUBSUB_ERROR_BAD_REQUEST, "payload: not valid JSON", NULL },
  { "bad-json-space", "t", UUID, "  ", PUBSUB_ERROR_BAD_REQUEST, "payload: not valid JSON", NULL },
  { "bad-json-single-quotes", "t", UUID, "{'a':1}", PUBSUB_ERROR_BAD_REQUEST,
    "payload: not valid JSON", NULL },
  { "bad-json-comment", "t", UUID, "/**/1", PUBSUB_ERROR_BAD_REQUEST, "payload: not valid JSON", NULL },
  { "bad-json-leading-zero", "t", UUID, "01", PUBSUB_ERROR_BAD_REQUEST, "payload: not valid JSON", NULL },
  { "bad-json-trailing", "t", UUID, "[1] [2]", PUBSUB_ERROR_BAD_REQUEST,
    "payload: not valid JSON", NULL },
  { "bad-json-trailing-comma", "t", UUID, "[1,]", PUBSUB_ERROR_BAD_REQUEST,
    "payload: not valid JSON", NULL },
  { "bad-json-nan", "t", UUID, "NaN", PUBSUB_ERROR_BAD_REQUEST, "payload: not valid JSON", NULL },
  { "bad-json-utf8", "t", UUID, "\"\xff\"", PUBSUB_ERROR_BAD_REQUEST, "payload: not valid JSON", NULL },
  /* Validation comes before the topic lookup. */
  { "bad-json-missing-topic", "missing", UUID, "{", PUBSUB_ERROR_BAD_REQUEST,
    "payload: not valid JSON", NULL },
  { "bad-uuid-missing-topic", "missing", "x", "1", PUBSUB_ERROR_BAD_REQUEST, "valid UUID", NULL },
};

static void
test_broker_publish_json (gconstpointer user_data)
{
  const PublishJsonRow *row = user_data;
  g_autoptr(PubsubBroker) broker = pubsub_broker_new (pubsub_frame_new_event, 10, 10);
  g_autoptr(GError) error = NULL;
  g_autoptr(PubsubMessage) message = NULL;
  PubsubTopic *topic = pubsub_broker_create_topic (broker, "t", NULL);

  message = pubsub_publish_json (broker, row->topic, row->id, row->payload, &error);
  if (row->code < 0)
    {
      g_autofree char *payload = NULL;
      g_autofree char *id = NULL;

      g_assert_no_error (error);
      g_assert_nonnull (message);
      g_assert_cmpstr (pubsub_message_get_id (message), ==, row->id);
      event_fields (message, &payload, &id, NULL);
      g_assert_cmpstr (payload, ==, row->forwarded);
      g_assert_cmpstr (id, ==, row->id);
      /* Nothing around the payload's span is forwarded either. */
      {
        GBytes *frame = pubsub_message_get_frame (message);
        gsize size;
        const char *data = g_bytes_get_data (frame, &size);
        gsize header = pubsub_ws_frame_payload_offset (frame);
        g_autofree char *prefix = g_strdup_printf ("{\"type\":\"event\",\"topic\":\"t\",\"message\":"
                                                   "{\"id\":\"%s\",\"payload\":%s},\"ts\":\"",
                                                   row->id, row->forwarded);

        g_assert_cmpuint (size - header, ==, strlen (prefix) + PUBSUB_TIMESTAMP_LEN + 2);
        g_assert_cmpmem (data + header, strlen (prefix), prefix, strlen (prefix));
      }
      g_assert_cmpuint (pubsub_topic_get_messages (topic), ==, 1);
      g_assert_true (pubsub_topic_get_history_item (topic, 0) == message);
    }
  else
    {
      g_assert_null (message);
      g_assert_error (error, PUBSUB_ERROR, row->code);
      if (strstr (error->message, row->message) == NULL)
        g_error ("'%s': expected an error containing \"%s\", got \"%s\"",
                 row->name, row->message, error->message);
      g_assert_cmpuint (pubsub_topic_get_messages (topic), ==, 0);
    }
}

/* An empty or missing id: the broker makes a fresh UUID. */
static void
test_broker_publish_json_fresh_id (void)
{
  g_autoptr(PubsubBroker) broker = pubsub_broker_new (pubsub_frame_new_event, 10, 10);
  g_autoptr(GError) error = NULL;
  g_autoptr(PubsubMessage) first = NULL;
  g_autoptr(PubsubMessage) second = NULL;
  g_autofree char *id_in_frame = NULL;

  g_assert_nonnull (pubsub_broker_create_topic (broker, "t", NULL));
  first = pubsub_publish_json (broker, "t", "", "1", &error);
  g_assert_no_error (error);
  second = pubsub_publish_json (broker, "t", NULL, "2", &error);
  g_assert_no_error (error);

  g_assert_cmpuint (strlen (pubsub_message_get_id (first)), ==, PUBSUB_UUID_LEN);
  g_assert_true (g_uuid_string_is_valid (pubsub_message_get_id (first)));
  g_assert_true (g_uuid_string_is_valid (pubsub_message_get_id (second)));
  g_assert_cmpstr (pubsub_message_get_id (first), !=, pubsub_message_get_id (second));
  event_fields (first, NULL, &id_in_frame, NULL);
  g_assert_cmpstr (id_in_frame, ==, pubsub_message_get_id (first));
}

static void
test_broker_properties (void)
{
  gint64 before = g_get_real_time ();
  g_autoptr(PubsubBroker) broker = pubsub_broker_new (pubsub_frame_new_event, 4, 9);
  gint64 after = g_get_real_time ();
  guint history_size = 0;
  guint topic_count = 99;
  gint64 start_time = 0;

  g_object_get (broker, "history-size", &history_size, "topic-count", &topic_count,
                "start-time", &start_time, NULL);
  g_assert_cmpuint (history_size, ==, 4);
  g_assert_cmpuint (topic_count, ==, 0);
  g_assert_cmpint (start_time, >=, before);
  g_assert_cmpint (start_time, <=, after);
  g_assert_cmpint (pubsub_broker_get_start_time (broker), ==, start_time);
  g_assert_cmpuint (pubsub_broker_get_uptime (broker), <, 5);
}

/* Topics may outlive the broker for a moment at shutdown. */
static void
test_broker_dispose (void)
{
  PubsubBroker *broker = pubsub_broker_new (pubsub_frame_new_event, 4, 9);
  PubsubBroker *weak = broker;
  g_autoptr(PubsubTopic) topic = g_object_ref (pubsub_broker_create_topic (broker, "t", NULL));
  g_autoptr(PubsubMessage) message = message_new_numbered ("t", 1);

  g_object_add_weak_pointer (G_OBJECT (broker), (gpointer *) &weak);
  g_object_unref (broker);
  g_assert_null (weak);

  /* Nothing left connected to the dead broker. */
  pubsub_topic_add_subscriber (topic, "client");
  pubsub_topic_remove_subscriber (topic, "client", PUBSUB_LEAVE_UNSUBSCRIBED);
  pubsub_topic_publish (topic, message);
  g_assert_cmpuint (pubsub_topic_get_messages (topic), ==, 1);
}

/* Who joined and who left, and why, with the count already updated. */
typedef struct {
  GString *log;
} MembershipLog;

static void
on_subscriber_joined (PubsubTopic   *topic,
                      const char    *client_id,
                      MembershipLog *log)
{
  g_string_append_printf (log->log, "+%s(%u) ", client_id, pubsub_topic_get_subscribers (topic));
}

static void
on_subscriber_left (PubsubTopic       *topic,
                    const char        *client_id,
                    PubsubLeaveReason  reason,
                    MembershipLog     *log)
{
  g_string_append_printf (log->log, "-%s:%s(%u) ", client_id,
                          pubsub_leave_reason_to_string (reason),
                          pubsub_topic_get_subscribers (topic));
}

static void
test_subscriber_signals (void)
{
  g_autoptr(PubsubTopic) topic = pubsub_topic_new ("t", 4);
  MembershipLog log = { g_string_new (NULL) };
  g_autoptr(GEnumClass) reasons = g_type_class_ref (PUBSUB_TYPE_LEAVE_REASON);

  g_signal_connect (topic, "subscriber-joined", G_CALLBACK (on_subscriber_joined), &log);
  g_signal_connect (topic, "subscriber-left", G_CALLBACK (on_subscriber_left), &log);

  pubsub_topic_add_subscriber (topic, "a");
  pubsub_topic_add_subscriber (topic, "b");
  pubsub_topic_remove_subscriber (topic, "a", PUBSUB_LEAVE_UNSUBSCRIBED);
  pubsub_topic_remove_subscriber (topic, "b", PUBSUB_LEAVE_SLOW_CONSUMER);
  pubsub_topic_add_subscriber (topic, "");
  pubsub_topic_remove_subscriber (topic, "", PUBSUB_LEAVE_SHUTDOWN);
  g_assert_cmpstr (log.log->str, ==,
                   "+a(1) +b(2) -a:unsubscribed(1) -b:slow_consumer(0) +(1) -:shutdown(0) ");

  /* The names D-Bus shows, and the enum's nicks, are the same. */
  g_assert_cmpstr (pubsub_leave_reason_to_string (PUBSUB_LEAVE_CLOSED), ==, "closed");
  g_assert_cmpstr (pubsub_leave_reason_to_string (PUBSUB_LEAVE_TOPIC_DELETED), ==,
                   "topic_deleted");
  for (guint i = 0; i < reasons->n_values; i++)
    g_assert_cmpstr (reasons->values[i].value_nick, ==,
                     pubsub_leave_reason_to_string (reasons->values[i].value));
  g_assert_cmpuint (reasons->n_values, ==, 5);

  g_string_free (log.log, TRUE);
}

/* The monotonic time a message was made: where its delivery latency starts. */
static void
test_message_accepted (void)
{
  gint64 before = g_get_monotonic_time ();
  g_autoptr(PubsubMessage) message = message_new_numbered ("t", 1);
  gint64 after = g_get_monotonic_time ();

  g_assert_cmpint (pubsub_message_get_accepted (message), >=, before);
  g_assert_cmpint (pubsub_message_get_accepted (message), <=, after);
}

/* ---------------------------------------------------------------------- */

int
main (int    argc,
      char **argv)
{
  static const guint history_sizes[] = { 0, 1, 2, 5, 100 };

  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/message/new", test_message);
  g_test_add_func ("/message/accepted", test_message_accepted);

  g_test_add_func ("/topic/properties", test_topic_properties);
  for (gsize i = 0; i < G_N_ELEMENTS (history_sizes); i++)
    {
      g_autofree char *path = g_strdup_printf ("/topic/history/size-%u", history_sizes[i]);

      g_test_add_data_func (path, GUINT_TO_POINTER (history_sizes[i]), check_history);
    }
  g_test_add_func ("/topic/history/out-of-range", test_history_item_out_of_range);
  g_test_add_func ("/topic/counters-and-notify", test_counters_and_notify);
  g_test_add_func ("/topic/event-signal", test_event_signal);
  g_test_add_func ("/topic/deleted-signal", test_deleted_signal);
  g_test_add_func ("/topic/subscriber-signals", test_subscriber_signals);

  g_test_add_func ("/broker/create", test_broker_create);
  g_test_add_func ("/broker/max-topics", test_broker_max_topics);
  g_test_add_func ("/broker/delete", test_broker_delete);
  g_test_add_func ("/broker/delete-held", test_broker_delete_held);
  g_test_add_func ("/broker/list-sorted", test_broker_list_sorted);
  g_test_add_func ("/broker/subscriber-count", test_broker_subscriber_count);
  g_test_add_func ("/broker/publish", test_broker_publish);
  for (gsize i = 0; i < G_N_ELEMENTS (publish_json_rows); i++)
    {
      g_autofree char *path = g_strdup_printf ("/broker/publish-json/%s", publish_json_rows[i].name);

      g_test_add_data_func (path, &publish_json_rows[i], test_broker_publish_json);
    }
  g_test_add_func ("/broker/publish-json/fresh-id", test_broker_publish_json_fresh_id);
  g_test_add_func ("/broker/properties", test_broker_properties);
  g_test_add_func ("/broker/dispose", test_broker_dispose);

  return g_test_run ();
}
