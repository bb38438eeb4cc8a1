/* bench-client.c: the connections of pubsub-bench and the epoll loop
 *
 * One single-threaded, level-triggered epoll loop drives every connection:
 * non-blocking sockets, its own HTTP upgrade and RFC 6455 client framing
 * (masked client frames, unmasked server frames, ping → pong, close echo),
 * one 256 KiB read per readiness event into a shared buffer, and all frames
 * queued for a connection during one loop iteration written with one send().
 * Complete messages go to bench-protocol.c; nothing here allocates per frame.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "bench-client.h"
#include "bench-options.h"
#include "bench-protocol.h"

#define READ_MIN (256u * 1024u)   /* one read () takes up to this much */
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

BenchRun bench_run;

static const BenchWsTarget *pub_target;    /* not owned */
static const BenchWsTarget *sub_targets;   /* not owned: bench_run.n_nodes of them */
static int ep = -1;
static int timer_fd = -1;
static int timer_tag;                 /* its address marks the timerfd in epoll */
static BenchConn **dirty;             /* owned: connections with new frames */
static gint n_dirty;
static guint8 *rbuf;                  /* owned: the shared read buffer */
static gsize rbuf_cap;
static gint next_to_start, in_flight, n_ready;
static guint64 mask_state = G_GUINT64_CONSTANT (0x9e3779b97f4a7c15);
static gint64 real_minus_mono;        /* CLOCK_REALTIME - CLOCK_MONOTONIC, ns */
static BenchDueFunc due_func;
static const guint64 *due_at;

static void conn_lost (BenchConn *c,
                       gint       err,
                       guint64    now);

/* ------------------------------------------------------------------ epoll and output */

static void
set_mask (BenchConn *c,
          guint32    mask)
{
  struct epoll_event e = { .events = mask, .data.ptr = c };

  if (c->state == BENCH_CONN_CLOSED)
    return;
  if (!c->in_epoll)
    {
      if (epoll_ctl (ep, EPOLL_CTL_ADD, c->fd, &e) < 0)
        bench_die ("epoll_ctl: %s", g_strerror (errno));
      c->in_epoll = TRUE;
      c->ep_mask = mask;
      return;
    }
  if (c->ep_mask == mask)
    return;
  if (epoll_ctl (ep, EPOLL_CTL_MOD, c->fd, &e) < 0)
    bench_die ("epoll_ctl: %s", g_strerror (errno));
  c->ep_mask = mask;
}

static inline void
mark_dirty (BenchConn *c)
{
  if (!c->dirty)
    {
      c->dirty = TRUE;
      dirty[n_dirty++] = c;
    }
}

/* xorshift64: masks need not be unpredictable for a benchmark, only nonzero
 * in every byte. */
static inline guint32
next_mask (void)
{
  mask_state ^= mask_state << 13;
  mask_state ^= mask_state >> 7;
  mask_state ^= mask_state << 17;
  return (guint32) mask_state | 0x01010101u;
}

/* XORs payload with the 4-byte key just before it, eight bytes at a time. */
static void
ws_mask (guint8 *payload,
         gsize   len)
{
  guint8 k[4];
  guint8 kk[8];
  guint64 k8;
  gsize i = 0;

  memcpy (k, payload - 4, 4);
  for (gint j = 0; j < 8; j++)
    kk[j] = k[j & 3];
  memcpy (&k8, kk, 8);
  for (; i + 8 <= len; i += 8)
    {
      guint64 w;

      memcpy (&w, payload + i, 8);
      w ^= k8;
      memcpy (payload + i, &w, 8);
    }
  for (; i < len; i++)
    payload[i] ^= k[i & 3];
}

/* Reserves a masked client frame of len payload bytes in c->out; the caller
 * writes the payload at the returned pointer, then calls ws_mask () on it. */
static guint8 *
ws_frame (BenchConn *c,
          gint       opcode,
          gsize      len)
{
  guint8 *h;
  gsize hl;
  guint32 mask;

  bench_buf_reserve (&c->out, len + 14);
  h = (guint8 *) c->out.data + c->out.len;
  h[0] = (guint8) (0x80 | opcode);
  if (len < 126)
    {
      h[1] = (guint8) (0x80 | len);
      hl = 2;
    }
  else if (len < 65536)
    {
      h[1] = 0x80 | 126;
      h[2] = (guint8) (len >> 8);
      h[3] = (guint8) len;
      hl = 4;
    }
  else
    {
      h[1] = 0x80 | 127;
      for (gint i = 0; i < 8; i++)
        h[2 + i] = (guint8) ((guint64) len >> (56 - 8 * i));
      hl = 10;
    }
  mask = next_mask ();
  memcpy (h + hl, &mask, 4);
  hl += 4;
  c->out.len += hl + len;
  mark_dirty (c);
  return h + hl;
}

void
bench_ws_send (BenchConn  *c,
               gint        opcode,
               const void *data,
               gsize       len)
{
  guint8 *payload = ws_frame (c, opcode, len);

  memcpy (payload, data, len);
  ws_mask (payload, len);
}

static void
send_close (BenchConn *c,
            gint       code)
{
  guint8 b[2] = { (guint8) (code >> 8), (guint8) code };

  if (c->close_sent || c->state != BENCH_CONN_OPEN)
    return;
  bench_ws_send (c, BENCH_WS_CLOSE, b, 2);
  c->close_sent = TRUE;
}

/* Writes what the kernel takes; the rest waits for EPOLLOUT. */
void
bench_conn_flush (BenchConn *c)
{
  if (c->state == BENCH_CONN_CLOSED || c->state == BENCH_CONN_CONNECTING ||
      c->state == BENCH_CONN_NEW)
    return;
  while (c->out_off < c->out.len)
    {
      ssize_t w = send (c->fd, c->out.data + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL);

      if (w < 0)
        {
          if (errno == EINTR)
            continue;
          if (errno == EAGAIN)
            break;
          conn_lost (c, errno, bench_now_ns ());
          return;
        }
      c->out_off += (gsize) w;
    }
  if (c->out_off == c->out.len)
    c->out.len = c->out_off = 0;
  if (c->paused)
    return;
  set_mask (c, EPOLLIN | (c->out.len ? EPOLLOUT : 0));
}

void
bench_flush_dirty (void)
{
  for (gint i = 0; i < n_dirty; i++)
    {
      dirty[i]->dirty = FALSE;
      bench_conn_flush (dirty[i]);
    }
  n_dirty = 0;
}

/* ------------------------------------------------------------------ connection state */

void
bench_conn_mark_ready (BenchConn *c)
{
  if (c->ready)
    return;
  c->ready = TRUE;
  n_ready++;
  in_flight--;
}

const char *
bench_conn_role_name (const BenchConn *c)
{
  return c->role == BENCH_ROLE_PUB ? "publisher"
       : c->role == BENCH_ROLE_SLOW ? "slow subscriber" : "subscriber";
}

/* During setup any loss is fatal; afterwards a publisher's is reported and a
 * subscriber's counted (and reported with --verbose). */
static void
conn_lost (BenchConn *c,
           gint       err,
           guint64    now)
{
  gboolean was_setup = !c->ready;
  const char *why;

  if (c->state == BENCH_CONN_CLOSED)
    return;
  close (c->fd);
  c->state = BENCH_CONN_CLOSED;
  c->in_epoll = FALSE;
  c->lost_errno = err;
  c->closed_at = now;
  if (bench_run.shutting_down || c->role == BENCH_ROLE_SLOW)
    return;
  why = err ? g_strerror (err) : "end of stream";
  if (was_setup)
    bench_die ("%s %d was closed by the server during setup (%s, close code %d)",
               bench_conn_role_name (c), c->idx, why, c->close_code);
  if (c->role == BENCH_ROLE_PUB)
    fprintf (stderr, "pubsub-bench: publisher %d lost its connection (%s, close code %d)\n",
             c->idx, why, c->close_code);
  else if (bench_options.verbose)
    fprintf (stderr, "pubsub-bench: subscriber %d lost its connection (%s, close code %d)\n",
             c->idx, why, c->close_code);
}

/* Slow mode: stop reading c, so that the server's queue for it fills up. */
void
bench_conn_pause (BenchConn *c)
{
  c->paused = TRUE;
  set_mask (c, 0);
}

/* A paused connection left epoll if it saw a hang-up (conn_io ()); put it
 * back, reading, either way. */
void
bench_conn_resume (BenchConn *c)
{
  c->paused = FALSE;
  if (c->state != BENCH_CONN_OPEN)
    return;
  c->in_epoll = c->in_epoll && c->hup_at == 0;
  c->ep_mask = 0;
  set_mask (c, EPOLLIN);
}

/* ------------------------------------------------------------------ connecting and the upgrade */

static G_GNUC_NORETURN void
die_out_of_fds (void)
{
  struct rlimit rl;

  getrlimit (RLIMIT_NOFILE, &rl);
  bench_die ("out of file descriptors at connection %d of %d (RLIMIT_NOFILE soft %llu, "
             "hard %llu): raise the hard limit (ulimit -Hn) or use fewer connections",
             next_to_start, bench_run.n_conns, (unsigned long long) rl.rlim_cur,
             (unsigned long long) rl.rlim_max);
}

/* Where c connects: publishers to --url, subscribers to their --sub-url. */
static inline const BenchWsTarget *
conn_target (const BenchConn *c)
{
  return c->role == BENCH_ROLE_PUB ? pub_target : &sub_targets[c->node];
}

static int
open_socket (const BenchConn *c)
{
  int one = 1;
  int fd = socket (conn_target (c)->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

  if (fd < 0)
    {
      if (errno == EMFILE || errno == ENFILE)
        die_out_of_fds ();
      bench_die ("socket: %s", g_strerror (errno));
    }
  setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (c->role == BENCH_ROLE_SLOW)
    setsockopt (fd, SOL_SOCKET, SO_RCVBUF, &bench_options.rcvbuf, sizeof bench_options.rcvbuf);
  if (c->role == BENCH_ROLE_SUB && !bench_options.no_kernel_ts)
    setsockopt (fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
  return fd;
}

static void
conn_start (BenchConn *c)
{
  const BenchWsTarget *target = conn_target (c);

  c->fd = open_socket (c);
  c->close_code = 1006;
  if (connect (c->fd, (const struct sockaddr *) &target->addr, target->addrlen) < 0 &&
      errno != EINPROGRESS)
    {
      if (errno == EADDRNOTAVAIL)
        bench_die ("connect: no local port left at connection %d "
                   "(see net.ipv4.ip_local_port_range)", next_to_start);
      bench_die ("connect to %s: %s", target->url, g_strerror (errno));
    }
  c->state = BENCH_CONN_CONNECTING;
  set_mask (c, EPOLLOUT);
}

static void
pump_connects (void)
{
  while (next_to_start < bench_run.n_conns && in_flight < bench_options.concurrency)
    {
      in_flight++;
      conn_start (&bench_run.conns[next_to_start++]);
    }
}

/* Sec-WebSocket-Key: 16 random bytes, base64. */
static void
make_key (BenchConn *c)
{
  guint8 raw[16];
  g_autofree gchar *key = NULL;

  for (gint i = 0; i < 16; i += 4)
    {
      guint32 r = g_random_int ();

      memcpy (raw + i, &r, 4);
    }
  key = g_base64_encode (raw, sizeof raw);
  g_strlcpy (c->key, key, sizeof c->key);
}

/* The TCP connection is up (or failed): send the upgrade request. */
static void
conn_connected (BenchConn *c)
{
  gint err = 0;
  socklen_t len = sizeof err;

  const BenchWsTarget *target = conn_target (c);

  getsockopt (c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err)
    bench_die ("connect to %s (connection %d): %s", target->url,
               (gint) (c - bench_run.conns), g_strerror (err));
  c->state = BENCH_CONN_UPGRADING;
  make_key (c);
  bench_buf_append (&c->out, target->request_head, strlen (target->request_head));
  bench_buf_append (&c->out, c->key, strlen (c->key));
  bench_buf_append (&c->out, "\r\n\r\n", 4);
  bench_conn_flush (c);
}

/* head is the response's header block, NUL-terminated; n bytes arrived. */
static void
check_upgrade_status (const BenchConn *c,
                      char            *head,
                      gsize            hl,
                      const guint8    *p,
                      gsize            n)
{
  char *eol = strstr (head, "\r\n");
  const char *body = (const char *) p + hl;
  gsize bl = n - hl;

  *eol = 0;
  if (strncmp (head, "HTTP/1.1 101", 12) != 0 && strncmp (head, "HTTP/1.0 101", 12) != 0)
    bench_die ("%s refused the WebSocket upgrade of connection %d (%d open so far): "
               "%s%s%.*s", conn_target (c)->url, (gint) (c - bench_run.conns), n_ready, head,
               bl ? " — " : "", (gint) MIN (bl, 300), body);
  *eol = '\r';
}

/* Sec-WebSocket-Accept = base64 (SHA-1 (key + GUID)) */
static void
check_upgrade_accept (const BenchConn *c,
                      const char      *head)
{
  const char *accept = strcasestr (head, "\r\nSec-WebSocket-Accept:");
  g_autoptr (GChecksum) sum = NULL;
  g_autofree gchar *want = NULL;
  guint8 digest[20];
  gsize digest_len = sizeof digest;

  if (!accept)
    bench_die ("upgrade response of connection %d lacks Sec-WebSocket-Accept",
               (gint) (c - bench_run.conns));
  accept += BENCH_LITERAL_LEN ("\r\nSec-WebSocket-Accept:");
  while (*accept == ' ' || *accept == '\t')
    accept++;
  sum = g_checksum_new (G_CHECKSUM_SHA1);
  g_checksum_update (sum, (const guchar *) c->key, (gssize) strlen (c->key));
  g_checksum_update (sum, (const guchar *) WS_GUID, BENCH_LITERAL_LEN (WS_GUID));
  g_checksum_get_digest (sum, digest, &digest_len);
  want = g_base64_encode (digest, digest_len);
  if (strncmp (accept, want, strlen (want)) != 0)
    bench_die ("connection %d: wrong Sec-WebSocket-Accept", (gint) (c - bench_run.conns));
}

/* The server's answer to the upgrade; returns the header length, or 0 while
 * incomplete. Anything but a correct 101 is fatal. */
static gsize
handle_upgrade (BenchConn    *c,
                const guint8 *p,
                gsize         n)
{
  const guint8 *end = memmem (p, n, "\r\n\r\n", 4);
  g_autofree char *head = NULL;
  gsize hl;

  if (!end)
    {
      if (n > 65536)
        bench_die ("upgrade response of connection %d has no end", (gint) (c - bench_run.conns));
      return 0;
    }
  hl = (gsize) (end - p) + 4;
  head = g_strndup ((const char *) p, hl);
  check_upgrade_status (c, head, hl, p, n);
  check_upgrade_accept (c, head);
  c->state = BENCH_CONN_OPEN;
  bench_protocol_open (c);
  return hl;
}

/* ------------------------------------------------------------------ server frames */

/* Text and binary frames, and continuations: nats reads them as one byte
 * stream; pubsub messages are reassembled when fragmented. */
static void
handle_data_frame (BenchConn    *c,
                   gint          opcode,
                   gboolean      fin,
                   const guint8 *d,
                   gsize         len,
                   guint64       now)
{
  if (bench_options.nats)
    bench_nats_feed (c, d, len, now);
  else if (opcode == 0)
    {
      if (!c->in_frag)
        return;
      bench_buf_append (&c->msg, d, len);
      if (fin)
        {
          bench_pubsub_message (c, (const guint8 *) c->msg.data, c->msg.len, now);
          c->msg.len = 0;
          c->in_frag = FALSE;
        }
    }
  else if (fin)
    bench_pubsub_message (c, d, len, now);
  else
    {
      c->in_frag = TRUE;
      c->msg.len = 0;
      bench_buf_append (&c->msg, d, len);
    }
}

static void
handle_frame (BenchConn    *c,
              guint8        b0,
              const guint8 *d,
              gsize         len,
              guint64       now)
{
  gint opcode = b0 & 0x0f;

  switch (opcode)
    {
    case 0:
    case BENCH_WS_TEXT:
    case BENCH_WS_BINARY:
      handle_data_frame (c, opcode, (b0 & 0x80) != 0, d, len, now);
      break;
    case BENCH_WS_CLOSE:
      c->got_close = TRUE;
      c->close_code = len >= 2 ? (d[0] << 8 | d[1]) : 1005;
      send_close (c, c->close_code == 1005 ? 1000 : c->close_code);
      bench_conn_flush (c);
      conn_lost (c, 0, now);
      break;
    case BENCH_WS_PING:
      bench_ws_send (c, BENCH_WS_PONG, d, len);
      break;
    default:
      break;
    }
}

/* Parses server frames; returns the bytes consumed. */
static gsize
ws_input (BenchConn *c,
          guint8    *p,
          gsize      n,
          guint64    now)
{
  gsize off = 0;

  while (n - off >= 2 && c->state == BENCH_CONN_OPEN)
    {
      guint8 b0 = p[off], b1 = p[off + 1];
      guint64 len = b1 & 0x7f;
      gsize h = 2;
      guint8 *d;

      if (len == 126)
        {
          if (n - off < 4)
            break;
          len = (guint64) p[off + 2] << 8 | p[off + 3];
          h = 4;
        }
      else if (len == 127)
        {
          if (n - off < 10)
            break;
          len = 0;
          for (gint i = 0; i < 8; i++)
            len = len << 8 | p[off + 2 + (gsize) i];
          h = 10;
        }
      if (b1 & 0x80)
        h += 4;
      if (n - off < h || n - off - h < len)
        break;
      d = p + off + h;
      if (b1 & 0x80)
        ws_mask (d, (gsize) len);
      off += h + (gsize) len;
      handle_frame (c, b0, d, (gsize) len, now);
    }
  return off;
}

/* ------------------------------------------------------------------ reading */

/* The arrival time of what a read returned: the kernel's receive time of the
 * newest segment in it (SO_TIMESTAMPNS), so that the time this loop spends on
 * other sockets first does not count as latency; else now. */
static guint64
arrival_time (struct msghdr *mh,
              guint64        now)
{
  struct cmsghdr *cmsg = CMSG_FIRSTHDR (mh);
  struct timespec kt;
  gint64 k;

  if (!cmsg || cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_TIMESTAMPNS)
    {
      bench_run.n_clock_ts++;
      return now;
    }
  memcpy (&kt, CMSG_DATA (cmsg), sizeof kt);
  k = (gint64) kt.tv_sec * 1000000000 + kt.tv_nsec - real_minus_mono;
  if (k > 0 && (guint64) k <= now)
    {
      bench_run.n_kernel_ts++;
      return (guint64) k;
    }
  bench_run.n_clock_ts++;
  return now;
}

/* Makes room for a read after carry bytes left over from the last one. */
static void
rbuf_reserve (gsize carry)
{
  if (carry + READ_MIN / 4 > rbuf_cap)
    {
      rbuf_cap = carry * 2 + READ_MIN;
      rbuf = g_realloc (rbuf, rbuf_cap);
    }
}

/* What a read returned, after the carried bytes at the start of rbuf. */
static void
conn_input (BenchConn *c,
            gsize      total,
            guint64    now)
{
  gsize used = 0;

  c->in.len = 0;
  if (c->state == BENCH_CONN_UPGRADING)
    {
      used = handle_upgrade (c, rbuf, total);
      if (!used)
        {
          bench_buf_append (&c->in, rbuf, total);
          return;
        }
    }
  used += ws_input (c, rbuf + used, total - used, now);
  if (c->state == BENCH_CONN_CLOSED)
    return;
  if (used < total)
    bench_buf_append (&c->in, rbuf + used, total - used);
  if (c->role == BENCH_ROLE_PUB)
    bench_pub_fill (c, now);
}

static void
conn_read (BenchConn *c)
{
  gsize carry = c->in.len;
  struct iovec iov;
  union {
    char           buf[CMSG_SPACE (sizeof (struct timespec))];
    struct cmsghdr align;
  } cm;
  struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
  ssize_t r;
  guint64 now;

  rbuf_reserve (carry);
  if (carry)
    memcpy (rbuf, c->in.data, carry);
  iov.iov_base = rbuf + carry;
  iov.iov_len = rbuf_cap - carry;
  if (c->role == BENCH_ROLE_SUB && !bench_options.no_kernel_ts)
    {
      mh.msg_control = cm.buf;
      mh.msg_controllen = sizeof cm.buf;
    }
  r = recvmsg (c->fd, &mh, 0);
  now = bench_now_ns ();
  if (r > 0 && mh.msg_controllen)
    now = arrival_time (&mh, now);
  if (r <= 0)
    {
      if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return;
      conn_lost (c, r < 0 ? errno : 0, now);
      return;
    }
  conn_input (c, carry + (gsize) r, now);
}

static void
conn_io (BenchConn *c,
         guint32    events)
{
  if (c->state == BENCH_CONN_CLOSED)
    return;
  if (c->state == BENCH_CONN_CONNECTING)
    {
      conn_connected (c);
      return;
    }
  if (c->paused)
    {
      /* a subscriber that does not read: only a hang-up or an error can show up */
      if (!c->hup_at)
        c->hup_at = bench_now_ns ();
      epoll_ctl (ep, EPOLL_CTL_DEL, c->fd, NULL);
      c->in_epoll = FALSE;
      return;
    }
  if (events & EPOLLOUT)
    bench_conn_flush (c);
  if (c->state != BENCH_CONN_CLOSED && (events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
    conn_read (c);
}

/* ------------------------------------------------------------------ the loop */

void
bench_loop_add_timer (void)
{
  struct epoll_event e = { .events = EPOLLIN, .data.ptr = &timer_tag };

  timer_fd = timerfd_create (CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (timer_fd < 0)
    bench_die ("timerfd_create: %s", g_strerror (errno));
  epoll_ctl (ep, EPOLL_CTL_ADD, timer_fd, &e);
}

void
bench_loop_arm_timer (guint64 at)
{
  struct itimerspec its = { 0 };

  its.it_value.tv_sec = (time_t) (at / 1000000000u);
  its.it_value.tv_nsec = (long) (at % 1000000000u);
  if (!at)
    its.it_value.tv_nsec = 0;
  timerfd_settime (timer_fd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void
timer_tick (void)
{
  guint64 v;

  if (read (timer_fd, &v, sizeof v) < 0 && errno != EAGAIN)
    bench_die ("timerfd: %s", g_strerror (errno));
}

void
bench_loop_set_due (BenchDueFunc   func,
                    const guint64 *due)
{
  due_func = func;
  due_at = due;
}

/* CLOCK_REALTIME - CLOCK_MONOTONIC, from the tightest of a few bracketed reads */
static gint64
measure_real_minus_mono (gint tries)
{
  gint64 best = 0;
  guint64 best_gap = G_MAXUINT64;

  for (gint i = 0; i < tries; i++)
    {
      struct timespec rt;
      guint64 a = bench_now_ns (), b;

      clock_gettime (CLOCK_REALTIME, &rt);
      b = bench_now_ns ();
      if (b - a < best_gap)
        {
          best_gap = b - a;
          best = (gint64) rt.tv_sec * 1000000000 + rt.tv_nsec - (gint64) (a + (b - a) / 2);
        }
    }
  return best;
}

/* Kernel timestamps are CLOCK_REALTIME: follow NTP slewing during the run. */
static void
refresh_real_minus_mono (void)
{
  static guint64 offset_at;
  guint64 t = bench_now_ns ();

  if (t - offset_at > 100000000u)
    {
      real_minus_mono = measure_real_minus_mono (5);
      offset_at = t;
    }
}

gint
bench_loop_once (gint timeout_ms)
{
  struct epoll_event evs[1024];
  gint n = epoll_wait (ep, evs, G_N_ELEMENTS (evs), timeout_ms);
  guint64 t;

  if (n < 0)
    {
      if (errno == EINTR)
        return 0;
      bench_die ("epoll_wait: %s", g_strerror (errno));
    }
  refresh_real_minus_mono ();
  for (gint i = 0; i < n; i++)
    {
      if (evs[i].data.ptr == &timer_tag)
        timer_tick ();
      else
        conn_io (evs[i].data.ptr, evs[i].events);
      if (due_func && (i & 31) == 31 && (t = bench_now_ns ()) >= *due_at)
        due_func (t);
    }
  bench_flush_dirty ();
  return n;
}

gint
bench_ms_until (guint64 deadline,
                gint    cap)
{
  guint64 now = bench_now_ns (), ms;

  if (now >= deadline)
    return 0;
  ms = (deadline - now + 999999u) / 1000000u;
  return ms > (guint64) cap ? cap : (gint) ms;
}

/* ------------------------------------------------------------------ the whole set */

static void
raise_nofile (gint need)
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
    bench_die ("%d connections need about %d file descriptors, but RLIMIT_NOFILE is %llu "
               "(hard limit %llu): raise it (ulimit -Hn, or LimitNOFILE=) or use fewer "
               "connections", need, need + 32, (unsigned long long) rl.rlim_cur,
               (unsigned long long) rl.rlim_max);
}

static BenchConn *
init_conn (gint       k,
           BenchRole  role,
           gint       idx)
{
  BenchConn *c = &bench_run.conns[k];

  c->role = role;
  c->idx = idx;
  if (role == BENCH_ROLE_PUB)
    c->seq = g_new0 (guint64, (gsize) bench_options.topics);
  else
    c->last = g_new0 (guint64, (gsize) MAX (bench_run.n_pubs, 1));
  return c;
}

void
bench_client_init (const BenchWsTarget *pub,
                   const BenchWsTarget *subs,
                   gint                 n_sub_targets,
                   gint                 n_subs,
                   gint                 n_pubs,
                   gboolean             with_slow)
{
  gint total = n_subs + n_pubs + (with_slow ? 1 : 0), k = 0;

  g_assert (n_sub_targets >= 1);
  pub_target = pub;
  sub_targets = subs;
  bench_run.n_nodes = n_sub_targets;
  real_minus_mono = measure_real_minus_mono (50);
  raise_nofile (total);
  bench_run.conns = g_new0 (BenchConn, (gsize) total);
  bench_run.n_conns = total;
  bench_run.n_subs = n_subs;
  bench_run.n_pubs = n_pubs;
  bench_run.subs = g_new0 (BenchConn *, (gsize) MAX (n_subs, 1));
  bench_run.pubs = g_new0 (BenchConn *, (gsize) MAX (n_pubs, 1));
  dirty = g_new0 (BenchConn *, (gsize) total + 1);
  rbuf_cap = READ_MIN;
  rbuf = g_malloc (rbuf_cap);
  for (gint i = 0; i < n_subs; i++, k++)
    {
      bench_run.subs[i] = init_conn (k, BENCH_ROLE_SUB, i);
      bench_run.subs[i]->topic = i % bench_options.topics;
      bench_run.subs[i]->node = i % n_sub_targets;
    }
  if (with_slow)
    bench_run.slow = init_conn (k++, BENCH_ROLE_SLOW, 0);
  for (gint i = 0; i < n_pubs; i++, k++)
    bench_run.pubs[i] = init_conn (k, BENCH_ROLE_PUB, i);
  ep = epoll_create1 (EPOLL_CLOEXEC);
  if (ep < 0)
    bench_die ("epoll_create1: %s", g_strerror (errno));
}

void
bench_client_connect_all (void)
{
  guint64 t0 = bench_now_ns (), last_note = t0;
  guint64 deadline = t0 + (guint64) (bench_options.setup_timeout * 1e9);

  pump_connects ();
  while (n_ready < bench_run.n_conns)
    {
      if (bench_interrupted)
        bench_die ("interrupted during setup");
      if (bench_now_ns () > deadline)
        bench_die ("setup timed out: %d of %d connections ready after %.0f s", n_ready,
                   bench_run.n_conns, bench_options.setup_timeout);
      bench_loop_once (100);
      pump_connects ();
      if (bench_options.verbose && bench_now_ns () - last_note > 1000000000u)
        {
          last_note = bench_now_ns ();
          bench_note ("%d/%d connections ready", n_ready, bench_run.n_conns);
        }
    }
  bench_note ("%d connections ready in %.2f s", bench_run.n_conns,
              (gdouble) (bench_now_ns () - t0) / 1e9);
}

/* Politely: the server must cope with either. */
void
bench_client_close_all (void)
{
  bench_run.shutting_down = TRUE;
  for (gint i = 0; i < bench_run.n_conns; i++)
    {
      BenchConn *c = &bench_run.conns[i];

      if (c->state != BENCH_CONN_OPEN)
        continue;
      send_close (c, 1000);
      bench_conn_flush (c);
      if (c->state != BENCH_CONN_CLOSED)
        close (c->fd);
    }
}
