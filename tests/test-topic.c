/* test-topic.c: topics and messages (src/model/pubsub-topic.c,
 * src/model/pubsub-message.c)
 *
 * - the history ring at sizes 0, 1 and N, checked against a model after
 *   every publish (wraparound keeps the last N, oldest first);
 * - counters (messages is not capped by the history) and their notify
 *   signals;
 * - the "event" fan-out: one emission per publish, every handler sees the
 *   same PubsubMessage and the same GBytes frame (no per-subscriber copy).
 *
 * The broker has its own test-broker.c.
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <string.h>

#include <glib-object.h>

#include "pubsub-message.h"
#include "pubsub-protocol.h"
#include "pubsub-test-model.h"
#include "pubsub-topic.h"

#define UUID PUBSUB_TEST_UUID

/* ---------------------------------------------------------------------- */
/* Message                                                                */

static void
test_message (void)
{
  static const char payload[] = "[1e400,12345678901234567890,\"a\\u0000b\"]";
  gint64 before = g_get_real_time ();
  g_autoptr(PubsubMessage) message = pubsub_test_message_new ("orders", UUID, payload,
                                                              sizeof payload - 1);
  g_autofree char *got_payload = NULL;
  g_autofree char *got_id = NULL;
  g_autofree char *got_topic = NULL;
  PubsubMessage *copy;

  g_assert_cmpstr (pubsub_message_get_id (message), ==, UUID);
  pubsub_test_event_fields (message, &got_payload, &got_id, &got_topic);
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

      g_ptr_array_add (published, pubsub_test_publish_numbered (topic, n));
      g_assert_cmpuint (pubsub_message_get_seq (g_ptr_array_index (published, n)), ==, n + 1);

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
      g_autofree char *payload = pubsub_test_event_payload (pubsub_topic_get_history_item (topic, i));
      g_autofree char *expected = g_strdup_printf ("{\"n\":%u}", total - MIN (total, history_size) + i);

      g_assert_cmpstr (payload, ==, expected);
    }
}

static void
test_history_item_out_of_range (void)
{
  g_autoptr(PubsubTopic) topic = pubsub_topic_new ("t", 3);
  g_autoptr(PubsubMessage) message = pubsub_test_publish_numbered (topic, 0);

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

  g_signal_connect (topic, "notify::messages", G_CALLBACK (pubsub_test_count_notify), &notify_messages);
  g_signal_connect (topic, "notify::subscribers", G_CALLBACK (pubsub_test_count_notify), &notify_subscribers);

  for (guint n = 0; n < 10; n++)
    {
      g_autoptr(PubsubMessage) message = pubsub_test_publish_numbered (topic, n);
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
      g_autoptr(PubsubMessage) message = pubsub_test_publish_numbered (topic, n);
      GBytes *frame = pubsub_message_get_frame (message);

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
/* SPEC §8: epoch, seq, idempotent publish, where a replay starts         */

static void
test_topic_epoch (void)
{
  g_autoptr(PubsubTopic) a = pubsub_topic_new ("t", 3);
  g_autoptr(PubsubTopic) b = pubsub_topic_new ("t", 3);
  const char *epoch = pubsub_topic_get_epoch (a);

  g_assert_cmpuint (strlen (epoch), ==, PUBSUB_EPOCH_LEN);
  for (const char *p = epoch; *p != '\0'; p++)
    g_assert_true (g_ascii_isdigit (*p) || (*p >= 'a' && *p <= 'f'));
  /* The same name created again is another epoch. */
  g_assert_cmpstr (pubsub_topic_get_epoch (b), !=, epoch);
  g_assert_cmpuint (pubsub_topic_get_first_seq (a), ==, 1);
}

static void
count_event (PubsubTopic   *topic,
             PubsubMessage *message,
             guint         *count)
{
  (*count)++;
}

static void
test_topic_duplicate (void)
{
  g_autoptr(PubsubTopic) topic = pubsub_topic_new ("t", 3);
  g_autoptr(PubsubMessage) first = NULL;
  g_autoptr(PubsubMessage) again = NULL;
  g_autoptr(PubsubMessage) later = NULL;
  g_autofree char *id = pubsub_test_numbered_uuid (0);
  guint events = 0;
  gboolean duplicate = TRUE;

  g_signal_connect (topic, "event", G_CALLBACK (count_event), &events);
  first = pubsub_topic_publish (topic, id, "1", 1, pubsub_frame_new_event, &duplicate);
  g_assert_false (duplicate);
  g_assert_cmpuint (pubsub_message_get_seq (first), ==, 1);

  /* The same id while it is stored: the same message, nothing published. */
  again = pubsub_topic_publish (topic, id, "2", 1, pubsub_frame_new_event, &duplicate);
  g_assert_true (duplicate);
  g_assert_true (again == first);
  g_assert_cmpuint (events, ==, 1);
  g_assert_cmpuint (pubsub_topic_get_messages (topic), ==, 1);
  g_assert_cmpuint (pubsub_topic_get_history_length (topic), ==, 1);

  /* Once it has left the history, the id is a new message. */
  for (guint n = 1; n <= 3; n++)
    pubsub_message_unref (pubsub_test_publish_numbered (topic, n));
  g_assert_cmpuint (pubsub_topic_get_first_seq (topic), ==, 2);
  later = pubsub_topic_publish (topic, id, "3", 1, pubsub_frame_new_event, &duplicate);
  g_assert_false (duplicate);
  g_assert_cmpuint (pubsub_message_get_seq (later), ==, 5);
  g_assert_cmpuint (events, ==, 5);
  g_assert_true (pubsub_topic_get_message (topic, 5) == later);
  g_assert_true (pubsub_topic_get_message (topic, 3) == pubsub_topic_get_history_item (topic, 0));
}

/* Without a history nothing is ever a duplicate: nothing is stored. */
static void
test_topic_duplicate_no_history (void)
{
  g_autoptr(PubsubTopic) topic = pubsub_topic_new ("t", 0);
  g_autofree char *id = pubsub_test_numbered_uuid (0);

  for (guint n = 1; n <= 2; n++)
    {
      gboolean duplicate = TRUE;
      g_autoptr(PubsubMessage) message = pubsub_topic_publish (topic, id, "1", 1,
                                                               pubsub_frame_new_event, &duplicate);

      g_assert_false (duplicate);
      g_assert_cmpuint (pubsub_message_get_seq (message), ==, n);
    }
}

typedef struct {
  const char *name;
  guint64     since_seq;
  gboolean    same_epoch;
  gboolean    has_since;
  guint64     last_n;
  gboolean    recovered;
  guint64     start;        /* the replay is everything after this seq */
} ReplayRow;

/* A topic with history 5 after 8 publishes: seqs 4…8 are stored. */
static const ReplayRow replay_rows[] = {
  { "gap-inside", 5, TRUE, TRUE, 0, TRUE, 5 },
  { "oldest-stored", 3, TRUE, TRUE, 0, TRUE, 3 },
  { "up-to-date", 8, TRUE, TRUE, 0, TRUE, 8 },
  { "beyond-history", 2, TRUE, TRUE, 0, FALSE, 8 },
  { "beyond-history-last-n", 2, TRUE, TRUE, 2, FALSE, 6 },
  { "zero-beyond-history", 0, TRUE, TRUE, 100, FALSE, 3 },
  { "future-seq", 9, TRUE, TRUE, 1, FALSE, 7 },
  { "wrong-epoch", 5, FALSE, TRUE, 0, FALSE, 8 },
  { "wrong-epoch-last-n", 5, FALSE, TRUE, 3, FALSE, 5 },
  { "no-since", 0, TRUE, FALSE, 4, FALSE, 4 },
  { "no-since-more-than-stored", 0, TRUE, FALSE, 1000, FALSE, 3 },
};

static void
test_topic_replay_start (gconstpointer data)
{
  const ReplayRow *row = data;
  g_autoptr(PubsubTopic) topic = pubsub_topic_new ("t", 5);
  PubsubPosition since = { row->since_seq, "" };
  gboolean recovered = !row->recovered;

  for (guint n = 1; n <= 8; n++)
    pubsub_message_unref (pubsub_test_publish_numbered (topic, n));
  g_strlcpy (since.epoch, row->same_epoch ? pubsub_topic_get_epoch (topic) : "0000000000000000",
             sizeof since.epoch);
  g_assert_cmpuint (pubsub_topic_replay_start (topic, row->has_since ? &since : NULL,
                                               row->last_n, &recovered), ==, row->start);
  g_assert_cmpint (recovered, ==, row->recovered);
}

/* An empty topic: since 0 of its epoch is recovered, nothing to replay. */
static void
test_topic_replay_start_empty (void)
{
  g_autoptr(PubsubTopic) topic = pubsub_topic_new ("t", 5);
  PubsubPosition since = { 0, "" };
  gboolean recovered = FALSE;

  g_strlcpy (since.epoch, pubsub_topic_get_epoch (topic), sizeof since.epoch);
  g_assert_cmpuint (pubsub_topic_replay_start (topic, &since, 0, &recovered), ==, 0);
  g_assert_true (recovered);
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
  g_autoptr(PubsubMessage) message = pubsub_test_message_new ("t", UUID, "1", 1);
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
  g_test_add_func ("/topic/subscriber-signals", test_subscriber_signals);

  g_test_add_func ("/topic/properties", test_topic_properties);
  g_test_add_func ("/topic/epoch", test_topic_epoch);
  g_test_add_func ("/topic/duplicate", test_topic_duplicate);
  g_test_add_func ("/topic/duplicate/no-history", test_topic_duplicate_no_history);
  g_test_add_func ("/topic/replay-start/empty", test_topic_replay_start_empty);
  for (gsize i = 0; i < G_N_ELEMENTS (replay_rows); i++)
    {
      g_autofree char *path = g_strdup_printf ("/topic/replay-start/%s", replay_rows[i].name);

      g_test_add_data_func (path, &replay_rows[i], test_topic_replay_start);
    }
  for (gsize i = 0; i < G_N_ELEMENTS (history_sizes); i++)
    {
      g_autofree char *path = g_strdup_printf ("/topic/history/size-%u", history_sizes[i]);

      g_test_add_data_func (path, GUINT_TO_POINTER (history_sizes[i]), check_history);
    }
  g_test_add_func ("/topic/history/out-of-range", test_history_item_out_of_range);
  g_test_add_func ("/topic/counters-and-notify", test_counters_and_notify);
  g_test_add_func ("/topic/event-signal", test_event_signal);
  g_test_add_func ("/topic/deleted-signal", test_deleted_signal);

  return g_test_run ();
}
