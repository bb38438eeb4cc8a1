/* pubsub-event-text.c: an event's JSON text as cluster nodes exchange it
 *
 * In cluster mode an event is serialized once, by the node that publishes
 * it, before anyone knows its seq and epoch: this file builds the text
 * around them in two parts (the Redis script joins
 * head .. seq .. ',"epoch":"' .. epoch .. tail), and turns a finished text
 * that came back from Redis into a message whose frame is that text behind
 * a WebSocket header, so that every node frames it once and its
 * subscribers share the bytes. The layout is pubsub_frame_new_event()'s,
 * byte for byte.
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <string.h>

#include "pubsub-error.h"
#include "pubsub-event-layout.h"
#include "pubsub-event-text.h"
#include "pubsub-json.h"
#include "pubsub-protocol.h"
#include "pubsub-topic.h"
#include "pubsub-ws-frame.h"


#define LIT_LEN(lit) (sizeof (lit) - 1)

static char *
put (char       *p,
     const char *text,
     gsize       len)
{
  memcpy (p, text, len);
  return p + len;
}

/**
 * pubsub_event_text_new_parts:
 * @topic: a valid topic name
 * @id: a valid UUID
 * @payload: validated JSON text
 * @time_us: the publish time
 * @out_head_len: (out): the head's length: the tail follows it
 * @out_len: (out): head and tail together
 *
 * Returns: (transfer full): the head, up to and including `"seq":`, then
 *   the tail, from the epoch's closing quote on
 */
char *
pubsub_event_text_new_parts (const char *topic,
                             const char *id,
                             const char *payload,
                             gsize       payload_len,
                             gint64      time_us,
                             gsize      *out_head_len,
                             gsize      *out_len)
{
  gsize topic_len = strlen (topic);
  gsize head_len = LIT_LEN (PUBSUB_EVENT_START) + topic_len +
                   LIT_LEN (PUBSUB_EVENT_ID) + PUBSUB_UUID_LEN +
                   LIT_LEN (PUBSUB_EVENT_PAYLOAD) + payload_len +
                   LIT_LEN (PUBSUB_EVENT_SEQ);
  gsize len = head_len + LIT_LEN (PUBSUB_EVENT_TS) + PUBSUB_TIMESTAMP_LEN +
              LIT_LEN (PUBSUB_EVENT_END);
  char ts[PUBSUB_TIMESTAMP_LEN + 1];
  char *text = g_malloc (len);
  char *p = text;

  p = put (p, PUBSUB_EVENT_START, LIT_LEN (PUBSUB_EVENT_START));
  p = put (p, topic, topic_len);
  p = put (p, PUBSUB_EVENT_ID, LIT_LEN (PUBSUB_EVENT_ID));
  p = put (p, id, PUBSUB_UUID_LEN);
  p = put (p, PUBSUB_EVENT_PAYLOAD, LIT_LEN (PUBSUB_EVENT_PAYLOAD));
  p = put (p, payload, payload_len);
  p = put (p, PUBSUB_EVENT_SEQ, LIT_LEN (PUBSUB_EVENT_SEQ));
  p = put (p, PUBSUB_EVENT_TS, LIT_LEN (PUBSUB_EVENT_TS));
  pubsub_format_timestamp (time_us, ts);
  p = put (p, ts, PUBSUB_TIMESTAMP_LEN);
  p = put (p, PUBSUB_EVENT_END, LIT_LEN (PUBSUB_EVENT_END));
  g_assert ((gsize) (p - text) == len);

  *out_head_len = head_len;
  *out_len = len;
  return text;
}

/* A cursor over the text, read from both ends. */
typedef struct {
  const char *start;
  const char *end;
} Span;

static gboolean
take_prefix (Span       *span,
             const char *lit,
             gsize       len)
{
  if ((gsize) (span->end - span->start) < len || memcmp (span->start, lit, len) != 0)
    return FALSE;
  span->start += len;
  return TRUE;
}

static gboolean
take_suffix (Span       *span,
             const char *lit,
             gsize       len)
{
  if ((gsize) (span->end - span->start) < len || memcmp (span->end - len, lit, len) != 0)
    return FALSE;
  span->end -= len;
  return TRUE;
}

#define TAKE_PREFIX(span, lit) take_prefix ((span), lit, LIT_LEN (lit))
#define TAKE_SUFFIX(span, lit) take_suffix ((span), lit, LIT_LEN (lit))

static gboolean
is_uuid (const char *text)
{
  for (guint i = 0; i < PUBSUB_UUID_LEN; i++)
    {
      gboolean dash = i == 8 || i == 13 || i == 18 || i == 23;

      if (dash ? text[i] != '-' : !g_ascii_isxdigit (text[i]))
        return FALSE;
    }
  return TRUE;
}

static gboolean
read_digits (const char *text,
             gsize       len,
             guint64     max,
             guint64    *out)
{
  guint64 value = 0;

  if (len == 0 || len > 19 || (len > 1 && text[0] == '0'))
    return FALSE;
  for (gsize i = 0; i < len; i++)
    {
      if (!g_ascii_isdigit (text[i]))
        return FALSE;
      value = value * 10 + (guint64) (text[i] - '0');
    }
  if (value > max)
    return FALSE;
  *out = value;
  return TRUE;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil). */
static gint64
days_from_civil (gint64 y,
                 guint  m,
                 guint  d)
{
  gint64 era;
  guint yoe, doy, doe;

  y -= m <= 2;
  era = (y >= 0 ? y : y - 399) / 400;
  yoe = (guint) (y - era * 400);
  doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (gint64) doe - 719468;
}

/* YYYY-MM-DDTHH:MM:SS.mmmZ, as pubsub_format_timestamp() writes it. */
static gboolean
parse_timestamp (const char *ts,
                 gint64     *out_us)
{
  static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
  guint64 year, month, day, hour, minute, second, millis;

  for (guint i = 0; i < PUBSUB_TIMESTAMP_LEN; i++)
    if (shape[i] == 'd' ? !g_ascii_isdigit (ts[i]) : ts[i] != shape[i])
      return FALSE;
  year = (guint64) g_ascii_strtoull (ts, NULL, 10);
  month = (guint64) (ts[5] - '0') * 10 + (guint64) (ts[6] - '0');
  day = (guint64) (ts[8] - '0') * 10 + (guint64) (ts[9] - '0');
  hour = (guint64) (ts[11] - '0') * 10 + (guint64) (ts[12] - '0');
  minute = (guint64) (ts[14] - '0') * 10 + (guint64) (ts[15] - '0');
  second = (guint64) (ts[17] - '0') * 10 + (guint64) (ts[18] - '0');
  millis = (guint64) g_ascii_strtoull (ts + 20, NULL, 10);
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60)
    return FALSE;
  *out_us = ((days_from_civil ((gint64) year, (guint) month, (guint) day) * 86400 +
              (gint64) (hour * 3600 + minute * 60 + second)) * 1000 + (gint64) millis) * 1000;
  return TRUE;
}

/* The fixed end: },"seq":N,"epoch":"E","ts":"TS"} */
static gboolean
parse_tail (Span              *span,
            PubsubMessageInfo *info)
{
  const char *seq_start;

  if (!TAKE_SUFFIX (span, PUBSUB_EVENT_END) || span->end - span->start < PUBSUB_TIMESTAMP_LEN ||
      !parse_timestamp (span->end - PUBSUB_TIMESTAMP_LEN, &info->time_us))
    return FALSE;
  span->end -= PUBSUB_TIMESTAMP_LEN;
  if (!TAKE_SUFFIX (span, PUBSUB_EVENT_TS) || span->end - span->start < PUBSUB_EPOCH_LEN)
    return FALSE;
  span->end -= PUBSUB_EPOCH_LEN;
  info->epoch = span->end;
  for (guint i = 0; i < PUBSUB_EPOCH_LEN; i++)
    if (!g_ascii_isxdigit (info->epoch[i]) || g_ascii_isupper (info->epoch[i]))
      return FALSE;
  if (!TAKE_SUFFIX (span, PUBSUB_EVENT_EPOCH))
    return FALSE;
  for (seq_start = span->end; seq_start > span->start && g_ascii_isdigit (seq_start[-1]); seq_start--)
    ;
  if (!read_digits (seq_start, (gsize) (span->end - seq_start), G_MAXINT64, &info->seq) ||
      info->seq == 0)
    return FALSE;
  span->end = seq_start;
  return TAKE_SUFFIX (span, PUBSUB_EVENT_SEQ);
}

/* The start: {"type":"event","topic":"T","message":{"id":"ID","payload": */
static gboolean
parse_head (Span              *span,
            PubsubMessageInfo *info,
            gsize             *out_topic_len)
{
  const char *quote;

  if (!TAKE_PREFIX (span, PUBSUB_EVENT_START))
    return FALSE;
  quote = memchr (span->start, '"', (gsize) (span->end - span->start));
  if (quote == NULL || !pubsub_topic_name_is_valid (span->start, (gsize) (quote - span->start)))
    return FALSE;
  info->topic = span->start;
  *out_topic_len = (gsize) (quote - span->start);
  span->start = quote;
  if (!TAKE_PREFIX (span, PUBSUB_EVENT_ID) || span->end - span->start < PUBSUB_UUID_LEN ||
      !is_uuid (span->start))
    return FALSE;
  info->id = span->start;
  span->start += PUBSUB_UUID_LEN;
  return TAKE_PREFIX (span, PUBSUB_EVENT_PAYLOAD);
}

/**
 * pubsub_event_text_parse:
 * @info: (out): the message; its strings point into @text and are not
 *   NUL-terminated (the topic's length is @out_topic_len, the epoch is
 *   %PUBSUB_EPOCH_LEN characters)
 * @error: %PUBSUB_ERROR_BAD_REQUEST when @text is not an event text
 *
 * Reads an event text back, strictly: it comes from the network.
 */
gboolean
pubsub_event_text_parse (const char         *text,
                         gsize               len,
                         PubsubMessageInfo  *info,
                         gsize              *out_topic_len,
                         GError            **error)
{
  Span span = { text, text + len };
  PubsubJsonValue payload;

  if (!parse_head (&span, info, out_topic_len) || !parse_tail (&span, info))
    {
      g_set_error_literal (error, PUBSUB_ERROR, PUBSUB_ERROR_BAD_REQUEST,
                           "not an event text");
      return FALSE;
    }
  if (!pubsub_json_validate (span.start, (gsize) (span.end - span.start), &payload, error))
    return FALSE;
  info->payload = span.start;
  info->payload_len = (gsize) (span.end - span.start);
  return TRUE;
}

/**
 * pubsub_event_text_to_message:
 * @out_topic: (out): room for %PUBSUB_TOPIC_NAME_MAX + 1 bytes: the topic
 * @out_epoch: (out): room for %PUBSUB_EPOCH_LEN + 1 bytes: the epoch
 * @error: %PUBSUB_ERROR_BAD_REQUEST
 *
 * Frames @text once (a WebSocket text frame) and parses it.
 *
 * Returns: (transfer full) (nullable): the message, %NULL when @text is
 *   not an event text
 */
PubsubMessage *
pubsub_event_text_to_message (const char  *text,
                              gsize        len,
                              char        *out_topic,
                              char        *out_epoch,
                              GError     **error)
{
  gsize header_len = pubsub_ws_frame_header_len (len);
  guint8 *frame = g_malloc (header_len + len);
  g_autoptr(GBytes) bytes = NULL;
  PubsubMessageInfo info;
  gsize topic_len;

  pubsub_ws_frame_write_header (frame, len, PUBSUB_WS_OPCODE_TEXT);
  memcpy (frame + header_len, text, len);
  bytes = g_bytes_new_take (frame, header_len + len);
  if (!pubsub_event_text_parse ((const char *) frame + header_len, len, &info, &topic_len, error))
    return NULL;
  memcpy (out_topic, info.topic, topic_len);
  out_topic[topic_len] = '\0';
  memcpy (out_epoch, info.epoch, PUBSUB_EPOCH_LEN);
  out_epoch[PUBSUB_EPOCH_LEN] = '\0';
  return pubsub_message_new_for_frame (&info, bytes,
                                       (gsize) (info.payload - (const char *) frame));
}
