/* test-protocol.c: the WebSocket JSON protocol (SPEC §2, src/pubsub-protocol.c)
 *
 * - topic names: a table of valid and invalid names;
 * - timestamps: known epochs, millisecond truncation, the per-second cache,
 *   and a cross-check against GDateTime for random times in random order;
 * - request parsing: one table row per rule of SPEC §2, each registered under
 *   its own path (/protocol/parse/ok/…, /protocol/parse/bad/…), in the style
 *   of json-glib's tests/invalid.c; every bad row is also turned into an
 *   error frame and read back;
 * - frame builders: the WebSocket header is decoded by hand (FIN, opcode,
 *   mask bit, 7/16/64-bit lengths at their boundaries) and the JSON body is
 *   read with json-glib and with the strict reader.
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <string.h>

#include <glib.h>
#include <json-glib/json-glib.h>

#include "pubsub-error.h"
#include "pubsub-json.h"
#include "pubsub-protocol.h"
#include "pubsub-ws-frame.h"

#define UUID  "123e4567-e89b-12d3-a456-426614174000"
#define UUID2 "00000000-0000-4000-8000-000000000001"
#define EPOCH "0123456789abcdef"

/* The event frame of a message with these parts. */
static GBytes *
event_frame (const char *topic,
             const char *id,
             const char *payload,
             gsize       payload_len,
             gint64      time_us)
{
  PubsubMessageInfo info = {
    .topic = topic,
    .epoch = EPOCH,
    .seq = 7,
    .id = id,
    .payload = payload,
    .payload_len = payload_len,
    .time_us = time_us,
  };
  gsize payload_offset;
  GBytes *frame = pubsub_frame_new_event (&info, &payload_offset);

  g_assert_cmpmem ((const char *) g_bytes_get_data (frame, NULL) + payload_offset, payload_len,
                   payload, payload_len);
  return frame;
}

/* ---------------------------------------------------------------------- */
/* Topic names                                                            */

typedef struct {
  const char *name;
  gssize      len;     /* -1: strlen */
  gboolean    valid;
} TopicRow;

static const TopicRow topic_rows[] = {
  { "a", -1, TRUE },
  { "orders", -1, TRUE },
  { "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-:", -1, TRUE },
  { ".", -1, TRUE },
  { "_", -1, TRUE },
  { "-", -1, TRUE },
  { ":", -1, TRUE },
  { "a.b_c-d:e", -1, TRUE },
  { "", -1, FALSE },
  { "a b", -1, FALSE },
  { " a", -1, FALSE },
  { "a ", -1, FALSE },
  { "a/b", -1, FALSE },
  { "/", -1, FALSE },
  { "a\\b", -1, FALSE },
  { "a\tb", -1, FALSE },
  { "a\nb", -1, FALSE },
  { "a*", -1, FALSE },
  { "a#b", -1, FALSE },
  { "a+b", -1, FALSE },
  { "a,b", -1, FALSE },
  { "a;b", -1, FALSE },
  { "a\"b", -1, FALSE },
  { "a'b", -1, FALSE },
  { "a%20b", -1, FALSE },
  { "a@b", -1, FALSE },
  { "~", -1, FALSE },
  { "\x7f", -1, FALSE },
  { "\xc3\xa9", -1, FALSE },             /* é */
  { "caf\xc3\xa9", -1, FALSE },
  { "\xef\xbc\xa1", -1, FALSE },         /* fullwidth A */
  { "a\0b", 3, FALSE },
  { "\0", 1, FALSE },
  { "ab\0", 3, FALSE },
};

static void
test_topic_name_table (void)
{
  for (gsize i = 0; i < G_N_ELEMENTS (topic_rows); i++)
    {
      const TopicRow *row = &topic_rows[i];
      gsize len = row->len < 0 ? strlen (row->name) : (gsize) row->len;

      if (pubsub_topic_name_is_valid (row->name, len) != row->valid)
        g_error ("topic name row %" G_GSIZE_FORMAT " (\"%s\", %" G_GSIZE_FORMAT " bytes): "
                 "expected %s", i, row->name, len, row->valid ? "valid" : "invalid");
      if (row->len < 0)
        {
          g_autoptr(GError) error = NULL;
          gboolean ok = pubsub_check_topic_name (row->name, &error);

          g_assert_cmpint (ok, ==, row->valid);
          if (row->valid)
            g_assert_no_error (error);
          else
            {
              g_assert_error (error, PUBSUB_ERROR, PUBSUB_ERROR_BAD_REQUEST);
              g_assert_nonnull (strstr (error->message, "invalid topic name"));
              g_assert_nonnull (strstr (error->message, "128"));
            }
        }
    }
}

static void
test_topic_name_length (void)
{
  char name[200];

  memset (name, 'x', sizeof name);
  for (gsize len = 0; len <= 130; len++)
    {
      gboolean expected = len >= 1 && len <= 128;

      g_assert_cmpint (pubsub_topic_name_is_valid (name, len), ==, expected);
    }

  /* Only @len bytes are looked at. */
  g_assert_true (pubsub_topic_name_is_valid ("ab cd", 2));

  name[128] = '\0';
  g_assert_true (pubsub_check_topic_name (name, NULL));
  name[128] = 'x';
  name[129] = '\0';
  g_assert_false (pubsub_check_topic_name (name, NULL));

  /* Every byte value on its own. */
  for (guint c = 0; c < 256; c++)
    {
      char one = (char) c;
      gboolean expected = g_ascii_isalnum (one) || one == '.' || one == '_' ||
                          one == '-' || one == ':';

      g_assert_cmpint (pubsub_topic_name_is_valid (&one, 1), ==, expected);
    }
}

/* ---------------------------------------------------------------------- */
/* Timestamps                                                             */

static void
assert_timestamp_shape (const char *ts)
{
  static const char pattern[] = "dddd-dd-ddTdd:dd:dd.dddZ";

  g_assert_cmpuint (strlen (ts), ==, PUBSUB_TIMESTAMP_LEN);
  g_assert_cmpuint (sizeof pattern - 1, ==, PUBSUB_TIMESTAMP_LEN);
  for (gsize i = 0; i < PUBSUB_TIMESTAMP_LEN; i++)
    {
      if (pattern[i] == 'd')
        g_assert_true (g_ascii_isdigit (ts[i]));
      else
        g_assert_cmpint (ts[i], ==, pattern[i]);
    }
}

typedef struct {
  gint64      us;
  const char *text;
} EpochRow;

static const EpochRow epoch_rows[] = {
  { 0, "1970-01-01T00:00:00.000Z" },
  { 999, "1970-01-01T00:00:00.000Z" },                     /* 0.999 ms → 000 */
  { 1000, "1970-01-01T00:00:00.001Z" },
  { 999999, "1970-01-01T00:00:00.999Z" },                  /* rounds down, not up */
  { 1000000, "1970-01-01T00:00:01.000Z" },
  { G_GINT64_CONSTANT (1700000000123456), "2023-11-14T22:13:20.123Z" },
  { G_GINT64_CONSTANT (1700000000123999), "2023-11-14T22:13:20.123Z" },
  { G_GINT64_CONSTANT (1700000000010000), "2023-11-14T22:13:20.010Z" },
  { G_GINT64_CONSTANT (951782400000000), "2000-02-29T00:00:00.000Z" },
  { G_GINT64_CONSTANT (946684799999999), "1999-12-31T23:59:59.999Z" },
  { G_GINT64_CONSTANT (1709251199500000), "2024-02-29T23:59:59.500Z" },
  { G_GINT64_CONSTANT (1798761599999999), "2026-12-31T23:59:59.999Z" },
  { G_GINT64_CONSTANT (1234567890000001), "2009-02-13T23:31:30.000Z" },
  { G_GINT64_CONSTANT (2147483648000000), "2038-01-19T03:14:08.000Z" },
  { G_GINT64_CONSTANT (4102444800000000), "2100-01-01T00:00:00.000Z" },
  { G_GINT64_CONSTANT (253402300799999999), "9999-12-31T23:59:59.999Z" },
};

static void
test_timestamp_epochs (void)
{
  /* Twice over, forwards then backwards, so each row is formatted both with
   * a cold cache and right after a different second. */
  for (guint pass = 0; pass < 2; pass++)
    for (gsize j = 0; j < G_N_ELEMENTS (epoch_rows); j++)
      {
        gsize i = pass == 0 ? j : G_N_ELEMENTS (epoch_rows) - 1 - j;
        char ts[PUBSUB_TIMESTAMP_LEN + 1];

        memset (ts, '#', sizeof ts);
        pubsub_format_timestamp (epoch_rows[i].us, ts);
        assert_timestamp_shape (ts);
        g_assert_cmpstr (ts, ==, epoch_rows[i].text);
      }
}

/* The date part is cached per second: crossing a second, a minute, a day,
 * a year, or going back in time must never reuse the wrong date. */
static void
test_timestamp_cache (void)
{
  static const EpochRow sequence[] = {
    { G_GINT64_CONSTANT (1700000000999999), "2023-11-14T22:13:20.999Z" },
    { G_GINT64_CONSTANT (1700000001000000), "2023-11-14T22:13:21.000Z" },
    { G_GINT64_CONSTANT (1700000001000999), "2023-11-14T22:13:21.000Z" },
    { G_GINT64_CONSTANT (1700000001456000), "2023-11-14T22:13:21.456Z" },
    { G_GINT64_CONSTANT (1700000000999999), "2023-11-14T22:13:20.999Z" },   /* back */
    { G_GINT64_CONSTANT (1700000000000000), "2023-11-14T22:13:20.000Z" },
    { G_GINT64_CONSTANT (1700000039999000), "2023-11-14T22:13:59.999Z" },
    { G_GINT64_CONSTANT (1700000040000000), "2023-11-14T22:14:00.000Z" },   /* minute */
    { G_GINT64_CONSTANT (1700006399999000), "2023-11-14T23:59:59.999Z" },
    { G_GINT64_CONSTANT (1700006400000000), "2023-11-15T00:00:00.000Z" },   /* day */
    { G_GINT64_CONSTANT (1704067199999000), "2023-12-31T23:59:59.999Z" },
    { G_GINT64_CONSTANT (1704067200001000), "2024-01-01T00:00:00.001Z" },   /* year */
    { G_GINT64_CONSTANT (1704067200002000), "2024-01-01T00:00:00.002Z" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (sequence); i++)
    {
      char ts[PUBSUB_TIMESTAMP_LEN + 1];

      pubsub_format_timestamp (sequence[i].us, ts);
      g_assert_cmpstr (ts, ==, sequence[i].text);
    }
}

/* Random times in random order against GDateTime. */
static void
test_timestamp_random (void)
{
  gint64 base = G_GINT64_CONSTANT (1600000000000000);

  for (guint i = 0; i < 5000; i++)
    {
      /* Mostly near each other (cache hits and misses), sometimes far. */
      gint64 us = base + (i % 7 == 0
                          ? (gint64) g_test_rand_int_range (0, G_MAXINT32) * G_USEC_PER_SEC
                          : (gint64) g_test_rand_int_range (0, 3000000));
      char ts[PUBSUB_TIMESTAMP_LEN + 1];
      g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc (us / G_USEC_PER_SEC);
      g_autofree char *date = g_date_time_format (dt, "%Y-%m-%dT%H:%M:%S");
      g_autofree char *expected = g_strdup_printf ("%s.%03dZ", date,
                                                   (int) (us % G_USEC_PER_SEC / 1000));

      pubsub_format_timestamp (us, ts);
      g_assert_cmpstr (ts, ==, expected);
    }
}

/* ---------------------------------------------------------------------- */
/* Frames: header and body                                                */

typedef struct {
  gsize       header_len;
  const char *json;
  gsize       json_len;
} FrameParts;

/* Decodes the WebSocket header by hand (RFC 6455 §5.2). */
static void
split_frame (GBytes     *frame,
             FrameParts *parts)
{
  gsize size;
  const guint8 *data = g_bytes_get_data (frame, &size);
  guint64 len;
  gsize header_len;

  g_assert_cmpuint (size, >=, 2);
  g_assert_cmphex (data[0], ==, 0x81);          /* FIN, no RSV bits, text */
  g_assert_cmphex (data[1] & 0x80, ==, 0);      /* server frames are unmasked */
  len = data[1] & 0x7f;
  if (len < 126)
    header_len = 2;
  else if (len == 126)
    {
      g_assert_cmpuint (size, >=, 4);
      header_len = 4;
      len = ((guint64) data[2] << 8) | data[3];
      g_assert_cmpuint (len, >=, 126);           /* minimal encoding */
    }
  else
    {
      g_assert_cmpuint (size, >=, 10);
      header_len = 10;
      len = 0;
      for (guint i = 0; i < 8; i++)
        len = (len << 8) | data[2 + i];
      g_assert_cmphex (data[2] & 0x80, ==, 0);   /* most significant bit is 0 */
      g_assert_cmpuint (len, >, G_MAXUINT16);    /* minimal encoding */
    }
  g_assert_cmpuint (size, ==, header_len + len);
  g_assert_cmpuint (pubsub_ws_frame_payload_offset (frame), ==, header_len);

  parts->header_len = header_len;
  parts->json = (const char *) data + header_len;
  parts->json_len = (gsize) len;
}

/* The body as a json-glib object; it must also pass the strict reader. */
static JsonNode *
frame_body (GBytes     *frame,
            FrameParts *parts)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  PubsubJsonValue value;
  JsonNode *root;

  split_frame (frame, parts);
  if (!pubsub_json_validate (parts->json, parts->json_len, &value, &error))
    g_error ("server frame is not strict JSON (%s): %.*s", error->message,
             (int) parts->json_len, parts->json);
  g_assert_cmpint (value.kind, ==, PUBSUB_JSON_OBJECT);
  g_assert_cmpuint (value.len, ==, parts->json_len);   /* no whitespace around */

  g_assert_true (json_parser_load_from_data (parser, parts->json, (gssize) parts->json_len,
                                             &error));
  g_assert_no_error (error);
  root = json_parser_get_root (parser);
  g_assert_nonnull (root);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (root));
  return json_node_copy (root);
}

static const char *
get_string (JsonObject *object,
            const char *name)
{
  JsonNode *node = json_object_get_member (object, name);

  if (node == NULL)
    g_error ("member '%s' is missing", name);
  g_assert_true (JSON_NODE_HOLDS_VALUE (node));
  g_assert_cmpint (json_node_get_value_type (node), ==, G_TYPE_STRING);
  return json_node_get_string (node);
}

/* The members of @object are exactly @names (NULL-terminated), in order. */
static void
assert_member_names (JsonObject        *object,
                     const char *const *names)
{
  g_autoptr(GList) members = json_object_get_members (object);
  GList *l = members;
  guint i = 0;

  for (; l != NULL && names[i] != NULL; l = l->next, i++)
    g_assert_cmpstr (l->data, ==, names[i]);
  g_assert_null (l);
  g_assert_null (names[i]);
}

/* "ts" has the right shape and lies within [before, after] (milliseconds,
 * rounded down). */
static void
assert_ts_between (JsonObject *object,
                   gint64      before_us,
                   gint64      after_us)
{
  const char *ts = get_string (object, "ts");
  g_autoptr(GDateTime) dt = NULL;
  gint64 ts_us;

  assert_timestamp_shape (ts);
  dt = g_date_time_new_from_iso8601 (ts, NULL);
  g_assert_nonnull (dt);
  ts_us = g_date_time_to_unix (dt) * G_USEC_PER_SEC + g_date_time_get_microsecond (dt);
  g_assert_cmpint (ts_us, >=, before_us / 1000 * 1000);
  g_assert_cmpint (ts_us, <=, after_us);
}

/* ---------------------------------------------------------------------- */
/* Request parsing: accepted frames                                       */

typedef struct {
  const char        *name;
  const char        *text;
  PubsubRequestType  type;
  const char        *request_id;   /* raw token, NULL: none */
  const char        *topic;        /* NULL: "" */
  const char        *client_id;    /* NULL: none */
  guint64            last_n;
  const char        *message_id;   /* NULL: "" */
  const char        *payload;      /* raw text, NULL: none */
} OkRow;

static const OkRow ok_rows[] = {
  /* subscribe */
  { "subscribe",
    "{\"type\":\"subscribe\",\"topic\":\"orders\",\"client_id\":\"c1\"}",
    PUBSUB_REQUEST_SUBSCRIBE, NULL, "orders", "c1", 0, NULL, NULL },
  { "subscribe-full",
    "{\"type\":\"subscribe\",\"topic\":\"orders\",\"client_id\":\"c1\",\"last_n\":5,\"request_id\":\"r1\"}",
    PUBSUB_REQUEST_SUBSCRIBE, "\"r1\"", "orders", "c1", 5, NULL, NULL },
  { "subscribe-field-order",
    "{\"last_n\":7,\"client_id\":\"c\",\"request_id\":\"r\",\"topic\":\"t\",\"type\":\"subscribe\"}",
    PUBSUB_REQUEST_SUBSCRIBE, "\"r\"", "t", "c", 7, NULL, NULL },
  { "subscribe-whitespace",
    " \r\n{ \"type\" : \"subscribe\" ,\n \"topic\" :\t\"a:b.c_d-e\" , \"client_id\" : \"x\" , "
    "\"last_n\" : 3 }\n",
    PUBSUB_REQUEST_SUBSCRIBE, NULL, "a:b.c_d-e", "x", 3, NULL, NULL },
  { "last_n-zero",
    "{\"type\":\"subscribe\",\"topic\":\"t\",\"client_id\":\"c\",\"last_n\":0}",
    PUBSUB_REQUEST_SUBSCRIBE, NULL, "t", "c", 0, NULL, NULL },
  { "last_n-null",
    "{\"type\":\"subscribe\",\"topic\":\"t\",\"client_id\":\"c\",\"last_n\":null}",
    PUBSUB_REQUEST_SUBSCRIBE, NULL, "t", "c", 0, NULL, NULL },
  /* -0 is the integer 0. */
  { "last_n-minus-zero",
    "{\"type\":\"subscribe\",\"topic\":\"t\",\"client_id\":\"c\",\"last_n\":-0}",
    PUBSUB_REQUEST_SUBSCRIBE, NULL, "t", "c", 0, NULL, NULL },
  { "last_n-uint32-overflow",
    "{\"type\":\"subscribe\",\"topic\":\"t\",\"client_id\":\"c\",\"last_n\":4294967296}",
    PUBSUB_REQUEST_SUBSCRIBE, NULL, "t", "c", G_GUINT64_CONSTANT (4294967296), NULL, NULL },
  { "last_n-max-minus-one",
    "{\"type\":\"subscribe\",\"topic\":\"t\",\"client_id\":\"c\",\"last_n\":18446744073709551614}",
    PUBSUB_REQUEST_SUBSCRIBE, NULL, "t", "c", G_MAXUINT64 - 1, NULL, NULL },
  { "last_n-max",
    "{\"type\":\"subscribe\",\"topic\":\"t\",\"client_id\":\"c\",\"last_n\":18446744073709551615}",
    PUBSUB_REQUEST_SUBSCRIBE, NULL, "t", "c", G_MAXUINT64, NULL, NULL },
  { "last_n-saturates",
    "{\"type\":\"subscribe\",\"topic\":\"t\",\"client_id\":\"c\",\"last_n\":18446744073709551616}",
    PUBSUB_REQUEST_SUBSCRIBE, NULL, "t", "c", G_MAXUINT64, NULL, NULL },
  { "last_n-huge-saturates",
    "{\"type\":\"subscribe\",\"topic\":\"t\",\"client_id\":\"c\","
    "\"last_n\":99999999999999999999999999999999999999999}",
    PUBSUB_REQUEST_SUBSCRIBE, NULL, "t", "c", G_MAXUINT64, NULL, NULL },
  { "escaped-keys-and-values",
    "{\"\\u0074ype\":\"sub\\u0073cribe\",\"top\\u0069c\":\"\\u006frders\",\"client\\u005fid\":"
    "\"c\\u00e9\\ud83d\\ude00\",\"last\\u005fn\":2}",
    PUBSUB_REQUEST_SUBSCRIBE, NULL, "orders", "c\xc3\xa9\xf0\x9f\x98\x80", 2, NULL, NULL },
  { "unknown-fields-ignored",
    "{\"x\":{\"type\":\"publish\"},\"type\":\"subscribe\",\"topic\":\"t\",\"client_id\":\"c\","
    "\"extra\":[1,2,{\"a\":null}],\"message\":5}",
    PUBSUB_REQUEST_SUBSCRIBE, NULL, "t", "c", 0, NULL, NULL },
  /* Duplicate keys: the last one wins, as with JSON.parse() and json-glib. */
  { "duplicate-type",
    "{\"type\":\"ping\",\"topic\":\"t\",\"client_id\":\"c\",\"type\":\"subscribe\"}",
    PUBSUB_REQUEST_SUBSCRIBE, NULL, "t", "c", 0, NULL, NULL },
  { "duplicate-topic",
    "{\"type\":\"subscribe\",\"topic\":\"first\",\"client_id\":\"c\",\"topic\":\"second\"}",
    PUBSUB_REQUEST_SUBSCRIBE, NULL, "second", "c", 0, NULL, NULL },
  { "duplicate-invalid-then-valid",
    "{\"type\":\"subscribe\",\"topic\":\"a b\",\"client_id\":5,\"last_n\":-1,"
    "\"topic\":\"ok\",\"client_id\":\"c\",\"last_n\":1}",
    PUBSUB_REQUEST_SUBSCRIBE, NULL, "ok", "c", 1, NULL, NULL },
  { "duplicate-escaped-key",
    "{\"type\":\"subscribe\",\"topic\":\"first\",\"client_id\":\"c\",\"\\u0074opic\":\"second\"}",
    PUBSUB_REQUEST_SUBSCRIBE, NULL, "second", "c", 0, NULL, NULL },
  { "duplicate-request_id",
    "{\"type\":\"ping\",\"request_id\":\"a\",\"request_id\":\"b\"}",
    PUBSUB_REQUEST_PING, "\"b\"", NULL, NULL, 0, NULL, NULL },
  { "topic-128",
    "{\"type\":\"subscribe\",\"client_id\":\"c\",\"topic\":\""
    "0123456789012345678901234567890123456789012345678901234567890123"
    "0123456789012345678901234567890123456789012345678901234567890123\"}",
    PUBSUB_REQUEST_SUBSCRIBE, NULL,
    "0123456789012345678901234567890123456789012345678901234567890123"
    "0123456789012345678901234567890123456789012345678901234567890123", "c", 0, NULL, NULL },
  /* unsubscribe */
  { "unsubscribe",
    "{\"type\":\"unsubscribe\",\"topic\":\"orders\",\"client_id\":\"c1\",\"request_id\":\"r2\"}",
    PUBSUB_REQUEST_UNSUBSCRIBE, "\"r2\"", "orders", "c1", 0, NULL, NULL },
  { "unsubscribe-ignores-last_n",
    "{\"type\":\"unsubscribe\",\"topic\":\"t\",\"client_id\":\"c\",\"last_n\":-1}",
    PUBSUB_REQUEST_UNSUBSCRIBE, NULL, "t", "c", 0, NULL, NULL },
  /* publish */
  { "publish",
    "{\"type\":\"publish\",\"topic\":\"orders\",\"message\":{\"id\":\"" UUID "\","
    "\"payload\":{\"a\":[1,2]}},\"request_id\":\"r3\"}",
    PUBSUB_REQUEST_PUBLISH, "\"r3\"", "orders", NULL, 0, UUID, "{\"a\":[1,2]}" },
  { "publish-payload-verbatim",
    "{\"type\":\"publish\",\"topic\":\"t\",\"message\":{\"payload\" : "
    "[12345678901234567890, 1e400, -0.0, \"a\\u0000b\", \"\\u001f\", 1E5, 0.1, \"\xc3\xa9\"] ,"
    "\"id\":\"" UUID "\"}}",
    PUBSUB_REQUEST_PUBLISH, NULL, "t", NULL, 0, UUID,
    "[12345678901234567890, 1e400, -0.0, \"a\\u0000b\", \"\\u001f\", 1E5, 0.1, \"\xc3\xa9\"]" },
  { "publish-payload-null",
    "{\"type\":\"publish\",\"topic\":\"t\",\"message\":{\"id\":\"" UUID "\",\"payload\":null}}",
    PUBSUB_REQUEST_PUBLISH, NULL, "t", NULL, 0, UUID, "null" },
  { "publish-payload-string",
    "{\"type\":\"publish\",\"topic\":\"t\",\"message\":{\"id\":\"" UUID "\",\"payload\":\"}\"}}",
    PUBSUB_REQUEST_PUBLISH, NULL, "t", NULL, 0, UUID, "\"}\"" },
  { "publish-payload-number",
    "{\"type\":\"publish\",\"topic\":\"t\",\"message\":{\"id\":\"" UUID "\",\"payload\":-1.5e-7}}",
    PUBSUB_REQUEST_PUBLISH, NULL, "t", NULL, 0, UUID, "-1.5e-7" },
  { "publish-payload-big-int",
    "{\"type\":\"publish\",\"topic\":\"t\",\"message\":{\"id\":\"" UUID "\","
    "\"payload\":12345678901234567890}}",
    PUBSUB_REQUEST_PUBLISH, NULL, "t", NULL, 0, UUID, "12345678901234567890" },
  { "publish-message-extra-fields",
    "{\"type\":\"publish\",\"topic\":\"t\",\"message\":{\"x\":1,\"id\":\"" UUID "\","
    "\"payload\":true,\"y\":{\"id\":2}}}",
    PUBSUB_REQUEST_PUBLISH, NULL, "t", NULL, 0, UUID, "true" },
  { "publish-message-duplicate-id",
    "{\"type\":\"publish\",\"topic\":\"t\",\"message\":{\"id\":\"bad\",\"payload\":1,"
    "\"id\":\"" UUID2 "\",\"payload\":2}}",
    PUBSUB_REQUEST_PUBLISH, NULL, "t", NULL, 0, UUID2, "2" },
  { "publish-uuid-upper",
    "{\"type\":\"publish\",\"topic\":\"t\",\"message\":{\"id\":\"123E4567-E89B-12D3-A456-426614174000\","
    "\"payload\":0}}",
    PUBSUB_REQUEST_PUBLISH, NULL, "t", NULL, 0, "123E4567-E89B-12D3-A456-426614174000", "0" },
  { "publish-uuid-escaped",
    "{\"type\":\"publish\",\"topic\":\"t\",\"message\":{\"id\":"
    "\"\\u00300000000-0000-4000-8000-00000000000\\u0031\",\"payload\":0}}",
    PUBSUB_REQUEST_PUBLISH, NULL, "t", NULL, 0, UUID2, "0" },
  { "publish-ignores-client_id",
    "{\"type\":\"publish\",\"topic\":\"t\",\"client_id\":5,\"last_n\":-3,"
    "\"message\":{\"id\":\"" UUID "\",\"payload\":{}}}",
    PUBSUB_REQUEST_PUBLISH, NULL, "t", NULL, 0, UUID, "{}" },
  /* ping */
  { "ping", "{\"type\":\"ping\"}", PUBSUB_REQUEST_PING, NULL, NULL, NULL, 0, NULL, NULL },
  { "ping-request_id", "{\"type\":\"ping\",\"request_id\":\"r4\"}",
    PUBSUB_REQUEST_PING, "\"r4\"", NULL, NULL, 0, NULL, NULL },
  { "ping-request_id-null", "{\"type\":\"ping\",\"request_id\":null}",
    PUBSUB_REQUEST_PING, NULL, NULL, NULL, 0, NULL, NULL },
  { "ping-request_id-empty", "{\"type\":\"ping\",\"request_id\":\"\"}",
    PUBSUB_REQUEST_PING, "\"\"", NULL, NULL, 0, NULL, NULL },
  /* request_id is kept as its raw token, escapes and all. */
  { "ping-request_id-raw",
    "{\"type\":\"ping\",\"request_id\":\"r\\u0031\\\"\\\\\\n\xc3\xa9\"}",
    PUBSUB_REQUEST_PING, "\"r\\u0031\\\"\\\\\\n\xc3\xa9\"", NULL, NULL, 0, NULL, NULL },
  { "ping-ignores-topic",
    "{\"type\":\"ping\",\"topic\":\"not a topic\",\"client_id\":[]}",
    PUBSUB_REQUEST_PING, NULL, NULL, NULL, 0, NULL, NULL },
};

static void
test_parse_ok (gconstpointer data)
{
  const OkRow *row = data;
  gsize len = strlen (row->text);
  g_autofree char *text = g_memdup2 (row->text, len);   /* no NUL after it */
  g_auto(PubsubRequest) request = { 0 };
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) ack = NULL;
  g_autoptr(JsonNode) body = NULL;
  FrameParts parts;

  if (!pubsub_request_parse (text, len, &request, &error))
    g_error ("'%s': %s", row->name, error->message);
  g_assert_no_error (error);

  g_assert_cmpint (request.type, ==, row->type);
  if (row->request_id != NULL)
    {
      g_assert_nonnull (request.request_id);
      g_assert_cmpmem (request.request_id, request.request_id_len,
                       row->request_id, strlen (row->request_id));
      /* A pointer into the frame, not a copy. */
      g_assert_true (request.request_id >= text && request.request_id < text + len);
    }
  else
    g_assert_null (request.request_id);
  g_assert_cmpstr (request.topic, ==, row->topic != NULL ? row->topic : "");
  g_assert_cmpstr (request.client_id, ==, row->client_id);
  g_assert_cmpuint (request.last_n, ==, row->last_n);
  g_assert_cmpstr (request.message_id, ==, row->message_id != NULL ? row->message_id : "");
  if (row->payload != NULL)
    {
      g_assert_nonnull (request.payload);
      g_assert_cmpmem (request.payload, request.payload_len, row->payload, strlen (row->payload));
      g_assert_true (request.payload >= text && request.payload + request.payload_len <= text + len);
    }
  else
    g_assert_null (request.payload);

  /* The ack echoes request_id verbatim and names the topic. */
  ack = pubsub_frame_new_ack (&request, request.topic);
  body = frame_body (ack, &parts);
  if (row->request_id != NULL)
    {
      g_autofree char *echo = g_strconcat ("\"request_id\":", row->request_id, NULL);

      g_assert_nonnull (g_strstr_len (parts.json, (gssize) parts.json_len, echo));
    }
  else
    g_assert_false (json_object_has_member (json_node_get_object (body), "request_id"));
  g_assert_cmpstr (get_string (json_node_get_object (body), "topic"), ==, request.topic);

  /* Clearing twice is fine. */
  pubsub_request_clear (&request);
  pubsub_request_clear (&request);
  g_assert_null (request.client_id);
}

/* ---------------------------------------------------------------------- */
/* Request parsing: refused frames                                        */

typedef struct {
  const char *name;
  const char *text;
  gssize      len;          /* -1: strlen */
  const char *message;      /* substring of the BAD_REQUEST message */
  const char *request_id;   /* raw token still captured, NULL: none */
} BadRow;

#define SUB(fields) "{\"type\":\"subscribe\",\"topic\":\"t\"," fields "}"
#define PUB(message) "{\"type\":\"publish\",\"topic\":\"t\",\"message\":" message "}"

static const BadRow bad_rows[] = {
  /* not JSON */
  { "not-json", "hello", -1, "not valid JSON", NULL },
  { "empty", "", -1, "not valid JSON", NULL },
  { "whitespace", "  \n", -1, "not valid JSON", NULL },
  { "unterminated", "{\"type\":\"ping\"", -1, "not valid JSON", NULL },
  { "single-quotes", "{'type':'ping'}", -1, "not valid JSON", NULL },
  { "comment", "{\"type\":\"ping\"/* hi */}", -1, "not valid JSON", NULL },
  { "trailing-comma", "{\"type\":\"ping\",}", -1, "not valid JSON", NULL },
  { "trailing-data", "{\"type\":\"ping\"} {}", -1, "not valid JSON", NULL },
  { "leading-zero", SUB ("\"client_id\":\"c\",\"last_n\":01"), -1, "not valid JSON", NULL },
  { "hex", SUB ("\"client_id\":\"c\",\"last_n\":0x10"), -1, "not valid JSON", NULL },
  { "nan", SUB ("\"client_id\":\"c\",\"last_n\":NaN"), -1, "not valid JSON", NULL },
  { "raw-nul", "{\"type\":\"ping\",\"request_id\":\"a\0\"}", 33, "not valid JSON", NULL },
  { "raw-control", "{\"type\":\"ping\",\"request_id\":\"a\x01\"}", -1, "not valid JSON", NULL },
  /* not an object */
  { "array", "[{\"type\":\"ping\"}]", -1, "a frame must be a JSON object", NULL },
  { "string", "\"ping\"", -1, "a frame must be a JSON object", NULL },
  { "number", "42", -1, "a frame must be a JSON object", NULL },
  { "null", "null", -1, "a frame must be a JSON object", NULL },
  { "true", "true", -1, "a frame must be a JSON object", NULL },
  /* type */
  { "type-missing", "{}", -1, "missing field 'type'", NULL },
  { "type-missing-with-fields", "{\"topic\":\"t\",\"client_id\":\"c\"}", -1,
    "missing field 'type'", NULL },
  { "type-null", "{\"type\":null}", -1, "missing field 'type'", NULL },
  { "type-number", "{\"type\":1}", -1, "field 'type' must be a string", NULL },
  { "type-array", "{\"type\":[\"ping\"]}", -1, "field 'type' must be a string", NULL },
  { "type-object", "{\"type\":{}}", -1, "field 'type' must be a string", NULL },
  { "type-bool", "{\"type\":true}", -1, "field 'type' must be a string", NULL },
  { "type-unknown", "{\"type\":\"subscribed\"}", -1, "unknown type", NULL },
  { "type-empty", "{\"type\":\"\"}", -1, "unknown type", NULL },
  { "type-case", "{\"type\":\"PING\"}", -1, "unknown type", NULL },
  { "type-prefix", "{\"type\":\"pin\"}", -1, "unknown type", NULL },
  { "type-nul", "{\"type\":\"ping\\u0000\"}", -1, "unknown type", NULL },
  { "type-space", "{\"type\":\" ping\"}", -1, "unknown type", NULL },
  { "type-key-case", "{\"Type\":\"ping\"}", -1, "missing field 'type'", NULL },
  { "type-nested-only", "{\"x\":{\"type\":\"ping\"}}", -1, "missing field 'type'", NULL },
  /* topic */
  { "topic-missing", "{\"type\":\"subscribe\",\"client_id\":\"c\"}", -1,
    "missing field 'topic'", NULL },
  { "topic-null", "{\"type\":\"subscribe\",\"topic\":null,\"client_id\":\"c\"}", -1,
    "missing field 'topic'", NULL },
  { "topic-number", "{\"type\":\"subscribe\",\"topic\":5,\"client_id\":\"c\"}", -1,
    "field 'topic' must be a string", NULL },
  { "topic-array", "{\"type\":\"publish\",\"topic\":[\"t\"]}", -1,
    "field 'topic' must be a string", NULL },
  { "topic-empty", "{\"type\":\"subscribe\",\"topic\":\"\",\"client_id\":\"c\"}", -1,
    "invalid topic name", NULL },
  { "topic-space", "{\"type\":\"subscribe\",\"topic\":\"a b\",\"client_id\":\"c\"}", -1,
    "invalid topic name", NULL },
  { "topic-slash-escaped", "{\"type\":\"unsubscribe\",\"topic\":\"a\\/b\",\"client_id\":\"c\"}", -1,
    "invalid topic name", NULL },
  { "topic-nul", "{\"type\":\"subscribe\",\"topic\":\"a\\u0000b\",\"client_id\":\"c\"}", -1,
    "invalid topic name", NULL },
  { "topic-non-ascii", "{\"type\":\"publish\",\"topic\":\"caf\xc3\xa9\",\"message\":{}}", -1,
    "invalid topic name", NULL },
  { "topic-non-ascii-escaped", "{\"type\":\"publish\",\"topic\":\"caf\\u00e9\",\"message\":{}}", -1,
    "invalid topic name", NULL },
  { "topic-129",
    "{\"type\":\"subscribe\",\"client_id\":\"c\",\"topic\":\""
    "0123456789012345678901234567890123456789012345678901234567890123"
    "01234567890123456789012345678901234567890123456789012345678901234\"}", -1,
    "invalid topic name", NULL },
  { "topic-129-escaped",   /* 127 plain characters and two escapes */
    "{\"type\":\"subscribe\",\"client_id\":\"c\",\"topic\":\""
    "0123456789012345678901234567890123456789012345678901234567890123"
    "012345678901234567890123456789012345678901234567890123456789012\\u0033\\u0034\"}", -1,
    "invalid topic name", NULL },
  /* client_id */
  { "client_id-missing", "{\"type\":\"subscribe\",\"topic\":\"t\"}", -1,
    "missing field 'client_id'", NULL },
  { "client_id-missing-unsubscribe", "{\"type\":\"unsubscribe\",\"topic\":\"t\"}", -1,
    "missing field 'client_id'", NULL },
  { "client_id-null", SUB ("\"client_id\":null"), -1, "missing field 'client_id'", NULL },
  { "client_id-number", SUB ("\"client_id\":7"), -1, "field 'client_id' must be a string", NULL },
  { "client_id-object", "{\"type\":\"unsubscribe\",\"topic\":\"t\",\"client_id\":{}}", -1,
    "field 'client_id' must be a string", NULL },
  { "client_id-empty", SUB ("\"client_id\":\"\""), -1, "non-empty", NULL },
  { "client_id-nul", SUB ("\"client_id\":\"a\\u0000b\""), -1, "without NUL", NULL },
  /* last_n */
  { "last_n-negative", SUB ("\"client_id\":\"c\",\"last_n\":-1"), -1,
    "field 'last_n' must be an integer >= 0", NULL },
  { "last_n-negative-huge", SUB ("\"client_id\":\"c\",\"last_n\":-99999999999999999999999"), -1,
    "field 'last_n' must be an integer >= 0", NULL },
  { "last_n-float", SUB ("\"client_id\":\"c\",\"last_n\":1.5"), -1,
    "field 'last_n' must be an integer >= 0", NULL },
  { "last_n-float-integral", SUB ("\"client_id\":\"c\",\"last_n\":1.0"), -1,
    "field 'last_n' must be an integer >= 0", NULL },
  { "last_n-exponent", SUB ("\"client_id\":\"c\",\"last_n\":1e2"), -1,
    "field 'last_n' must be an integer >= 0", NULL },
  { "last_n-exponent-upper", SUB ("\"client_id\":\"c\",\"last_n\":1E2"), -1,
    "field 'last_n' must be an integer >= 0", NULL },
  { "last_n-string", SUB ("\"client_id\":\"c\",\"last_n\":\"5\""), -1,
    "field 'last_n' must be an integer >= 0", NULL },
  { "last_n-bool", SUB ("\"client_id\":\"c\",\"last_n\":true"), -1,
    "field 'last_n' must be an integer >= 0", NULL },
  { "last_n-array", SUB ("\"client_id\":\"c\",\"last_n\":[1]"), -1,
    "field 'last_n' must be an integer >= 0", NULL },
  { "last_n-object", SUB ("\"client_id\":\"c\",\"last_n\":{}"), -1,
    "field 'last_n' must be an integer >= 0", NULL },
  /* message */
  { "message-missing", "{\"type\":\"publish\",\"topic\":\"t\"}", -1,
    "missing field 'message'", NULL },
  { "message-null", PUB ("null"), -1, "missing field 'message'", NULL },
  { "message-string", PUB ("\"{}\""), -1, "field 'message' must be an object", NULL },
  { "message-array", PUB ("[]"), -1, "field 'message' must be an object", NULL },
  { "message-number", PUB ("1"), -1, "field 'message' must be an object", NULL },
  { "id-missing", PUB ("{\"payload\":1}"), -1, "message.id must be a valid UUID", NULL },
  { "id-empty-message", PUB ("{}"), -1, "message.id must be a valid UUID", NULL },
  { "id-null", PUB ("{\"id\":null,\"payload\":1}"), -1, "message.id must be a valid UUID", NULL },
  { "id-number", PUB ("{\"id\":5,\"payload\":1}"), -1, "message.id must be a valid UUID", NULL },
  { "id-not-uuid", PUB ("{\"id\":\"not-a-uuid\",\"payload\":1}"), -1,
    "message.id must be a valid UUID", NULL },
  { "id-empty", PUB ("{\"id\":\"\",\"payload\":1}"), -1, "message.id must be a valid UUID", NULL },
  { "id-short", PUB ("{\"id\":\"123e4567-e89b-12d3-a456-42661417400\",\"payload\":1}"), -1,
    "message.id must be a valid UUID", NULL },
  { "id-long", PUB ("{\"id\":\"" UUID "0\",\"payload\":1}"), -1,
    "message.id must be a valid UUID", NULL },
  { "id-braces", PUB ("{\"id\":\"{" UUID "}\",\"payload\":1}"), -1,
    "message.id must be a valid UUID", NULL },
  { "id-no-dashes", PUB ("{\"id\":\"123e4567e89b12d3a456426614174000\",\"payload\":1}"), -1,
    "message.id must be a valid UUID", NULL },
  { "id-bad-hex", PUB ("{\"id\":\"123e4567-e89b-12d3-a456-42661417400g\",\"payload\":1}"), -1,
    "message.id must be a valid UUID", NULL },
  { "id-trailing-nul", PUB ("{\"id\":\"" UUID "\\u0000\",\"payload\":1}"), -1,
    "message.id must be a valid UUID", NULL },
  { "id-duplicate-last-bad", PUB ("{\"id\":\"" UUID "\",\"payload\":1,\"id\":\"x\"}"), -1,
    "message.id must be a valid UUID", NULL },
  { "id-nested-only", PUB ("{\"x\":{\"id\":\"" UUID "\"},\"payload\":1}"), -1,
    "message.id must be a valid UUID", NULL },
  { "payload-missing", PUB ("{\"id\":\"" UUID "\"}"), -1, "missing field 'message.payload'", NULL },
  { "payload-nested-only", PUB ("{\"id\":\"" UUID "\",\"x\":{\"payload\":1}}"), -1,
    "missing field 'message.payload'", NULL },
  /* request_id */
  { "request_id-number", "{\"type\":\"ping\",\"request_id\":1}", -1,
    "field 'request_id' must be a string", NULL },
  { "request_id-object", "{\"type\":\"ping\",\"request_id\":{\"a\":\"b\"}}", -1,
    "field 'request_id' must be a string", NULL },
  { "request_id-bool", "{\"type\":\"ping\",\"request_id\":false}", -1,
    "field 'request_id' must be a string", NULL },
  { "request_id-array", "{\"type\":\"ping\",\"request_id\":[\"r\"]}", -1,
    "field 'request_id' must be a string", NULL },
  /* request_id is captured even when a later rule fails, wherever it sits. */
  { "captured-type-missing", "{\"request_id\":\"r9\"}", -1, "missing field 'type'", "\"r9\"" },
  { "captured-type-unknown", "{\"type\":\"bogus\",\"request_id\":\"r9\"}", -1, "unknown type",
    "\"r9\"" },
  { "captured-topic", "{\"type\":\"subscribe\",\"topic\":\"a b\",\"client_id\":\"c\",\"request_id\":\"r9\"}",
    -1, "invalid topic name", "\"r9\"" },
  { "captured-client_id", "{\"request_id\":\"r\\u0039\",\"type\":\"subscribe\",\"topic\":\"t\"}", -1,
    "missing field 'client_id'", "\"r\\u0039\"" },
  { "captured-last_n", SUB ("\"client_id\":\"c\",\"last_n\":-5,\"request_id\":\"r\\\"9\""), -1,
    "field 'last_n' must be an integer >= 0", "\"r\\\"9\"" },
  { "captured-uuid", "{\"type\":\"publish\",\"topic\":\"t\",\"message\":{\"id\":\"x\",\"payload\":1},"
    "\"request_id\":\"r9\"}", -1, "message.id must be a valid UUID", "\"r9\"" },
  { "captured-payload", "{\"type\":\"publish\",\"request_id\":\"\",\"topic\":\"t\","
    "\"message\":{\"id\":\"" UUID "\"}}", -1, "missing field 'message.payload'", "\"\"" },
};

static void
test_parse_bad (gconstpointer data)
{
  const BadRow *row = data;
  gsize len = row->len < 0 ? strlen (row->text) : (gsize) row->len;
  g_autofree char *text = g_memdup2 (row->text, len > 0 ? len : 1);
  g_auto(PubsubRequest) request = { 0 };
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) frame = NULL;
  g_autoptr(JsonNode) body = NULL;
  JsonObject *object;
  JsonObject *error_object;
  FrameParts parts;
  gint64 before;

  g_assert_false (pubsub_request_parse (text, len, &request, &error));
  g_assert_error (error, PUBSUB_ERROR, PUBSUB_ERROR_BAD_REQUEST);
  if (strstr (error->message, row->message) == NULL)
    g_error ("'%s': expected an error containing \"%s\", got \"%s\"",
             row->name, row->message, error->message);

  if (row->request_id != NULL)
    g_assert_cmpmem (request.request_id, request.request_id_len,
                     row->request_id, strlen (row->request_id));
  else
    g_assert_null (request.request_id);

  /* The error frame a client would get. */
  before = g_get_real_time ();
  frame = pubsub_frame_new_error (&request, error);
  body = frame_body (frame, &parts);
  object = json_node_get_object (body);
  assert_ts_between (object, before, g_get_real_time ());
  g_assert_cmpstr (get_string (object, "type"), ==, "error");
  g_assert_true (JSON_NODE_HOLDS_OBJECT (json_object_get_member (object, "error")));
  error_object = json_object_get_object_member (object, "error");
  g_assert_cmpstr (get_string (error_object, "code"), ==, "BAD_REQUEST");
  g_assert_cmpstr (get_string (error_object, "message"), ==, error->message);
  if (row->request_id != NULL)
    {
      g_autofree char *echo = g_strconcat ("\"request_id\":", row->request_id, NULL);

      g_assert_nonnull (g_strstr_len (parts.json, (gssize) parts.json_len, echo));
    }
  else
    g_assert_false (json_object_has_member (object, "request_id"));
  /* The topic is named when the request got as far as a valid one. */
  if (request.topic[0] != '\0')
    g_assert_cmpstr (get_string (object, "topic"), ==, request.topic);
  else
    g_assert_false (json_object_has_member (object, "topic"));
}

/* Up to 64 top-level fields, and 64 in message. */
static void
test_parse_field_limit (void)
{
  for (guint extra = 62; extra <= 64; extra++)
    {
      g_autoptr(GString) text = g_string_new ("{\"type\":\"ping\",\"request_id\":\"r\"");
      g_auto(PubsubRequest) request = { 0 };
      g_autoptr(GError) error = NULL;
      gboolean ok;

      for (guint i = 0; i < extra; i++)
        g_string_append_printf (text, ",\"f%u\":%u", i, i);
      g_string_append_c (text, '}');
      ok = pubsub_request_parse (text->str, text->len, &request, &error);
      if (2 + extra <= 64)
        {
          g_assert_no_error (error);
          g_assert_true (ok);
          g_assert_cmpint (request.type, ==, PUBSUB_REQUEST_PING);
          g_assert_cmpmem (request.request_id, request.request_id_len, "\"r\"", 3);
        }
      else
        {
          g_assert_false (ok);
          g_assert_error (error, PUBSUB_ERROR, PUBSUB_ERROR_BAD_REQUEST);
          g_assert_nonnull (strstr (error->message, "64 fields"));
        }
    }

  for (guint extra = 61; extra <= 63; extra++)
    {
      g_autoptr(GString) text = g_string_new ("{\"type\":\"publish\",\"topic\":\"t\",\"message\":{"
                                              "\"id\":\"" UUID "\",\"payload\":1");
      g_auto(PubsubRequest) request = { 0 };
      g_autoptr(GError) error = NULL;
      gboolean ok;

      for (guint i = 0; i < extra; i++)
        g_string_append_printf (text, ",\"f%u\":%u", i, i);
      g_string_append (text, "}}");
      ok = pubsub_request_parse (text->str, text->len, &request, &error);
      if (2 + extra <= 64)
        {
          g_assert_no_error (error);
          g_assert_true (ok);
          g_assert_cmpmem (request.payload, request.payload_len, "1", 1);
        }
      else
        {
          g_assert_false (ok);
          g_assert_error (error, PUBSUB_ERROR, PUBSUB_ERROR_BAD_REQUEST);
          g_assert_nonnull (strstr (error->message, "too many fields"));
        }
    }
}

/* Only @len bytes of the text count. */
static void
test_parse_length (void)
{
  static const char text[] = "{\"type\":\"ping\"}{\"type\":";
  g_auto(PubsubRequest) request = { 0 };
  g_autoptr(GError) error = NULL;

  g_assert_true (pubsub_request_parse (text, 15, &request, &error));
  g_assert_no_error (error);
  g_assert_cmpint (request.type, ==, PUBSUB_REQUEST_PING);
  pubsub_request_clear (&request);
  g_assert_false (pubsub_request_parse (text, sizeof text - 1, &request, &error));
  g_assert_error (error, PUBSUB_ERROR, PUBSUB_ERROR_BAD_REQUEST);
}

/* A failed parse leaves nothing behind from an earlier one. */
static void
test_parse_resets (void)
{
  static const char good[] = "{\"type\":\"subscribe\",\"topic\":\"t\",\"client_id\":\"c\",\"last_n\":4,"
                             "\"request_id\":\"r\"}";
  static const char bad[] = "{\"type\":\"bogus\"}";
  g_auto(PubsubRequest) request = { 0 };
  g_autoptr(GError) error = NULL;

  g_assert_true (pubsub_request_parse (good, sizeof good - 1, &request, NULL));
  pubsub_request_clear (&request);
  g_assert_false (pubsub_request_parse (bad, sizeof bad - 1, &request, &error));
  g_assert_null (request.request_id);
  g_assert_cmpstr (request.topic, ==, "");
  g_assert_null (request.client_id);
  g_assert_cmpuint (request.last_n, ==, 0);
}

/* ---------------------------------------------------------------------- */
/* Frame builders                                                         */

static void
parse_request (const char    *text,
               PubsubRequest *request)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (pubsub_request_parse (text, strlen (text), request, &error));
  g_assert_no_error (error);
}

static void
test_frame_ack (void)
{
  static const char *const with_id[] = { "type", "request_id", "topic", "status", "ts", NULL };
  static const char *const without_id[] = { "type", "topic", "status", "ts", NULL };
  g_auto(PubsubRequest) request = { 0 };
  gint64 before = g_get_real_time ();

  parse_request ("{\"type\":\"subscribe\",\"topic\":\"orders\",\"client_id\":\"c\","
                 "\"request_id\":\"r1\"}", &request);
  {
    g_autoptr(GBytes) frame = pubsub_frame_new_ack (&request, "orders");
    g_autoptr(JsonNode) body = NULL;
    JsonObject *object;
    FrameParts parts;

    body = frame_body (frame, &parts);
    object = json_node_get_object (body);
    assert_member_names (object, with_id);
    g_assert_cmpstr (get_string (object, "type"), ==, "ack");
    g_assert_cmpstr (get_string (object, "request_id"), ==, "r1");
    g_assert_cmpstr (get_string (object, "topic"), ==, "orders");
    g_assert_cmpstr (get_string (object, "status"), ==, "ok");
    assert_ts_between (object, before, g_get_real_time ());
  }

  /* Without a request, or a request without request_id: omitted. */
  pubsub_request_clear (&request);
  parse_request ("{\"type\":\"subscribe\",\"topic\":\"orders\",\"client_id\":\"c\"}", &request);
  for (guint i = 0; i < 2; i++)
    {
      g_autoptr(GBytes) frame = pubsub_frame_new_ack (i == 0 ? &request : NULL, "x.y");
      g_autoptr(JsonNode) body = NULL;
      FrameParts parts;

      body = frame_body (frame, &parts);
      assert_member_names (json_node_get_object (body), without_id);
      g_assert_cmpstr (get_string (json_node_get_object (body), "topic"), ==, "x.y");
    }

  /* Whatever the topic argument holds comes out as valid JSON. */
  {
    g_autoptr(GBytes) frame = pubsub_frame_new_ack (NULL, "a\"b\\c\n\x01\xc3\xa9");
    g_autoptr(JsonNode) body = NULL;
    FrameParts parts;

    body = frame_body (frame, &parts);
    g_assert_cmpstr (get_string (json_node_get_object (body), "topic"), ==,
                     "a\"b\\c\n\x01\xc3\xa9");
  }
}

/* request_id goes back as the client wrote it: the same token, escapes kept. */
static void
test_frame_request_id_verbatim (void)
{
  static const char raw[] = "\"r\\u0031\\\"\\\\\\/\\n\xc3\xa9\\ud83d\\ude00\"";
  g_autofree char *text = g_strdup_printf ("{\"type\":\"ping\",\"request_id\":%s}", raw);
  g_autofree char *echo = g_strdup_printf ("\"request_id\":%s,", raw);
  g_auto(PubsubRequest) request = { 0 };
  GBytes *frames[3];

  parse_request (text, &request);
  frames[0] = pubsub_frame_new_ack (&request, "t");
  frames[1] = pubsub_frame_new_pong (&request);
  {
    g_autoptr(GError) error = g_error_new_literal (PUBSUB_ERROR, PUBSUB_ERROR_TOPIC_NOT_FOUND, "x");

    frames[2] = pubsub_frame_new_error (&request, error);
  }
  for (guint i = 0; i < G_N_ELEMENTS (frames); i++)
    {
      g_autoptr(JsonNode) body = NULL;
      FrameParts parts;

      body = frame_body (frames[i], &parts);
      g_assert_nonnull (g_strstr_len (parts.json, (gssize) parts.json_len, echo));
      g_assert_cmpstr (get_string (json_node_get_object (body), "request_id"), ==,
                       "r1\"\\/\n\xc3\xa9\xf0\x9f\x98\x80");
      g_bytes_unref (frames[i]);
    }
}

static void
test_frame_error (void)
{
  static const char *const full[] = { "type", "request_id", "topic", "error", "ts", NULL };
  static const char *const bare[] = { "type", "error", "ts", NULL };
  static const char *const error_members[] = { "code", "message", NULL };
  static const char message[] = "topic 'a\"b' \\ does\nnot\texist\x01\x1f\x7f \xc3\xa9 / \xf0\x9f\x98\x80";
  g_auto(PubsubRequest) request = { 0 };
  g_autoptr(GError) error = g_error_new_literal (PUBSUB_ERROR, PUBSUB_ERROR_TOPIC_NOT_FOUND, message);
  gint64 before = g_get_real_time ();

  parse_request ("{\"type\":\"publish\",\"topic\":\"orders\",\"request_id\":\"r1\",\"message\":"
                 "{\"id\":\"" UUID "\",\"payload\":1}}", &request);
  {
    g_autoptr(GBytes) frame = pubsub_frame_new_error (&request, error);
    g_autoptr(JsonNode) body = NULL;
    JsonObject *object;
    JsonObject *error_object;
    FrameParts parts;

    body = frame_body (frame, &parts);
    object = json_node_get_object (body);
    assert_member_names (object, full);
    g_assert_cmpstr (get_string (object, "type"), ==, "error");
    g_assert_cmpstr (get_string (object, "request_id"), ==, "r1");
    g_assert_cmpstr (get_string (object, "topic"), ==, "orders");
    error_object = json_object_get_object_member (object, "error");
    assert_member_names (error_object, error_members);
    g_assert_cmpstr (get_string (error_object, "code"), ==, "TOPIC_NOT_FOUND");
    g_assert_cmpstr (get_string (error_object, "message"), ==, message);
    assert_ts_between (object, before, g_get_real_time ());
    /* Control characters are escaped, not written raw. */
    g_assert_nonnull (g_strstr_len (parts.json, (gssize) parts.json_len, "\\u0001"));
    g_assert_nonnull (g_strstr_len (parts.json, (gssize) parts.json_len, "\\u001f"));
  }

  /* A request without topic (a ping): no topic member. */
  pubsub_request_clear (&request);
  parse_request ("{\"type\":\"ping\",\"request_id\":\"r2\"}", &request);
  {
    static const char *const no_topic[] = { "type", "request_id", "error", "ts", NULL };
    g_autoptr(GBytes) frame = pubsub_frame_new_error (&request, error);
    g_autoptr(JsonNode) body = NULL;
    FrameParts parts;

    body = frame_body (frame, &parts);
    assert_member_names (json_node_get_object (body), no_topic);
  }

  /* No request: neither request_id nor topic. */
  {
    g_autoptr(GBytes) frame = pubsub_frame_new_error (NULL, error);
    g_autoptr(JsonNode) body = NULL;
    FrameParts parts;

    body = frame_body (frame, &parts);
    assert_member_names (json_node_get_object (body), bare);
  }
}

static void
test_frame_error_codes (void)
{
  static const struct { gboolean other_domain; gint code; const char *text; } rows[] = {
    { FALSE, PUBSUB_ERROR_BAD_REQUEST, "BAD_REQUEST" },
    { FALSE, PUBSUB_ERROR_TOPIC_NOT_FOUND, "TOPIC_NOT_FOUND" },
    { FALSE, PUBSUB_ERROR_TOPIC_EXISTS, "TOPIC_EXISTS" },
    { FALSE, PUBSUB_ERROR_LIMIT_EXCEEDED, "LIMIT_EXCEEDED" },
    { FALSE, PUBSUB_ERROR_SLOW_CONSUMER, "SLOW_CONSUMER" },
    { FALSE, PUBSUB_ERROR_UNAUTHORIZED, "UNAUTHORIZED" },
    { FALSE, PUBSUB_ERROR_INTERNAL, "INTERNAL" },
    { FALSE, 1000, "INTERNAL" },                /* out of range */
    { FALSE, -1, "INTERNAL" },
    { TRUE, PUBSUB_ERROR_BAD_REQUEST, "INTERNAL" },   /* another domain */
  };

  for (gsize i = 0; i < G_N_ELEMENTS (rows); i++)
    {
      g_autoptr(GError) error = g_error_new_literal (rows[i].other_domain ? G_IO_ERROR
                                                     : PUBSUB_ERROR, rows[i].code, "m");
      g_autoptr(GBytes) frame = pubsub_frame_new_error (NULL, error);
      g_autoptr(JsonNode) body = NULL;
      JsonObject *error_object;
      FrameParts parts;

      body = frame_body (frame, &parts);
      error_object = json_object_get_object_member (json_node_get_object (body), "error");
      g_assert_cmpstr (get_string (error_object, "code"), ==, rows[i].text);
      g_assert_cmpstr (get_string (error_object, "message"), ==, "m");
    }
}

static void
test_frame_pong (void)
{
  static const char *const with_id[] = { "type", "request_id", "ts", NULL };
  static const char *const without_id[] = { "type", "ts", NULL };
  g_auto(PubsubRequest) request = { 0 };
  gint64 before = g_get_real_time ();

  parse_request ("{\"type\":\"ping\",\"request_id\":\"p1\"}", &request);
  {
    g_autoptr(GBytes) frame = pubsub_frame_new_pong (&request);
    g_autoptr(JsonNode) body = NULL;
    FrameParts parts;

    body = frame_body (frame, &parts);
    assert_member_names (json_node_get_object (body), with_id);
    g_assert_cmpstr (get_string (json_node_get_object (body), "type"), ==, "pong");
    g_assert_cmpstr (get_string (json_node_get_object (body), "request_id"), ==, "p1");
    assert_ts_between (json_node_get_object (body), before, g_get_real_time ());
  }
  {
    g_autoptr(GBytes) frame = pubsub_frame_new_pong (NULL);
    g_autoptr(JsonNode) body = NULL;
    FrameParts parts;

    body = frame_body (frame, &parts);
    assert_member_names (json_node_get_object (body), without_id);
    g_assert_cmpstr (get_string (json_node_get_object (body), "type"), ==, "pong");
  }
}

static void
test_frame_info (void)
{
  static const char *const with_topic[] = { "type", "topic", "msg", "ts", NULL };
  static const char *const without_topic[] = { "type", "msg", "ts", NULL };
  gint64 before = g_get_real_time ();

  {
    g_autoptr(GBytes) frame = pubsub_frame_new_info ("ping", NULL);
    g_autoptr(JsonNode) body = NULL;
    FrameParts parts;

    body = frame_body (frame, &parts);
    assert_member_names (json_node_get_object (body), without_topic);
    g_assert_cmpstr (get_string (json_node_get_object (body), "type"), ==, "info");
    g_assert_cmpstr (get_string (json_node_get_object (body), "msg"), ==, "ping");
    assert_ts_between (json_node_get_object (body), before, g_get_real_time ());
  }
  {
    g_autoptr(GBytes) frame = pubsub_frame_new_info ("topic_deleted", "orders");
    g_autoptr(JsonNode) body = NULL;
    FrameParts parts;

    body = frame_body (frame, &parts);
    assert_member_names (json_node_get_object (body), with_topic);
    g_assert_cmpstr (get_string (json_node_get_object (body), "type"), ==, "info");
    g_assert_cmpstr (get_string (json_node_get_object (body), "topic"), ==, "orders");
    g_assert_cmpstr (get_string (json_node_get_object (body), "msg"), ==, "topic_deleted");
  }
}

static void
test_frame_ping (void)
{
  g_autoptr(GBytes) frame = pubsub_ws_frame_new_ping ();
  gsize size;
  const guint8 *data = g_bytes_get_data (frame, &size);

  /* FIN + opcode 0x9, unmasked, empty body. */
  g_assert_cmpuint (size, ==, 2);
  g_assert_cmphex (data[0], ==, 0x89);
  g_assert_cmphex (data[1], ==, 0x00);
}

/* ---------------------------------------------------------------------- */
/* The event frame                                                        */

static const char *const event_payloads[] = {
  "12345678901234567890",
  "9223372036854775808",
  "1e400",
  "-0.0",
  "1e5",
  "0.1",
  "\"a\\u0000b\"",
  "\"\\u001f\"",
  "\"\\ud800\"",
  "null",
  "true",
  "{}",
  "[]",
  "{\"nested\":[1,{\"x\":\"\xc3\xa9\xf0\x9f\x98\x80\"}],\"e\":\"\\\"\\\\\\/\", \"sp\" : [ 1 , 2 ] }",
  "\"\xe2\x80\xa8\xe2\x80\xa9\"",   /* U+2028/2029: valid JSON, forwarded raw */
};

static void
test_frame_event (gconstpointer data)
{
  const char *payload = data;
  gint64 when = G_GINT64_CONSTANT (1700000000123456);
  g_autoptr(GBytes) frame = NULL;
  g_autofree char *expected = NULL;
  g_autofree char *copy = g_memdup2 (payload, strlen (payload));
  PubsubJsonMember members[8];
  PubsubJsonValue root;
  PubsubJsonValue message;
  guint n_members;
  FrameParts parts;

  frame = event_frame ("orders", UUID, copy, strlen (payload), when);
  split_frame (frame, &parts);

  /* The whole JSON text, byte for byte. */
  expected = g_strdup_printf ("{\"type\":\"event\",\"topic\":\"orders\",\"message\":{\"id\":\"" UUID
                              "\",\"payload\":%s},\"seq\":7,\"epoch\":\"" EPOCH "\","
                              "\"ts\":\"2023-11-14T22:13:20.123Z\"}", payload);
  g_assert_cmpmem (parts.json, parts.json_len, expected, strlen (expected));

  /* Strict JSON, and the payload span read back is the input. */
  g_assert_true (pubsub_json_parse_utf8_object (parts.json, parts.json_len, &root, members,
                                                G_N_ELEMENTS (members), &n_members, NULL));
  g_assert_cmpuint (n_members, ==, 6);
  g_assert_true (pubsub_json_key_equal (&members[2].key, "message"));
  message = members[2].value;
  g_assert_true (pubsub_json_object_members (&message, members, G_N_ELEMENTS (members),
                                             &n_members));
  g_assert_cmpuint (n_members, ==, 2);
  g_assert_true (pubsub_json_key_equal (&members[1].key, "payload"));
  g_assert_cmpmem (members[1].value.text, members[1].value.len, payload, strlen (payload));
}

/* json-glib sees the structure (whatever it makes of the payload's value). */
static void
test_frame_event_structure (void)
{
  static const char *const names[] = { "type", "topic", "message", "seq", "epoch", "ts", NULL };
  static const char *const message_names[] = { "id", "payload", NULL };
  static const char payload[] = "{\"a\":[1,\"x\"]}";
  gint64 before = g_get_real_time ();
  g_autoptr(GBytes) frame = event_frame ("a.b", UUID2, payload, sizeof payload - 1,
                                                    g_get_real_time ());
  g_autoptr(JsonNode) body = NULL;
  JsonObject *object;
  JsonObject *message;
  JsonNode *payload_node;
  FrameParts parts;

  body = frame_body (frame, &parts);
  object = json_node_get_object (body);
  assert_member_names (object, names);
  g_assert_cmpstr (get_string (object, "type"), ==, "event");
  g_assert_cmpstr (get_string (object, "topic"), ==, "a.b");
  g_assert_cmpint (json_object_get_int_member (object, "seq"), ==, 7);
  g_assert_cmpstr (get_string (object, "epoch"), ==, EPOCH);
  assert_ts_between (object, before, g_get_real_time ());
  message = json_object_get_object_member (object, "message");
  assert_member_names (message, message_names);
  g_assert_cmpstr (get_string (message, "id"), ==, UUID2);
  payload_node = json_object_get_member (message, "payload");
  g_assert_true (JSON_NODE_HOLDS_OBJECT (payload_node));
  g_assert_cmpint (json_array_get_int_element (json_object_get_array_member (
                     json_node_get_object (payload_node), "a"), 0), ==, 1);
}

/* ---------------------------------------------------------------------- */
/* Length encodings at their boundaries                                   */

static gsize
info_json_len (gsize msg_len)
{
  g_autofree char *msg = g_strnfill (msg_len, 'm');
  g_autoptr(GBytes) frame = pubsub_frame_new_info (msg, NULL);

  return g_bytes_get_size (frame) - pubsub_ws_frame_payload_offset (frame);
}

static void
check_length_encoding (GBytes *frame,
                       gsize   json_len)
{
  gsize size;
  const guint8 *data = g_bytes_get_data (frame, &size);
  FrameParts parts;

  split_frame (frame, &parts);
  g_assert_cmpuint (parts.json_len, ==, json_len);
  if (json_len <= 125)
    {
      g_assert_cmpuint (parts.header_len, ==, 2);
      g_assert_cmpuint (data[1], ==, json_len);
    }
  else if (json_len <= 65535)
    {
      g_assert_cmpuint (parts.header_len, ==, 4);
      g_assert_cmpuint (data[1], ==, 126);
      g_assert_cmpuint (data[2], ==, json_len >> 8);
      g_assert_cmpuint (data[3], ==, json_len & 0xff);
    }
  else
    {
      g_assert_cmpuint (parts.header_len, ==, 10);
      g_assert_cmpuint (data[1], ==, 127);
      for (guint i = 0; i < 8; i++)
        g_assert_cmpuint (data[2 + i], ==, ((guint64) json_len >> (56 - 8 * i)) & 0xff);
    }
  g_assert_true (pubsub_json_validate (parts.json, parts.json_len, NULL, NULL));
  g_assert_cmpint (parts.json[0], ==, '{');
  g_assert_cmpint (parts.json[parts.json_len - 1], ==, '}');
}

static void
test_frame_lengths_info (void)
{
  static const gsize targets[] = { 124, 125, 126, 127, 255, 256, 65534, 65535, 65536, 65537,
                                   100000 };
  gsize base = info_json_len (0);

  g_assert_cmpuint (info_json_len (10), ==, base + 10);
  g_assert_cmpuint (base, <, 124);
  for (gsize i = 0; i < G_N_ELEMENTS (targets); i++)
    {
      g_autofree char *msg = g_strnfill (targets[i] - base, 'm');
      g_autoptr(GBytes) frame = pubsub_frame_new_info (msg, NULL);

      check_length_encoding (frame, targets[i]);
    }
}

static void
test_frame_lengths_event (void)
{
  /* The smallest event is longer than 125 bytes since it has seq and epoch:
   * the first target is the smallest 16-bit length one can have. */
  static const gsize targets[] = { 200, 65535, 65536, 300000 };
  g_autoptr(GBytes) probe = event_frame ("t", UUID, "1", 1, 0);
  gsize base = g_bytes_get_size (probe) - pubsub_ws_frame_payload_offset (probe) - 1;

  g_assert_cmpuint (base, <, targets[0]);

  for (gsize i = 0; i < G_N_ELEMENTS (targets); i++)
    {
      gsize payload_len = targets[i] - base;
      g_autofree char *payload = g_strnfill (payload_len, '7');   /* one long integer */
      g_autoptr(GBytes) frame = event_frame ("t", UUID, payload, payload_len, 0);
      FrameParts parts;

      check_length_encoding (frame, targets[i]);
      split_frame (frame, &parts);
      g_assert_nonnull (g_strstr_len (parts.json, (gssize) parts.json_len, payload));
    }
}


/* ---------------------------------------------------------------------- */
/* SPEC §8: since, and the acks that carry seq and epoch                  */

typedef struct {
  const char *name;
  const char *since;       /* the JSON text of the field */
  gboolean    ok;
  guint64     seq;
  const char *epoch;       /* as kept: "" when it cannot be an epoch */
} SinceRow;

static const SinceRow since_rows[] = {
  { "plain", "{\"seq\":5,\"epoch\":\"" EPOCH "\"}", TRUE, 5, EPOCH },
  { "zero", "{\"epoch\":\"" EPOCH "\",\"seq\":0}", TRUE, 0, EPOCH },
  { "huge", "{\"seq\":123456789012345678901234,\"epoch\":\"" EPOCH "\"}", TRUE, G_MAXUINT64, EPOCH },
  { "extra-field", "{\"seq\":1,\"epoch\":\"" EPOCH "\",\"x\":[1]}", TRUE, 1, EPOCH },
  { "other-epoch-shape", "{\"seq\":1,\"epoch\":\"nope\"}", TRUE, 1, "" },
  { "upper-hex-epoch", "{\"seq\":1,\"epoch\":\"0123456789ABCDEF\"}", TRUE, 1, "" },
  { "null", "null", TRUE, 0, NULL },
  { "number", "5", FALSE, 0, NULL },
  { "string", "\"5\"", FALSE, 0, NULL },
  { "array", "[5,\"" EPOCH "\"]", FALSE, 0, NULL },
  { "no-seq", "{\"epoch\":\"" EPOCH "\"}", FALSE, 0, NULL },
  { "no-epoch", "{\"seq\":5}", FALSE, 0, NULL },
  { "negative-seq", "{\"seq\":-1,\"epoch\":\"" EPOCH "\"}", FALSE, 0, NULL },
  { "fraction-seq", "{\"seq\":1.5,\"epoch\":\"" EPOCH "\"}", FALSE, 0, NULL },
  { "exponent-seq", "{\"seq\":1e2,\"epoch\":\"" EPOCH "\"}", FALSE, 0, NULL },
  { "string-seq", "{\"seq\":\"5\",\"epoch\":\"" EPOCH "\"}", FALSE, 0, NULL },
  { "null-seq", "{\"seq\":null,\"epoch\":\"" EPOCH "\"}", FALSE, 0, NULL },
  { "number-epoch", "{\"seq\":5,\"epoch\":5}", FALSE, 0, NULL },
  { "null-epoch", "{\"seq\":5,\"epoch\":null}", FALSE, 0, NULL },
};

static void
test_parse_since (gconstpointer data)
{
  const SinceRow *row = data;
  g_autofree char *text = g_strdup_printf ("{\"type\":\"subscribe\",\"topic\":\"t\","
                                           "\"client_id\":\"c\",\"since\":%s}", row->since);
  g_auto(PubsubRequest) request = { 0 };
  g_autoptr(GError) error = NULL;
  gboolean ok = pubsub_request_parse (text, strlen (text), &request, &error);

  if (!row->ok)
    {
      g_assert_false (ok);
      g_assert_error (error, PUBSUB_ERROR, PUBSUB_ERROR_BAD_REQUEST);
      g_assert_nonnull (strstr (error->message, "'since'"));
      return;
    }
  g_assert_no_error (error);
  g_assert_true (ok);
  g_assert_cmpint (request.has_since, ==, row->epoch != NULL);
  if (row->epoch != NULL)
    {
      g_assert_cmpuint (request.since.seq, ==, row->seq);
      g_assert_cmpstr (request.since.epoch, ==, row->epoch);
    }
}

static void
test_frame_publish_ack (void)
{
  g_auto(PubsubRequest) request = { 0 };
  g_autofree char *text = g_strdup_printf ("{\"type\":\"publish\",\"topic\":\"orders\","
                                           "\"request_id\":\"r9\",\"message\":{\"id\":\"%s\","
                                           "\"payload\":1}}", UUID);

  parse_request (text, &request);
  for (guint duplicate = 0; duplicate < 2; duplicate++)
    {
      static const char *const plain[] = { "type", "request_id", "topic", "status", "seq", "ts", NULL };
      static const char *const dup[] = { "type", "request_id", "topic", "status", "seq",
                                         "duplicate", "ts", NULL };
      g_autoptr(GBytes) frame = pubsub_frame_new_publish_ack (&request, G_MAXUINT64, duplicate);
      g_autoptr(JsonNode) body = NULL;
      JsonObject *object;
      FrameParts parts;

      body = frame_body (frame, &parts);
      object = json_node_get_object (body);
      assert_member_names (object, duplicate ? dup : plain);
      g_assert_cmpstr (get_string (object, "topic"), ==, "orders");
      /* Exactly, whatever the size: json-glib would round a double. */
      g_assert_nonnull (g_strstr_len (parts.json, (gssize) parts.json_len,
                                      "\"seq\":18446744073709551615"));
      if (duplicate)
        g_assert_true (json_object_get_boolean_member (object, "duplicate"));
    }
}

/* seq is written two digits at a time: every number of digits, and the
 * ends of each, in the event and in the ack. */
static void
test_frame_seq_digits (void)
{
  g_auto(PubsubRequest) request = { 0, };
  g_autofree char *text = g_strdup_printf ("{\"type\":\"publish\",\"topic\":\"t\","
                                           "\"message\":{\"id\":\"%s\",\"payload\":1}}", UUID);
  guint64 power = 1;

  parse_request (text, &request);
  for (guint digits = 1; digits <= 20; digits++)
    {
      guint64 values[] = { power, power + 1, digits < 20 ? power * 10 - 1 : G_MAXUINT64,
                           digits == 1 ? 0 : power + power / 2 + 7 };

      for (gsize i = 0; i < G_N_ELEMENTS (values); i++)
        {
          PubsubMessageInfo info = {
            .topic = "t", .epoch = EPOCH, .seq = values[i], .id = UUID,
            .payload = "1", .payload_len = 1, .time_us = 0,
          };
          gsize payload_offset;
          g_autoptr(GBytes) event = pubsub_frame_new_event (&info, &payload_offset);
          g_autoptr(GBytes) ack = pubsub_frame_new_publish_ack (&request, values[i], FALSE);
          g_autofree char *seq = g_strdup_printf ("\"seq\":%" G_GUINT64_FORMAT ",", values[i]);
          FrameParts parts;

          split_frame (event, &parts);
          g_assert_nonnull (g_strstr_len (parts.json, (gssize) parts.json_len, seq));
          split_frame (ack, &parts);
          g_assert_nonnull (g_strstr_len (parts.json, (gssize) parts.json_len, seq));
        }
      if (digits < 20)
        power *= 10;
    }
}

static void
test_frame_subscribe_ack (void)
{
  static const char *const plain[] = { "type", "topic", "status", "epoch", "seq", "ts", NULL };
  static const char *const with_recovered[] = { "type", "topic", "status", "epoch", "seq",
                                                "recovered", "ts", NULL };
  g_auto(PubsubRequest) request = { 0 };

  parse_request ("{\"type\":\"subscribe\",\"topic\":\"t\",\"client_id\":\"c\"}", &request);
  {
    g_autoptr(GBytes) frame = pubsub_frame_new_subscribe_ack (&request, EPOCH, 42, FALSE);
    g_autoptr(JsonNode) body = NULL;
    FrameParts parts;

    body = frame_body (frame, &parts);
    assert_member_names (json_node_get_object (body), plain);
    g_assert_cmpstr (get_string (json_node_get_object (body), "epoch"), ==, EPOCH);
    g_assert_cmpint (json_object_get_int_member (json_node_get_object (body), "seq"), ==, 42);
  }

  pubsub_request_clear (&request);
  parse_request ("{\"type\":\"subscribe\",\"topic\":\"t\",\"client_id\":\"c\","
                 "\"since\":{\"seq\":3,\"epoch\":\"" EPOCH "\"}}", &request);
  for (guint recovered = 0; recovered < 2; recovered++)
    {
      g_autoptr(GBytes) frame = pubsub_frame_new_subscribe_ack (&request, EPOCH, 0, recovered);
      g_autoptr(JsonNode) body = NULL;
      FrameParts parts;

      body = frame_body (frame, &parts);
      assert_member_names (json_node_get_object (body), with_recovered);
      g_assert_cmpint (json_object_get_boolean_member (json_node_get_object (body), "recovered"),
                       ==, recovered);
    }
}

/* ---------------------------------------------------------------------- */

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/protocol/topic-name/table", test_topic_name_table);
  g_test_add_func ("/protocol/topic-name/length", test_topic_name_length);
  g_test_add_func ("/protocol/timestamp/epochs", test_timestamp_epochs);
  g_test_add_func ("/protocol/timestamp/cache", test_timestamp_cache);
  g_test_add_func ("/protocol/timestamp/random", test_timestamp_random);

  for (gsize i = 0; i < G_N_ELEMENTS (ok_rows); i++)
    {
      g_autofree char *path = g_strdup_printf ("/protocol/parse/ok/%s", ok_rows[i].name);

      g_test_add_data_func (path, &ok_rows[i], test_parse_ok);
    }
  for (gsize i = 0; i < G_N_ELEMENTS (bad_rows); i++)
    {
      g_autofree char *path = g_strdup_printf ("/protocol/parse/bad/%s", bad_rows[i].name);

      g_test_add_data_func (path, &bad_rows[i], test_parse_bad);
    }
  g_test_add_func ("/protocol/parse/field-limit", test_parse_field_limit);
  g_test_add_func ("/protocol/parse/length", test_parse_length);
  g_test_add_func ("/protocol/parse/resets", test_parse_resets);

  g_test_add_func ("/protocol/frame/ack", test_frame_ack);
  g_test_add_func ("/protocol/frame/publish-ack", test_frame_publish_ack);
  g_test_add_func ("/protocol/frame/subscribe-ack", test_frame_subscribe_ack);
  for (gsize i = 0; i < G_N_ELEMENTS (since_rows); i++)
    {
      g_autofree char *path = g_strdup_printf ("/protocol/parse/since/%s", since_rows[i].name);

      g_test_add_data_func (path, &since_rows[i], test_parse_since);
    }
  g_test_add_func ("/protocol/frame/request-id-verbatim", test_frame_request_id_verbatim);
  g_test_add_func ("/protocol/frame/error", test_frame_error);
  g_test_add_func ("/protocol/frame/error-codes", test_frame_error_codes);
  g_test_add_func ("/protocol/frame/pong", test_frame_pong);
  g_test_add_func ("/protocol/frame/info", test_frame_info);
  g_test_add_func ("/protocol/frame/ping", test_frame_ping);
  for (gsize i = 0; i < G_N_ELEMENTS (event_payloads); i++)
    {
      g_autofree char *path = g_strdup_printf ("/protocol/frame/event/payload-%" G_GSIZE_FORMAT, i);

      g_test_add_data_func (path, event_payloads[i], test_frame_event);
    }
  g_test_add_func ("/protocol/frame/event/structure", test_frame_event_structure);
  g_test_add_func ("/protocol/frame/lengths/info", test_frame_lengths_info);
  g_test_add_func ("/protocol/frame/lengths/event", test_frame_lengths_event);
  g_test_add_func ("/protocol/frame/seq-digits", test_frame_seq_digits);

  return g_test_run ();
}
