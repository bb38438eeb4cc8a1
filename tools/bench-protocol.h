/* bench-protocol.h: what pubsub-bench says and hears over its WebSocket
 * connections, in the pubsubd contract or in NATS: subscribing, publishing
 * payloads that carry a marker, and checking every event that arrives
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <glib.h>

#include "bench-client.h"

G_BEGIN_DECLS

/* The payload marker: "~B:" pppp ":" tttttttt ":" seq16 ":" ns16 ":" */
#define BENCH_MARK        "~B:"
#define BENCH_MARK_LEN    51
/* The smallest --size: the marker in a JSON string token, quotes included. */
#define BENCH_MIN_PAYLOAD (BENCH_MARK_LEN + 2)

/* Names the topics PREFIX-0 .. PREFIX-(n_topics - 1). */
void         bench_protocol_init (const char *prefix,
                                  gint        n_topics);
const gchar *bench_topic_name    (gint        topic);

/* The upgrade of c is done: subscribe (nats: CONNECT, SUB, PING). */
void bench_protocol_open  (BenchConn    *c);

/* A complete pubsub message (a JSON text frame). */
void bench_pubsub_message (BenchConn    *c,
                           const guint8 *d,
                           gsize         n,
                           guint64       now);
/* nats: the payload of any data frame, a piece of the protocol stream. */
void bench_nats_feed      (BenchConn    *c,
                           const guint8 *d,
                           gsize         len,
                           guint64       now);

/* One publish from c, stamped ts, to the next topic in its round. */
void bench_publish_one    (BenchConn    *c,
                           guint64       ts);
/* A probe from c to topic: a publish whose marker has sequence number 0,
 * which subscribers note (probed) but do not count; round makes its id
 * unique. It counts in c's sent and unconfirmed like any publish. */
void bench_publish_probe  (BenchConn    *c,
                           gint          topic,
                           guint64       round);
/* Window mode, while publishing: publish until --window are unconfirmed. */
void bench_pub_fill       (BenchConn    *c,
                           guint64       now);
/* nats: a PING whose PONG confirms the PUBs sent since the last one. */
void bench_nats_ping      (BenchConn    *c);

G_END_DECLS
