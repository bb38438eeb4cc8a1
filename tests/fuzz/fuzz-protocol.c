/* fuzz-protocol.c: the strict JSON reader (pubsub-json.c) and the parsing of
 * client requests (pubsub-protocol.c), with the frames built in reply
 *
 * Input: the text of one WebSocket text message. Checked:
 *
 *  - the reader: pubsub_json_validate() and the single-pass
 *    pubsub_json_parse_utf8_object() agree; the members the latter gathers
 *    are those pubsub_json_object_members() finds again in the validated
 *    text, for the outer object and every object nested in members;
 *    decoded strings are valid UTF-8 and key lookups find the last member of
 *    the name;
 *  - for valid UTF-8 (the frame parser delivers nothing else),
 *    pubsub_request_parse(): a request that parses has the fields its type
 *    needs, valid; one that does not has a BAD_REQUEST error;
 *  - the frames the broker would send in reply (the acks of subscribe,
 *    unsubscribe and publish, pong, event, error, and the escaping paths of
 *    ack and info) are single unmasked text frames of valid JSON per our
 *    own reader, with the type, the request_id token, the topic, the seq,
 *    epoch and flags, and the payload they should echo.
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <string.h>

#include "fuzz-common.h"
#include "pubsub-error.h"
#include "pubsub-json.h"
#include "pubsub-protocol.h"
#include "pubsub-topic.h"
#include "pubsub-ws-frame.h"

/* As many members as the protocol reads; deeper checks go further. */
#define PROTOCOL_MAX_FIELDS 64
#define WALK_MAX_FIELDS     256
#define WALK_MAX_DEPTH      64
/* A fixed publish time: frames must not depend on the clock to be valid. */
#define EVENT_TIME_US G_GINT64_CONSTANT (1764237600123456)
#define EPOCH         "0123456789abcdef"

static gboolean
is_json_whitespace (char c)
{
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static PubsubJsonKind
kind_of (char first)
{
  switch (first)
    {
    case '{': return PUBSUB_JSON_OBJECT;
    case '[': return PUBSUB_JSON_ARRAY;
    case '"': return PUBSUB_JSON_STRING;
    case 't': return PUBSUB_JSON_TRUE;
    case 'f': return PUBSUB_JSON_FALSE;
    case 'n': return PUBSUB_JSON_NULL;
    default: return PUBSUB_JSON_NUMBER;
    }
}

static void
assert_same_value (const PubsubJsonValue *a,
                   const PubsubJsonValue *b)
{
  g_assert_cmpint (a->kind, ==, b->kind);
  g_assert_true (a->text == b->text);
  g_assert_cmpuint (a->len, ==, b->len);
}

/* A span that lies in @text and is a value of its kind. */
static void
assert_value_in (const PubsubJsonValue *value,
                 const char            *text,
                 gsize                  len)
{
  g_assert_true (value->text >= text);
  g_assert_cmpuint (value->len, >=, 1);
  g_assert_cmpuint ((gsize) (value->text - text), <=, len - value->len);
  g_assert_cmpint (value->kind, ==, kind_of (value->text[0]));
  if (value->kind == PUBSUB_JSON_STRING)
    {
      g_assert_cmpuint (value->len, >=, 2);
      g_assert_cmpint (value->text[value->len - 1], ==, '"');
    }
  else if (value->kind == PUBSUB_JSON_OBJECT)
    g_assert_cmpint (value->text[value->len - 1], ==, '}');
  else if (value->kind == PUBSUB_JSON_ARRAY)
    g_assert_cmpint (value->text[value->len - 1], ==, ']');
}

/* Decodes a string value and checks what it gives. */
static char *
decode_checked (const PubsubJsonValue *string,
                gsize                 *out_len)
{
  char *decoded = pubsub_json_string_decode (string, out_len);

  /* Escapes only ever shorten the text; lone surrogates become U+FFFD. */
  g_assert_cmpuint (*out_len, <=, string->len - 2);
  g_assert_cmpint (decoded[*out_len], ==, '\0');
  g_assert_true (fuzz_utf8_is_valid (decoded, *out_len));
  return decoded;
}

static void walk_object (const PubsubJsonValue *object,
                         const char            *text,
                         gsize                  len,
                         guint                  depth);

static void
walk_members (const PubsubJsonMember *members,
              guint                   n_members,
              const char             *text,
              gsize                   len,
              guint                   depth)
{
  for (guint i = 0; i < n_members; i++)
    {
      const PubsubJsonMember *member = &members[i];
      g_autofree char *key = NULL;
      gsize key_len;

      g_assert_cmpint (member->key.kind, ==, PUBSUB_JSON_STRING);
      assert_value_in (&member->key, text, len);
      assert_value_in (&member->value, text, len);
      g_assert_true (member->key.text + member->key.len <= member->value.text);
      key = decode_checked (&member->key, &key_len);

      /* Found by its decoded name: this member or a later one of that name. */
      if (strlen (key) == key_len)
        {
          const PubsubJsonValue *found;

          g_assert_true (pubsub_json_key_equal (&member->key, key));
          found = pubsub_json_find_member (members, n_members, key, key_len);
          g_assert_nonnull (found);
          g_assert_true (found->text >= member->value.text);
          for (guint j = i + 1; j < n_members; j++)
            if (found == &members[j].value)
              g_assert_true (pubsub_json_key_equal (&members[j].key, key));
        }

      if (member->value.kind == PUBSUB_JSON_STRING)
        {
          g_autofree char *value = NULL;
          gsize value_len;

          value = decode_checked (&member->value, &value_len);
        }
      else if (member->value.kind == PUBSUB_JSON_OBJECT)
        walk_object (&member->value, text, len, depth + 1);
    }
}

/* pubsub_json_object_members() on an object of validated text, and on the
 * objects in it down to WALK_MAX_DEPTH (deeper is the same code again). */
static void
walk_object (const PubsubJsonValue *object,
             const char            *text,
             gsize                  len,
             guint                  depth)
{
  g_autofree PubsubJsonMember *members = NULL;
  guint n_members;

  if (depth > WALK_MAX_DEPTH)
    return;
  members = g_new (PubsubJsonMember, WALK_MAX_FIELDS);
  if (pubsub_json_object_members (object, members, WALK_MAX_FIELDS, &n_members))
    walk_members (members, n_members, text, len, depth);
}

static void
check_json_reader (const char *text,
                   gsize       len)
{
  PubsubJsonMember members[PROTOCOL_MAX_FIELDS];
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) error2 = NULL;
  PubsubJsonValue value;
  PubsubJsonValue value2;
  gboolean valid;
  gboolean valid2;
  guint n_members;

  valid = pubsub_json_validate (text, len, &value, &error);
  if (!valid)
    {
      g_assert_error (error, PUBSUB_ERROR, PUBSUB_ERROR_BAD_REQUEST);
      g_assert_true (g_utf8_validate (error->message, -1, NULL));
    }
  else
    {
      g_assert_no_error (error);
      g_assert_true (g_utf8_validate_len (text, len, NULL));
      assert_value_in (&value, text, len);
      /* Nothing around the value but whitespace. */
      for (const char *p = text; p < value.text; p++)
        g_assert_true (is_json_whitespace (*p));
      for (const char *p = value.text + value.len; p < text + len; p++)
        g_assert_true (is_json_whitespace (*p));
    }

  if (!g_utf8_validate_len (text, len, NULL))
    return;

  valid2 = pubsub_json_parse_utf8_object (text, len, &value2, members, G_N_ELEMENTS (members),
                                          &n_members, &error2);
  if (!valid)
    {
      g_assert_false (valid2);
      g_assert_cmpuint (n_members, ==, 0);
      g_assert_error (error2, PUBSUB_ERROR, PUBSUB_ERROR_BAD_REQUEST);
      g_assert_cmpstr (error->message, ==, error2->message);
      return;
    }
  if (!valid2)
    {
      /* Valid, with more members than there is room for. */
      PubsubJsonMember again[PROTOCOL_MAX_FIELDS];
      guint n_again;

      g_assert_no_error (error2);
      g_assert_cmpuint (n_members, ==, G_N_ELEMENTS (members) + 1);
      g_assert_cmpint (value.kind, ==, PUBSUB_JSON_OBJECT);
      g_assert_false (pubsub_json_object_members (&value, again, G_N_ELEMENTS (again), &n_again));
      walk_object (&value, text, len, 1);
      return;
    }

  assert_same_value (&value, &value2);
  if (value.kind == PUBSUB_JSON_OBJECT)
    {
      PubsubJsonMember again[PROTOCOL_MAX_FIELDS];
      guint n_again;

      /* The single pass and the second look see the same members. */
      g_assert_true (pubsub_json_object_members (&value, again, G_N_ELEMENTS (again), &n_again));
      g_assert_cmpuint (n_again, ==, n_members);
      for (guint i = 0; i < n_members; i++)
        {
          assert_same_value (&members[i].key, &again[i].key);
          assert_same_value (&members[i].value, &again[i].value);
        }
      walk_members (members, n_members, text, len, 1);
    }
  else
    g_assert_cmpuint (n_members, ==, 0);
}

/* ---------------------------------------------------------------------- */
/* Reply frames                                                           */

/* The JSON text of a server frame, after checking its header. */
static const char *
frame_json (GBytes *frame,
            gsize  *json_len)
{
  gsize size;
  const guint8 *bytes = g_bytes_get_data (frame, &size);
  gsize offset = pubsub_ws_frame_payload_offset (frame);
  guint64 declared = 0;

  g_assert_cmpuint (size, >=, 2);
  g_assert_cmpuint (bytes[0], ==, 0x80 | PUBSUB_WS_OPCODE_TEXT);   /* FIN, not masked */
  g_assert_cmpuint (offset, <=, size);
  /* The shortest header for the length, and the length is the rest. */
  g_assert_cmpuint (offset, ==, pubsub_ws_frame_header_len (size - offset));
  if (offset == 2)
    declared = bytes[1];
  else if (offset == 4)
    declared = ((guint64) bytes[2] << 8) | bytes[3];
  else
    for (guint i = 0; i < 8; i++)
      declared = (declared << 8) | bytes[2 + i];
  g_assert_cmpuint (declared, ==, size - offset);
  *json_len = size - offset;
  return (const char *) bytes + offset;
}

static const PubsubJsonValue *
member_of (const PubsubJsonMember *members,
           guint                   n_members,
           const char             *name)
{
  return pubsub_json_find_member (members, n_members, name, strlen (name));
}

static void
assert_string_member (const PubsubJsonMember *members,
                      guint                   n_members,
                      const char             *name,
                      const char             *expected)
{
  const PubsubJsonValue *value = member_of (members, n_members, name);
  g_autofree char *decoded = NULL;
  gsize decoded_len;

  g_assert_nonnull (value);
  g_assert_cmpint (value->kind, ==, PUBSUB_JSON_STRING);
  decoded = pubsub_json_string_decode (value, &decoded_len);
  g_assert_cmpmem (decoded, decoded_len, expected, strlen (expected));
}

static void
assert_number_member (const PubsubJsonMember *members,
                      guint                   n_members,
                      const char             *name,
                      guint64                 expected)
{
  const PubsubJsonValue *value = member_of (members, n_members, name);
  g_autofree char *text = g_strdup_printf ("%" G_GUINT64_FORMAT, expected);

  g_assert_nonnull (value);
  g_assert_cmpint (value->kind, ==, PUBSUB_JSON_NUMBER);
  g_assert_cmpmem (value->text, value->len, text, strlen (text));
}

/* A true/false member, or none at all when @present is FALSE. */
static void
assert_flag_member (const PubsubJsonMember *members,
                    guint                   n_members,
                    const char             *name,
                    gboolean                present,
                    gboolean                expected)
{
  const PubsubJsonValue *value = member_of (members, n_members, name);

  if (!present)
    {
      g_assert_null (value);
      return;
    }
  g_assert_nonnull (value);
  g_assert_cmpint (value->kind, ==, expected ? PUBSUB_JSON_TRUE : PUBSUB_JSON_FALSE);
}

/* The members of a reply frame already checked by check_reply(). */
static guint
reply_members (GBytes           *frame,
               PubsubJsonMember  members[16])
{
  PubsubJsonValue root;
  const char *json;
  gsize json_len;
  guint n_members;

  json = frame_json (frame, &json_len);
  g_assert_true (pubsub_json_parse_utf8_object (json, json_len, &root, members, 16,
                                                &n_members, NULL));
  return n_members;
}

/* A reply frame: valid JSON per our own reader, one object without
 * duplicate keys, of @type, echoing the request_id token and the topic. */
static void
check_reply (GBytes              *frame,
             const char          *type,
             const PubsubRequest *request,
             const char          *topic)
{
  PubsubJsonMember members[16];
  g_autoptr(GError) error = NULL;
  const PubsubJsonValue *value;
  PubsubJsonValue root;
  const char *json;
  gsize json_len;
  guint n_members;

  json = frame_json (frame, &json_len);
  g_assert_true (pubsub_json_validate (json, json_len, &root, &error));
  g_assert_no_error (error);
  g_assert_true (pubsub_json_parse_utf8_object (json, json_len, &root, members,
                                                G_N_ELEMENTS (members), &n_members, &error));
  g_assert_cmpint (root.kind, ==, PUBSUB_JSON_OBJECT);
  g_assert_cmpuint (root.len, ==, json_len);
  for (guint i = 0; i < n_members; i++)
    for (guint j = i + 1; j < n_members; j++)
      g_assert_false (members[i].key.len == members[j].key.len &&
                      memcmp (members[i].key.text, members[j].key.text, members[i].key.len) == 0);

  assert_string_member (members, n_members, "type", type);

  value = member_of (members, n_members, "request_id");
  if (request != NULL && request->request_id != NULL)
    {
      g_assert_nonnull (value);
      g_assert_cmpmem (value->text, value->len, request->request_id, request->request_id_len);
    }
  else
    g_assert_null (value);

  if (topic != NULL)
    assert_string_member (members, n_members, "topic", topic);
  else
    g_assert_null (member_of (members, n_members, "topic"));

  value = member_of (members, n_members, "ts");
  g_assert_nonnull (value);
  g_assert_cmpint (value->kind, ==, PUBSUB_JSON_STRING);
  g_assert_cmpuint (value->len, ==, PUBSUB_TIMESTAMP_LEN + 2);
}

static void
check_error_reply (const PubsubRequest *request,
                   const GError        *error)
{
  g_autoptr(GBytes) frame = pubsub_frame_new_error (request, error);
  PubsubJsonMember members[16];
  PubsubJsonMember details[4];
  const PubsubJsonValue *value;
  PubsubJsonValue root;
  const char *json;
  gsize json_len;
  guint n_members;
  guint n_details;

  check_reply (frame, "error", request,
               request != NULL && request->topic[0] != '\0' ? request->topic : NULL);

  json = frame_json (frame, &json_len);
  g_assert_true (pubsub_json_parse_utf8_object (json, json_len, &root, members,
                                                G_N_ELEMENTS (members), &n_members, NULL));
  value = member_of (members, n_members, "error");
  g_assert_nonnull (value);
  g_assert_cmpint (value->kind, ==, PUBSUB_JSON_OBJECT);
  g_assert_true (pubsub_json_object_members (value, details, G_N_ELEMENTS (details), &n_details));
  assert_string_member (details, n_details, "code", pubsub_error_to_code (error));
  assert_string_member (details, n_details, "message", error->message);
}

static void
check_event_frame (const PubsubRequest *request,
                   guint64              seq)
{
  const PubsubMessageInfo info = {
    .topic = request->topic,
    .epoch = EPOCH,
    .seq = seq,
    .id = request->message_id,
    .payload = request->payload,
    .payload_len = request->payload_len,
    .time_us = EVENT_TIME_US,
  };
  g_autoptr(GBytes) frame = NULL;
  PubsubJsonMember members[16];
  PubsubJsonMember message[4];
  const PubsubJsonValue *value;
  PubsubJsonValue root;
  gsize payload_offset;
  const char *json;
  gsize json_len;
  gsize size;
  const guint8 *bytes;
  guint n_members;
  guint n_message;

  frame = pubsub_frame_new_event (&info, &payload_offset);
  check_reply (frame, "event", NULL, request->topic);

  /* The payload's own text, where the frame says it is. */
  bytes = g_bytes_get_data (frame, &size);
  g_assert_cmpuint (payload_offset, <=, size - request->payload_len);
  g_assert_cmpmem (bytes + payload_offset, request->payload_len,
                   request->payload, request->payload_len);

  json = frame_json (frame, &json_len);
  g_assert_true (pubsub_json_parse_utf8_object (json, json_len, &root, members,
                                                G_N_ELEMENTS (members), &n_members, NULL));
  assert_number_member (members, n_members, "seq", seq);
  assert_string_member (members, n_members, "epoch", EPOCH);
  value = member_of (members, n_members, "message");
  g_assert_nonnull (value);
  g_assert_true (pubsub_json_object_members (value, message, G_N_ELEMENTS (message), &n_message));
  assert_string_member (message, n_message, "id", request->message_id);
  value = member_of (message, n_message, "payload");
  g_assert_nonnull (value);
  g_assert_true ((const guint8 *) value->text == bytes + payload_offset);
  g_assert_cmpuint (value->len, ==, request->payload_len);
}

/* ---------------------------------------------------------------------- */
/* Requests                                                               */

static gboolean
is_uuid_text (const char *text)
{
  if (strlen (text) != PUBSUB_UUID_LEN)
    return FALSE;
  for (gsize i = 0; i < PUBSUB_UUID_LEN; i++)
    {
      gboolean dash = i == 8 || i == 13 || i == 18 || i == 23;

      if (dash ? text[i] != '-' : !g_ascii_isxdigit (text[i]))
        return FALSE;
    }
  return TRUE;
}

static gboolean
is_epoch_text (const char *text)
{
  if (strlen (text) != PUBSUB_EPOCH_LEN)
    return FALSE;
  for (const char *p = text; *p != '\0'; p++)
    if (!g_ascii_isdigit (*p) && !(*p >= 'a' && *p <= 'f'))
      return FALSE;
  return TRUE;
}

/* The acks of a subscribe, with the topic's position and, when the request
 * asked to recover, whether it did. Both answers are tried. */
static void
check_subscribe_acks (const PubsubRequest *request)
{
  for (guint recovered = 0; recovered < 2; recovered++)
    {
      /* Any seq: from the request, so the fuzzer reaches every length. */
      guint64 seq = request->last_n ^ request->since.seq;
      g_autoptr(GBytes) reply = pubsub_frame_new_subscribe_ack (request, EPOCH, seq, recovered);
      PubsubJsonMember members[16];
      guint n_members;

      check_reply (reply, "ack", request, request->topic);
      n_members = reply_members (reply, members);
      assert_string_member (members, n_members, "epoch", EPOCH);
      assert_number_member (members, n_members, "seq", seq);
      assert_flag_member (members, n_members, "recovered", request->has_since, recovered);
    }
}

static void
check_publish_acks (const PubsubRequest *request,
                    guint64              seq)
{
  for (guint duplicate = 0; duplicate < 2; duplicate++)
    {
      g_autoptr(GBytes) reply = pubsub_frame_new_publish_ack (request, seq, duplicate);
      PubsubJsonMember members[16];
      guint n_members;

      check_reply (reply, "ack", request, request->topic);
      n_members = reply_members (reply, members);
      assert_number_member (members, n_members, "seq", seq);
      assert_flag_member (members, n_members, "duplicate", duplicate, TRUE);
    }
}

static void
check_parsed_request (const PubsubRequest *request,
                      const char          *text,
                      gsize                len)
{
  PubsubJsonValue root;
  g_autoptr(GBytes) reply = NULL;
  g_autoptr(GError) failure = NULL;

  g_assert_true (pubsub_json_validate (text, len, &root, NULL));
  g_assert_cmpint (root.kind, ==, PUBSUB_JSON_OBJECT);
  if (request->request_id != NULL)
    {
      PubsubJsonValue token = { PUBSUB_JSON_STRING, request->request_id,
                                request->request_id_len };

      assert_value_in (&token, text, len);
      g_assert_cmpint (request->request_id[0], ==, '"');
    }

  switch (request->type)
    {
    case PUBSUB_REQUEST_SUBSCRIBE:
    case PUBSUB_REQUEST_UNSUBSCRIBE:
      g_assert_true (pubsub_topic_name_is_valid (request->topic, strlen (request->topic)));
      g_assert_nonnull (request->client_id);
      g_assert_cmpuint (strlen (request->client_id), >, 0);
      g_assert_true (g_utf8_validate (request->client_id, -1, NULL));
      g_assert_null (request->payload);
      /* since's epoch is one of a topic, or "" to match none. */
      g_assert_true (request->since.epoch[0] == '\0' || is_epoch_text (request->since.epoch));
      if (!request->has_since)
        {
          g_assert_cmpuint (request->since.seq, ==, 0);
          g_assert_cmpstr (request->since.epoch, ==, "");
        }
      if (request->type == PUBSUB_REQUEST_SUBSCRIBE)
        {
          check_subscribe_acks (request);
          break;
        }
      g_assert_cmpuint (request->last_n, ==, 0);
      g_assert_false (request->has_since);
      reply = pubsub_frame_new_ack (request, request->topic);
      check_reply (reply, "ack", request, request->topic);
      break;

    case PUBSUB_REQUEST_PUBLISH:
      {
        PubsubJsonValue payload = { kind_of (request->payload[0]), request->payload,
                                    request->payload_len };
        /* Any seq: from the payload, so the fuzzer reaches every length. */
        guint64 seq = G_MAXUINT64 / (request->payload_len + 1);

        g_assert_true (pubsub_topic_name_is_valid (request->topic, strlen (request->topic)));
        g_assert_null (request->client_id);
        g_assert_true (is_uuid_text (request->message_id));
        assert_value_in (&payload, text, len);
        g_assert_true (pubsub_json_validate (request->payload, request->payload_len,
                                             &payload, NULL));
        g_assert_true (payload.text == request->payload);
        g_assert_cmpuint (payload.len, ==, request->payload_len);
        check_publish_acks (request, seq);
        check_event_frame (request, seq);
      }
      break;

    case PUBSUB_REQUEST_PING:
      g_assert_cmpint (request->topic[0], ==, '\0');
      g_assert_null (request->client_id);
      reply = pubsub_frame_new_pong (request);
      check_reply (reply, "pong", request, NULL);
      break;

    default:
      g_assert_not_reached ();
    }

  /* The broker may still refuse it (no such topic, a limit reached). */
  failure = g_error_new (PUBSUB_ERROR, PUBSUB_ERROR_TOPIC_NOT_FOUND,
                         "topic '%s' does not exist", request->topic);
  check_error_reply (request, failure);

  /* Text that is no valid topic name takes the escaping paths. */
  if (request->client_id != NULL)
    {
      g_autoptr(GBytes) ack = pubsub_frame_new_ack (request, request->client_id);
      g_autoptr(GBytes) info = pubsub_frame_new_info (request->client_id, request->client_id);

      check_reply (ack, "ack", request, request->client_id);
      check_reply (info, "info", NULL, request->client_id);
    }
}

static void
check_request (const char *text,
               gsize       len)
{
  g_auto(PubsubRequest) request = { 0, };
  g_autoptr(GError) error = NULL;

  if (pubsub_request_parse (text, len, &request, &error))
    {
      g_assert_no_error (error);
      check_parsed_request (&request, text, len);
      return;
    }

  g_assert_error (error, PUBSUB_ERROR, PUBSUB_ERROR_BAD_REQUEST);
  g_assert_true (g_utf8_validate (error->message, -1, NULL));
  check_error_reply (&request, error);
  check_error_reply (NULL, error);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  const char *text = (const char *) data;

  fuzz_setup_once ();
  check_json_reader (text, size);
  /* The frame parser delivers valid UTF-8 only (it closes with 1007),
   * NUL bytes included. */
  if (fuzz_utf8_is_valid (text, size))
    check_request (text, size);
  return 0;
}
