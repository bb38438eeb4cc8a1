/* pubsub-protocol.c: the WebSocket JSON protocol, as pure functions
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <string.h>
#include <time.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "pubsub-error.h"
#include "pubsub-event-layout.h"
#include "pubsub-json.h"
#include "pubsub-protocol.h"
#include "pubsub-ws-frame.h"

/* A frame may carry fields the protocol does not name; this many at most. */
#define MAX_FIELDS 64
/* Members of the frame's object members (message, since) gathered in the
 * same pass; more are read again when needed. */
#define MAX_CHILDREN MAX_FIELDS

/**
 * pubsub_format_timestamp:
 * @real_time_us: microseconds since the epoch
 * @out: room for the RFC 3339 UTC text with milliseconds and its NUL
 *
 * Every server frame carries one of these, so the date part is computed
 * once per second and reused, and the whole text once per millisecond: the
 * event and the ack of a publish, and the publishes of one read, usually
 * share it.
 */
void
pubsub_format_timestamp (gint64 real_time_us,
                         char   out[PUBSUB_TIMESTAMP_LEN + 1])
{
  static gint64 cached_second = G_MININT64;
  static gint64 cached_ms = G_MININT64;
  static char cached[PUBSUB_TIMESTAMP_LEN + 1];
  gint64 ms = real_time_us / 1000;
  gint64 second;
  guint millis;

  if (ms == cached_ms)
    {
      memcpy (out, cached, sizeof cached);
      return;
    }
  /* The same as real_time_us / G_USEC_PER_SEC and
   * real_time_us % G_USEC_PER_SEC / 1000: division truncates. */
  second = ms / 1000;
  millis = (guint) (ms % 1000);
  if (second != cached_second)
    {
      time_t t = (time_t) second;
      struct tm tm;

      gmtime_r (&t, &tm);
      strftime (cached, sizeof cached, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
      cached_second = second;
    }
  cached[20] = (char) ('0' + millis / 100);
  cached[21] = (char) ('0' + millis / 10 % 10);
  cached[22] = (char) ('0' + millis % 10);
  cached_ms = ms;
  memcpy (out, cached, sizeof cached);
}

/* ---------------------------------------------------------------------- */
/* Parsing                                                                */

/* Field names are literals: their length is known at compile time. */
#define find_field(members, n_members, name) \
  pubsub_json_find_member ((members), (n_members), "" name "", sizeof (name) - 1)

/* Whether the JSON string @key is the literal @name as written (no escapes:
 * a key with escapes is compared by pubsub_json_key_equal()). */
#define NAME_IS(key, name) \
  ((key)->len == sizeof (name) + 1 && memcmp ((key)->text + 1, name, sizeof (name) - 1) == 0)

/* The common case of a string without escapes needs no decoding. */
static char *
decode_string (const PubsubJsonValue *value,
               gsize                 *len)
{
  if (memchr (value->text, '\\', value->len) == NULL)
    {
      *len = value->len - 2;
      return g_strndup (value->text + 1, *len);
    }
  return pubsub_json_string_decode (value, len);
}

#ifdef __SSE2__
/* Bit i set when @p[i] is a hex digit, for 16 bytes. */
static inline guint
hex_digits_16 (const char *p)
{
  const __m128i x = _mm_loadu_si128 ((const __m128i *) p);
  const __m128i nine = _mm_set1_epi8 (9);
  const __m128i five = _mm_set1_epi8 (5);
  /* unsigned d <= 9 exactly when max (d, 9) == 9 */
  __m128i digit = _mm_sub_epi8 (x, _mm_set1_epi8 ('0'));
  __m128i letter = _mm_sub_epi8 (_mm_or_si128 (x, _mm_set1_epi8 (0x20)), _mm_set1_epi8 ('a'));

  digit = _mm_cmpeq_epi8 (_mm_max_epu8 (digit, nine), nine);
  letter = _mm_cmpeq_epi8 (_mm_max_epu8 (letter, five), five);
  return (guint) _mm_movemask_epi8 (_mm_or_si128 (digit, letter));
}
#endif

/* 8-4-4-4-12 hex digits. Every publish checks one: with SSE2, 16 bytes at
 * a time. */
static gboolean
is_uuid (const char *text,
         gsize       len)
{
  if (len != PUBSUB_UUID_LEN ||
      text[8] != '-' || text[13] != '-' || text[18] != '-' || text[23] != '-')
    return FALSE;
#ifdef __SSE2__
  /* Bytes 0-15 (dashes at 8, 13), 16-31 (at 18, 23), 32-35 from 20-35. */
  return (hex_digits_16 (text) | 0x2100) == 0xFFFF &&
         (hex_digits_16 (text + 16) | 0x0084) == 0xFFFF &&
         (hex_digits_16 (text + 20) & 0xF000) == 0xF000;
#else
  for (gsize i = 0; i < len; i++)
    if (i != 8 && i != 13 && i != 18 && i != 23 && !g_ascii_isxdigit (text[i]))
      return FALSE;
  return TRUE;
#endif
}

static gboolean
bad_request (GError    **error,
             const char *message)
{
  g_set_error_literal (error, PUBSUB_ERROR, PUBSUB_ERROR_BAD_REQUEST, message);
  return FALSE;
}

static gboolean
is_null (const PubsubJsonValue *value)
{
  return value == NULL || value->kind == PUBSUB_JSON_NULL;
}

static gboolean
parse_type (const PubsubJsonValue *value,
            PubsubRequestType     *type,
            GError               **error)
{
  static const struct { const char *name; PubsubRequestType type; } types[] = {
    { "subscribe", PUBSUB_REQUEST_SUBSCRIBE },
    { "unsubscribe", PUBSUB_REQUEST_UNSUBSCRIBE },
    { "publish", PUBSUB_REQUEST_PUBLISH },
    { "ping", PUBSUB_REQUEST_PING },
  };

  if (is_null (value))
    return bad_request (error, "missing field 'type'");
  if (value->kind != PUBSUB_JSON_STRING)
    return bad_request (error, "field 'type' must be a string");
  if (G_LIKELY (NAME_IS (value, "publish")))
    {
      *type = PUBSUB_REQUEST_PUBLISH;
      return TRUE;
    }
  for (gsize i = 0; i < G_N_ELEMENTS (types); i++)
    {
      if (pubsub_json_key_equal (value, types[i].name))
        {
          *type = types[i].type;
          return TRUE;
        }
    }
  return bad_request (error,
                      "unknown type: expected subscribe, unsubscribe, publish or ping");
}

static gboolean
parse_topic (const PubsubJsonValue *value,
             char                   topic[PUBSUB_TOPIC_NAME_MAX + 1],
             GError               **error)
{
  g_autofree char *name = NULL;
  gsize len;

  if (is_null (value))
    return bad_request (error, "missing field 'topic'");
  if (value->kind != PUBSUB_JSON_STRING)
    return bad_request (error, "field 'topic' must be a string");
  /* Valid names need no escapes: check the raw text first. */
  if (pubsub_topic_name_is_valid (value->text + 1, value->len - 2))
    {
      memcpy (topic, value->text + 1, value->len - 2);
      topic[value->len - 2] = '\0';
      return TRUE;
    }
  name = pubsub_json_string_decode (value, &len);
  if (!pubsub_topic_name_is_valid (name, len))
    {
      pubsub_set_topic_name_error (error);
      return FALSE;
    }
  memcpy (topic, name, len + 1);
  return TRUE;
}

static gboolean
parse_client_id (const PubsubJsonValue  *value,
                 char                  **client_id,
                 GError                **error)
{
  gsize len;

  if (is_null (value))
    return bad_request (error, "missing field 'client_id'");
  if (value->kind != PUBSUB_JSON_STRING)
    return bad_request (error, "field 'client_id' must be a string");
  *client_id = decode_string (value, &len);
  if (len == 0 || strlen (*client_id) != len)
    return bad_request (error, "field 'client_id' must be a non-empty string without NUL");
  return TRUE;
}

/* A JSON integer ≥ 0, saturated at G_MAXUINT64 (no history is that long).
 * Returns: FALSE if @value is anything else */
static gboolean
read_count (const PubsubJsonValue *value,
            guint64               *count)
{
  const char *p = value->text;
  const char *end = value->text + value->len;
  gboolean negative;

  *count = 0;
  if (value->kind != PUBSUB_JSON_NUMBER ||
      memchr (value->text, '.', value->len) != NULL ||
      memchr (value->text, 'e', value->len) != NULL ||
      memchr (value->text, 'E', value->len) != NULL)
    return FALSE;

  negative = *p == '-';
  if (negative)
    p++;
  for (; p < end; p++)
    {
      guint digit = (guint) (*p - '0');

      if (*count > (G_MAXUINT64 - digit) / 10)
        *count = G_MAXUINT64;
      else
        *count = *count * 10 + digit;
    }
  return !negative || *count == 0;
}

static gboolean
parse_last_n (const PubsubJsonValue *value,
              guint64               *last_n,
              GError               **error)
{
  *last_n = 0;
  if (is_null (value))
    return TRUE;
  if (!read_count (value, last_n))
    return bad_request (error, "field 'last_n' must be an integer >= 0");
  return TRUE;
}

static gboolean
is_epoch (const char *text,
          gsize       len)
{
  if (len != PUBSUB_EPOCH_LEN)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    if (!g_ascii_isdigit (text[i]) && !(text[i] >= 'a' && text[i] <= 'f'))
      return FALSE;
  return TRUE;
}

/* The members of @member's object value: gathered with the frame's when
 * they fitted, else read again into @scratch.
 * Returns: FALSE if there are more than MAX_FIELDS */
static gboolean
object_members (const PubsubJsonMember  *member,
                const PubsubJsonMember  *children,
                PubsubJsonMember        *scratch,
                const PubsubJsonMember **out_members,
                guint                   *n_members)
{
  if (member->n_children != PUBSUB_JSON_CHILDREN_UNKNOWN)
    {
      *out_members = children + member->first_child;
      *n_members = member->n_children;
      return *n_members <= MAX_FIELDS;
    }
  *out_members = scratch;
  return pubsub_json_object_members (&member->value, scratch, MAX_FIELDS, n_members);
}

/* {"seq": N, "epoch": "E"}: N an integer >= 0, E a string. An E that is not
 * an epoch's shape is kept as "", which matches no topic: the client then
 * gets recovered:false, as for any other epoch it cannot have. */
static gboolean
parse_since (const PubsubJsonMember *member,
             const PubsubJsonMember *children,
             PubsubRequest          *request,
             GError                **error)
{
  static const char shape[] =
    "field 'since' must be an object {\"seq\": integer >= 0, \"epoch\": string}";
  const PubsubJsonValue *value = member != NULL ? &member->value : NULL;
  PubsubJsonMember scratch[MAX_FIELDS];
  const PubsubJsonMember *members;
  const PubsubJsonValue *seq;
  const PubsubJsonValue *epoch;
  guint n_members;

  if (is_null (value))
    return TRUE;
  if (value->kind != PUBSUB_JSON_OBJECT ||
      !object_members (member, children, scratch, &members, &n_members))
    return bad_request (error, shape);
  seq = find_field (members, n_members, "seq");
  epoch = find_field (members, n_members, "epoch");
  if (seq == NULL || epoch == NULL || epoch->kind != PUBSUB_JSON_STRING ||
      !read_count (seq, &request->since.seq))
    return bad_request (error, shape);
  request->has_since = TRUE;
  /* The request was zeroed: the epoch stays "" unless it has the shape. */
  if (is_epoch (epoch->text + 1, epoch->len - 2))
    memcpy (request->since.epoch, epoch->text + 1, PUBSUB_EPOCH_LEN);
  return TRUE;
}

static gboolean
parse_message (const PubsubJsonMember *member,
               const PubsubJsonMember *children,
               PubsubRequest          *request,
               GError                **error)
{
  const PubsubJsonValue *value = member != NULL ? &member->value : NULL;
  PubsubJsonMember scratch[MAX_FIELDS];
  const PubsubJsonMember *members;
  const PubsubJsonValue *id;
  const PubsubJsonValue *payload;
  g_autofree char *id_text = NULL;
  gsize id_len;
  guint n_members;

  if (is_null (value))
    return bad_request (error, "missing field 'message'");
  if (value->kind != PUBSUB_JSON_OBJECT)
    return bad_request (error, "field 'message' must be an object with 'id' and 'payload'");
  if (!object_members (member, children, scratch, &members, &n_members))
    return bad_request (error, "field 'message' has too many fields");

  /* The usual message is exactly {"id": …, "payload": …}. */
  if (n_members == 2 && NAME_IS (&members[0].key, "id") && NAME_IS (&members[1].key, "payload"))
    {
      id = &members[0].value;
      payload = &members[1].value;
    }
  else
    {
      id = find_field (members, n_members, "id");
      payload = find_field (members, n_members, "payload");
    }
  if (id == NULL || id->kind != PUBSUB_JSON_STRING)
    return bad_request (error, "message.id must be a valid UUID");
  if (is_uuid (id->text + 1, id->len - 2))
    memcpy (request->message_id, id->text + 1, PUBSUB_UUID_LEN);
  else
    {
      id_text = pubsub_json_string_decode (id, &id_len);
      if (!is_uuid (id_text, id_len))
        return bad_request (error, "message.id must be a valid UUID");
      memcpy (request->message_id, id_text, PUBSUB_UUID_LEN);
    }
  request->message_id[PUBSUB_UUID_LEN] = '\0';

  if (payload == NULL)
    return bad_request (error, "missing field 'message.payload'");
  request->payload = payload->text;
  request->payload_len = payload->len;
  return TRUE;
}

static gboolean
parse_request_id (const PubsubJsonValue *value,
                  PubsubRequest         *request,
                  GError               **error)
{
  if (is_null (value))
    return TRUE;
  if (value->kind != PUBSUB_JSON_STRING)
    return bad_request (error, "field 'request_id' must be a string");
  request->request_id = value->text;
  request->request_id_len = value->len;
  return TRUE;
}

/* The members the protocol names, the last of each name (as with
 * JSON.parse()), found in one pass. */
typedef struct {
  const PubsubJsonMember *type;
  const PubsubJsonMember *request_id;
  const PubsubJsonMember *topic;
  const PubsubJsonMember *client_id;
  const PubsubJsonMember *last_n;
  const PubsubJsonMember *since;
  const PubsubJsonMember *message;
} Fields;

/* Returns: FALSE if the key, as written, names none of the fields */
static gboolean
match_plain_key (const PubsubJsonMember *member,
                 Fields                 *fields)
{
  const PubsubJsonValue *key = &member->key;
  const PubsubJsonMember **slot = NULL;

  switch (key->len - 2)
    {
    case 4:
      slot = NAME_IS (key, "type") ? &fields->type : NULL;
      break;
    case 5:
      slot = NAME_IS (key, "topic") ? &fields->topic : NAME_IS (key, "since") ? &fields->since : NULL;
      break;
    case 6:
      slot = NAME_IS (key, "last_n") ? &fields->last_n : NULL;
      break;
    case 7:
      slot = NAME_IS (key, "message") ? &fields->message : NULL;
      break;
    case 9:
      slot = NAME_IS (key, "client_id") ? &fields->client_id : NULL;
      break;
    case 10:
      slot = NAME_IS (key, "request_id") ? &fields->request_id : NULL;
      break;
    default:
      break;
    }
  if (slot == NULL)
    return FALSE;
  *slot = member;
  return TRUE;
}

/* A key with escapes ("\u0074ype"), compared by what it stands for. */
static void
match_escaped_key (const PubsubJsonMember *member,
                   Fields                 *fields)
{
  static const struct { const char *name; gsize offset; } names[] = {
    { "type", G_STRUCT_OFFSET (Fields, type) },
    { "request_id", G_STRUCT_OFFSET (Fields, request_id) },
    { "topic", G_STRUCT_OFFSET (Fields, topic) },
    { "client_id", G_STRUCT_OFFSET (Fields, client_id) },
    { "last_n", G_STRUCT_OFFSET (Fields, last_n) },
    { "since", G_STRUCT_OFFSET (Fields, since) },
    { "message", G_STRUCT_OFFSET (Fields, message) },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (names); i++)
    if (pubsub_json_key_equal (&member->key, names[i].name))
      {
        G_STRUCT_MEMBER (const PubsubJsonMember *, fields, names[i].offset) = member;
        return;
      }
}

static void
find_fields (const PubsubJsonMember *members,
             guint                   n_members,
             Fields                 *fields)
{
  memset (fields, 0, sizeof *fields);
  for (guint i = 0; i < n_members; i++)
    if (!match_plain_key (&members[i], fields) &&
        memchr (members[i].key.text, '\\', members[i].key.len) != NULL)
      match_escaped_key (&members[i], fields);
}

static const PubsubJsonValue *
value_of (const PubsubJsonMember *member)
{
  return member != NULL ? &member->value : NULL;
}

/**
 * pubsub_request_parse:
 * @text: the text of one WebSocket text message: valid UTF-8, which the
 *   frame parser (pubsub-ws-frame.c) checks, closing with 1007 otherwise,
 *   before delivering it
 * @len: its length
 * @request: (out caller-allocates): the parsed request; its request_id is
 *   filled in even when parsing fails later, so the error can echo it
 * @error: a %PUBSUB_ERROR_BAD_REQUEST naming the problem
 *
 * Clear @request with pubsub_request_clear() afterwards, on success or not.
 */
gboolean
pubsub_request_parse (const char     *text,
                      gsize           len,
                      PubsubRequest  *request,
                      GError        **error)
{
  PubsubJsonMember members[MAX_FIELDS];
  PubsubJsonMember children[MAX_CHILDREN];
  PubsubJsonValue root;
  guint n_members;
  Fields fields;

  memset (request, 0, sizeof *request);

  if (!pubsub_json_parse_utf8_members (text, len, &root, members, MAX_FIELDS, &n_members,
                                       children, MAX_CHILDREN, error))
    {
      if (n_members <= MAX_FIELDS)
        return FALSE;
      /* Still echo a request_id found among the first fields. */
      parse_request_id (find_field (members, MAX_FIELDS, "request_id"), request, NULL);
      return bad_request (error, "a frame must not have more than 64 fields");
    }
  if (root.kind != PUBSUB_JSON_OBJECT)
    return bad_request (error, "a frame must be a JSON object");

  find_fields (members, n_members, &fields);
  if (!parse_request_id (value_of (fields.request_id), request, error) ||
      !parse_type (value_of (fields.type), &request->type, error))
    return FALSE;

  switch (request->type)
    {
    case PUBSUB_REQUEST_SUBSCRIBE:
      return parse_topic (value_of (fields.topic), request->topic, error) &&
             parse_client_id (value_of (fields.client_id), &request->client_id, error) &&
             parse_last_n (value_of (fields.last_n), &request->last_n, error) &&
             parse_since (fields.since, children, request, error);
    case PUBSUB_REQUEST_UNSUBSCRIBE:
      return parse_topic (value_of (fields.topic), request->topic, error) &&
             parse_client_id (value_of (fields.client_id), &request->client_id, error);
    case PUBSUB_REQUEST_PUBLISH:
      return parse_topic (value_of (fields.topic), request->topic, error) &&
             parse_message (fields.message, children, request, error);
    case PUBSUB_REQUEST_PING:
      return TRUE;
    default:
      g_assert_not_reached ();
    }
}

void
pubsub_request_clear (PubsubRequest *request)
{
  g_clear_pointer (&request->client_id, g_free);
}

/* ---------------------------------------------------------------------- */
/* Building                                                               */

/* Takes the JSON text built in @json and returns it as a text frame. */
static GBytes *
frame_from_json (GString *json)
{
  gsize header_len = pubsub_ws_frame_header_len (json->len);
  guint8 *frame = g_malloc (header_len + json->len);

  pubsub_ws_frame_write_header (frame, json->len, PUBSUB_WS_OPCODE_TEXT);
  memcpy (frame + header_len, json->str, json->len);
  return g_bytes_new_take (frame, header_len + json->len);
}

static void
append_request_id (GString             *out,
                   const PubsubRequest *request)
{
  if (request != NULL && request->request_id != NULL)
    {
      g_string_append (out, ",\"request_id\":");
      g_string_append_len (out, request->request_id, (gssize) request->request_id_len);
    }
}

static GBytes *
finish_with_timestamp (GString *json)
{
  char ts[PUBSUB_TIMESTAMP_LEN + 1];
  GBytes *frame;

  pubsub_format_timestamp (g_get_real_time (), ts);
  g_string_append (json, ",\"ts\":\"");
  g_string_append (json, ts);
  g_string_append (json, "\"}");
  frame = frame_from_json (json);
  g_string_free (json, TRUE);
  return frame;
}

/* Decimal digits of @value into @out (no NUL). Returns: their number.
 * Two digits per division, from a table, written from the end: every
 * publish formats its seq twice (event, ack), and one digit per division
 * plus a reversing copy cost about 140 instructions for a 6-digit seq. */
static gsize
format_u64 (guint64 value,
            char    out[20])
{
  static const char pairs[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";
  char digits[20];
  char *p = digits + sizeof digits;
  gsize n;

  while (value >= 100)
    {
      guint pair = (guint) (value % 100);

      value /= 100;
      p -= 2;
      memcpy (p, pairs + 2 * pair, 2);
    }
  if (value >= 10)
    {
      p -= 2;
      memcpy (p, pairs + 2 * value, 2);
    }
  else
    *--p = (char) ('0' + value);
  n = (gsize) (digits + sizeof digits - p);
  memcpy (out, p, n);
  return n;
}

/* One piece of a frame's JSON text. */
typedef struct {
  const char *text;
  gsize       len;
} Piece;

#define LITERAL(s) ((Piece) { (s), sizeof (s) - 1 })

/* Builds a text frame from @pieces in one exactly sized allocation: the
 * frames of the hot path (event, ack, pong) need no escaping, because every
 * variable part of them was validated or is already JSON. */
static GBytes *
frame_from_pieces (const Piece *pieces,
                   gsize        n_pieces)
{
  gsize json_len = 0;
  gsize header_len;
  guint8 *frame;
  guint8 *p;

  for (gsize i = 0; i < n_pieces; i++)
    json_len += pieces[i].len;
  header_len = pubsub_ws_frame_header_len (json_len);
  frame = g_malloc (header_len + json_len);
  pubsub_ws_frame_write_header (frame, json_len, PUBSUB_WS_OPCODE_TEXT);
  p = frame + header_len;
  for (gsize i = 0; i < n_pieces; i++)
    {
      memcpy (p, pieces[i].text, pieces[i].len);
      p += pieces[i].len;
    }
  return g_bytes_new_take (frame, header_len + json_len);
}

/* Appends the literal @s at @p and advances @p: a constant size, so the
 * compiler turns the memcpy() into a few moves. */
#define PUT_LITERAL(p, s) \
  G_STMT_START { memcpy ((p), "" s "", sizeof (s) - 1); (p) += sizeof (s) - 1; } G_STMT_END

static inline guint8 *
put (guint8     *p,
     const void *text,
     gsize       len)
{
  memcpy (p, text, len);
  return p + len;
}

/* A text frame of @json_len bytes of JSON: returns where the JSON goes. */
static inline guint8 *
new_text_frame (gsize    json_len,
                guint8 **out_frame,
                gsize   *out_len)
{
  gsize header_len = pubsub_ws_frame_header_len (json_len);

  *out_len = header_len + json_len;
  *out_frame = g_malloc (*out_len);
  pubsub_ws_frame_write_header (*out_frame, json_len, PUBSUB_WS_OPCODE_TEXT);
  return *out_frame + header_len;
}

/**
 * pubsub_frame_new_event:
 * @info: the message: a valid topic name and UUID (no escaping needed) and
 *   the payload's original, validated JSON text
 * @out_payload_offset: (out): where the payload's text starts in the frame
 *
 * Builds the one event frame of a publish, sized exactly, so that its bytes
 * can be shared by every subscriber and by the history. It is the broker's
 * #PubsubMessageEncoder.
 */
GBytes *
pubsub_frame_new_event (const PubsubMessageInfo *info,
                        gsize                   *out_payload_offset)
{
  gsize topic_len = strlen (info->topic);
  char seq[20];
  gsize seq_len = format_u64 (info->seq, seq);
  gsize json_len = sizeof PUBSUB_EVENT_START - 1 + topic_len +
                   sizeof PUBSUB_EVENT_ID - 1 + PUBSUB_UUID_LEN +
                   sizeof PUBSUB_EVENT_PAYLOAD - 1 + info->payload_len +
                   sizeof PUBSUB_EVENT_SEQ - 1 + seq_len +
                   sizeof PUBSUB_EVENT_EPOCH - 1 + PUBSUB_EPOCH_LEN +
                   sizeof PUBSUB_EVENT_TS - 1 + PUBSUB_TIMESTAMP_LEN +
                   sizeof PUBSUB_EVENT_END - 1;
  char ts[PUBSUB_TIMESTAMP_LEN + 1];
  guint8 *frame;
  gsize frame_len;
  guint8 *p = new_text_frame (json_len, &frame, &frame_len);

  /* Written in place, not through a list of pieces: it runs once per
   * publish. */
  PUT_LITERAL (p, PUBSUB_EVENT_START);
  p = put (p, info->topic, topic_len);
  PUT_LITERAL (p, PUBSUB_EVENT_ID);
  p = put (p, info->id, PUBSUB_UUID_LEN);
  PUT_LITERAL (p, PUBSUB_EVENT_PAYLOAD);
  *out_payload_offset = (gsize) (p - frame);
  p = put (p, info->payload, info->payload_len);
  PUT_LITERAL (p, PUBSUB_EVENT_SEQ);
  p = put (p, seq, seq_len);
  PUT_LITERAL (p, PUBSUB_EVENT_EPOCH);
  p = put (p, info->epoch, PUBSUB_EPOCH_LEN);
  PUT_LITERAL (p, PUBSUB_EVENT_TS);
  pubsub_format_timestamp (info->time_us, ts);
  p = put (p, ts, PUBSUB_TIMESTAMP_LEN);
  PUT_LITERAL (p, PUBSUB_EVENT_END);
  g_assert ((gsize) (p - frame) == frame_len);
  return g_bytes_new_take (frame, frame_len);
}

/* ,"request_id":<the client's token>, or nothing */
static void
request_id_pieces (const PubsubRequest *request,
                   Piece                pieces[2])
{
  gboolean has_id = request != NULL && request->request_id != NULL;

  pieces[0] = has_id ? LITERAL (",\"request_id\":") : (Piece) { "", 0 };
  pieces[1] = has_id ? (Piece) { request->request_id, request->request_id_len }
                     : (Piece) { "", 0 };
}

/* An ack with @fields (",\"name\":value…", already JSON) after its status. */
static GBytes *
ack_with_fields (const PubsubRequest *request,
                 const char          *topic,
                 const char          *fields,
                 gsize                fields_len)
{
  char ts[PUBSUB_TIMESTAMP_LEN + 1];
  Piece pieces[] = {
    LITERAL ("{\"type\":\"ack\""),
    { NULL, 0 }, { NULL, 0 },   /* request_id */
    LITERAL (",\"topic\":\""),
    { topic, strlen (topic) },
    LITERAL ("\",\"status\":\"ok\""),
    { fields, fields_len },
    LITERAL (",\"ts\":\""),
    { ts, PUBSUB_TIMESTAMP_LEN },
    LITERAL ("\"}"),
  };

  /* Any other text is escaped the slow way. */
  if (G_UNLIKELY (!pubsub_topic_name_is_valid (topic, pieces[4].len)))
    {
      GString *json = g_string_sized_new (128);

      g_string_append (json, "{\"type\":\"ack\"");
      append_request_id (json, request);
      g_string_append (json, ",\"topic\":");
      pubsub_json_append_string (json, topic);
      g_string_append (json, ",\"status\":\"ok\"");
      g_string_append_len (json, fields, (gssize) fields_len);
      return finish_with_timestamp (json);
    }

  request_id_pieces (request, &pieces[1]);
  pubsub_format_timestamp (g_get_real_time (), ts);
  return frame_from_pieces (pieces, G_N_ELEMENTS (pieces));
}

/**
 * pubsub_frame_new_ack:
 * @request: (nullable): the request being acknowledged
 * @topic: the topic it is about
 *
 * The plain ack (unsubscribe).
 */
GBytes *
pubsub_frame_new_ack (const PubsubRequest *request,
                      const char          *topic)
{
  return ack_with_fields (request, topic, "", 0);
}

/* The publish ack, written in place like the event: it is the other
 * frame of every publish. @topic is valid, so it needs no escaping. */
static GBytes *
publish_ack_in_place (const PubsubRequest *request,
                      const char          *topic,
                      gsize                topic_len,
                      guint64              seq,
                      gboolean             duplicate)
{
#define ACK_START "{\"type\":\"ack\""
#define ACK_REQUEST_ID ",\"request_id\":"
#define ACK_TOPIC ",\"topic\":\""
#define ACK_SEQ "\",\"status\":\"ok\",\"seq\":"
#define ACK_DUPLICATE ",\"duplicate\":true"
#define ACK_TS ",\"ts\":\""
#define ACK_END "\"}"
  char digits[20];
  gsize seq_len = format_u64 (seq, digits);
  gsize request_id_len = request->request_id != NULL ? request->request_id_len : 0;
  gsize json_len = sizeof ACK_START - 1 +
                   (request_id_len > 0 ? sizeof ACK_REQUEST_ID - 1 + request_id_len : 0) +
                   sizeof ACK_TOPIC - 1 + topic_len + sizeof ACK_SEQ - 1 + seq_len +
                   (duplicate ? sizeof ACK_DUPLICATE - 1 : 0) +
                   sizeof ACK_TS - 1 + PUBSUB_TIMESTAMP_LEN + sizeof ACK_END - 1;
  char ts[PUBSUB_TIMESTAMP_LEN + 1];
  guint8 *frame;
  gsize frame_len;
  guint8 *p = new_text_frame (json_len, &frame, &frame_len);

  PUT_LITERAL (p, ACK_START);
  if (request_id_len > 0)
    {
      PUT_LITERAL (p, ACK_REQUEST_ID);
      p = put (p, request->request_id, request_id_len);
    }
  PUT_LITERAL (p, ACK_TOPIC);
  p = put (p, topic, topic_len);
  PUT_LITERAL (p, ACK_SEQ);
  p = put (p, digits, seq_len);
  if (duplicate)
    PUT_LITERAL (p, ACK_DUPLICATE);
  PUT_LITERAL (p, ACK_TS);
  pubsub_format_timestamp (g_get_real_time (), ts);
  p = put (p, ts, PUBSUB_TIMESTAMP_LEN);
  PUT_LITERAL (p, ACK_END);
  g_assert ((gsize) (p - frame) == frame_len);
  return g_bytes_new_take (frame, frame_len);
#undef ACK_START
#undef ACK_REQUEST_ID
#undef ACK_TOPIC
#undef ACK_SEQ
#undef ACK_DUPLICATE
#undef ACK_TS
#undef ACK_END
}

/**
 * pubsub_frame_new_publish_ack:
 * @request: the publish
 * @seq: the message's seq
 * @duplicate: whether the id was already stored (nothing was published)
 */
GBytes *
pubsub_frame_new_publish_ack (const PubsubRequest *request,
                              guint64              seq,
                              gboolean             duplicate)
{
  gsize topic_len = strlen (request->topic);

  if (G_LIKELY (pubsub_topic_name_is_valid (request->topic, topic_len)))
    return publish_ack_in_place (request, request->topic, topic_len, seq, duplicate);

  static const char seq_field[] = ",\"seq\":";
  static const char duplicate_field[] = ",\"duplicate\":true";
  char fields[sizeof seq_field + 20 + sizeof duplicate_field];
  gsize len = sizeof seq_field - 1;

  memcpy (fields, seq_field, len);
  len += format_u64 (seq, fields + len);
  if (duplicate)
    {
      memcpy (fields + len, duplicate_field, sizeof duplicate_field - 1);
      len += sizeof duplicate_field - 1;
    }
  return ack_with_fields (request, request->topic, fields, len);
}

/**
 * pubsub_frame_new_subscribe_ack:
 * @request: the subscribe
 * @epoch: the topic's epoch
 * @seq: the topic's last seq: the replay ends there
 * @recovered: whether the request's since was honoured; only said when the
 *   request had one
 */
GBytes *
pubsub_frame_new_subscribe_ack (const PubsubRequest *request,
                                const char          *epoch,
                                guint64              seq,
                                gboolean             recovered)
{
  g_autoptr(GString) fields = g_string_sized_new (96);

  g_string_append_printf (fields, ",\"epoch\":\"%s\",\"seq\":%" G_GUINT64_FORMAT, epoch, seq);
  if (request->has_since)
    g_string_append (fields, recovered ? ",\"recovered\":true" : ",\"recovered\":false");
  return ack_with_fields (request, request->topic, fields->str, fields->len);
}

/**
 * pubsub_frame_new_error:
 * @request: (nullable): the request that failed, for its request_id and topic
 * @error: what failed
 */
GBytes *
pubsub_frame_new_error (const PubsubRequest *request,
                        const GError        *error)
{
  GString *json = g_string_sized_new (192);

  g_string_append (json, "{\"type\":\"error\"");
  append_request_id (json, request);
  if (request != NULL && request->topic[0] != '\0')
    {
      g_string_append (json, ",\"topic\":");
      pubsub_json_append_string (json, request->topic);
    }
  g_string_append (json, ",\"error\":{\"code\":\"");
  g_string_append (json, pubsub_error_to_code (error));
  g_string_append (json, "\",\"message\":");
  pubsub_json_append_string (json, error->message);
  g_string_append_c (json, '}');
  return finish_with_timestamp (json);
}

GBytes *
pubsub_frame_new_pong (const PubsubRequest *request)
{
  char ts[PUBSUB_TIMESTAMP_LEN + 1];
  Piece pieces[] = {
    LITERAL ("{\"type\":\"pong\""),
    { NULL, 0 }, { NULL, 0 },   /* request_id */
    LITERAL (",\"ts\":\""),
    { ts, PUBSUB_TIMESTAMP_LEN },
    LITERAL ("\"}"),
  };

  request_id_pieces (request, &pieces[1]);
  pubsub_format_timestamp (g_get_real_time (), ts);
  return frame_from_pieces (pieces, G_N_ELEMENTS (pieces));
}

/**
 * pubsub_frame_new_info:
 * @msg: "ping", "topic_deleted", …
 * @topic: (nullable): the topic it is about
 */
GBytes *
pubsub_frame_new_info (const char *msg,
                       const char *topic)
{
  GString *json = g_string_sized_new (96);

  g_string_append (json, "{\"type\":\"info\"");
  if (topic != NULL)
    {
      g_string_append (json, ",\"topic\":");
      pubsub_json_append_string (json, topic);
    }
  g_string_append (json, ",\"msg\":");
  pubsub_json_append_string (json, msg);
  return finish_with_timestamp (json);
}

/**
 * pubsub_frame_new_messages_lost:
 * @topic: the topic
 * @seq: the first seq the subscriber will see from now on
 * @epoch: the topic's epoch from now on
 *
 * What a subscriber gets instead of a silent gap (SPEC §9).
 */
GBytes *
pubsub_frame_new_messages_lost (const char *topic,
                                guint64     seq,
                                const char *epoch)
{
  GString *json = g_string_sized_new (128);

  g_string_append (json, "{\"type\":\"info\",\"topic\":");
  pubsub_json_append_string (json, topic);
  g_string_append_printf (json, ",\"msg\":\"messages_lost\",\"seq\":%" G_GUINT64_FORMAT
                          ",\"epoch\":", seq);
  pubsub_json_append_string (json, epoch);
  return finish_with_timestamp (json);
}

/* ---------------------------------------------------------------------- */
/* Publishing from outside the WebSocket protocol                         */

/**
 * pubsub_publish_args_check:
 * @topic: the topic's name
 * @id: (inout): the message id; when empty, replaced by a new UUID owned
 *   by @out_fresh_id
 * @out_fresh_id: (out) (transfer full): the new id, if one was made
 * @payload_json: the payload's JSON text
 * @out_payload: (out): the validated payload
 *
 * The checks of a WebSocket publish, for callers that have not validated
 * their input (D-Bus), before pubsub_broker_publish().
 */
gboolean
pubsub_publish_args_check (const char       *topic,
                           const char      **id,
                           char            **out_fresh_id,
                           const char       *payload_json,
                           PubsubJsonValue  *out_payload,
                           GError          **error)
{
  g_return_val_if_fail (topic != NULL && payload_json != NULL, FALSE);

  if (!pubsub_check_topic_name (topic, error))
    return FALSE;
  if (*id == NULL || **id == '\0')
    *id = *out_fresh_id = g_uuid_string_random ();
  else if (strlen (*id) != PUBSUB_UUID_LEN || !g_uuid_string_is_valid (*id))
    {
      g_set_error_literal (error, PUBSUB_ERROR, PUBSUB_ERROR_BAD_REQUEST,
                           "message id must be a valid UUID");
      return FALSE;
    }
  if (!pubsub_json_validate (payload_json, strlen (payload_json), out_payload, error))
    {
      g_prefix_error (error, "payload: ");
      return FALSE;
    }
  return TRUE;
}
