/* test-event-text.c: an event's text as cluster nodes exchange it
 * (src/wire/pubsub-event-text.c)
 *
 * - the two parts, joined as the publish script joins them around seq and
 *   epoch, are byte for byte the event pubsub_frame_new_event() builds;
 * - read back, the text gives the message it was made of, framed once;
 * - the reader is strict: every proper prefix of a good text, and a table
 *   of texts wrong in one place each, are refused.
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <string.h>

#include <glib.h>

#include "pubsub-error.h"
#include "pubsub-event-text.h"
#include "pubsub-protocol.h"
#include "pubsub-topic.h"
#include "pubsub-ws-frame.h"

#define UUID  "123e4567-e89b-12d3-a456-426614174000"
#define EPOCH "0123456789abcdef"
#define PAYLOAD "{\"a\":[1,2.5e3,\"\\u00e9\"],\"b\":null}"
/* 2026-12-02T10:00:00.123Z */
#define TIME_US G_GINT64_CONSTANT (1796205600123000)

/* What the publish script does: head .. seq .. ',"epoch":"' .. epoch .. tail */
static char *
join (const char *topic,
      guint64     seq,
      const char *epoch,
      const char *payload,
      gint64      time_us)
{
  gsize head_len, len;
  g_autofree char *parts = pubsub_event_text_new_parts (topic, UUID, payload, strlen (payload),
                                                        time_us, &head_len, &len);
  g_autofree char *head = g_strndup (parts, head_len);

  return g_strdup_printf ("%s%" G_GUINT64_FORMAT ",\"epoch\":\"%s%.*s", head, seq, epoch,
                          (int) (len - head_len), parts + head_len);
}

static void
test_same_as_frame (void)
{
  g_autofree char *text = join ("orders.eu-1:x", 4242, EPOCH, PAYLOAD, TIME_US);
  PubsubMessageInfo info = {
    .topic = "orders.eu-1:x", .epoch = EPOCH, .seq = 4242, .id = UUID,
    .payload = PAYLOAD, .payload_len = strlen (PAYLOAD), .time_us = TIME_US,
  };
  gsize offset;
  g_autoptr(GBytes) frame = pubsub_frame_new_event (&info, &offset);
  gsize header_len = pubsub_ws_frame_payload_offset (frame);

  g_assert_cmpmem (text, strlen (text), (const char *) g_bytes_get_data (frame, NULL) + header_len,
                   g_bytes_get_size (frame) - header_len);
}

static void
test_round_trip (void)
{
  g_autofree char *text = join ("t", 7, EPOCH, PAYLOAD, TIME_US);
  char topic[PUBSUB_TOPIC_NAME_MAX + 1];
  char epoch[PUBSUB_EPOCH_LEN + 1];
  g_autoptr(GError) error = NULL;
  g_autoptr(PubsubMessage) message = NULL;
  PubsubMessageInfo info = {
    .topic = "t", .epoch = EPOCH, .seq = 7, .id = UUID,
    .payload = PAYLOAD, .payload_len = strlen (PAYLOAD), .time_us = TIME_US,
  };
  gsize offset, len;
  g_autoptr(GBytes) expected = pubsub_frame_new_event (&info, &offset);
  const char *payload;

  message = pubsub_event_text_to_message (text, strlen (text), topic, epoch, &error);
  g_assert_no_error (error);
  g_assert_nonnull (message);
  g_assert_cmpstr (topic, ==, "t");
  g_assert_cmpstr (epoch, ==, EPOCH);
  g_assert_cmpuint (pubsub_message_get_seq (message), ==, 7);
  g_assert_cmpstr (pubsub_message_get_id (message), ==, UUID);
  g_assert_cmpint (pubsub_message_get_time (message), ==, TIME_US);
  payload = pubsub_message_get_payload (message, &len);
  g_assert_cmpmem (payload, len, PAYLOAD, strlen (PAYLOAD));
  /* The whole frame, header included, as the memory engine's. */
  g_assert_true (g_bytes_equal (pubsub_message_get_frame (message), expected));
}

/* Millisecond precision, any date the timestamp can write. */
static void
test_times (void)
{
  static const gint64 times[] = {
    0, 999000, G_GINT64_CONSTANT (951782400000000) /* 2000-02-29 */,
    G_GINT64_CONSTANT (4102444799999000) /* 2099-12-31T23:59:59.999 */,
  };

  for (guint i = 0; i < G_N_ELEMENTS (times); i++)
    {
      g_autofree char *text = join ("t", 1, EPOCH, "1", times[i]);
      PubsubMessageInfo info;
      gsize topic_len;
      g_autoptr(GError) error = NULL;

      g_assert_true (pubsub_event_text_parse (text, strlen (text), &info, &topic_len, &error));
      g_assert_no_error (error);
      g_assert_cmpint (info.time_us, ==, times[i]);
    }
}

static void
assert_refused (const char *text,
                gsize       len)
{
  char topic[PUBSUB_TOPIC_NAME_MAX + 1];
  char epoch[PUBSUB_EPOCH_LEN + 1];
  g_autoptr(GError) error = NULL;
  g_autoptr(PubsubMessage) message = pubsub_event_text_to_message (text, len, topic, epoch, &error);

  if (message != NULL)
    g_error ("accepted: %.*s", (int) len, text);
  g_assert_error (error, PUBSUB_ERROR, PUBSUB_ERROR_BAD_REQUEST);
}

static void
test_prefixes_refused (void)
{
  g_autofree char *text = join ("t", 12, EPOCH, PAYLOAD, TIME_US);
  gsize len = strlen (text);

  for (gsize i = 0; i < len; i++)
    assert_refused (text, i);
}

/* Each row is a good text with one thing wrong. */
static void
test_bad_texts (void)
{
  static const char *const bad[] = {
    /* topic */
    "{\"type\":\"event\",\"topic\":\"a b\",\"message\":{\"id\":\"" UUID "\",\"payload\":1},"
    "\"seq\":1,\"epoch\":\"" EPOCH "\",\"ts\":\"2026-11-27T10:00:00.123Z\"}",
    "{\"type\":\"event\",\"topic\":\"\",\"message\":{\"id\":\"" UUID "\",\"payload\":1},"
    "\"seq\":1,\"epoch\":\"" EPOCH "\",\"ts\":\"2026-11-27T10:00:00.123Z\"}",
    /* id */
    "{\"type\":\"event\",\"topic\":\"t\",\"message\":{\"id\":\"123e4567-e89b-12d3-a456-42661417400g\","
    "\"payload\":1},\"seq\":1,\"epoch\":\"" EPOCH "\",\"ts\":\"2026-11-27T10:00:00.123Z\"}",
    /* payload */
    "{\"type\":\"event\",\"topic\":\"t\",\"message\":{\"id\":\"" UUID "\",\"payload\":{}}},"
    "\"seq\":1,\"epoch\":\"" EPOCH "\",\"ts\":\"2026-11-27T10:00:00.123Z\"}",
    "{\"type\":\"event\",\"topic\":\"t\",\"message\":{\"id\":\"" UUID "\",\"payload\":01},"
    "\"seq\":1,\"epoch\":\"" EPOCH "\",\"ts\":\"2026-11-27T10:00:00.123Z\"}",
    "{\"type\":\"event\",\"topic\":\"t\",\"message\":{\"id\":\"" UUID "\",\"payload\":},"
    "\"seq\":1,\"epoch\":\"" EPOCH "\",\"ts\":\"2026-11-27T10:00:00.123Z\"}",
    /* seq */
    "{\"type\":\"event\",\"topic\":\"t\",\"message\":{\"id\":\"" UUID "\",\"payload\":1},"
    "\"seq\":0,\"epoch\":\"" EPOCH "\",\"ts\":\"2026-11-27T10:00:00.123Z\"}",
    "{\"type\":\"event\",\"topic\":\"t\",\"message\":{\"id\":\"" UUID "\",\"payload\":1},"
    "\"seq\":01,\"epoch\":\"" EPOCH "\",\"ts\":\"2026-11-27T10:00:00.123Z\"}",
    "{\"type\":\"event\",\"topic\":\"t\",\"message\":{\"id\":\"" UUID "\",\"payload\":1},"
    "\"seq\":99999999999999999999,\"epoch\":\"" EPOCH "\",\"ts\":\"2026-11-27T10:00:00.123Z\"}",
    /* epoch */
    "{\"type\":\"event\",\"topic\":\"t\",\"message\":{\"id\":\"" UUID "\",\"payload\":1},"
    "\"seq\":1,\"epoch\":\"0123456789ABCDEF\",\"ts\":\"2026-11-27T10:00:00.123Z\"}",
    "{\"type\":\"event\",\"topic\":\"t\",\"message\":{\"id\":\"" UUID "\",\"payload\":1},"
    "\"seq\":1,\"epoch\":\"0123456789abcde\",\"ts\":\"2026-11-27T10:00:00.123Z\"}",
    /* ts */
    "{\"type\":\"event\",\"topic\":\"t\",\"message\":{\"id\":\"" UUID "\",\"payload\":1},"
    "\"seq\":1,\"epoch\":\"" EPOCH "\",\"ts\":\"2026-13-27T10:00:00.123Z\"}",
    "{\"type\":\"event\",\"topic\":\"t\",\"message\":{\"id\":\"" UUID "\",\"payload\":1},"
    "\"seq\":1,\"epoch\":\"" EPOCH "\",\"ts\":\"2026-11-27 10:00:00.123Z\"}",
    /* shape */
    "{\"type\":\"events\",\"topic\":\"t\",\"message\":{\"id\":\"" UUID "\",\"payload\":1},"
    "\"seq\":1,\"epoch\":\"" EPOCH "\",\"ts\":\"2026-11-27T10:00:00.123Z\"}",
    "{\"type\":\"event\",\"topic\":\"t\",\"message\":{\"id\":\"" UUID "\",\"payload\":1},"
    "\"seq\":1,\"epoch\":\"" EPOCH "\",\"ts\":\"2026-11-27T10:00:00.123Z\"} ",
  };

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    assert_refused (bad[i], strlen (bad[i]));
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/event-text/same-as-frame", test_same_as_frame);
  g_test_add_func ("/event-text/round-trip", test_round_trip);
  g_test_add_func ("/event-text/times", test_times);
  g_test_add_func ("/event-text/prefixes-refused", test_prefixes_refused);
  g_test_add_func ("/event-text/bad-texts", test_bad_texts);
  return g_test_run ();
}
