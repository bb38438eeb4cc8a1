/* test-broker.c: the broker (src/model/pubsub-broker.c)
 *
 * create / duplicate / invalid / limit / delete / list order / publish /
 * publish_json and its validation, and its signals.
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <string.h>

#include <glib-object.h>

#include "pubsub-broker.h"
#include "pubsub-error.h"
#include "pubsub-message.h"
#include "pubsub-protocol.h"
#include "pubsub-test-model.h"
#include "pubsub-topic.h"
#include "pubsub-ws-frame.h"

#define UUID PUBSUB_TEST_UUID

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
  g_autoptr(PubsubBroker) broker = pubsub_broker_new (NULL, pubsub_frame_new_event, 5, 100);
  g_autoptr(GError) error = NULL;
  BrokerEvents events;
  guint notify_count = 0;
  PubsubTopic *topic;
  guint history_size = 0;

  broker_events_init (&events, broker);
  g_signal_connect (broker, "notify::topic-count", G_CALLBACK (pubsub_test_count_notify), &notify_count);

  topic = pubsub_test_broker_create (broker, "orders", &error);
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
  g_assert_null (pubsub_test_broker_create (broker, "orders", &error));
  g_assert_error (error, PUBSUB_ERROR, PUBSUB_ERROR_TOPIC_EXISTS);
  g_assert_nonnull (strstr (error->message, "'orders'"));
  g_clear_error (&error);
  g_assert_true (pubsub_broker_lookup_topic (broker, "orders") == topic);

  /* Names are case-sensitive. */
  g_assert_nonnull (pubsub_test_broker_create (broker, "Orders", &error));
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
        g_assert_null (pubsub_test_broker_create (broker, invalid[i], &error));
        g_assert_error (error, PUBSUB_ERROR, PUBSUB_ERROR_BAD_REQUEST);
        g_assert_nonnull (strstr (error->message, "invalid topic name"));
        g_clear_error (&error);
      }
  }
  /* 128 is fine. */
  {
    g_autofree char *name = g_strnfill (128, 'n');

    g_assert_nonnull (pubsub_test_broker_create (broker, name, &error));
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
  g_autoptr(PubsubBroker) broker = pubsub_broker_new (NULL, pubsub_frame_new_event, 1, 2);
  g_autoptr(GError) error = NULL;
  guint max_topics = 0;

  g_object_get (broker, "max-topics", &max_topics, NULL);
  g_assert_cmpuint (max_topics, ==, 2);
  g_assert_nonnull (pubsub_test_broker_create (broker, "a", NULL));
  g_assert_nonnull (pubsub_test_broker_create (broker, "b", NULL));

  g_assert_null (pubsub_test_broker_create (broker, "c", &error));
  g_assert_error (error, PUBSUB_ERROR, PUBSUB_ERROR_LIMIT_EXCEEDED);
  g_assert_nonnull (strstr (error->message, "'c'"));
  g_assert_nonnull (strstr (error->message, "2"));
  g_clear_error (&error);
  g_assert_null (pubsub_broker_lookup_topic (broker, "c"));
  g_assert_cmpuint (pubsub_broker_get_topic_count (broker), ==, 2);

  /* At the limit, the other errors still say what is wrong. */
  g_assert_null (pubsub_test_broker_create (broker, "a", &error));
  g_assert_error (error, PUBSUB_ERROR, PUBSUB_ERROR_TOPIC_EXISTS);
  g_clear_error (&error);
  g_assert_null (pubsub_test_broker_create (broker, "no good", &error));
  g_assert_error (error, PUBSUB_ERROR, PUBSUB_ERROR_BAD_REQUEST);
  g_clear_error (&error);

  /* A deletion makes room. */
  g_assert_true (pubsub_test_broker_delete (broker, "a", NULL));
  g_assert_nonnull (pubsub_test_broker_create (broker, "c", &error));
  g_assert_no_error (error);
  g_assert_null (pubsub_test_broker_create (broker, "d", &error));
  g_assert_error (error, PUBSUB_ERROR, PUBSUB_ERROR_LIMIT_EXCEEDED);
}

static void
test_broker_delete (void)
{
  g_autoptr(PubsubBroker) broker = pubsub_broker_new (NULL, pubsub_frame_new_event, 3, 10);
  g_autoptr(GError) error = NULL;
  BrokerEvents events;
  PubsubTopic *topic;
  PubsubTopic *weak;
  guint notify_topics = 0;
  guint notify_subscribers = 0;

  broker_events_init (&events, broker);
  topic = pubsub_test_broker_create (broker, "orders", NULL);
  g_signal_connect (topic, "deleted", G_CALLBACK (on_own_topic_deleted), &events);
  weak = topic;
  g_object_add_weak_pointer (G_OBJECT (topic), (gpointer *) &weak);
  g_signal_connect (broker, "notify::topic-count", G_CALLBACK (pubsub_test_count_notify), &notify_topics);
  g_signal_connect (broker, "notify::subscriber-count", G_CALLBACK (pubsub_test_count_notify),
                    &notify_subscribers);

  /* Missing. */
  g_assert_false (pubsub_test_broker_delete (broker, "nope", &error));
  g_assert_error (error, PUBSUB_ERROR, PUBSUB_ERROR_TOPIC_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "'nope'"));
  g_clear_error (&error);
  g_assert_cmpuint (events.deleted->len, ==, 0);
  g_assert_cmpuint (notify_topics, ==, 0);

  /* Existing: the topic hears "deleted" first, then the broker announces it,
   * and the broker's reference goes. */
  g_assert_true (pubsub_test_broker_delete (broker, "orders", &error));
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
  g_assert_false (pubsub_test_broker_delete (broker, "orders", &error));
  g_assert_error (error, PUBSUB_ERROR, PUBSUB_ERROR_TOPIC_NOT_FOUND);
  g_clear_error (&error);
  g_assert_null (pubsub_broker_get_topic (broker, "orders", &error));
  g_assert_error (error, PUBSUB_ERROR, PUBSUB_ERROR_TOPIC_NOT_FOUND);
  g_clear_error (&error);

  /* Re-created: a fresh topic with no history. */
  topic = pubsub_test_broker_create (broker, "orders", NULL);
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
  g_autoptr(PubsubBroker) broker = pubsub_broker_new (NULL, pubsub_frame_new_event, 3, 10);
  g_autoptr(PubsubTopic) held = NULL;
  g_autoptr(GError) error = NULL;
  guint notify_subscribers = 0;

  held = g_object_ref (pubsub_test_broker_create (broker, "t", NULL));
  g_signal_connect (broker, "notify::subscriber-count", G_CALLBACK (pubsub_test_count_notify),
                    &notify_subscribers);
  pubsub_topic_add_subscriber (held, "client");
  g_assert_cmpuint (notify_subscribers, ==, 1);
  g_assert_cmpuint (pubsub_broker_get_subscriber_count (broker), ==, 1);

  g_assert_true (pubsub_test_broker_delete (broker, "t", NULL));
  g_assert_cmpuint (pubsub_broker_get_subscriber_count (broker), ==, 0);
  notify_subscribers = 0;
  pubsub_topic_remove_subscriber (held, "client", PUBSUB_LEAVE_UNSUBSCRIBED);
  g_assert_cmpuint (notify_subscribers, ==, 0);

  g_assert_null (pubsub_test_broker_publish (broker, "t", UUID, "1", 1, NULL, &error));
  g_assert_error (error, PUBSUB_ERROR, PUBSUB_ERROR_TOPIC_NOT_FOUND);
}

static void
test_broker_list_sorted (void)
{
  static const char *const names[] = { "b", "a", "B", "_", "0", "a.b", ":", "a-", "A", "ab" };
  static const char *const sorted[] = { "0", ":", "A", "B", "_", "a", "a-", "a.b", "ab", "b" };
  g_autoptr(PubsubBroker) broker = pubsub_broker_new (NULL, pubsub_frame_new_event, 1, 100);
  g_autoptr(GPtrArray) list = NULL;

  list = pubsub_broker_list_topics (broker);
  g_assert_cmpuint (list->len, ==, 0);
  g_clear_pointer (&list, g_ptr_array_unref);

  for (gsize i = 0; i < G_N_ELEMENTS (names); i++)
    g_assert_nonnull (pubsub_test_broker_create (broker, names[i], NULL));
  list = pubsub_broker_list_topics (broker);
  g_assert_cmpuint (list->len, ==, G_N_ELEMENTS (sorted));
  for (guint i = 0; i < list->len; i++)
    {
      PubsubTopic *topic = g_ptr_array_index (list, i);

      g_assert_cmpstr (pubsub_topic_get_name (topic), ==, sorted[i]);
      g_assert_true (pubsub_broker_lookup_topic (broker, sorted[i]) == topic);
    }

  /* The list holds its own references: it outlives a deletion. */
  g_assert_true (pubsub_test_broker_delete (broker, "B", NULL));
  g_assert_cmpstr (pubsub_topic_get_name (g_ptr_array_index (list, 3)), ==, "B");
  g_clear_pointer (&list, g_ptr_array_unref);
  list = pubsub_broker_list_topics (broker);
  g_assert_cmpuint (list->len, ==, G_N_ELEMENTS (sorted) - 1);
  g_assert_cmpstr (pubsub_topic_get_name (g_ptr_array_index (list, 3)), ==, "_");
}

static void
test_broker_subscriber_count (void)
{
  g_autoptr(PubsubBroker) broker = pubsub_broker_new (NULL, pubsub_frame_new_event, 1, 10);
  PubsubTopic *a = pubsub_test_broker_create (broker, "a", NULL);
  PubsubTopic *b = pubsub_test_broker_create (broker, "b", NULL);
  guint notify_count = 0;
  guint count = 99;

  g_signal_connect (broker, "notify::subscriber-count", G_CALLBACK (pubsub_test_count_notify), &notify_count);
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
  g_assert_true (pubsub_test_broker_delete (broker, "a", NULL));
  g_assert_cmpuint (pubsub_broker_get_subscriber_count (broker), ==, 1);
  g_assert_cmpuint (notify_count, ==, 5);
  pubsub_topic_remove_subscriber (b, "client", PUBSUB_LEAVE_UNSUBSCRIBED);
}

/* What a topic's "event" handler was given. */
typedef struct {
  PubsubMessage *seen;    /* the last message */
  guint          calls;
} EventRecord;

static void
on_event (PubsubTopic   *topic,
          PubsubMessage *message,
          EventRecord   *record)
{
  record->seen = message;
  record->calls++;
}

static void
test_broker_publish (void)
{
  static const char payload[] = "{\"big\":12345678901234567890,\"inf\":1e400}";
  g_autoptr(PubsubBroker) broker = pubsub_broker_new (NULL, pubsub_frame_new_event, 2, 10);
  g_autoptr(GError) error = NULL;
  PubsubTopic *topic = pubsub_test_broker_create (broker, "t", NULL);
  EventRecord record = { NULL, 0 };

  g_signal_connect (topic, "event", G_CALLBACK (on_event), &record);

  g_assert_null (pubsub_test_broker_publish (broker, "missing", UUID, "1", 1, NULL, &error));
  g_assert_error (error, PUBSUB_ERROR, PUBSUB_ERROR_TOPIC_NOT_FOUND);
  g_assert_cmpstr (error->message, ==, "topic 'missing' does not exist");
  g_clear_error (&error);
  g_assert_cmpuint (record.calls, ==, 0);

  for (guint n = 0; n < 3; n++)
    {
      g_autofree char *id = pubsub_test_numbered_uuid (n);
      g_autoptr(PubsubMessage) message = pubsub_test_broker_publish (broker, "t", id, payload,
                                                                sizeof payload - 1, NULL, &error);
      g_autofree char *got = NULL;

      g_assert_no_error (error);
      g_assert_nonnull (message);
      /* The subscribers got this very message. */
      g_assert_true (record.seen == message);
      g_assert_cmpuint (record.calls, ==, n + 1);
      g_assert_true (pubsub_topic_get_history_item (
                       topic, pubsub_topic_get_history_length (topic) - 1) == message);
      got = pubsub_test_event_payload (message);
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
  g_autoptr(PubsubBroker) broker = pubsub_broker_new (NULL, pubsub_frame_new_event, 10, 10);
  g_autoptr(GError) error = NULL;
  g_autoptr(PubsubMessage) message = NULL;
  PubsubTopic *topic = pubsub_test_broker_create (broker, "t", NULL);

  message = pubsub_test_broker_publish_json (broker, row->topic, row->id, row->payload, NULL, &error);
  if (row->code < 0)
    {
      g_autofree char *payload = NULL;
      g_autofree char *id = NULL;

      g_assert_no_error (error);
      g_assert_nonnull (message);
      g_assert_cmpstr (pubsub_message_get_id (message), ==, row->id);
      pubsub_test_event_fields (message, &payload, &id, NULL);
      g_assert_cmpstr (payload, ==, row->forwarded);
      g_assert_cmpstr (id, ==, row->id);
      /* Nothing around the payload's span is forwarded either. */
      {
        GBytes *frame = pubsub_message_get_frame (message);
        gsize size;
        const char *data = g_bytes_get_data (frame, &size);
        gsize header = pubsub_ws_frame_payload_offset (frame);
        g_autofree char *prefix = g_strdup_printf ("{\"type\":\"event\",\"topic\":\"t\",\"message\":"
                                                   "{\"id\":\"%s\",\"payload\":%s},\"seq\":1,"
                                                   "\"epoch\":\"%s\",\"ts\":\"",
                                                   row->id, row->forwarded,
                                                   pubsub_topic_get_epoch (topic));

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
  g_autoptr(PubsubBroker) broker = pubsub_broker_new (NULL, pubsub_frame_new_event, 10, 10);
  g_autoptr(GError) error = NULL;
  g_autoptr(PubsubMessage) first = NULL;
  g_autoptr(PubsubMessage) second = NULL;
  g_autofree char *id_in_frame = NULL;

  g_assert_nonnull (pubsub_test_broker_create (broker, "t", NULL));
  first = pubsub_test_broker_publish_json (broker, "t", "", "1", NULL, &error);
  g_assert_no_error (error);
  second = pubsub_test_broker_publish_json (broker, "t", NULL, "2", NULL, &error);
  g_assert_no_error (error);

  g_assert_cmpuint (strlen (pubsub_message_get_id (first)), ==, PUBSUB_UUID_LEN);
  g_assert_true (g_uuid_string_is_valid (pubsub_message_get_id (first)));
  g_assert_true (g_uuid_string_is_valid (pubsub_message_get_id (second)));
  g_assert_cmpstr (pubsub_message_get_id (first), !=, pubsub_message_get_id (second));
  pubsub_test_event_fields (first, NULL, &id_in_frame, NULL);
  g_assert_cmpstr (id_in_frame, ==, pubsub_message_get_id (first));
}

static void
test_broker_properties (void)
{
  gint64 before = g_get_real_time ();
  g_autoptr(PubsubBroker) broker = pubsub_broker_new (NULL, pubsub_frame_new_event, 4, 9);
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
  PubsubBroker *broker = pubsub_broker_new (NULL, pubsub_frame_new_event, 4, 9);
  PubsubBroker *weak = broker;
  g_autoptr(PubsubTopic) topic = g_object_ref (pubsub_test_broker_create (broker, "t", NULL));
  g_autoptr(PubsubMessage) message = NULL;

  g_object_add_weak_pointer (G_OBJECT (broker), (gpointer *) &weak);
  g_object_unref (broker);
  g_assert_null (weak);

  /* Nothing left connected to the dead broker. */
  pubsub_topic_add_subscriber (topic, "client");
  pubsub_topic_remove_subscriber (topic, "client", PUBSUB_LEAVE_UNSUBSCRIBED);
  message = pubsub_test_publish_numbered (topic, 1);
  g_assert_cmpuint (pubsub_topic_get_messages (topic), ==, 1);
}

/* ---------------------------------------------------------------------- */

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

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
