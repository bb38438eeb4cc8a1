/* bench-options.h: the command line of pubsub-bench, as every part reads it
 *
 * pubsub-bench.c parses and checks the options into bench_options once,
 * before any connection is made, and fills in the derived fields; from then
 * on the other parts only read it. It is a global because the hot loop reads
 * a few of its fields on every frame and a process makes exactly one run.
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  BENCH_MODE_FANOUT,
  BENCH_MODE_IDLE,
  BENCH_MODE_SLOW,
} BenchMode;

typedef struct {
  /* as given; the strings are owned and hold their defaults once resolved */
  gchar     *mode_name;
  gchar     *protocol;
  gchar     *url;
  gchar    **sub_urls;      /* --sub-url, NULL-terminated; NULL: the subscribers use url */
  gchar     *http;
  gchar     *api_key;
  gchar     *prefix;
  gint       subscribers;
  gint       publishers;
  gint       topics;
  gint       window;
  gint       size;
  gint       pid;
  gint       concurrency;
  gint       rcvbuf;
  gint       nats_ping_every;
  gint       spin_us;
  gdouble    duration;
  gdouble    rate;
  gdouble    warmup;
  gdouble    drain;
  gdouble    hold;
  gdouble    setup_timeout;
  gdouble    sync_timeout;
  gboolean   json;
  gboolean   verbose;
  gboolean   help;
  gboolean   no_create;
  gboolean   no_kernel_ts;

  /* derived from the above by pubsub-bench.c */
  BenchMode  mode;
  gboolean   nats;
  gint       payload_len;   /* the JSON string token, quotes included */
  gint       ping_every;    /* nats: a PING after this many PUBs */
} BenchOptions;

extern BenchOptions bench_options;

G_END_DECLS
