/* pubsub-bench — load generator for pubsubd and the servers it is compared with
 *
 * One single-threaded, level-triggered epoll loop drives every connection:
 * non-blocking sockets, its own HTTP upgrade and RFC 6455 client framing
 * (masked client frames, unmasked server frames, ping → pong, close echo),
 * one 256 KiB read per readiness event into a shared buffer, and all frames
 * queued for a connection during one loop iteration written with one send().
 * Server frames are classified by substring scanning; there is no JSON
 * library anywhere near the hot path.
 *
 * Every published payload embeds a marker with the publisher index, the topic
 * index, a per-(publisher, topic) sequence number and the CLOCK_MONOTONIC send
 * time (or, with --rate, the scheduled send time), so subscribers measure
 * latency and detect loss, gaps, duplicates and reordering on their own.
 *
 * Run `pubsub-bench --help` for the manual.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>

#define RBUF_MIN (256u * 1024u)        /* one read() takes up to this much */
#define MARK "~B:"                     /* payload marker, see put_body () */
#define MARK_LEN 51                    /* "~B:" pppp ":" tttttttt ":" seq16 ":" ns16 ":" */
#define MIN_PAYLOAD (MARK_LEN + 2)     /* the JSON string token, quotes included */
#define L(lit) (sizeof (lit) - 1)

/* ------------------------------------------------------------------ options */

static gchar *opt_mode = NULL;
static gchar *opt_protocol = NULL;
static gchar *opt_url = NULL;
static gchar *opt_http = NULL;
static gchar *opt_api_key = NULL;
static gchar *opt_prefix = NULL;
static gint opt_subscribers = -1;
static gint opt_publishers = 1;
static gint opt_topics = 1;
static gint opt_window = 32;
static gint opt_size = 100;
static gint opt_pid = 0;
static gint opt_concurrency = 128;
static gint opt_rcvbuf = 4096;
static gint opt_ping_every = 0;
static gint opt_spin_us = 500;
static gdouble opt_duration = 5.0;
static gdouble opt_rate = 0.0;
static gdouble opt_warmup = 0.0;
static gdouble opt_drain = 10.0;
static gdouble opt_hold = 2.0;
static gdouble opt_setup_timeout = 120.0;
static gboolean opt_json = FALSE;
static gboolean opt_verbose = FALSE;
static gboolean opt_help = FALSE;
static gboolean opt_no_create = FALSE;
static gboolean opt_no_kernel_ts = FALSE;

static const GOptionEntry option_entries[] = {
  { "mode", 'm', 0, G_OPTION_ARG_STRING, &opt_mode,
    "fanout (default), idle or slow; see MODES", "MODE" },
  { "protocol", 0, 0, G_OPTION_ARG_STRING, &opt_protocol,
    "pubsub (default: the pubsubd contract) or nats (NATS over WebSocket)", "PROTO" },
  { "url", 'u', 0, G_OPTION_ARG_STRING, &opt_url,
    "WebSocket endpoint (default ws://127.0.0.1:8080/ws; for nats ws://HOST:PORT)", "URL" },
  { "http", 0, 0, G_OPTION_ARG_STRING, &opt_http,
    "REST base for POST /topics (default http://HOST:PORT of --url)", "URL" },
  { "api-key", 'k', 0, G_OPTION_ARG_STRING, &opt_api_key,
    "send X-API-Key: KEY on REST calls and on the WebSocket upgrade", "KEY" },
  { "subscribers", 's', 0, G_OPTION_ARG_INT, &opt_subscribers,
    "subscriber connections (fanout: 100, idle: 1000, slow: 10 fast ones)", "N" },
  { "publishers", 'p', 0, G_OPTION_ARG_INT, &opt_publishers,
    "publisher connections (default 1)", "N" },
  { "topics", 't', 0, G_OPTION_ARG_INT, &opt_topics,
    "topics; subscriber i is on topic i mod N, publishers round-robin (default 1)", "N" },
  { "topic-prefix", 0, 0, G_OPTION_ARG_STRING, &opt_prefix,
    "topic names are PREFIX-0, PREFIX-1, ... (default bench)", "PREFIX" },
  { "no-create", 0, 0, G_OPTION_ARG_NONE, &opt_no_create,
    "do not POST /topics (the topics exist already)", NULL },
  { "duration", 'd', 0, G_OPTION_ARG_DOUBLE, &opt_duration,
    "seconds of publishing (default 5)", "SEC" },
  { "window", 'w', 0, G_OPTION_ARG_INT, &opt_window,
    "unacknowledged publishes allowed per publisher (default 32)", "N" },
  { "rate", 'r', 0, G_OPTION_ARG_DOUBLE, &opt_rate,
    "fixed rate: N publishes/s in total instead of a window (default 0 = window)", "N" },
  { "size", 'b', 0, G_OPTION_ARG_INT, &opt_size,
    "payload size in bytes: a JSON string, quotes included (default 100, minimum 53)", "BYTES" },
  { "spin-us", 0, 0, G_OPTION_ARG_INT, &opt_spin_us,
    "--rate: busy-poll during the last US microseconds before each scheduled publish, "
    "so the tool's own wake-up delay stays out of the latency (default 500, at most half "
    "the interval between publishes; 0 = just sleep)", "US" },
  { "warmup", 0, 0, G_OPTION_ARG_DOUBLE, &opt_warmup,
    "leave messages sent in the first SEC seconds out of the latency histogram", "SEC" },
  { "drain-timeout", 0, 0, G_OPTION_ARG_DOUBLE, &opt_drain,
    "after publishing, wait at most SEC seconds for acks and events (default 10)", "SEC" },
  { "pid", 0, 0, G_OPTION_ARG_INT, &opt_pid,
    "server process: report its CPU use and memory (required for idle)", "PID" },
  { "hold", 0, 0, G_OPTION_ARG_DOUBLE, &opt_hold,
    "idle: seconds to hold the connections before reading RSS again (default 2)", "SEC" },
  { "connect-concurrency", 0, 0, G_OPTION_ARG_INT, &opt_concurrency,
    "connections being set up at the same time (default 128)", "N" },
  { "setup-timeout", 0, 0, G_OPTION_ARG_DOUBLE, &opt_setup_timeout,
    "give up when connecting and subscribing takes longer (default 120)", "SEC" },
  { "slow-rcvbuf", 0, 0, G_OPTION_ARG_INT, &opt_rcvbuf,
    "slow: SO_RCVBUF of the subscriber that stops reading (default 4096)", "BYTES" },
  { "nats-ping-every", 0, 0, G_OPTION_ARG_INT, &opt_ping_every,
    "nats: send PING after every N PUBs (default window/4)", "N" },
  { "no-kernel-timestamps", 0, 0, G_OPTION_ARG_NONE, &opt_no_kernel_ts,
    "take arrival times from the clock after recv() instead of SO_TIMESTAMPNS", NULL },
  { "json", 'j', 0, G_OPTION_ARG_NONE, &opt_json,
    "print the result as one JSON object on stdout", NULL },
  { "verbose", 'v', 0, G_OPTION_ARG_NONE, &opt_verbose,
    "progress messages on stderr", NULL },
  { "help", 'h', 0, G_OPTION_ARG_NONE, &opt_help, "show this manual", NULL },
  G_OPTION_ENTRY_NULL
};

/* ------------------------------------------------------------------ small helpers */

typedef struct
{
  char *p;
  size_t len, cap;
} Buf;

static void
buf_reserve (Buf *b, size_t extra)
{
  if (b->len + extra <= b->cap)
    return;
  size_t cap = b->cap ? b->cap : 512;
  while (cap < b->len + extra)
    cap *= 2;
  b->p = g_realloc (b->p, cap);
  b->cap = cap;
}

static void
buf_append (Buf *b, const void *d, size_t n)
{
  buf_reserve (b, n);
  memcpy (b->p + b->len, d, n);
  b->len += n;
}

static G_GNUC_PRINTF (1, 2) G_GNUC_NORETURN void
die (const char *fmt, ...)
{
  va_list ap;
  fputs ("pubsub-bench: ", stderr);
  va_start (ap, fmt);
  vfprintf (stderr, fmt, ap);
  va_end (ap);
  fputc ('\n', stderr);
  exit (2);
}

static G_GNUC_PRINTF (1, 2) void
note (const char *fmt, ...)
{
  va_list ap;
  if (!opt_verbose)
    return;
  fputs ("pubsub-bench: ", stderr);
  va_start (ap, fmt);
  vfprintf (stderr, fmt, ap);
  va_end (ap);
  fputc ('\n', stderr);
}

static inline uint64_t
now_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static const char hexdigits[] = "0123456789abcdef";
static uint8_t hexval[256];

static void
init_hexval (void)
{
  memset (hexval, 0x80, sizeof hexval);
  for (int i = 0; i < 10; i++)
    hexval['0' + i] = (uint8_t) i;
  for (int i = 0; i < 6; i++)
    hexval['a' + i] = hexval['A' + i] = (uint8_t) (10 + i);
}

static inline char *
put_hex (char *o, uint64_t v, int digits)
{
  for (int i = digits - 1; i >= 0; i--, v >>= 4)
    o[i] = hexdigits[v & 15];
  return o + digits;
}

static inline char *
put_mem (char *o, const void *s, size_t n)
{
  memcpy (o, s, n);
  return o + n;
}

/* Fixed-width hex; *bad gets 0x80 when a character is not a hex digit. */
static inline uint64_t
get_hex (const uint8_t *s, int digits, uint8_t *bad)
{
  uint64_t v = 0;
  uint8_t acc = 0;
  for (int i = 0; i < digits; i++)
    {
      uint8_t x = hexval[s[i]];
      acc |= x;
      v = v << 4 | (x & 15);
    }
  *bad |= acc & 0x80;
  return v;
}

/* Eight lowercase hex digits (as put_hex writes them) to their value, SWAR:
 * byte i of x is digit i, the most significant first. */
static inline uint32_t
hex8_swar (const uint8_t *s)
{
  uint64_t x;
  memcpy (&x, s, 8);
  uint64_t v = (x & 0x0f0f0f0f0f0f0f0full) + ((x >> 6) & 0x0101010101010101ull) * 9;
  v = ((v << 4) | (v >> 8)) & 0x00ff00ff00ff00ffull;
  v = ((v << 8) | (v >> 16)) & 0x0000ffff0000ffffull;
  v = ((v << 16) | (v >> 32)) & 0x00000000ffffffffull;
  return (uint32_t) v;
}

/* ------------------------------------------------------------------ latency histogram */

/* Log-linear (HDR style): values below 256 ns exactly, then 128 sub-buckets per
 * power of two, i.e. better than 0.8 % relative precision over the whole
 * 64-bit range (1 µs .. 60 s and beyond).  Values are nanoseconds. */
#define H_SUB 128u
#define H_SLOTS (2u * H_SUB + 57u * H_SUB)

typedef struct
{
  uint64_t c[H_SLOTS];
  uint64_t n, max, min;
  double sum;
} Hist;

static inline unsigned
hist_index (uint64_t v)
{
  if (v < 2 * H_SUB)
    return (unsigned) v;
  unsigned msb = 63u - (unsigned) __builtin_clzll (v);
  unsigned shift = msb - 7u;
  return 2 * H_SUB + (shift - 1u) * H_SUB + (unsigned) ((v >> shift) - H_SUB);
}

static uint64_t
hist_value (unsigned idx)
{
  if (idx < 2 * H_SUB)
    return idx;
  unsigned j = idx - 2 * H_SUB, shift = j / H_SUB + 1u;
  uint64_t sub = j % H_SUB + H_SUB;
  uint64_t lo = sub << shift, hi = ((sub + 1) << shift) - 1;
  return lo + (hi - lo) / 2;
}

static inline void
hist_add (Hist *h, uint64_t v)
{
  h->c[hist_index (v)]++;
  h->n++;
  h->sum += (double) v;
  if (v > h->max)
    h->max = v;
  if (v < h->min || h->n == 1)
    h->min = v;
}

static uint64_t
hist_quantile (const Hist *h, double q)
{
  if (!h->n)
    return 0;
  uint64_t want = (uint64_t) ceil (q * (double) h->n), seen = 0;
  if (want < 1)
    want = 1;
  for (unsigned i = 0; i < H_SLOTS; i++)
    {
      seen += h->c[i];
      if (seen >= want)
        {
          uint64_t v = hist_value (i);
          return v > h->max ? h->max : v < h->min ? h->min : v;
        }
    }
  return h->max;
}

/* ------------------------------------------------------------------ connections */

enum { ROLE_SUB, ROLE_PUB, ROLE_SLOW };
enum { ST_NEW, ST_CONNECTING, ST_UPGRADING, ST_OPEN, ST_CLOSED };
enum { MODE_FANOUT, MODE_IDLE, MODE_SLOW };

typedef struct
{
  uint32_t *v;
  unsigned head, n, cap;
} U32Queue;

typedef struct
{
  int fd, idx, topic;
  uint8_t role, state;
  bool ready, dirty, paused, in_epoll, close_sent, got_close, slow_err, in_frag;
  uint8_t frag_op;
  int close_code;      /* from the server's close frame; 1006 = none seen */
  int lost_errno;      /* 0 = EOF, else the errno that ended it */
  uint32_t ep_mask;
  Buf in;              /* unparsed bytes carried to the next read */
  Buf msg;             /* pubsub: fragmented message; nats: the protocol byte stream */
  Buf out;             /* frames not yet written */
  size_t out_off;
  char key[32];        /* Sec-WebSocket-Key */
  /* subscriber */
  uint64_t *last;      /* per publisher: highest sequence number seen */
  uint64_t events, gaps, missing, dups, reorder, foreign, wrong_topic;
  uint64_t last_rx, last_sent_ts, closed_at, hup_at;
  size_t mark_off;     /* where the payload marker was in the previous event */
  /* publisher */
  uint64_t *seq;       /* per topic: last sequence number sent */
  uint64_t sent, acked, errors, unconfirmed, since_ping, rr;
  U32Queue pings;      /* nats: PUBs each outstanding PING confirms (0: setup) */
} Conn;

static int mode, ep, timer_fd = -1;
static bool nats;
static Conn *conns;
static int nconns, nsubs, npubs;
static Conn **subs, **pubs, *slow;
static Conn **dirty;
static int ndirty;
static uint8_t *rbuf;
static size_t rbuf_cap;
static Buf scratch;
static char **topic_names;
static size_t *topic_lens;
static char *ws_host, *ws_path;
static char *upgrade_req_head, *upgrade_req_tail;
static struct sockaddr_storage ws_addr;
static socklen_t ws_addrlen;
static int payload_len;   /* JSON string token length, quotes included */
static int ping_every;
static bool running, setup_done, shutting_down;
static volatile sig_atomic_t interrupted;
static int next_to_start, in_flight, n_ready;
static uint64_t t_start, t_stop, t_last_event, t_last_ack, warm_until;
static uint64_t sum_last;      /* Σ over fast subscribers and publishers of last[] */
static uint64_t pub_errors_printed;
static uint64_t mask_state = 0x9e3779b97f4a7c15ull;
static Hist hist;
static Hist lag_hist;          /* --rate: actual minus scheduled send time */
static int timer_tag;          /* its address marks the timerfd in epoll */
static int64_t real_minus_mono; /* CLOCK_REALTIME - CLOCK_MONOTONIC, ns */
static uint64_t next_send_at = UINT64_MAX; /* --rate: the next scheduled publish */
static uint64_t spin_ns;        /* --rate: wall time of busy polls that found nothing */
static uint64_t n_kernel_ts, n_clock_ts;

static inline uint32_t
next_mask (void)
{
  mask_state ^= mask_state << 13;
  mask_state ^= mask_state >> 7;
  mask_state ^= mask_state << 17;
  return (uint32_t) mask_state | 0x01010101u;
}

static void
u32q_push (U32Queue *q, uint32_t v)
{
  if (q->n == q->cap)
    {
      unsigned cap = q->cap ? q->cap * 2 : 16;
      uint32_t *nv = g_new (uint32_t, cap);
      for (unsigned i = 0; i < q->n; i++)
        nv[i] = q->v[(q->head + i) % q->cap];
      g_free (q->v);
      q->v = nv, q->cap = cap, q->head = 0;
    }
  q->v[(q->head + q->n++) % q->cap] = v;
}

static bool
u32q_pop (U32Queue *q, uint32_t *v)
{
  if (!q->n)
    return false;
  *v = q->v[q->head];
  q->head = (q->head + 1) % q->cap;
  q->n--;
  return true;
}

static void
set_mask (Conn *c, uint32_t mask)
{
  if (c->state == ST_CLOSED)
    return;
  if (!c->in_epoll)
    {
      struct epoll_event e = { .events = mask, .data.ptr = c };
      if (epoll_ctl (ep, EPOLL_CTL_ADD, c->fd, &e) < 0)
        die ("epoll_ctl: %s", g_strerror (errno));
      c->in_epoll = true;
      c->ep_mask = mask;
      return;
    }
  if (c->ep_mask == mask)
    return;
  struct epoll_event e = { .events = mask, .data.ptr = c };
  if (epoll_ctl (ep, EPOLL_CTL_MOD, c->fd, &e) < 0)
    die ("epoll_ctl: %s", g_strerror (errno));
  c->ep_mask = mask;
}

static void
mark_dirty (Conn *c)
{
  if (!c->dirty)
    {
      c->dirty = true;
      dirty[ndirty++] = c;
    }
}

static void
ws_mask (uint8_t *p, size_t len)
{
  uint8_t k[4];
  memcpy (k, p - 4, 4);
  uint64_t k8;
  uint8_t kk[8] = { k[0], k[1], k[2], k[3], k[0], k[1], k[2], k[3] };
  memcpy (&k8, kk, 8);
  size_t i = 0;
  for (; i + 8 <= len; i += 8)
    {
      uint64_t w;
      memcpy (&w, p + i, 8);
      w ^= k8;
      memcpy (p + i, &w, 8);
    }
  for (; i < len; i++)
    p[i] ^= k[i & 3];
}

/* Reserve a masked client frame of len payload bytes in c->out; the caller
 * writes the payload at the returned pointer, then calls ws_mask() on it. */
static uint8_t *
ws_frame (Conn *c, int op, size_t len)
{
  buf_reserve (&c->out, len + 14);
  uint8_t *h = (uint8_t *) c->out.p + c->out.len;
  size_t hl;
  h[0] = (uint8_t) (0x80 | op);
  if (len < 126)
    h[1] = (uint8_t) (0x80 | len), hl = 2;
  else if (len < 65536)
    h[1] = 0x80 | 126, h[2] = (uint8_t) (len >> 8), h[3] = (uint8_t) len, hl = 4;
  else
    {
      h[1] = 0x80 | 127;
      for (int i = 0; i < 8; i++)
        h[2 + i] = (uint8_t) ((uint64_t) len >> (56 - 8 * i));
      hl = 10;
    }
  uint32_t m = next_mask ();
  memcpy (h + hl, &m, 4);
  hl += 4;
  c->out.len += hl + len;
  mark_dirty (c);
  return h + hl;
}

static void
ws_send (Conn *c, int op, const void *data, size_t len)
{
  uint8_t *p = ws_frame (c, op, len);
  memcpy (p, data, len);
  ws_mask (p, len);
}

static void conn_lost (Conn *c, int err, uint64_t now);

static void
conn_flush (Conn *c)
{
  if (c->state == ST_CLOSED || c->state == ST_CONNECTING || c->state == ST_NEW)
    return;
  while (c->out_off < c->out.len)
    {
      ssize_t w = send (c->fd, c->out.p + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL);
      if (w < 0)
        {
          if (errno == EINTR)
            continue;
          if (errno == EAGAIN)
            break;
          conn_lost (c, errno, now_ns ());
          return;
        }
      c->out_off += (size_t) w;
    }
  if (c->out_off == c->out.len)
    c->out.len = c->out_off = 0;
  if (c->paused)
    return;
  set_mask (c, EPOLLIN | (c->out.len ? EPOLLOUT : 0));
}

static void
flush_dirty (void)
{
  for (int i = 0; i < ndirty; i++)
    {
      dirty[i]->dirty = false;
      conn_flush (dirty[i]);
    }
  ndirty = 0;
}

/* ------------------------------------------------------------------ setup and teardown of connections */

static void
mark_ready (Conn *c)
{
  if (c->ready)
    return;
  c->ready = true;
  n_ready++;
  in_flight--;
}

static const char *
role_name (const Conn *c)
{
  return c->role == ROLE_PUB ? "publisher" : c->role == ROLE_SLOW ? "slow subscriber" : "subscriber";
}

static void
conn_lost (Conn *c, int err, uint64_t now)
{
  if (c->state == ST_CLOSED)
    return;
  bool was_setup = !c->ready;
  close (c->fd);
  c->state = ST_CLOSED;
  c->in_epoll = false;
  c->lost_errno = err;
  c->closed_at = now;
  if (shutting_down || c->role == ROLE_SLOW)
    return;
  if (was_setup)
    die ("%s %d was closed by the server during setup (%s, close code %d)", role_name (c), c->idx,
         err ? g_strerror (err) : "end of stream", c->close_code);
  if (c->role == ROLE_PUB)
    fprintf (stderr, "pubsub-bench: publisher %d lost its connection (%s, close code %d)\n", c->idx,
             err ? g_strerror (err) : "end of stream", c->close_code);
  else if (opt_verbose)
    fprintf (stderr, "pubsub-bench: subscriber %d lost its connection (%s, close code %d)\n",
             c->idx, err ? g_strerror (err) : "end of stream", c->close_code);
}

static void
conn_start (Conn *c)
{
  int fd = socket (ws_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    {
      if (errno == EMFILE || errno == ENFILE)
        {
          struct rlimit rl;
          getrlimit (RLIMIT_NOFILE, &rl);
          die ("out of file descriptors at connection %d of %d (RLIMIT_NOFILE soft %llu, hard %llu): "
               "raise the hard limit (ulimit -Hn) or use fewer connections",
               next_to_start, nconns, (unsigned long long) rl.rlim_cur,
               (unsigned long long) rl.rlim_max);
        }
      die ("socket: %s", g_strerror (errno));
    }
  int one = 1;
  setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (c->role == ROLE_SLOW)
    setsockopt (fd, SOL_SOCKET, SO_RCVBUF, &opt_rcvbuf, sizeof opt_rcvbuf);
  if (c->role == ROLE_SUB && !opt_no_kernel_ts)
    setsockopt (fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
  c->fd = fd;
  c->close_code = 1006;
  if (connect (fd, (struct sockaddr *) &ws_addr, ws_addrlen) < 0 && errno != EINPROGRESS)
    {
      if (errno == EADDRNOTAVAIL)
        die ("connect: no local port left at connection %d (see net.ipv4.ip_local_port_range)",
             next_to_start);
      die ("connect to %s: %s", opt_url, g_strerror (errno));
    }
  c->state = ST_CONNECTING;
  set_mask (c, EPOLLOUT);
}

static void
pump_connects (void)
{
  while (next_to_start < nconns && in_flight < opt_concurrency)
    {
      in_flight++;
      conn_start (&conns[next_to_start++]);
    }
}

static void
conn_connected (Conn *c)
{
  int err = 0;
  socklen_t el = sizeof err;
  getsockopt (c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
  if (err)
    die ("connect to %s (connection %d): %s", opt_url, (int) (c - conns), g_strerror (err));
  c->state = ST_UPGRADING;
  /* 16 random bytes, base64 */
  guint8 raw[16];
  for (int i = 0; i < 16; i += 4)
    {
      guint32 r = g_random_int ();
      memcpy (raw + i, &r, 4);
    }
  gchar *k = g_base64_encode (raw, sizeof raw);
  g_strlcpy (c->key, k, sizeof c->key);
  g_free (k);
  buf_append (&c->out, upgrade_req_head, strlen (upgrade_req_head));
  buf_append (&c->out, c->key, strlen (c->key));
  buf_append (&c->out, upgrade_req_tail, strlen (upgrade_req_tail));
  conn_flush (c);
}

static char *
nats_sub_frame (Conn *c, size_t *len)
{
  static char b[512];
  int n = snprintf (b, sizeof b,
                    "CONNECT {\"verbose\":false,\"pedantic\":false,\"protocol\":1,"
                    "\"lang\":\"c\",\"name\":\"pubsub-bench\"}\r\n");
  if (c->role != ROLE_PUB)
    n += snprintf (b + n, sizeof b - (size_t) n, "SUB %s 1\r\n", topic_names[c->topic]);
  n += snprintf (b + n, sizeof b - (size_t) n, "PING\r\n");
  *len = (size_t) n;
  return b;
}

static void
conn_open (Conn *c)
{
  c->state = ST_OPEN;
  if (nats)
    {
      size_t n;
      char *f = nats_sub_frame (c, &n);
      ws_send (c, 2, f, n);
      u32q_push (&c->pings, 0);
      return;
    }
  if (c->role == ROLE_PUB)
    {
      mark_ready (c);
      return;
    }
  char b[512];
  int n = snprintf (b, sizeof b,
                    "{\"type\":\"subscribe\",\"topic\":\"%s\",\"client_id\":\"bench-%c%d\","
                    "\"last_n\":0,\"request_id\":\"s%d\"}",
                    topic_names[c->topic], c->role == ROLE_SLOW ? 'w' : 's', c->idx, c->idx);
  ws_send (c, 1, b, (size_t) n);
}

/* The server's answer to the upgrade; returns the header length, or 0 while
 * incomplete.  Anything but a correct 101 is fatal. */
static size_t
handle_upgrade (Conn *c, uint8_t *p, size_t n)
{
  uint8_t *end = memmem (p, n, "\r\n\r\n", 4);
  if (!end)
    {
      if (n > 65536)
        die ("upgrade response of connection %d has no end", (int) (c - conns));
      return 0;
    }
  size_t hl = (size_t) (end - p) + 4;
  char *head = g_strndup ((const char *) p, hl);
  char *eol = strstr (head, "\r\n");
  *eol = 0;
  if (strncmp (head, "HTTP/1.1 101", 12) != 0 && strncmp (head, "HTTP/1.0 101", 12) != 0)
    {
      const char *body = (const char *) end + 4;
      size_t bl = n - hl;
      die ("the server refused the WebSocket upgrade of connection %d (%d open so far): %s%s%.*s",
           (int) (c - conns), n_ready, head, bl ? " — " : "", (int) MIN (bl, 300), body);
    }
  *eol = '\r';
  /* Sec-WebSocket-Accept = base64 (SHA-1 (key + GUID)) */
  char *acc = strcasestr (head, "\r\nSec-WebSocket-Accept:");
  if (!acc)
    die ("upgrade response of connection %d lacks Sec-WebSocket-Accept", (int) (c - conns));
  acc += L ("\r\nSec-WebSocket-Accept:");
  while (*acc == ' ' || *acc == '\t')
    acc++;
  GChecksum *sum = g_checksum_new (G_CHECKSUM_SHA1);
  g_checksum_update (sum, (const guchar *) c->key, (gssize) strlen (c->key));
  g_checksum_update (sum, (const guchar *) "258EAFA5-E914-47DA-95CA-C5AB0DC85B11", 36);
  guint8 dig[20];
  gsize dl = sizeof dig;
  g_checksum_get_digest (sum, dig, &dl);
  g_checksum_free (sum);
  gchar *want = g_base64_encode (dig, dl);
  if (strncmp (acc, want, strlen (want)) != 0)
    die ("connection %d: wrong Sec-WebSocket-Accept", (int) (c - conns));
  g_free (want);
  g_free (head);
  conn_open (c);
  return hl;
}

/* ------------------------------------------------------------------ publishing */

static inline char *
put_body (char *o, int pub, int topic, uint64_t seq, uint64_t ts)
{
  char *s = o;
  o = put_mem (o, MARK, 3);
  o = put_hex (o, (uint64_t) pub, 4);
  *o++ = ':';
  o = put_hex (o, (uint64_t) topic, 8);
  *o++ = ':';
  o = put_hex (o, seq, 16);
  *o++ = ':';
  o = put_hex (o, ts, 16);
  *o++ = ':';
  size_t pad = (size_t) payload_len - 2 - (size_t) (o - s);
  memset (o, 'x', pad);
  return o + pad;
}

static inline char *
put_uuid (char *o, int pub, int topic, uint64_t seq)
{
  o = put_hex (o, (uint64_t) pub, 8);
  *o++ = '-';
  o = put_hex (o, (uint64_t) topic & 0xffff, 4);
  *o++ = '-';
  *o++ = '4';
  o = put_hex (o, ((uint64_t) topic >> 16) & 0xfff, 3);
  *o++ = '-';
  *o++ = '8';
  o = put_hex (o, (seq >> 48) & 0xfff, 3);
  *o++ = '-';
  return put_hex (o, seq & 0xffffffffffffull, 12);
}

static void
nats_ping (Conn *c)
{
  ws_send (c, 2, "PING\r\n", 6);
  u32q_push (&c->pings, (uint32_t) c->since_ping);
  c->since_ping = 0;
}

static void
publish_one (Conn *c, uint64_t ts)
{
  int t = (int) ((c->rr++ + (uint64_t) c->idx) % (uint64_t) opt_topics);
  uint64_t seq = ++c->seq[t];
  const char *name = topic_names[t];
  size_t nl = topic_lens[t];
  scratch.len = 0;
  buf_reserve (&scratch, (size_t) payload_len + nl + 256);
  char *s = scratch.p, *o = s;
  if (nats)
    {
      /* PUB subj n\r\n{"id":"UUID","payload":"..."}\r\n */
      size_t body = L ("{\"id\":\"") + 36 + L ("\",\"payload\":") + (size_t) payload_len + 1;
      o += sprintf (o, "PUB %s %zu\r\n", name, body);
      o = put_mem (o, "{\"id\":\"", L ("{\"id\":\""));
      o = put_uuid (o, c->idx, t, seq);
      o = put_mem (o, "\",\"payload\":\"", L ("\",\"payload\":\""));
      o = put_body (o, c->idx, t, seq, ts);
      o = put_mem (o, "\"}\r\n", 4);
    }
  else
    {
      o = put_mem (o, "{\"type\":\"publish\",\"topic\":\"", L ("{\"type\":\"publish\",\"topic\":\""));
      o = put_mem (o, name, nl);
      o = put_mem (o, "\",\"message\":{\"id\":\"", L ("\",\"message\":{\"id\":\""));
      o = put_uuid (o, c->idx, t, seq);
      o = put_mem (o, "\",\"payload\":\"", L ("\",\"payload\":\""));
      o = put_body (o, c->idx, t, seq, ts);
      o = put_mem (o, "\"},\"request_id\":\"p", L ("\"},\"request_id\":\"p"));
      o = put_hex (o, c->sent, 12);
      o = put_mem (o, "\"}", 2);
    }
  ws_send (c, nats ? 2 : 1, s, (size_t) (o - s));
  c->sent++;
  c->unconfirmed++;
  if (nats && ++c->since_ping >= (uint64_t) ping_every)
    nats_ping (c);
}

static void
pub_fill (Conn *c, uint64_t now)
{
  if (!running || c->state != ST_OPEN || opt_rate > 0)
    return;
  while (c->unconfirmed < (uint64_t) opt_window)
    publish_one (c, now);
}

static void
pub_confirmed (Conn *c, uint64_t n, bool error, uint64_t now)
{
  if (c->unconfirmed < n)
    n = c->unconfirmed;
  c->unconfirmed -= n;
  if (error)
    c->errors += n;
  else
    c->acked += n;
  t_last_ack = now;
}

/* ------------------------------------------------------------------ events */

static inline void
sub_event (Conn *c, const uint8_t *d, size_t len, uint64_t now)
{
  /* Every event of a topic has the same layout up to the payload, so the
   * marker is almost always where it was last time: look there first. */
  const uint8_t *m = d + c->mark_off;
  if (G_UNLIKELY (c->mark_off + MARK_LEN > len || m[0] != '~' || m[1] != 'B' || m[2] != ':'))
    {
      m = memmem (d, len, MARK, 3);
      if (G_UNLIKELY (!m || (size_t) (d + len - m) < MARK_LEN))
        {
          c->foreign++;
          return;
        }
      c->mark_off = (size_t) (m - d);
    }
  if (G_UNLIKELY (m[7] != ':' || m[16] != ':' || m[33] != ':' || m[50] != ':'))
    {
      c->foreign++;
      return;
    }
  uint8_t bad = 0;
  uint64_t pub = get_hex (m + 3, 4, &bad);
  uint64_t topic = hex8_swar (m + 8);
  uint64_t seq = (uint64_t) hex8_swar (m + 17) << 32 | hex8_swar (m + 25);
  uint64_t ts = (uint64_t) hex8_swar (m + 34) << 32 | hex8_swar (m + 42);
  if (G_UNLIKELY (bad || pub >= (uint64_t) npubs))
    {
      c->foreign++;
      return;
    }
  if (G_UNLIKELY (topic != (uint64_t) c->topic))
    c->wrong_topic++;
  c->events++;
  c->last_rx = now;
  c->last_sent_ts = ts;
  uint64_t last = c->last[pub];
  if (G_LIKELY (seq == last + 1))
    {
      c->last[pub] = seq;
      if (c->role == ROLE_SUB)
        sum_last++;
    }
  else if (seq > last)
    {
      c->gaps++;
      c->missing += seq - last - 1;
      c->last[pub] = seq;
      if (c->role == ROLE_SUB)
        sum_last += seq - last;
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
  if (c->role == ROLE_SUB)
    {
      t_last_event = now;
      if (ts >= warm_until && now >= ts)
        hist_add (&hist, now - ts);
    }
}

static const uint8_t *
json_type (const uint8_t *d, size_t n)
{
  static const char pre[8] = { '{', '"', 't', 'y', 'p', 'e', '"', ':' };
  uint64_t a, b;
  memcpy (&b, pre, 8);
  if (n > 16 && (memcpy (&a, d, 8), a == b) && d[8] == '"')
    return d + 9;
  const uint8_t *e = d + n, *p = memmem (d, n, "\"type\"", 6);
  if (!p)
    return NULL;
  for (p += 6; p < e && (*p == ' ' || *p == ':' || *p == '\t' || *p == '\n' || *p == '\r'); p++)
    ;
  if (p + 6 >= e || *p != '"')
    return NULL;
  return p + 1;
}

static void
print_error_frame (Conn *c, const uint8_t *d, size_t n)
{
  fprintf (stderr, "pubsub-bench: %s %d got an error: %.*s\n", role_name (c), c->idx,
           (int) MIN (n, 400), (const char *) d);
}

static void
pubsub_message (Conn *c, const uint8_t *d, size_t n, uint64_t now)
{
  const uint8_t *t = json_type (d, n);
  if (G_UNLIKELY (!t))
    {
      c->foreign++;
      return;
    }
  if (G_LIKELY (t[0] == 'e' && t[1] == 'v'))            /* "event" */
    {
      if (c->role != ROLE_PUB)
        sub_event (c, d, n, now);
      return;
    }
  if (t[0] == 'a' && t[1] == 'c')                       /* "ack" */
    {
      if (c->role == ROLE_PUB)
        pub_confirmed (c, 1, false, now);
      else
        mark_ready (c);
      return;
    }
  if (t[0] == 'e' && t[1] == 'r')                       /* "error" */
    {
      if (memmem (d, n, "SLOW_CONSUMER", 13))
        {
          c->slow_err = true;
          if (c->role != ROLE_SLOW)
            print_error_frame (c, d, n);
          return;
        }
      if (c->role == ROLE_PUB)
        {
          pub_confirmed (c, 1, true, now);
          if (pub_errors_printed++ < 3)
            print_error_frame (c, d, n);
          return;
        }
      print_error_frame (c, d, n);
      if (!c->ready)
        die ("subscribe of %s %d failed", role_name (c), c->idx);
      return;
    }
  /* info (heartbeat, topic_deleted), pong: nothing to do */
}

static void
nats_pong (Conn *c, uint64_t now)
{
  uint32_t v;
  if (!u32q_pop (&c->pings, &v))
    return;
  if (!c->ready)
    mark_ready (c);
  if (v)
    pub_confirmed (c, v, false, now);
}

/* Parse NATS protocol lines; returns the bytes consumed. */
static size_t
nats_parse (Conn *c, const uint8_t *p, size_t n, uint64_t now)
{
  size_t off = 0;
  while (off < n)
    {
      const uint8_t *line = p + off;
      const uint8_t *nl = memmem (line, n - off, "\r\n", 2);
      if (!nl)
        break;
      size_t ll = (size_t) (nl - line);
      if (ll > 4 && memcmp (line, "MSG ", 4) == 0)
        {
          /* MSG <subject> <sid> [reply-to] <#bytes> */
          size_t j = ll, nb = 0;
          while (j > 0 && line[j - 1] != ' ')
            j--;
          for (size_t k = j; k < ll; k++)
            nb = nb * 10 + (size_t) (line[k] - '0');
          if (n - off < ll + 2 + nb + 2)
            break;
          if (c->role != ROLE_PUB)
            sub_event (c, nl + 2, nb, now);
          off += ll + 2 + nb + 2;
          continue;
        }
      if (ll == 4 && memcmp (line, "PING", 4) == 0)
        ws_send (c, 2, "PONG\r\n", 6);
      else if (ll == 4 && memcmp (line, "PONG", 4) == 0)
        nats_pong (c, now);
      else if (ll >= 4 && memcmp (line, "-ERR", 4) == 0)
        {
          if (memmem (line, ll, "Slow Consumer", 13))
            c->slow_err = true;
          if (c->role != ROLE_SLOW)
            fprintf (stderr, "pubsub-bench: %s %d: %.*s\n", role_name (c), c->idx, (int) ll,
                     (const char *) line);
        }
      /* INFO, +OK: ignore */
      off += ll + 2;
    }
  return off;
}

static void
nats_feed (Conn *c, const uint8_t *d, size_t len, uint64_t now)
{
  if (!c->msg.len)
    {
      size_t used = nats_parse (c, d, len, now);
      if (used < len)
        buf_append (&c->msg, d + used, len - used);
      return;
    }
  buf_append (&c->msg, d, len);
  size_t used = nats_parse (c, (const uint8_t *) c->msg.p, c->msg.len, now);
  memmove (c->msg.p, c->msg.p + used, c->msg.len - used);
  c->msg.len -= used;
}

static void
send_close (Conn *c, int code)
{
  if (c->close_sent || c->state != ST_OPEN)
    return;
  uint8_t b[2] = { (uint8_t) (code >> 8), (uint8_t) code };
  ws_send (c, 8, b, 2);
  c->close_sent = true;
}

static void
handle_frame (Conn *c, uint8_t b0, const uint8_t *d, size_t len, uint64_t now)
{
  int op = b0 & 0x0f;
  bool fin = b0 & 0x80;
  switch (op)
    {
    case 0:
    case 1:
    case 2:
      if (nats)
        {
          nats_feed (c, d, len, now);
          break;
        }
      if (op == 0)
        {
          if (!c->in_frag)
            break;
          buf_append (&c->msg, d, len);
          if (fin)
            {
              pubsub_message (c, (const uint8_t *) c->msg.p, c->msg.len, now);
              c->msg.len = 0;
              c->in_frag = false;
            }
        }
      else if (fin)
        pubsub_message (c, d, len, now);
      else
        {
          c->in_frag = true;
          c->frag_op = (uint8_t) op;
          c->msg.len = 0;
          buf_append (&c->msg, d, len);
        }
      break;
    case 8:
      c->got_close = true;
      c->close_code = len >= 2 ? (d[0] << 8 | d[1]) : 1005;
      send_close (c, c->close_code == 1005 ? 1000 : c->close_code);
      conn_flush (c);
      conn_lost (c, 0, now);
      break;
    case 9:
      ws_send (c, 10, d, len);
      break;
    default:
      break;
    }
}

/* Parse server frames; returns the bytes consumed. */
static size_t
ws_input (Conn *c, uint8_t *p, size_t n, uint64_t now)
{
  size_t off = 0;
  while (n - off >= 2 && c->state == ST_OPEN)
    {
      uint8_t b0 = p[off], b1 = p[off + 1];
      uint64_t len = b1 & 0x7f;
      size_t h = 2;
      if (len == 126)
        {
          if (n - off < 4)
            break;
          len = (uint64_t) p[off + 2] << 8 | p[off + 3];
          h = 4;
        }
      else if (len == 127)
        {
          if (n - off < 10)
            break;
          len = 0;
          for (int i = 0; i < 8; i++)
            len = len << 8 | p[off + 2 + (size_t) i];
          h = 10;
        }
      if (b1 & 0x80)
        h += 4;
      if (n - off < h || n - off - h < len)
        break;
      uint8_t *d = p + off + h;
      if (b1 & 0x80)
        ws_mask (d, (size_t) len);
      off += h + (size_t) len;
      handle_frame (c, b0, d, (size_t) len, now);
    }
  return off;
}

static void
conn_read (Conn *c)
{
  size_t carry = c->in.len;
  if (carry + RBUF_MIN / 4 > rbuf_cap)
    {
      rbuf_cap = carry * 2 + RBUF_MIN;
      rbuf = g_realloc (rbuf, rbuf_cap);
    }
  if (carry)
    memcpy (rbuf, c->in.p, carry);
  /* The arrival time of what this read returns: the kernel's receive time of
   * the newest segment in it (SO_TIMESTAMPNS), so that the time this loop
   * spends on other sockets first does not count as latency. */
  struct iovec iov = { rbuf + carry, rbuf_cap - carry };
  union { char buf[CMSG_SPACE (sizeof (struct timespec))]; struct cmsghdr align; } cm;
  struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
  if (c->role == ROLE_SUB && !opt_no_kernel_ts)
    mh.msg_control = cm.buf, mh.msg_controllen = sizeof cm.buf;
  ssize_t r = recvmsg (c->fd, &mh, 0);
  uint64_t now = now_ns ();
  if (r > 0 && mh.msg_controllen)
    {
      struct cmsghdr *cmsg = CMSG_FIRSTHDR (&mh);
      if (cmsg && cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_TIMESTAMPNS)
        {
          struct timespec kt;
          memcpy (&kt, CMSG_DATA (cmsg), sizeof kt);
          int64_t k = (int64_t) kt.tv_sec * 1000000000 + kt.tv_nsec - real_minus_mono;
          if (k > 0 && (uint64_t) k <= now)
            {
              now = (uint64_t) k;
              n_kernel_ts++;
            }
          else
            n_clock_ts++;
        }
      else
        n_clock_ts++;
    }
  if (r <= 0)
    {
      if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return;
      conn_lost (c, r < 0 ? errno : 0, now);
      return;
    }
  size_t total = carry + (size_t) r, used = 0;
  c->in.len = 0;
  if (c->state == ST_UPGRADING)
    {
      used = handle_upgrade (c, rbuf, total);
      if (!used)
        {
          buf_append (&c->in, rbuf, total);
          return;
        }
    }
  used += ws_input (c, rbuf + used, total - used, now);
  if (c->state == ST_CLOSED)
    return;
  if (used < total)
    buf_append (&c->in, rbuf + used, total - used);
  if (c->role == ROLE_PUB)
    pub_fill (c, now);
}

static void
conn_io (Conn *c, uint32_t ev)
{
  if (c->state == ST_CLOSED)
    return;
  if (c->state == ST_CONNECTING)
    {
      conn_connected (c);
      return;
    }
  if (c->paused)
    {
      /* a subscriber that does not read: only a hang-up or an error can show up */
      if (!c->hup_at)
        c->hup_at = now_ns ();
      epoll_ctl (ep, EPOLL_CTL_DEL, c->fd, NULL);
      c->in_epoll = false;
      return;
    }
  if (ev & EPOLLOUT)
    conn_flush (c);
  if (c->state != ST_CLOSED && (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)))
    conn_read (c);
}

/* ------------------------------------------------------------------ the loop */

static void
arm_timer (uint64_t at)
{
  struct itimerspec its = { 0 };
  its.it_value.tv_sec = (time_t) (at / 1000000000u);
  its.it_value.tv_nsec = (long) (at % 1000000000u);
  if (!at)
    its.it_value.tv_nsec = 0;
  timerfd_settime (timer_fd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* --rate: publisher i sends its k-th message at t_start + (k * P + i) / rate */
static inline uint64_t
sched_time (const Conn *c)
{
  return t_start + (uint64_t) (((double) c->sent * npubs + c->idx) * 1e9 / opt_rate);
}

/* --rate: send what is due; returns the next scheduled send time */
static uint64_t
rate_send_due (uint64_t now)
{
  uint64_t next = UINT64_MAX;
  for (int i = 0; i < npubs; i++)
    {
      Conn *c = pubs[i];
      if (c->state != ST_OPEN)
        continue;
      uint64_t s;
      while ((s = sched_time (c)) <= now && s < t_stop)
        {
          hist_add (&lag_hist, now - s);
          publish_one (c, s);
        }
      if (s < next)
        next = s;
    }
  next_send_at = next;
  return next;
}

static void
rate_tick (void)
{
  uint64_t v;
  if (read (timer_fd, &v, sizeof v) < 0 && errno != EAGAIN)
    die ("timerfd: %s", g_strerror (errno));
}

/* CLOCK_REALTIME - CLOCK_MONOTONIC, from the tightest of a few bracketed reads */
static int64_t
measure_real_minus_mono (int tries)
{
  int64_t best = 0;
  uint64_t best_gap = UINT64_MAX;
  for (int i = 0; i < tries; i++)
    {
      struct timespec rt;
      uint64_t a = now_ns ();
      clock_gettime (CLOCK_REALTIME, &rt);
      uint64_t b = now_ns ();
      if (b - a < best_gap)
        {
          best_gap = b - a;
          best = (int64_t) rt.tv_sec * 1000000000 + rt.tv_nsec - (int64_t) (a + (b - a) / 2);
        }
    }
  return best;
}

static int
loop_once (int timeout_ms)
{
  struct epoll_event evs[1024];
  int n = epoll_wait (ep, evs, G_N_ELEMENTS (evs), timeout_ms);
  if (n < 0)
    {
      if (errno == EINTR)
        return 0;
      die ("epoll_wait: %s", g_strerror (errno));
    }
  /* kernel timestamps are CLOCK_REALTIME: follow NTP slewing during the run */
  static uint64_t offset_at;
  uint64_t t = now_ns ();
  if (t - offset_at > 100000000u)
    {
      real_minus_mono = measure_real_minus_mono (5);
      offset_at = t;
    }
  for (int i = 0; i < n; i++)
    {
      if (evs[i].data.ptr == &timer_tag)
        rate_tick ();
      else
        conn_io (evs[i].data.ptr, evs[i].events);
      /* --rate: a batch of a thousand reads takes milliseconds; do not let a
       * scheduled publish wait behind it */
      if (running && opt_rate > 0 && (i & 31) == 31 && (t = now_ns ()) >= next_send_at)
        {
          rate_send_due (t);
          for (int p = 0; p < npubs; p++)
            if (pubs[p]->dirty)
              conn_flush (pubs[p]);
        }
    }
  flush_dirty ();
  return n;
}

static int
ms_until (uint64_t deadline, int cap)
{
  uint64_t now = now_ns ();
  if (now >= deadline)
    return 0;
  uint64_t ms = (deadline - now + 999999u) / 1000000u;
  return ms > (uint64_t) cap ? cap : (int) ms;
}

static void
on_signal (int sig)
{
  (void) sig;
  interrupted = 1;
}

/* ------------------------------------------------------------------ REST, URLs, /proc */

static void
parse_ws_url (void)
{
  const char *u = opt_url;
  if (g_str_has_prefix (u, "ws://"))
    u += 5;
  else if (g_str_has_prefix (u, "wss://"))
    die ("wss:// is not supported (the benchmark talks plain WebSocket over loopback)");
  else
    die ("--url must start with ws://");
  const char *slash = strchr (u, '/');
  char *hostport = slash ? g_strndup (u, (size_t) (slash - u)) : g_strdup (u);
  ws_path = g_strdup (slash ? slash : nats ? "/" : "/ws");
  char *colon = strrchr (hostport, ':');
  char *port;
  if (hostport[0] == '[')
    {
      char *rb = strchr (hostport, ']');
      if (!rb)
        die ("bad --url %s", opt_url);
      ws_host = g_strndup (hostport + 1, (size_t) (rb - hostport - 1));
      port = g_strdup (rb[1] == ':' ? rb + 2 : "80");
    }
  else if (colon)
    {
      ws_host = g_strndup (hostport, (size_t) (colon - hostport));
      port = g_strdup (colon + 1);
    }
  else
    {
      ws_host = g_strdup (hostport);
      port = g_strdup ("80");
    }
  struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
  int rc = getaddrinfo (ws_host, port, &hints, &res);
  if (rc != 0)
    die ("cannot resolve %s: %s", ws_host, gai_strerror (rc));
  memcpy (&ws_addr, res->ai_addr, res->ai_addrlen);
  ws_addrlen = res->ai_addrlen;
  freeaddrinfo (res);
  if (!opt_http)
    opt_http = g_strdup_printf ("http://%s", hostport);
  upgrade_req_head = g_strdup_printf ("GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                                      "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                                      "User-Agent: pubsub-bench\r\n%s%s%sSec-WebSocket-Key: ",
                                      ws_path, hostport, opt_api_key ? "X-API-Key: " : "",
                                      opt_api_key ? opt_api_key : "", opt_api_key ? "\r\n" : "");
  upgrade_req_tail = g_strdup ("\r\n\r\n");
  g_free (port);
  g_free (hostport);
}

/* POST /topics {"name": NAME}; 201 and 409 are both fine. */
static void
create_topic (const char *name)
{
  const char *u = opt_http;
  if (!g_str_has_prefix (u, "http://"))
    die ("--http must start with http://");
  u += 7;
  const char *slash = strchr (u, '/');
  char *hostport = slash ? g_strndup (u, (size_t) (slash - u)) : g_strdup (u);
  const char *base = slash ? slash : "";
  char *colon = strrchr (hostport, ':');
  char *host = colon ? g_strndup (hostport, (size_t) (colon - hostport)) : g_strdup (hostport);
  const char *port = colon ? colon + 1 : "80";
  if (host[0] == '[')
    {
      char *h2 = g_strndup (host + 1, strlen (host) - 2);
      g_free (host);
      host = h2;
    }
  struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
  int rc = getaddrinfo (host, port, &hints, &res);
  if (rc != 0)
    die ("cannot resolve %s: %s", host, gai_strerror (rc));
  int fd = socket (res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct timeval tv = { .tv_sec = 10 };
  setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (connect (fd, res->ai_addr, res->ai_addrlen) < 0)
    die ("POST %s/topics: connect: %s", opt_http, g_strerror (errno));
  freeaddrinfo (res);
  char *body = g_strdup_printf ("{\"name\":\"%s\"}", name);
  char *req = g_strdup_printf ("POST %s/topics HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                               "Content-Length: %zu\r\nConnection: close\r\n%s%s%s\r\n%s",
                               base, hostport, strlen (body), opt_api_key ? "X-API-Key: " : "",
                               opt_api_key ? opt_api_key : "", opt_api_key ? "\r\n" : "", body);
  size_t rl = strlen (req), off = 0;
  while (off < rl)
    {
      ssize_t w = send (fd, req + off, rl - off, MSG_NOSIGNAL);
      if (w < 0)
        die ("POST %s/topics: %s", opt_http, g_strerror (errno));
      off += (size_t) w;
    }
  char resp[4096];
  size_t got = 0;
  for (;;)
    {
      ssize_t r = recv (fd, resp + got, sizeof resp - 1 - got, 0);
      if (r < 0)
        die ("POST %s/topics: %s", opt_http, g_strerror (errno));
      if (r == 0)
        break;
      got += (size_t) r;
      resp[got] = 0;
      char *he = strstr (resp, "\r\n\r\n");
      if (he)
        {
          /* stop once the body announced by Content-Length is in */
          char *cl = strcasestr (resp, "\r\nContent-Length:");
          if (cl && cl < he && got >= (size_t) (he + 4 - resp) + strtoul (cl + 17, NULL, 10))
            break;
        }
      if (got >= sizeof resp - 1)
        break;
    }
  resp[got] = 0;
  close (fd);
  int status = 0;
  if (sscanf (resp, "HTTP/1.%*d %d", &status) != 1 || (status != 201 && status != 409))
    {
      char *he = strstr (resp, "\r\n\r\n");
      die ("POST %s/topics {\"name\":\"%s\"} answered %d%s%s", opt_http, name, status,
           he ? ": " : "", he ? he + 4 : "");
    }
  note ("topic %s: HTTP %d", name, status);
  g_free (req);
  g_free (body);
  g_free (host);
  g_free (hostport);
}

typedef struct
{
  bool ok;
  uint64_t cpu_ticks;
  long rss_kib, hwm_kib;
} ProcSample;

static ProcSample
proc_sample (int pid)
{
  ProcSample s = { 0 };
  if (pid <= 0)
    return s;
  char path[64], *txt = NULL;
  snprintf (path, sizeof path, "/proc/%d/stat", pid);
  if (g_file_get_contents (path, &txt, NULL, NULL))
    {
      char *rp = strrchr (txt, ')');
      unsigned long ut = 0, st = 0;
      /* after ") ": state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime(14) stime(15) */
      if (rp && sscanf (rp + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2)
        {
          s.ok = true;
          s.cpu_ticks = ut + st;
        }
      g_free (txt);
    }
  snprintf (path, sizeof path, "/proc/%d/status", pid);
  if (g_file_get_contents (path, &txt, NULL, NULL))
    {
      char *v = strstr (txt, "\nVmRSS:");
      if (v)
        s.rss_kib = strtol (v + 7, NULL, 10);
      v = strstr (txt, "\nVmHWM:");
      if (v)
        s.hwm_kib = strtol (v + 7, NULL, 10);
      g_free (txt);
    }
  return s;
}

static double
self_cpu_s (void)
{
  struct rusage ru;
  getrusage (RUSAGE_SELF, &ru);
  return (double) ru.ru_utime.tv_sec + (double) ru.ru_utime.tv_usec / 1e6 +
         (double) ru.ru_stime.tv_sec + (double) ru.ru_stime.tv_usec / 1e6;
}

static void
raise_nofile (int need)
{
  struct rlimit rl;
  if (getrlimit (RLIMIT_NOFILE, &rl) < 0)
    return;
  if (rl.rlim_cur < rl.rlim_max)
    {
      rl.rlim_cur = rl.rlim_max;
      setrlimit (RLIMIT_NOFILE, &rl);
      getrlimit (RLIMIT_NOFILE, &rl);
    }
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t) need + 32)
    die ("%d connections need about %d file descriptors, but RLIMIT_NOFILE is %llu "
         "(hard limit %llu): raise it (ulimit -Hn, or LimitNOFILE=) or use fewer connections",
         need, need + 32, (unsigned long long) rl.rlim_cur, (unsigned long long) rl.rlim_max);
}

/* ------------------------------------------------------------------ phases */

static void
setup_connections (void)
{
  uint64_t deadline = now_ns () + (uint64_t) (opt_setup_timeout * 1e9);
  uint64_t t0 = now_ns (), last_note = t0;
  pump_connects ();
  while (n_ready < nconns)
    {
      if (interrupted)
        die ("interrupted during setup");
      if (now_ns () > deadline)
        die ("setup timed out: %d of %d connections ready after %.0f s", n_ready, nconns,
             opt_setup_timeout);
      loop_once (100);
      pump_connects ();
      if (opt_verbose && now_ns () - last_note > 1000000000u)
        {
          last_note = now_ns ();
          note ("%d/%d connections ready", n_ready, nconns);
        }
    }
  setup_done = true;
  note ("%d connections ready in %.2f s", nconns, (double) (now_ns () - t0) / 1e9);
}

static uint64_t
expected_for (const Conn *s)
{
  uint64_t e = 0;
  for (int p = 0; p < npubs; p++)
    e += pubs[p]->seq[s->topic];
  return e;
}

static bool
drain_done (void)
{
  for (int p = 0; p < npubs; p++)
    if (pubs[p]->state == ST_OPEN && pubs[p]->unconfirmed)
      return false;
  /* every open fast subscriber has seen the last sequence number of every publisher */
  uint64_t want = 0;
  for (int i = 0; i < nsubs; i++)
    if (subs[i]->state == ST_OPEN)
      want += expected_for (subs[i]);
    else
      for (int p = 0; p < npubs; p++)
        want += subs[i]->last[p];
  return sum_last >= want;
}

static void
publish_phase (void)
{
  if (opt_rate > 0)
    {
      timer_fd = timerfd_create (CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
      if (timer_fd < 0)
        die ("timerfd_create: %s", g_strerror (errno));
      struct epoll_event e = { .events = EPOLLIN, .data.ptr = &timer_tag };
      epoll_ctl (ep, EPOLL_CTL_ADD, timer_fd, &e);
    }
  t_start = now_ns ();
  t_stop = t_start + (uint64_t) (opt_duration * 1e9);
  warm_until = t_start + (uint64_t) (opt_warmup * 1e9);
  running = true;
  if (opt_rate > 0)
    {
      uint64_t spin = (uint64_t) MAX (opt_spin_us, 0) * 1000u, now;
      if (spin > (uint64_t) (0.5e9 / opt_rate))
        spin = (uint64_t) (0.5e9 / opt_rate);
      while (!interrupted && (now = now_ns ()) < t_stop)
        {
          uint64_t next = rate_send_due (now);
          flush_dirty ();
          if (next > t_stop)
            next = t_stop;
          if (next > now + spin)
            {
              arm_timer (next - spin);
              loop_once (100);
            }
          else if (loop_once (0) == 0) /* busy-poll up to the scheduled time */
            spin_ns += now_ns () - now;
        }
    }
  else
    {
      for (int i = 0; i < npubs; i++)
        pub_fill (pubs[i], t_start);
      flush_dirty ();
      while (!interrupted && now_ns () < t_stop)
        loop_once (ms_until (t_stop, 100));
    }
  running = false;
  if (interrupted)
    t_stop = now_ns ();
  if (nats)
    for (int i = 0; i < npubs; i++)
      if (pubs[i]->state == ST_OPEN && pubs[i]->since_ping)
        nats_ping (pubs[i]);
  flush_dirty ();
  uint64_t deadline = now_ns () + (uint64_t) (opt_drain * 1e9), last_check = 0;
  while (now_ns () < deadline)
    {
      uint64_t now = now_ns ();
      if (now - last_check > 2000000u)
        {
          last_check = now;
          if (drain_done ())
            break;
        }
      loop_once (2);
    }
}

/* ------------------------------------------------------------------ results */

typedef struct
{
  uint64_t sent, acked, pub_errors, events, expected, lost, gaps, dups, reorder, foreign, wrong_topic;
  int disconnected, slow_cut_subs;
  double run_s, events_s, pubs_s, tool_cpu, server_cpu, spin;
  bool server_ok;
  ProcSample srv_before, srv_after;
} Result;

static void
json_latency (GString *j)
{
  g_string_append_printf (j,
                          ",\"latency_us\":{\"count\":%" PRIu64 ",\"p50\":%.1f,\"p90\":%.1f,"
                          "\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f,\"mean\":%.1f}",
                          hist.n, hist_quantile (&hist, 0.50) / 1e3, hist_quantile (&hist, 0.90) / 1e3,
                          hist_quantile (&hist, 0.99) / 1e3, hist_quantile (&hist, 0.999) / 1e3,
                          hist.max / 1e3, hist.n ? hist.sum / (double) hist.n / 1e3 : 0.0);
}

static void
json_common (GString *j)
{
  g_string_append_printf (j, "{\"mode\":\"%s\",\"protocol\":\"%s\",\"url\":\"%s\"", opt_mode,
                          nats ? "nats" : "pubsub", opt_url);
  g_string_append_printf (j, ",\"subscribers\":%d,\"publishers\":%d,\"topics\":%d,\"size\":%d", nsubs,
                          npubs, opt_topics, payload_len);
}

static void
collect (Result *r)
{
  for (int p = 0; p < npubs; p++)
    {
      r->sent += pubs[p]->sent;
      r->acked += pubs[p]->acked;
      r->pub_errors += pubs[p]->errors;
    }
  for (int i = 0; i < nsubs; i++)
    {
      Conn *s = subs[i];
      r->events += s->events;
      r->gaps += s->gaps;
      r->dups += s->dups;
      r->reorder += s->reorder;
      r->foreign += s->foreign;
      r->wrong_topic += s->wrong_topic;
      r->lost += s->missing;
      for (int p = 0; p < npubs; p++)
        {
          uint64_t e = pubs[p]->seq[s->topic];
          r->expected += e;
          if (e > s->last[p])
            r->lost += e - s->last[p];
        }
      if (s->state == ST_CLOSED)
        r->disconnected++;
      if (s->slow_err || s->close_code == 1008)
        r->slow_cut_subs++;
    }
  uint64_t end_ev = t_last_event > t_start ? t_last_event : t_stop;
  uint64_t end_ack = t_last_ack > t_start ? t_last_ack : t_stop;
  r->run_s = (double) (t_stop - t_start) / 1e9;
  r->events_s = end_ev > t_start ? (double) r->events / ((double) (end_ev - t_start) / 1e9) : 0;
  r->pubs_s = end_ack > t_start ? (double) r->acked / ((double) (end_ack - t_start) / 1e9) : 0;
}

static const char *
arrival_clock (void)
{
  if (!n_clock_ts && n_kernel_ts)
    return "kernel";
  if (!n_kernel_ts)
    return "clock";
  return n_kernel_ts > 100 * n_clock_ts ? "kernel" : "mixed";
}

static bool
integrity_ok (const Result *r)
{
  return !r->lost && !r->gaps && !r->dups && !r->reorder && !r->disconnected && !r->pub_errors &&
         !r->foreign && !r->wrong_topic && r->acked == r->sent;
}

static const char *
slow_end_text (const Conn *c, char *buf, size_t n)
{
  if (c->state != ST_CLOSED)
    snprintf (buf, n, "still open");
  else if (c->got_close)
    snprintf (buf, n, "close frame %d", c->close_code);
  else if (c->lost_errno)
    snprintf (buf, n, "%s without a close frame", g_strerror (c->lost_errno));
  else
    snprintf (buf, n, "end of stream without a close frame");
  return buf;
}

/* ------------------------------------------------------------------ help */

static void
print_help (void)
{
  printf (
    "NAME\n"
    "    pubsub-bench - load generator for pubsubd and comparable pub/sub servers\n"
    "\n"
    "SYNOPSIS\n"
    "    pubsub-bench [--mode fanout] [--protocol pubsub|nats] [--url URL] [-s SUBS] [-p PUBS]\n"
    "                 [-t TOPICS] [-b BYTES] [-d SEC] [--window N | --rate N] [--pid PID] [--json]\n"
    "    pubsub-bench --mode idle -s CONNS --pid PID [--hold SEC] [--json]\n"
    "    pubsub-bench --mode slow [-s FAST_SUBS] [--slow-rcvbuf BYTES] [-d SEC] [--json]\n"
    "\n"
    "DESCRIPTION\n"
    "    Opens many WebSocket connections to one server, subscribes, publishes and\n"
    "    measures what arrives. One single-threaded, non-blocking epoll loop drives every\n"
    "    connection with its own minimal RFC 6455 client (masked frames, ping -> pong,\n"
    "    close echo, no permessage-deflate) and classifies server frames by substring\n"
    "    scanning, so that on a core of its own it stays well ahead of the server under\n"
    "    test. Pin the server and the tool to different cores (taskset) for fair numbers.\n"
    "\n"
    "    Each payload is a JSON string of --size bytes that embeds the publisher, the\n"
    "    topic, a per-(publisher, topic) sequence number and the CLOCK_MONOTONIC send time\n"
    "    in ns; every subscriber checks the sequence (loss, gaps, duplicates, reordering)\n"
    "    and records latency in a log-linear histogram (< 1%% error, 1 us .. 60 s and\n"
    "    beyond). Message ids are UUIDs built from publisher, topic and sequence number.\n"
    "\n"
    "OPTIONS\n");
  for (const GOptionEntry *e = option_entries; e->long_name; e++)
    {
      char lhs[96];
      if (e->short_name)
        snprintf (lhs, sizeof lhs, "-%c, --%s%s%s", e->short_name, e->long_name,
                  e->arg_description ? " " : "", e->arg_description ? e->arg_description : "");
      else
        snprintf (lhs, sizeof lhs, "    --%s%s%s", e->long_name, e->arg_description ? " " : "",
                  e->arg_description ? e->arg_description : "");
      printf ("    %s\n", lhs);
      /* the description, wrapped at 88 columns and indented by 12 */
      const char *d = e->description;
      while (*d)
        {
          size_t n = strlen (d), cut = n;
          if (n > 76)
            for (cut = 76; cut > 0 && d[cut] != ' '; cut--)
              ;
          if (!cut)
            cut = n;
          printf ("            %.*s\n", (int) cut, d);
          d += cut;
          while (*d == ' ')
            d++;
        }
    }
  printf (
    "\n"
    "MODES\n"
    "    fanout   Creates the topics with POST /topics (201 and 409 are both fine), opens\n"
    "             the subscribers (subscriber i on topic i mod TOPICS) and waits for every\n"
    "             subscribe ack, opens the publishers, then publishes for --duration\n"
    "             seconds, each publisher sending to the topics round-robin:\n"
    "               window mode (default): at most --window publishes per publisher are\n"
    "                 not yet acknowledged; every ack lets the next one go.\n"
    "               rate mode (--rate N): N publishes/s in total on a fixed schedule,\n"
    "                 whatever the acks do; latency is measured from the scheduled send\n"
    "                 time, so a stalled server cannot hide its delay (no coordinated\n"
    "                 omission).\n"
    "             Then it waits (--drain-timeout) until every publish is acknowledged and\n"
    "             every subscriber has the last message of every publisher.\n"
    "    idle     Reads the server's VmRSS (/proc/PID/status), opens --subscribers\n"
    "             subscribed connections (10000 is fine: the soft RLIMIT_NOFILE is raised\n"
    "             to the hard limit), holds them --hold seconds (answering WebSocket pings;\n"
    "             heartbeat info frames are ignored), reads VmRSS again and reports the\n"
    "             difference per connection.\n"
    "    slow     One extra subscriber with a small SO_RCVBUF (--slow-rcvbuf) subscribes\n"
    "             and then stops reading its socket while --subscribers fast subscribers\n"
    "             read and the publishers publish. Afterwards it reads what was left for\n"
    "             it and reports how it ended (SLOW_CONSUMER error, close code 1008 is the\n"
    "             contract; or a reset), after how many messages, and when the last\n"
    "             message it got had been sent; the fast subscribers must lose nothing.\n"
    "\n"
    "PROTOCOLS\n"
    "    pubsub   The pubsubd contract: JSON text frames at ws://HOST:PORT/ws, subscribe\n"
    "             with client_id, publish {\"id\": UUID, \"payload\": \"...\"} with a\n"
    "             request_id, ack per publish, event per subscriber. Servers: pubsubd,\n"
    "             the node-ws and fanout-limit peers.\n"
    "    nats     NATS over WebSocket (nats-server's websocket listener, ws://HOST:PORT):\n"
    "             CONNECT + SUB subj 1 + PING per subscriber (the PONG is its ack),\n"
    "             PUB subj n with the payload {\"id\":UUID,\"payload\":\"...\"} (the same\n"
    "             bytes as the pubsub message object), MSG parsed as a byte stream across\n"
    "             WebSocket frames. NATS has no per-publish ack: the publisher sends a\n"
    "             PING after every --nats-ping-every PUBs (default window/4, so that the\n"
    "             pipeline never drains) and each PONG acknowledges the PUBs before it;\n"
    "             --window still bounds the PUBs not yet acknowledged that way. No topics\n"
    "             are created. Server PINGs are answered with PONG.\n"
    "\n"
    "OUTPUT\n"
    "    Human-readable lines on stdout, or with --json one JSON object with: mode,\n"
    "    protocol, url, subscribers, publishers, topics, size, duration_s, window, rate,\n"
    "    published, acked, publish_errors, publishes_per_s, events, expected_events,\n"
    "    events_per_s, lost, gaps, duplicates, out_of_order, disconnected, foreign,\n"
    "    latency_us {count, p50, p90, p99, p999, max, mean}, tool_cpu_pct (this process,\n"
    "    getrusage, 100 = one core; tool_spin_pct of it was --spin-us busy-polling),\n"
    "    server_cpu_pct and server_rss_kib (with --pid,\n"
    "    from /proc/PID/stat utime+stime and VmRSS), ok; idle adds rss_before_kib,\n"
    "    rss_after_kib, rss_per_conn_kib; slow adds a \"slow\" object.\n"
    "    events_per_s = events delivered to all subscribers / time from the first\n"
    "    publish to the last event; publishes_per_s likewise up to the last ack.\n"
    "    lost = messages a subscriber should have (acknowledged to their publisher) but\n"
    "    never got (a late message fills its hole); gaps = times a sequence number\n"
    "    jumped; out_of_order = a sequence number below one already seen; duplicates =\n"
    "    the same one twice in a row; foreign = event frames without our marker.\n"
    "    Latency = arrival - send time (--rate: the scheduled send time). The arrival\n"
    "    time is the kernel's receive timestamp of the subscriber socket (SO_TIMESTAMPNS;\n"
    "    arrival_clock says \"kernel\"), so time the tool spends on other sockets first\n"
    "    does not count; send_lag_us (--rate) shows how late the tool itself sent.\n"
    "\n"
    "EXAMPLES\n"
    "    pubsub-bench --url ws://127.0.0.1:8080/ws -s 1000 -d 5 --window 32 --pid $(pidof pubsubd)\n"
    "    pubsub-bench --url ws://127.0.0.1:8080/ws -s 1000 --rate 100 -d 10 --json\n"
    "    pubsub-bench --mode idle -s 10000 --pid $(pidof pubsubd)\n"
    "    pubsub-bench --mode slow -s 10 -d 3 --url ws://127.0.0.1:8080/ws\n"
    "    pubsub-bench --protocol nats --url ws://127.0.0.1:4223 -s 100 -d 5\n"
    "    taskset -c 1 pubsub-bench ...   (with the server on core 0: taskset -a -pc 0 PID)\n"
    "\n"
    "EXIT STATUS\n"
    "    0  the run completed and no fast subscriber saw loss, a gap, a duplicate or\n"
    "       reordering, lost its connection, and every publish was acknowledged\n"
    "    1  integrity failure: any of the above was seen (the numbers say which)\n"
    "    2  usage or setup error: bad option, connection refused, upgrade or subscribe\n"
    "       refused, setup timeout, not enough file descriptors\n"
    "    3  slow mode only: the slow subscriber was never disconnected\n");
}

/* ------------------------------------------------------------------ main */

static Conn *
new_conns (int n)
{
  conns = g_new0 (Conn, (size_t) n);
  nconns = n;
  return conns;
}

int
main (int argc, char **argv)
{
  GError *error = NULL;
  GOptionContext *ctx = g_option_context_new ("- load generator for pub/sub servers");
  g_option_context_set_help_enabled (ctx, FALSE);
  g_option_context_add_main_entries (ctx, option_entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    {
      fprintf (stderr, "pubsub-bench: %s (see --help)\n", error->message);
      return 2;
    }
  g_option_context_free (ctx);
  if (opt_help)
    {
      print_help ();
      return 0;
    }
  if (argc > 1)
    die ("unexpected argument '%s' (see --help)", argv[1]);

  if (!opt_mode)
    opt_mode = g_strdup ("fanout");
  if (!strcmp (opt_mode, "fanout"))
    mode = MODE_FANOUT;
  else if (!strcmp (opt_mode, "idle"))
    mode = MODE_IDLE;
  else if (!strcmp (opt_mode, "slow"))
    mode = MODE_SLOW;
  else
    die ("--mode must be fanout, idle or slow, not '%s'", opt_mode);
  if (!opt_protocol || !strcmp (opt_protocol, "pubsub"))
    nats = false;
  else if (!strcmp (opt_protocol, "nats"))
    nats = true;
  else
    die ("--protocol must be pubsub or nats, not '%s'", opt_protocol);
  if (!opt_url)
    opt_url = g_strdup (nats ? "ws://127.0.0.1:4222" : "ws://127.0.0.1:8080/ws");
  if (!opt_prefix)
    opt_prefix = g_strdup ("bench");
  if (opt_subscribers < 0)
    opt_subscribers = mode == MODE_IDLE ? 1000 : mode == MODE_SLOW ? 10 : 100;
  if (opt_topics < 1 || opt_topics > 1000000)
    die ("--topics must be 1..1000000");
  if (opt_publishers < 1 || opt_publishers > 65535)
    die ("--publishers must be 1..65535");
  if (opt_window < 1)
    die ("--window must be at least 1");
  if (opt_rate < 0 || opt_duration <= 0 || opt_drain < 0 || opt_warmup < 0 || opt_hold < 0)
    die ("--rate, --duration, --drain-timeout, --warmup and --hold must not be negative");
  if (opt_size > 64 * 1024 * 1024)
    die ("--size is at most 64 MiB");
  if (opt_concurrency < 1)
    opt_concurrency = 1;
  payload_len = MAX (opt_size, MIN_PAYLOAD);
  ping_every = opt_ping_every > 0 ? opt_ping_every : MAX (1, opt_window / 4);
  if (opt_rate <= 0 && ping_every > opt_window)
    ping_every = opt_window;
  if (mode == MODE_IDLE && opt_pid <= 0)
    die ("--mode idle needs --pid PID of the server");
  if (opt_pid > 0 && !proc_sample (opt_pid).ok)
    die ("cannot read /proc/%d/stat: is --pid right?", opt_pid);

  init_hexval ();
  signal (SIGPIPE, SIG_IGN);
  struct sigaction sa = { .sa_handler = on_signal };
  sigaction (SIGINT, &sa, NULL);
  sigaction (SIGTERM, &sa, NULL);
  prctl (PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
  real_minus_mono = measure_real_minus_mono (50);
  parse_ws_url ();

  topic_names = g_new0 (char *, (size_t) opt_topics);
  topic_lens = g_new0 (size_t, (size_t) opt_topics);
  for (int t = 0; t < opt_topics; t++)
    {
      topic_names[t] = g_strdup_printf ("%s-%d", opt_prefix, t);
      topic_lens[t] = strlen (topic_names[t]);
    }
  if (!nats && !opt_no_create)
    for (int t = 0; t < opt_topics; t++)
      create_topic (topic_names[t]);

  nsubs = opt_subscribers;
  npubs = mode == MODE_IDLE ? 0 : opt_publishers;
  int total = nsubs + npubs + (mode == MODE_SLOW ? 1 : 0);
  raise_nofile (total);
  new_conns (total);
  subs = g_new0 (Conn *, (size_t) MAX (nsubs, 1));
  pubs = g_new0 (Conn *, (size_t) MAX (npubs, 1));
  dirty = g_new0 (Conn *, (size_t) total + 1);
  rbuf_cap = RBUF_MIN;
  rbuf = g_malloc (rbuf_cap);
  int k = 0;
  for (int i = 0; i < nsubs; i++, k++)
    {
      Conn *c = &conns[k];
      c->role = ROLE_SUB, c->idx = i, c->topic = i % opt_topics;
      c->last = g_new0 (uint64_t, (size_t) MAX (npubs, 1));
      subs[i] = c;
    }
  if (mode == MODE_SLOW)
    {
      slow = &conns[k++];
      slow->role = ROLE_SLOW, slow->idx = 0, slow->topic = 0;
      slow->last = g_new0 (uint64_t, (size_t) MAX (npubs, 1));
    }
  for (int i = 0; i < npubs; i++, k++)
    {
      Conn *c = &conns[k];
      c->role = ROLE_PUB, c->idx = i;
      c->seq = g_new0 (uint64_t, (size_t) opt_topics);
      pubs[i] = c;
    }
  ep = epoll_create1 (EPOLL_CLOEXEC);
  if (ep < 0)
    die ("epoll_create1: %s", g_strerror (errno));

  Result r = { 0 };
  int status = 0;
  GString *j = g_string_new (NULL);
  r.srv_before = proc_sample (opt_pid);
  double cpu0 = self_cpu_s ();
  uint64_t wall0 = now_ns ();

  setup_connections ();

  if (mode == MODE_IDLE)
    {
      uint64_t until = now_ns () + (uint64_t) (opt_hold * 1e9);
      while (!interrupted && now_ns () < until)
        loop_once (ms_until (until, 100));
      r.srv_after = proc_sample (opt_pid);
      double cpu = self_cpu_s () - cpu0, wall = (double) (now_ns () - wall0) / 1e9;
      double per = nsubs ? (double) (r.srv_after.rss_kib - r.srv_before.rss_kib) / nsubs : 0;
      int open = 0;
      for (int i = 0; i < nsubs; i++)
        open += subs[i]->state == ST_OPEN;
      status = open == nsubs ? 0 : 1;
      if (opt_json)
        {
          json_common (j);
          g_string_append_printf (j,
                                  ",\"connections\":%d,\"open_at_end\":%d,\"hold_s\":%.1f,"
                                  "\"rss_before_kib\":%ld,\"rss_after_kib\":%ld,"
                                  "\"rss_per_conn_kib\":%.2f,\"tool_cpu_pct\":%.1f,\"ok\":%s}",
                                  nsubs, open, opt_hold, r.srv_before.rss_kib, r.srv_after.rss_kib,
                                  per, 100.0 * cpu / wall, status ? "false" : "true");
          puts (j->str);
        }
      else
        {
          printf ("pubsub-bench: idle, protocol=%s url=%s pid=%d\n", nats ? "nats" : "pubsub",
                  opt_url, opt_pid);
          printf ("connections: %d subscribed, %d still open after %.1f s\n", nsubs, open, opt_hold);
          printf ("server RSS: %ld KiB before, %ld KiB after -> %.2f KiB per connection\n",
                  r.srv_before.rss_kib, r.srv_after.rss_kib, per);
        }
      shutting_down = true;
      return status;
    }

  if (mode == MODE_SLOW)
    {
      slow->paused = true;
      set_mask (slow, 0);
    }
  double cpu_start = self_cpu_s ();
  ProcSample srv0 = proc_sample (opt_pid);
  publish_phase ();
  uint64_t t_end = now_ns ();
  double tool_cpu = self_cpu_s () - cpu_start;
  ProcSample srv1 = proc_sample (opt_pid);
  collect (&r);
  double span = (double) (t_end - t_start) / 1e9;
  r.tool_cpu = 100.0 * tool_cpu / span;
  r.spin = 100.0 * (double) spin_ns / 1e9 / span;
  r.server_ok = srv0.ok && srv1.ok;
  r.server_cpu = r.server_ok ? 100.0 * (double) (srv1.cpu_ticks - srv0.cpu_ticks) /
                                 (double) sysconf (_SC_CLK_TCK) / span
                             : 0;
  bool ok = integrity_ok (&r);
  status = ok ? 0 : 1;

  /* slow mode: now let the slow subscriber read what the server left for it */
  uint64_t slow_events_before = 0;
  if (mode == MODE_SLOW)
    {
      slow_events_before = slow->events;
      slow->paused = false;
      if (slow->state == ST_OPEN)
        {
          slow->in_epoll = slow->in_epoll && slow->hup_at == 0;
          slow->ep_mask = 0;
          set_mask (slow, EPOLLIN);
        }
      uint64_t limit = now_ns () + 15000000000u;
      slow->last_rx = now_ns ();
      while (slow->state == ST_OPEN && now_ns () < limit && now_ns () - slow->last_rx < 3000000000u)
        loop_once (100);
      if (ok && slow->state == ST_OPEN)
        status = 3;
    }

  if (opt_json)
    {
      json_common (j);
      g_string_append_printf (j, ",\"duration_s\":%.3f,\"window\":%d,\"rate\":%.1f", r.run_s,
                              opt_rate > 0 ? 0 : opt_window, opt_rate);
      g_string_append_printf (j,
                              ",\"published\":%" PRIu64 ",\"acked\":%" PRIu64
                              ",\"publish_errors\":%" PRIu64 ",\"publishes_per_s\":%.1f",
                              r.sent, r.acked, r.pub_errors, r.pubs_s);
      g_string_append_printf (j,
                              ",\"events\":%" PRIu64 ",\"expected_events\":%" PRIu64
                              ",\"events_per_s\":%.1f,\"lost\":%" PRIu64 ",\"gaps\":%" PRIu64
                              ",\"duplicates\":%" PRIu64 ",\"out_of_order\":%" PRIu64
                              ",\"disconnected\":%d,\"foreign\":%" PRIu64,
                              r.events, r.expected, r.events_s, r.lost, r.gaps, r.dups, r.reorder,
                              r.disconnected, r.foreign + r.wrong_topic);
      json_latency (j);
      g_string_append_printf (j, ",\"arrival_clock\":\"%s\"", arrival_clock ());
      if (opt_rate > 0)
        g_string_append_printf (j, ",\"send_lag_us\":{\"p50\":%.1f,\"p99\":%.1f,\"max\":%.1f}",
                                hist_quantile (&lag_hist, 0.5) / 1e3,
                                hist_quantile (&lag_hist, 0.99) / 1e3, lag_hist.max / 1e3);
      g_string_append_printf (j, ",\"tool_cpu_pct\":%.1f,\"tool_spin_pct\":%.1f", r.tool_cpu,
                              r.spin);
      if (r.server_ok)
        g_string_append_printf (j, ",\"server_pid\":%d,\"server_cpu_pct\":%.1f,\"server_rss_kib\":%ld,"
                                "\"server_hwm_kib\":%ld", opt_pid, r.server_cpu, srv1.rss_kib,
                                srv1.hwm_kib);
      if (mode == MODE_SLOW)
        {
          char why[128];
          g_string_append_printf (j,
                                  ",\"slow\":{\"events_while_stalled\":%" PRIu64 ",\"events\":%" PRIu64
                                  ",\"slow_consumer_error\":%s,\"close_code\":%d,\"ended\":\"%s\","
                                  "\"disconnected\":%s,\"last_event_sent_at_s\":%.3f}",
                                  slow_events_before, slow->events, slow->slow_err ? "true" : "false",
                                  slow->got_close ? slow->close_code : 0,
                                  slow_end_text (slow, why, sizeof why),
                                  slow->state == ST_CLOSED ? "true" : "false",
                                  slow->last_sent_ts > t_start
                                    ? (double) (slow->last_sent_ts - t_start) / 1e9 : 0.0);
        }
      g_string_append_printf (j, ",\"ok\":%s}", ok ? "true" : "false");
      puts (j->str);
    }
  else
    {
      printf ("pubsub-bench: %s, protocol=%s url=%s\n", opt_mode, nats ? "nats" : "pubsub", opt_url);
      printf ("setup: %d subscribers on %d topic(s), %d publisher(s), payload %d bytes, ", nsubs,
              opt_topics, npubs, payload_len);
      if (opt_rate > 0)
        printf ("rate %.0f/s for %.1f s\n", opt_rate, r.run_s);
      else
        printf ("window %d for %.1f s\n", opt_window, r.run_s);
      printf ("published: %" PRIu64 ", acked %" PRIu64 ", errors %" PRIu64 " -> %.0f publishes/s\n",
              r.sent, r.acked, r.pub_errors, r.pubs_s);
      printf ("delivered: %" PRIu64 " of %" PRIu64 " events -> %.0f events/s\n", r.events, r.expected,
              r.events_s);
      printf ("integrity: lost %" PRIu64 ", gaps %" PRIu64 ", duplicates %" PRIu64
              ", out-of-order %" PRIu64 ", disconnected %d, unparsed %" PRIu64 " -> %s\n",
              r.lost, r.gaps, r.dups, r.reorder, r.disconnected, r.foreign + r.wrong_topic,
              ok ? "OK" : "FAILED");
      printf ("latency us: p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  (%" PRIu64
              " samples, arrival clock: %s)\n",
              hist_quantile (&hist, 0.50) / 1e3, hist_quantile (&hist, 0.90) / 1e3,
              hist_quantile (&hist, 0.99) / 1e3, hist_quantile (&hist, 0.999) / 1e3, hist.max / 1e3,
              hist.n, arrival_clock ());
      if (opt_rate > 0)
        printf ("send lag us (actual - scheduled send time): p50 %.1f  p99 %.1f  max %.1f\n",
                hist_quantile (&lag_hist, 0.5) / 1e3, hist_quantile (&lag_hist, 0.99) / 1e3,
                lag_hist.max / 1e3);
      printf ("cpu: tool %.1f%% of a core", r.tool_cpu);
      if (r.spin > 0.05)
        printf (" (%.1f%% of it busy-polling before scheduled sends)", r.spin);
      if (r.server_ok)
        printf (", server %.1f%% (pid %d, RSS %ld KiB, peak %ld KiB)", r.server_cpu, opt_pid,
                srv1.rss_kib, srv1.hwm_kib);
      printf ("\n");
      if (mode == MODE_SLOW)
        {
          char why[128];
          printf ("slow subscriber: %s; %" PRIu64 " events received in all, %s the SLOW_CONSUMER error",
                  slow->state == ST_CLOSED ? "disconnected" : "NOT disconnected", slow->events,
                  slow->slow_err ? "with" : "without");
          printf ("; ended by %s", slow_end_text (slow, why, sizeof why));
          if (slow->last_sent_ts > t_start)
            printf ("; its last event was published %.3f s into the run",
                    (double) (slow->last_sent_ts - t_start) / 1e9);
          printf ("\n");
        }
    }
  if (r.tool_cpu - r.spin > 90.0)
    fprintf (stderr, "pubsub-bench: warning: the tool used %.0f%% of a core and may be the bottleneck\n",
             r.tool_cpu - r.spin);

  /* close politely; the server must cope with either */
  shutting_down = true;
  for (int i = 0; i < nconns; i++)
    if (conns[i].state == ST_OPEN)
      {
        send_close (&conns[i], 1000);
        conn_flush (&conns[i]);
        if (conns[i].state != ST_CLOSED)
          close (conns[i].fd);
      }
  g_string_free (j, TRUE);
  return status;
}
