/* bench-client.h: the connections of pubsub-bench and the one epoll loop that
 * drives them: connecting, the HTTP upgrade, RFC 6455 client framing, and
 * the state of the run that the other parts share
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <glib.h>

#include "bench-http.h"
#include "bench-stats.h"
#include "bench-util.h"

G_BEGIN_DECLS

typedef enum {
  BENCH_ROLE_SUB,    /* a fast subscriber: its events are measured */
  BENCH_ROLE_PUB,
  BENCH_ROLE_SLOW,   /* slow mode: the subscriber that stops reading */
} BenchRole;

typedef enum {
  BENCH_CONN_NEW,
  BENCH_CONN_CONNECTING,
  BENCH_CONN_UPGRADING,
  BENCH_CONN_OPEN,
  BENCH_CONN_CLOSED,
} BenchConnState;

#define BENCH_WS_TEXT   1
#define BENCH_WS_BINARY 2
#define BENCH_WS_CLOSE  8
#define BENCH_WS_PING   9
#define BENCH_WS_PONG   10

typedef struct {
  int           fd;
  gint          idx;           /* among the connections of its role */
  gint          topic;         /* subscribers: the topic it is on */
  gint          node;          /* subscribers: the --sub-url it is on (0 without) */
  guint8        role;          /* BenchRole */
  guint8        state;         /* BenchConnState */
  guint         ready : 1;     /* subscribed (publishers: open) */
  guint         dirty : 1;     /* on the dirty list: out has new frames */
  guint         paused : 1;    /* slow mode: not reading */
  guint         in_epoll : 1;
  guint         close_sent : 1;
  guint         got_close : 1;
  guint         slow_err : 1;  /* the server said SLOW_CONSUMER / Slow Consumer */
  guint         in_frag : 1;   /* pubsub: msg holds a fragmented message so far */
  guint         probed : 1;    /* subscribers: a probe (sequence number 0) arrived */
  gint          close_code;    /* from the server's close frame; 1006 = none seen */
  gint          lost_errno;    /* 0 = EOF, else the errno that ended it */
  guint32       ep_mask;
  BenchBuf      in;            /* unparsed bytes carried to the next read */
  BenchBuf      msg;           /* pubsub: fragmented message; nats: the protocol byte stream */
  BenchBuf      out;           /* frames not yet written */
  gsize         out_off;
  char          key[32];       /* Sec-WebSocket-Key */

  /* subscriber */
  guint64      *last;          /* owned, per publisher: highest sequence number seen */
  guint64       events, gaps, missing, dups, reorder, foreign, wrong_topic;
  guint64       last_rx, last_sent_ts, closed_at, hup_at;
  gsize         mark_off;      /* where the payload marker was in the previous event */

  /* publisher */
  guint64      *seq;           /* owned, per topic: last sequence number sent */
  guint64       sent, acked, errors, unconfirmed, since_ping, rr;
  BenchU32Queue pings;         /* nats: PUBs each outstanding PING confirms (0: setup) */
} BenchConn;

/* The state of the one run this process makes, shared by its parts. A global
 * rather than a context pointer passed around: the hot path reads it on every
 * frame and there is only ever one. */
typedef struct {
  BenchConn  *conns;          /* owned: subscribers, the slow one, publishers */
  gint        n_conns;
  BenchConn **subs;           /* owned array: the fast subscribers */
  gint        n_subs;
  BenchConn **pubs;           /* owned array */
  gint        n_pubs;
  BenchConn  *slow;           /* slow mode only */
  gint        n_nodes;        /* the subscribers' URLs (1 without --sub-url) */
  gdouble     sync_s;         /* --sub-url: until a probe had reached every subscriber */
  guint64     probe_rounds;

  gboolean    running;        /* publishing: publishers send */
  gboolean    shutting_down;  /* lost connections are expected now */
  guint64     t_start;        /* publishing began */
  guint64     t_stop;         /* publishing ended (or is to end) */
  guint64     warm_until;     /* --warmup: no latency samples sent before */
  guint64     t_last_event;   /* a fast subscriber's last event */
  guint64     t_last_ack;     /* a publisher's last confirmation */
  guint64     sum_last;       /* Σ over fast subscribers of last[] */
  guint64     n_kernel_ts;    /* reads with a kernel receive timestamp */
  guint64     n_clock_ts;     /* reads without one */
  BenchHist   hist;           /* latency */
  BenchHist   lag_hist;       /* --rate: actual minus scheduled send time */
} BenchRun;

extern BenchRun bench_run;

/* Makes n_subs subscribers (subscriber i on topic i mod --topics, connected
 * to sub_targets[i mod n_sub_targets]), the slow subscriber if with_slow (on
 * sub_targets[0]), and n_pubs publishers (on pub_target); raises
 * RLIMIT_NOFILE for them and creates the epoll instance. The targets must
 * outlive the run. */
void bench_client_init        (const BenchWsTarget *pub_target,
                               const BenchWsTarget *sub_targets,
                               gint                 n_sub_targets,
                               gint                 n_subs,
                               gint                 n_pubs,
                               gboolean             with_slow);
/* Connects, upgrades and subscribes every connection, --connect-concurrency
 * at a time; dies on any failure or after --setup-timeout. */
void bench_client_connect_all (void);
/* Sends every open connection a close frame and closes it. */
void bench_client_close_all   (void);

/* One epoll_wait () and the work of what it returned, then every connection
 * with new frames is flushed. Returns the number of events. */
gint bench_loop_once  (gint    timeout_ms);
/* Milliseconds until deadline, at most cap. */
gint bench_ms_until   (guint64 deadline,
                       gint    cap);

/* A timerfd in the loop that only wakes it up (--rate). */
void bench_loop_add_timer (void);
void bench_loop_arm_timer (guint64 at);

typedef void (*BenchDueFunc) (guint64 now);

/* While func is set, the loop calls it between events of a long batch once
 * the time in *due has come, so that a scheduled publish does not wait behind
 * a thousand reads. */
void bench_loop_set_due (BenchDueFunc   func,
                         const guint64 *due);

/* Appends a masked client frame to c's output; it goes out with the other
 * frames of this loop iteration in one send (). */
void bench_ws_send (BenchConn  *c,
                    gint        opcode,
                    const void *data,
                    gsize       len);

void bench_conn_flush      (BenchConn *c);
void bench_flush_dirty     (void);
void bench_conn_mark_ready (BenchConn *c);
void bench_conn_pause      (BenchConn *c);
void bench_conn_resume     (BenchConn *c);

const char *bench_conn_role_name (const BenchConn *c);

G_END_DECLS
