/* bench-protocol.c: the pubsub and NATS messages of pubsub-bench
 *
 * Every published payload embeds a marker with the publisher index, the topic
 * index, a per-(publisher, topic) sequence number and the CLOCK_MONOTONIC send
 * time (or, with --rate, the scheduled send time), so subscribers measure
 * latency and detect loss, gaps, duplicates and reordering on their own.
 * Server messages are classified by substring scanning; there is no JSON
 * library anywhere near the hot path, and publishing writes into one reused
 * scratch buffer.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdio.h>
#include <string.h>

#include "bench-options.h"
#include "bench-protocol.h"

static const char hexdigits[] = "0123456789abcdef";
static guint8 hexval[256];     /* 0x80 for what is not a hex digit */

static gchar **topic_names;    /* owned */
static gsize *topic_lens;      /* owned */
static BenchBuf scratch;       /* the publish being built */
static guint64 pub_errors_printed;

void
bench_protocol_init (const char *prefix,
                     gint        n_topics)
{
  memset (hexval, 0x80, sizeof hexval);
  for (gint i = 0; i < 10; i++)
    hexval['0' + i] = (guint8) i;
  for (gint i = 0; i < 6; i++)
    hexval['a' + i] = hexval['A' + i] = (guint8) (10 + i);

  topic_names = g_new0 (gchar *, (gsize) n_topics);
  topic_lens = g_new0 (gsize, (gsize) n_topics);
  for (gint t = 0; t < n_topics; t++)
    {
      topic_names[t] = g_strdup_printf ("%s-%d", prefix, t);
      topic_lens[t] = strlen (topic_names[t]);
    }
}

const gchar *
bench_topic_name (gint topic)
{
  return topic_names[topic];
}

/* ------------------------------------------------------------------ hex */

static inline char *
put_hex (char    *o,
         guint64  v,
         gint     digits)
{
  for (gint i = digits - 1; i >= 0; i--, v >>= 4)
    o[i] = hexdigits[v & 15];
  return o + digits;
}

static inline char *
put_mem (char       *o,
         const void *s,
         gsize       n)
{
  memcpy (o, s, n);
  return o + n;
}

/* Fixed-width hex; *bad gets 0x80 when a character is not a hex digit. */
static inline guint64
get_hex (const guint8 *s,
         gint          digits,
         guint8       *bad)
{
  guint64 v = 0;
  guint8 acc = 0;

  for (gint i = 0; i < digits; i++)
    {
      guint8 x = hexval[s[i]];

      acc |= x;
      v = v << 4 | (x & 15);
    }
  *bad |= acc & 0x80;
  return v;
}

/* Eight lowercase hex digits (as put_hex writes them) to their value, SWAR:
 * byte i of x is digit i, the most significant first. */
static inline guint32
hex8_swar (const guint8 *s)
{
  guint64 x, v;

  memcpy (&x, s, 8);
  v = (x & G_GUINT64_CONSTANT (0x0f0f0f0f0f0f0f0f)) +
      ((x >> 6) & G_GUINT64_CONSTANT (0x0101010101010101)) * 9;
  v = ((v << 4) | (v >> 8)) & G_GUINT64_CONSTANT (0x00ff00ff00ff00ff);
  v = ((v << 8) | (v >> 16)) & G_GUINT64_CONSTANT (0x0000ffff0000ffff);
  v = ((v << 16) | (v >> 32)) & G_GUINT64_CONSTANT (0x00000000ffffffff);
  return (guint32) v;
}

/* ------------------------------------------------------------------ subscribing */

/* CONNECT (+ SUB for subscribers) + PING: the PONG is the subscriber's ack. */
static void
nats_open (BenchConn *c)
{
  char b[512];
  gint n = snprintf (b, sizeof b,
                     "CONNECT {\"verbose\":false,\"pedantic\":false,\"protocol\":1,"
                     "\"lang\":\"c\",\"name\":\"pubsub-bench\"}\r\n");

  if (c->role != BENCH_ROLE_PUB)
    n += snprintf (b + n, sizeof b - (gsize) n, "SUB %s 1\r\n", topic_names[c->topic]);
  n += snprintf (b + n, sizeof b - (gsize) n, "PING\r\n");
  bench_ws_send (c, BENCH_WS_BINARY, b, (gsize) n);
  bench_u32_queue_push (&c->pings, 0);
}

void
bench_protocol_open (BenchConn *c)
{
  char b[512];
  gint n;

  if (bench_options.nats)
    {
      nats_open (c);
      return;
    }
  if (c->role == BENCH_ROLE_PUB)
    {
      bench_conn_mark_ready (c);
      return;
    }
  n = snprintf (b, sizeof b,
                "{\"type\":\"subscribe\",\"topic\":\"%s\",\"client_id\":\"bench-%c%d\","
                "\"last_n\":0,\"request_id\":\"s%d\"}",
                topic_names[c->topic], c->role == BENCH_ROLE_SLOW ? 'w' : 's', c->idx, c->idx);
  bench_ws_send (c, BENCH_WS_TEXT, b, (gsize) n);
}

/* ------------------------------------------------------------------ publishing */

/* The payload's string contents: the marker, then 'x' up to --size. */
static inline char *
put_body (char    *o,
          gint     pub,
          gint     topic,
          guint64  seq,
          guint64  ts)
{
  char *s = o;
  gsize pad;

  o = put_mem (o, BENCH_MARK, 3);
  o = put_hex (o, (guint64) pub, 4);
  *o++ = ':';
  o = put_hex (o, (guint64) topic, 8);
  *o++ = ':';
  o = put_hex (o, seq, 16);
  *o++ = ':';
  o = put_hex (o, ts, 16);
  *o++ = ':';
  pad = (gsize) bench_options.payload_len - 2 - (gsize) (o - s);
  memset (o, 'x', pad);
  return o + pad;
}

/* A version-4-shaped UUID made of publisher, topic and sequence number. */
static inline char *
put_uuid (char    *o,
          gint     pub,
          gint     topic,
          guint64  seq)
{
  /* Random per run: pubsubd drops a publish whose id is still in the
   * topic's history as a duplicate (SPEC §8), so two runs on the same
   * server and topic (a warm-up, then the measure) must not reuse ids. */
  static guint32 run = 0;

  if (G_UNLIKELY (run == 0))
    run = (g_random_int () & 0xffff) | 1;
  o = put_hex (o, ((guint64) run << 16) | ((guint64) pub & 0xffff), 8);
  *o++ = '-';
  o = put_hex (o, (guint64) topic & 0xffff, 4);
  *o++ = '-';
  *o++ = '4';
  o = put_hex (o, ((guint64) topic >> 16) & 0xfff, 3);
  *o++ = '-';
  *o++ = '8';
  o = put_hex (o, (seq >> 48) & 0xfff, 3);
  *o++ = '-';
  return put_hex (o, seq & G_GUINT64_CONSTANT (0xffffffffffff), 12);
}

/* PUB subj n\r\n{"id":"UUID","payload":"..."}\r\n; id_seq goes into the id,
 * seq into the marker (they differ for probes only). */
static char *
put_nats_publish (char            *o,
                  const BenchConn *c,
                  gint             t,
                  guint64          seq,
                  guint64          id_seq,
                  guint64          ts)
{
  gsize body = BENCH_LITERAL_LEN ("{\"id\":\"") + 36 + BENCH_LITERAL_LEN ("\",\"payload\":") +
               (gsize) bench_options.payload_len + 1;

  o += sprintf (o, "PUB %s %zu\r\n", topic_names[t], body);
  o = put_mem (o, "{\"id\":\"", BENCH_LITERAL_LEN ("{\"id\":\""));
  o = put_uuid (o, c->idx, t, id_seq);
  o = put_mem (o, "\",\"payload\":\"", BENCH_LITERAL_LEN ("\",\"payload\":\""));
  o = put_body (o, c->idx, t, seq, ts);
  return put_mem (o, "\"}\r\n", 4);
}

/* The pubsubd publish frame; request_id is p + the publish's number. */
static char *
put_pubsub_publish (char            *o,
                    const BenchConn *c,
                    gint             t,
                    guint64          seq,
                    guint64          id_seq,
                    guint64          ts)
{
  o = put_mem (o, "{\"type\":\"publish\",\"topic\":\"",
               BENCH_LITERAL_LEN ("{\"type\":\"publish\",\"topic\":\""));
  o = put_mem (o, topic_names[t], topic_lens[t]);
  o = put_mem (o, "\",\"message\":{\"id\":\"", BENCH_LITERAL_LEN ("\",\"message\":{\"id\":\""));
  o = put_uuid (o, c->idx, t, id_seq);
  o = put_mem (o, "\",\"payload\":\"", BENCH_LITERAL_LEN ("\",\"payload\":\""));
  o = put_body (o, c->idx, t, seq, ts);
  o = put_mem (o, "\"},\"request_id\":\"p", BENCH_LITERAL_LEN ("\"},\"request_id\":\"p"));
  o = put_hex (o, c->sent, 12);
  return put_mem (o, "\"}", 2);
}

void
bench_nats_ping (BenchConn *c)
{
  bench_ws_send (c, BENCH_WS_BINARY, "PING\r\n", 6);
  bench_u32_queue_push (&c->pings, (guint32) c->since_ping);
  c->since_ping = 0;
}

/* One publish of marker sequence number seq and id id_seq to topic t. */
static inline void
publish_frame (BenchConn *c,
               gint       t,
               guint64    seq,
               guint64    id_seq,
               guint64    ts)
{
  char *s, *o;

  scratch.len = 0;
  bench_buf_reserve (&scratch, (gsize) bench_options.payload_len + topic_lens[t] + 256);
  s = scratch.data;
  if (bench_options.nats)
    o = put_nats_publish (s, c, t, seq, id_seq, ts);
  else
    o = put_pubsub_publish (s, c, t, seq, id_seq, ts);
  bench_ws_send (c, bench_options.nats ? BENCH_WS_BINARY : BENCH_WS_TEXT, s, (gsize) (o - s));
  c->sent++;
  c->unconfirmed++;
}

void
bench_publish_one (BenchConn *c,
                   guint64    ts)
{
  gint t = (gint) ((c->rr++ + (guint64) c->idx) % (guint64) bench_options.topics);
  guint64 seq = ++c->seq[t];

  publish_frame (c, t, seq, seq, ts);
  if (bench_options.nats && ++c->since_ping >= (guint64) bench_options.ping_every)
    bench_nats_ping (c);
}

/* Probe ids: bit 59 of the id's sequence number, far above any real one. */
#define PROBE_ID_BASE (G_GUINT64_CONSTANT (1) << 59)

void
bench_publish_probe (BenchConn *c,
                     gint       topic,
                     guint64    round)
{
  publish_frame (c, topic, 0, PROBE_ID_BASE | round, bench_now_ns ());
  c->since_ping++;
}

void
bench_pub_fill (BenchConn *c,
                guint64    now)
{
  if (!bench_run.running || c->state != BENCH_CONN_OPEN || bench_options.rate > 0)
    return;
  while (c->unconfirmed < (guint64) bench_options.window)
    bench_publish_one (c, now);
}

/* n publishes of c were acknowledged (or refused, if error). */
static void
pub_confirmed (BenchConn *c,
               guint64    n,
               gboolean   error,
               guint64    now)
{
  if (c->unconfirmed < n)
    n = c->unconfirmed;
  c->unconfirmed -= n;
  if (error)
    c->errors += n;
  else
    c->acked += n;
  bench_run.t_last_ack = now;
}

/* ------------------------------------------------------------------ events */

/* Every event of a topic has the same layout up to the payload, so the
 * marker is almost always where it was last time: look there first. NULL
 * when the event has no complete marker. */
static inline const guint8 *
find_marker (BenchConn    *c,
             const guint8 *d,
             gsize         len)
{
  const guint8 *m = d + c->mark_off;

  if (G_UNLIKELY (c->mark_off + BENCH_MARK_LEN > len || m[0] != '~' || m[1] != 'B' ||
                  m[2] != ':'))
    {
      m = memmem (d, len, BENCH_MARK, 3);
      if (G_UNLIKELY (!m || (gsize) (d + len - m) < BENCH_MARK_LEN))
        return NULL;
      c->mark_off = (gsize) (m - d);
    }
  if (G_UNLIKELY (m[7] != ':' || m[16] != ':' || m[33] != ':' || m[50] != ':'))
    return NULL;
  return m;
}

/* Loss, gaps, duplicates and reordering from publisher pub's numbers. */
static inline void
check_sequence (BenchConn *c,
                guint64    pub,
                guint64    seq)
{
  guint64 last = c->last[pub];

  if (G_LIKELY (seq == last + 1))
    {
      c->last[pub] = seq;
      if (c->role == BENCH_ROLE_SUB)
        bench_run.sum_last++;
    }
  else if (seq > last)
    {
      c->gaps++;
      c->missing += seq - last - 1;
      c->last[pub] = seq;
      if (c->role == BENCH_ROLE_SUB)
        bench_run.sum_last += seq - last;
    }
  else if (seq == last)
    c->dups++;
  else
    {
      /* late: assume it fills one of the holes counted as missing so far */
      c->reorder++;
      if (c->missing)
        c->missing--;
    }
}

static inline void
sub_event (BenchConn    *c,
           const guint8 *d,
           gsize         len,
           guint64       now)
{
  const guint8 *m = find_marker (c, d, len);
  guint8 bad = 0;
  guint64 pub, topic, seq, ts;

  if (G_UNLIKELY (!m))
    {
      c->foreign++;
      return;
    }
  pub = get_hex (m + 3, 4, &bad);
  topic = hex8_swar (m + 8);
  seq = (guint64) hex8_swar (m + 17) << 32 | hex8_swar (m + 25);
  ts = (guint64) hex8_swar (m + 34) << 32 | hex8_swar (m + 42);
  if (G_UNLIKELY (bad || pub >= (guint64) bench_run.n_pubs))
    {
      c->foreign++;
      return;
    }
  if (G_UNLIKELY (seq == 0))   /* a probe: the cluster reaches this subscriber */
    {
      c->probed = TRUE;
      return;
    }
  if (G_UNLIKELY (topic != (guint64) c->topic))
    c->wrong_topic++;
  c->events++;
  c->last_rx = now;
  c->last_sent_ts = ts;
  check_sequence (c, pub, seq);
  if (c->role == BENCH_ROLE_SUB)
    {
      bench_run.t_last_event = now;
      if (ts >= bench_run.warm_until && now >= ts)
        bench_hist_add (&bench_run.hist, now - ts);
    }
}

/* ------------------------------------------------------------------ pubsub messages */

/* The value of "type", just after its opening quote; NULL if there is none. */
static const guint8 *
json_type (const guint8 *d,
           gsize         n)
{
  static const char pre[8] = { '{', '"', 't', 'y', 'p', 'e', '"', ':' };
  const guint8 *e = d + n, *p;
  guint64 a, b;

  memcpy (&b, pre, 8);
  if (n > 16 && (memcpy (&a, d, 8), a == b) && d[8] == '"')
    return d + 9;
  p = memmem (d, n, "\"type\"", 6);
  if (!p)
    return NULL;
  for (p += 6; p < e && (*p == ' ' || *p == ':' || *p == '\t' || *p == '\n' || *p == '\r'); p++)
    ;
  if (p + 6 >= e || *p != '"')
    return NULL;
  return p + 1;
}

static void
print_error_frame (const BenchConn *c,
                   const guint8    *d,
                   gsize            n)
{
  fprintf (stderr, "pubsub-bench: %s %d got an error: %.*s\n", bench_conn_role_name (c), c->idx,
           (gint) MIN (n, 400), (const char *) d);
}

/* SLOW_CONSUMER is expected of the slow subscriber; a publisher's error
 * refuses one publish; a subscriber's before its ack refuses the subscribe. */
static void
pubsub_error (BenchConn    *c,
              const guint8 *d,
              gsize         n,
              guint64       now)
{
  if (memmem (d, n, "SLOW_CONSUMER", 13))
    {
      c->slow_err = TRUE;
      if (c->role != BENCH_ROLE_SLOW)
        print_error_frame (c, d, n);
      return;
    }
  if (c->role == BENCH_ROLE_PUB)
    {
      pub_confirmed (c, 1, TRUE, now);
      if (pub_errors_printed++ < 3)
        print_error_frame (c, d, n);
      return;
    }
  print_error_frame (c, d, n);
  if (!c->ready)
    bench_die ("subscribe of %s %d failed", bench_conn_role_name (c), c->idx);
}

void
bench_pubsub_message (BenchConn    *c,
                      const guint8 *d,
                      gsize         n,
                      guint64       now)
{
  const guint8 *t = json_type (d, n);

  if (G_UNLIKELY (!t))
    {
      c->foreign++;
      return;
    }
  if (G_LIKELY (t[0] == 'e' && t[1] == 'v'))            /* "event" */
    {
      if (c->role != BENCH_ROLE_PUB)
        sub_event (c, d, n, now);
      return;
    }
  if (t[0] == 'a' && t[1] == 'c')                       /* "ack" */
    {
      if (c->role == BENCH_ROLE_PUB)
        pub_confirmed (c, 1, FALSE, now);
      else
        bench_conn_mark_ready (c);
      return;
    }
  if (t[0] == 'e' && t[1] == 'r')                       /* "error" */
    pubsub_error (c, d, n, now);
  /* info (heartbeat, topic_deleted), pong: nothing to do */
}

/* ------------------------------------------------------------------ nats messages */

static void
nats_pong (BenchConn *c,
           guint64    now)
{
  guint32 v;

  if (!bench_u32_queue_pop (&c->pings, &v))
    return;
  if (!c->ready)
    bench_conn_mark_ready (c);
  if (v)
    pub_confirmed (c, v, FALSE, now);
}

/* MSG <subject> <sid> [reply-to] <#bytes>: the size is the last field. */
static gsize
nats_msg_size (const guint8 *line,
               gsize         ll)
{
  gsize j = ll, nb = 0;

  while (j > 0 && line[j - 1] != ' ')
    j--;
  for (gsize k = j; k < ll; k++)
    nb = nb * 10 + (gsize) (line[k] - '0');
  return nb;
}

/* Any line but MSG. */
static void
nats_line (BenchConn    *c,
           const guint8 *line,
           gsize         ll,
           guint64       now)
{
  if (ll == 4 && memcmp (line, "PING", 4) == 0)
    bench_ws_send (c, BENCH_WS_BINARY, "PONG\r\n", 6);
  else if (ll == 4 && memcmp (line, "PONG", 4) == 0)
    nats_pong (c, now);
  else if (ll >= 4 && memcmp (line, "-ERR", 4) == 0)
    {
      if (memmem (line, ll, "Slow Consumer", 13))
        c->slow_err = TRUE;
      if (c->role != BENCH_ROLE_SLOW)
        fprintf (stderr, "pubsub-bench: %s %d: %.*s\n", bench_conn_role_name (c), c->idx,
                 (gint) ll, (const char *) line);
    }
  /* INFO, +OK: ignore */
}

/* Parses NATS protocol lines; returns the bytes consumed. */
static gsize
nats_parse (BenchConn    *c,
            const guint8 *p,
            gsize         n,
            guint64       now)
{
  gsize off = 0;

  while (off < n)
    {
      const guint8 *line = p + off;
      const guint8 *nl = memmem (line, n - off, "\r\n", 2);
      gsize ll;

      if (!nl)
        break;
      ll = (gsize) (nl - line);
      if (ll > 4 && memcmp (line, "MSG ", 4) == 0)
        {
          gsize nb = nats_msg_size (line, ll);

          if (n - off < ll + 2 + nb + 2)
            break;
          if (c->role != BENCH_ROLE_PUB)
            sub_event (c, nl + 2, nb, now);
          off += ll + 2 + nb + 2;
          continue;
        }
      nats_line (c, line, ll, now);
      off += ll + 2;
    }
  return off;
}

void
bench_nats_feed (BenchConn    *c,
                 const guint8 *d,
                 gsize         len,
                 guint64       now)
{
  gsize used;

  if (!c->msg.len)
    {
      used = nats_parse (c, d, len, now);
      if (used < len)
        bench_buf_append (&c->msg, d + used, len - used);
      return;
    }
  bench_buf_append (&c->msg, d, len);
  used = nats_parse (c, (const guint8 *) c->msg.data, c->msg.len, now);
  memmove (c->msg.data, c->msg.data + used, c->msg.len - used);
  c->msg.len -= used;
}
