/* pubsub-bench.c: the command line of pubsub-bench, the load generator for
 * pubsubd and the servers it is compared with
 *
 * This file owns the options, the manual (--help) and main (); the work is
 * done by the other bench-*.c files:
 *   bench-client.c    connections, the epoll loop, WebSocket framing, upgrade
 *   bench-protocol.c  pubsub and NATS messages, the payload marker, checks
 *   bench-modes.c     the phases of the fanout, slow and idle runs
 *   bench-report.c    tallying and printing the result (text or --json)
 *   bench-stats.c     latency histogram, /proc and getrusage samples
 *   bench-http.c      the WebSocket URL and POST /topics
 *   bench-util.c      errors, notes, byte buffers, the interrupt flag
 *
 * Run `pubsub-bench --help` for the manual.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>

#include <glib.h>

#include "bench-client.h"
#include "bench-http.h"
#include "bench-modes.h"
#include "bench-options.h"
#include "bench-protocol.h"
#include "bench-stats.h"
#include "bench-util.h"

BenchOptions bench_options = {
  .subscribers = -1,
  .publishers = 1,
  .topics = 1,
  .window = 32,
  .size = 100,
  .concurrency = 128,
  .rcvbuf = 4096,
  .spin_us = 500,
  .duration = 5.0,
  .drain = 10.0,
  .hold = 2.0,
  .setup_timeout = 120.0,
  .sync_timeout = 10.0,
};

static const GOptionEntry option_entries[] = {
  { "mode", 'm', 0, G_OPTION_ARG_STRING, &bench_options.mode_name,
    "fanout (default), idle or slow; see MODES", "MODE" },
  { "protocol", 0, 0, G_OPTION_ARG_STRING, &bench_options.protocol,
    "pubsub (default: the pubsubd contract) or nats (NATS over WebSocket)", "PROTO" },
  { "url", 'u', 0, G_OPTION_ARG_STRING, &bench_options.url,
    "WebSocket endpoint (default ws://127.0.0.1:8080/ws; for nats ws://HOST:PORT)", "URL" },
  { "sub-url", 0, 0, G_OPTION_ARG_STRING_ARRAY, &bench_options.sub_urls,
    "put the subscribers on this WebSocket endpoint instead of --url; repeated, they are "
    "spread round-robin (subscriber i on the (i mod N)-th), while the publishers stay on "
    "--url: several nodes of one cluster. List another node before --url's so that even "
    "one subscriber crosses nodes. Topics are created on every node (201 or 409)", "URL" },
  { "http", 0, 0, G_OPTION_ARG_STRING, &bench_options.http,
    "REST base for POST /topics (default http://HOST:PORT of --url)", "URL" },
  { "api-key", 'k', 0, G_OPTION_ARG_STRING, &bench_options.api_key,
    "send X-API-Key: KEY on REST calls and on the WebSocket upgrade", "KEY" },
  { "subscribers", 's', 0, G_OPTION_ARG_INT, &bench_options.subscribers,
    "subscriber connections (fanout: 100, idle: 1000, slow: 10 fast ones)", "N" },
  { "publishers", 'p', 0, G_OPTION_ARG_INT, &bench_options.publishers,
    "publisher connections (default 1)", "N" },
  { "topics", 't', 0, G_OPTION_ARG_INT, &bench_options.topics,
    "topics; subscriber i is on topic i mod N, publishers round-robin (default 1)", "N" },
  { "topic-prefix", 0, 0, G_OPTION_ARG_STRING, &bench_options.prefix,
    "topic names are PREFIX-0, PREFIX-1, ... (default bench)", "PREFIX" },
  { "no-create", 0, 0, G_OPTION_ARG_NONE, &bench_options.no_create,
    "do not POST /topics (the topics exist already)", NULL },
  { "duration", 'd', 0, G_OPTION_ARG_DOUBLE, &bench_options.duration,
    "seconds of publishing (default 5)", "SEC" },
  { "window", 'w', 0, G_OPTION_ARG_INT, &bench_options.window,
    "unacknowledged publishes allowed per publisher (default 32)", "N" },
  { "rate", 'r', 0, G_OPTION_ARG_DOUBLE, &bench_options.rate,
    "fixed rate: N publishes/s in total instead of a window (default 0 = window)", "N" },
  { "size", 'b', 0, G_OPTION_ARG_INT, &bench_options.size,
    "payload size in bytes: a JSON string, quotes included (default 100, minimum 53)", "BYTES" },
  { "spin-us", 0, 0, G_OPTION_ARG_INT, &bench_options.spin_us,
    "--rate: busy-poll during the last US microseconds before each scheduled publish, "
    "so the tool's own wake-up delay stays out of the latency (default 500, at most half "
    "the interval between publishes; 0 = just sleep)", "US" },
  { "warmup", 0, 0, G_OPTION_ARG_DOUBLE, &bench_options.warmup,
    "leave messages sent in the first SEC seconds out of the latency histogram", "SEC" },
  { "drain-timeout", 0, 0, G_OPTION_ARG_DOUBLE, &bench_options.drain,
    "after publishing, wait at most SEC seconds for acks and events (default 10)", "SEC" },
  { "pid", 0, 0, G_OPTION_ARG_INT, &bench_options.pid,
    "server process: report its CPU use and memory (required for idle)", "PID" },
  { "hold", 0, 0, G_OPTION_ARG_DOUBLE, &bench_options.hold,
    "idle: seconds to hold the connections before reading RSS again (default 2)", "SEC" },
  { "connect-concurrency", 0, 0, G_OPTION_ARG_INT, &bench_options.concurrency,
    "connections being set up at the same time (default 128)", "N" },
  { "setup-timeout", 0, 0, G_OPTION_ARG_DOUBLE, &bench_options.setup_timeout,
    "give up when connecting and subscribing takes longer (default 120)", "SEC" },
  { "sync-timeout", 0, 0, G_OPTION_ARG_DOUBLE, &bench_options.sync_timeout,
    "with --sub-url, before measuring: publish probes (sequence number 0, not counted) "
    "until one has reached every subscriber, for at most SEC seconds, so that a cluster "
    "still spreading its subscriptions loses nothing measured (default 10; 0 = no probes)",
    "SEC" },
  { "slow-rcvbuf", 0, 0, G_OPTION_ARG_INT, &bench_options.rcvbuf,
    "slow: SO_RCVBUF of the subscriber that stops reading (default 4096)", "BYTES" },
  { "nats-ping-every", 0, 0, G_OPTION_ARG_INT, &bench_options.nats_ping_every,
    "nats: send PING after every N PUBs (default window/4)", "N" },
  { "no-kernel-timestamps", 0, 0, G_OPTION_ARG_NONE, &bench_options.no_kernel_ts,
    "take arrival times from the clock after recv() instead of SO_TIMESTAMPNS", NULL },
  { "json", 'j', 0, G_OPTION_ARG_NONE, &bench_options.json,
    "print the result as one JSON object on stdout", NULL },
  { "verbose", 'v', 0, G_OPTION_ARG_NONE, &bench_options.verbose,
    "progress messages on stderr", NULL },
  { "help", 'h', 0, G_OPTION_ARG_NONE, &bench_options.help, "show this manual", NULL },
  G_OPTION_ENTRY_NULL
};

/* ------------------------------------------------------------------ the manual */

static void
print_help_head (void)
{
  printf (
    "NAME\n"
    "    pubsub-bench - load generator for pubsubd and comparable pub/sub servers\n"
    "\n"
    "SYNOPSIS\n"
    "    pubsub-bench [--mode fanout] [--protocol pubsub|nats] [--url URL] [--sub-url URL ...]\n"
    "                 [-s SUBS] [-p PUBS]\n"
    "                 [-t TOPICS] [-b BYTES] [-d SEC] [--window N | --rate N] [--pid PID] [--json]\n"
    "    pubsub-bench --mode idle -s CONNS --pid PID [--hold SEC] [--json]\n"
    "    pubsub-bench --mode slow [-s FAST_SUBS] [--slow-rcvbuf BYTES] [-d SEC] [--json]\n"
    "\n"
    "DESCRIPTION\n"
    "    Opens many WebSocket connections to one server (or to the nodes of a cluster,\n"
    "    --sub-url), subscribes, publishes and measures what arrives. One single-threaded, non-blocking epoll loop drives every\n"
    "    connection with its own minimal RFC 6455 client (masked frames, ping -> pong,\n"
    "    close echo, no permessage-deflate) and classifies server frames by substring\n"
    "    scanning, so that on a core of its own it stays well ahead of the server under\n"
    "    test. Pin the server and the tool to different cores (taskset) for fair numbers.\n"
    "\n"
    "    Each payload is a JSON string of --size bytes that embeds the publisher, the\n"
    "    topic, a per-(publisher, topic) sequence number and the CLOCK_MONOTONIC send time\n"
    "    in ns; every subscriber checks the sequence (loss, gaps, duplicates, reordering)\n"
    "    and records latency in a log-linear histogram (< 1%% error, 1 us .. 60 s and\n"
    "    beyond). Message ids are UUIDs built from a random run number, the publisher,\n"
    "    topic and sequence number.\n"
    "\n"
    "OPTIONS\n");
}

/* The description, wrapped at 88 columns and indented by 12. */
static void
print_wrapped (const char *d)
{
  while (*d)
    {
      gsize n = strlen (d), cut = n;

      if (n > 76)
        for (cut = 76; cut > 0 && d[cut] != ' '; cut--)
          ;
      if (!cut)
        cut = n;
      printf ("            %.*s\n", (gint) cut, d);
      d += cut;
      while (*d == ' ')
        d++;
    }
}

static void
print_help_options (void)
{
  for (const GOptionEntry *e = option_entries; e->long_name; e++)
    {
      const char *arg = e->arg_description ? e->arg_description : "";
      const char *space = e->arg_description ? " " : "";
      char lhs[96];

      if (e->short_name)
        snprintf (lhs, sizeof lhs, "-%c, --%s%s%s", e->short_name, e->long_name, space, arg);
      else
        snprintf (lhs, sizeof lhs, "    --%s%s%s", e->long_name, space, arg);
      printf ("    %s\n", lhs);
      print_wrapped (e->description);
    }
}

static void
print_help_tail (void)
{
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
    "    sub_nodes (with --sub-url: one {url, subscribers, events, lost, disconnected} per\n"
    "    --sub-url) and sync_s (seconds until a probe had reached every subscriber),\n"
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
    "    pubsub-bench --url ws://127.0.0.1:8081/ws --sub-url ws://127.0.0.1:8082/ws \\\n"
    "                 --sub-url ws://127.0.0.1:8081/ws -s 100   (a cluster: publisher on node A,\n"
    "                 50 subscribers on each node; with -s 1 the one subscriber is on node B)\n"
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

static void
print_help (void)
{
  print_help_head ();
  print_help_options ();
  print_help_tail ();
}

/* ------------------------------------------------------------------ checking the options */

static gboolean
parse_options (gint    *argc,
               gchar ***argv)
{
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- load generator for pub/sub servers");
  g_autoptr (GError) error = NULL;

  g_option_context_set_help_enabled (ctx, FALSE);
  g_option_context_add_main_entries (ctx, option_entries, NULL);
  if (!g_option_context_parse (ctx, argc, argv, &error))
    {
      fprintf (stderr, "pubsub-bench: %s (see --help)\n", error->message);
      return FALSE;
    }
  return TRUE;
}

static void
resolve_mode_and_protocol (void)
{
  BenchOptions *o = &bench_options;

  if (!o->mode_name)
    o->mode_name = g_strdup ("fanout");
  if (!strcmp (o->mode_name, "fanout"))
    o->mode = BENCH_MODE_FANOUT;
  else if (!strcmp (o->mode_name, "idle"))
    o->mode = BENCH_MODE_IDLE;
  else if (!strcmp (o->mode_name, "slow"))
    o->mode = BENCH_MODE_SLOW;
  else
    bench_die ("--mode must be fanout, idle or slow, not '%s'", o->mode_name);
  if (!o->protocol || !strcmp (o->protocol, "pubsub"))
    o->nats = FALSE;
  else if (!strcmp (o->protocol, "nats"))
    o->nats = TRUE;
  else
    bench_die ("--protocol must be pubsub or nats, not '%s'", o->protocol);
}

static void
check_ranges (void)
{
  const BenchOptions *o = &bench_options;

  if (o->topics < 1 || o->topics > 1000000)
    bench_die ("--topics must be 1..1000000");
  if (o->publishers < 1 || o->publishers > 65535)
    bench_die ("--publishers must be 1..65535");
  if (o->window < 1)
    bench_die ("--window must be at least 1");
  if (o->rate < 0 || o->duration <= 0 || o->drain < 0 || o->warmup < 0 || o->hold < 0 ||
      o->sync_timeout < 0)
    bench_die ("--rate, --duration, --drain-timeout, --warmup, --hold and --sync-timeout must "
               "not be negative");
  if (o->size > 64 * 1024 * 1024)
    bench_die ("--size is at most 64 MiB");
}

/* Defaults that depend on other options, then the derived fields. */
static void
resolve_options (void)
{
  BenchOptions *o = &bench_options;

  resolve_mode_and_protocol ();
  if (!o->url)
    o->url = g_strdup (o->nats ? "ws://127.0.0.1:4222" : "ws://127.0.0.1:8080/ws");
  if (!o->prefix)
    o->prefix = g_strdup ("bench");
  if (o->subscribers < 0)
    o->subscribers = o->mode == BENCH_MODE_IDLE ? 1000 : o->mode == BENCH_MODE_SLOW ? 10 : 100;
  check_ranges ();
  if (o->concurrency < 1)
    o->concurrency = 1;
  o->payload_len = MAX (o->size, BENCH_MIN_PAYLOAD);
  o->ping_every = o->nats_ping_every > 0 ? o->nats_ping_every : MAX (1, o->window / 4);
  if (o->rate <= 0 && o->ping_every > o->window)
    o->ping_every = o->window;
  if (o->mode == BENCH_MODE_IDLE && o->pid <= 0)
    bench_die ("--mode idle needs --pid PID of the server");
  if (o->pid > 0 && !bench_proc_sample (o->pid).ok)
    bench_die ("cannot read /proc/%d/stat: is --pid right?", o->pid);
}

/* ------------------------------------------------------------------ main */

/* POST /topics on --http and on every other node a --sub-url names: a
 * cluster answers 409 where another node created it first, separate servers
 * each need their own. */
static void
create_topics (const BenchWsTarget *sub_targets,
               gint                 n_sub_targets)
{
  g_autoptr (GPtrArray) bases = g_ptr_array_new_with_free_func (g_free);

  g_ptr_array_add (bases, g_strdup (bench_options.http));
  for (gint i = 0; i < n_sub_targets; i++)
    {
      g_autofree gchar *base = g_strdup_printf ("http://%s", sub_targets[i].hostport);

      if (!g_ptr_array_find_with_equal_func (bases, base, g_str_equal, NULL))
        g_ptr_array_add (bases, g_steal_pointer (&base));
    }
  for (guint b = 0; b < bases->len; b++)
    for (gint t = 0; t < bench_options.topics; t++)
      bench_http_create_topic (g_ptr_array_index (bases, b), bench_topic_name (t));
}

int
main (int    argc,
      char **argv)
{
  BenchWsTarget target = { 0 };
  g_autofree BenchWsTarget *sub_targets = NULL;
  gint n_sub_targets;
  BenchMode mode;
  gint status;

  if (!parse_options (&argc, &argv))
    return 2;
  if (bench_options.help)
    {
      print_help ();
      return 0;
    }
  if (argc > 1)
    bench_die ("unexpected argument '%s' (see --help)", argv[1]);
  resolve_options ();
  mode = bench_options.mode;

  bench_install_signal_handlers ();
  /* wake-ups on time: --rate's schedule and the latency depend on them */
  prctl (PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
  bench_ws_target_parse (&target, bench_options.url);
  n_sub_targets = bench_options.sub_urls ? (gint) g_strv_length (bench_options.sub_urls) : 0;
  sub_targets = g_new0 (BenchWsTarget, (gsize) MAX (n_sub_targets, 1));
  for (gint i = 0; i < n_sub_targets; i++)
    bench_ws_target_parse (&sub_targets[i], bench_options.sub_urls[i]);
  if (!bench_options.http)
    bench_options.http = g_strdup_printf ("http://%s", target.hostport);
  bench_protocol_init (bench_options.prefix, bench_options.topics);
  if (!bench_options.nats && !bench_options.no_create)
    create_topics (sub_targets, n_sub_targets);

  bench_client_init (&target, n_sub_targets ? sub_targets : &target, MAX (n_sub_targets, 1),
                     bench_options.subscribers,
                     mode == BENCH_MODE_IDLE ? 0 : bench_options.publishers,
                     mode == BENCH_MODE_SLOW);
  status = mode == BENCH_MODE_IDLE ? bench_mode_idle () : bench_mode_publish ();
  for (gint i = 0; i < n_sub_targets; i++)
    bench_ws_target_clear (&sub_targets[i]);
  bench_ws_target_clear (&target);
  return status;
}
