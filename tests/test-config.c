/* test-config.c: settings (SPEC §1): option > environment > file > default,
 * --config and $XDG_CONFIG_HOME/pubsub/pubsub.conf, and every bad value an
 * error naming the key with exit status 2
 *
 * Each test runs under G_TEST_OPTION_ISOLATE_DIRS, so $XDG_CONFIG_HOME is a
 * fresh empty directory of its own, which the daemon inherits.
 *
 * SPDX-License-Identifier: MIT
 */
#include <string.h>

#include "pubsub-test-util.h"

/* Writes @contents to a file in this test's own directory; returns its path. */
static char *
write_config (const char *name,
              const char *contents)
{
  g_autofree char *dir = g_build_filename (g_get_user_data_dir (), "configs", NULL);
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autoptr(GError) error = NULL;

  g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
  g_file_set_contents (path, contents, -1, &error);
  g_assert_no_error (error);
  return g_steal_pointer (&path);
}

/* $XDG_CONFIG_HOME/pubsub/pubsub.conf */
static char *
write_default_config (const char *contents)
{
  g_autofree char *dir = g_build_filename (g_get_user_config_dir (), "pubsub", NULL);
  g_autofree char *path = g_build_filename (dir, "pubsub.conf", NULL);
  g_autoptr(GError) error = NULL;

  g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
  g_file_set_contents (path, contents, -1, &error);
  g_assert_no_error (error);
  return g_steal_pointer (&path);
}

/* ---- bad values --------------------------------------------------------- */

typedef struct {
  const char *name;
  const char *file;          /* contents for --config FILE, or NULL */
  const char *env[3];        /* NAME=VALUE */
  const char *args[6];       /* extra arguments */
  const char *expect[3];     /* substrings of stderr */
  gboolean    default_file;  /* write `file` as $XDG_CONFIG_HOME/pubsub/pubsub.conf */
} BadCase;


static const BadCase bad_cases[] = {
  /* config file */
  { "file/unknown-key", "[pubsub]\nqueue_size=5\n", {}, {}, { "queue_size" } },
  { "file/unknown-key-typo", "[pubsub]\nlisten=127.0.0.1:0\nlisen=x\n", {}, {}, { "lisen" } },
  { "file/unknown-group", "[server]\nlisten=127.0.0.1:0\n", {}, {}, { "server" } },
  { "file/extra-group", "[pubsub]\nlisten=127.0.0.1:0\n[more]\nx=1\n", {}, {}, { "more" } },
  { "file/not-a-number", "[pubsub]\nqueue-size=lots\n", {}, {}, { "queue-size", "lots" } },
  { "file/fraction", "[pubsub]\nmax-connections=1.5\n", {}, {}, { "max-connections" } },
  { "file/negative", "[pubsub]\nhistory-size=-1\n", {}, {}, { "history-size" } },
  { "file/queue-size-zero", "[pubsub]\nqueue-size=0\n", {}, {}, { "queue-size" } },
  { "file/heartbeat-huge", "[pubsub]\nheartbeat-interval=99999999\n", {}, {},
    { "heartbeat-interval" } },
  { "file/overflow", "[pubsub]\nmax-topics=99999999999999999999\n", {}, {}, { "max-topics" } },
  { "file/max-message-bytes-tiny", "[pubsub]\nmax-message-bytes=1\n", {}, {},
    { "max-message-bytes" } },
  { "file/shutdown-grace-huge", "[pubsub]\nshutdown-grace=100000000\n", {}, {},
    { "shutdown-grace" } },
  { "file/empty-number", "[pubsub]\nqueue-size=\n", {}, {}, { "queue-size" } },
  { "file/listen-nohost", "[pubsub]\nlisten=nohost\n", {}, {}, { "listen", "nohost" } },
  { "file/listen-port-range", "[pubsub]\nlisten=1.2.3.4:99999\n", {}, {}, { "listen" } },
  { "file/listen-hostname", "[pubsub]\nlisten=example.com:80\n", {}, {}, { "listen" } },
  { "file/bus", "[pubsub]\nbus=tcp\n", {}, {}, { "bus", "tcp" } },
  { "file/bus-case", "[pubsub]\nbus=Session\n", {}, {}, { "bus" } },
  { "file/empty-api-key", "[pubsub]\napi-key=\n", {}, {}, { "api-key" } },
  { "file/syntax", "this is not a key file\n", {}, {}, { "bad.conf" } },
  /* GKeyFile returns these values with an error; they were taken as they
   * came (a\qb and 5) until tests/fuzz/fuzz-config found it. */
  { "file/bad-escape", "[pubsub]\napi-key=a\\qb\n", {}, {}, { "api-key" } },
  { "file/trailing-backslash", "[pubsub]\nqueue-size=5\\\n", {}, {}, { "queue-size" } },
  /* GLib 2.74 sets its error twice (and warns) for both at once. */
  { "file/bad-escape-then-backslash", "[pubsub]\napi-key=a\\q\\\n", {}, {}, { "api-key" } },
  /* GKeyFile takes names that are not UTF-8; the message shows them made
   * valid (found by tests/fuzz/fuzz-config). */
  { "file/key-not-utf8", "[pubsub]\nk\xff" "ey=1\n", {}, {},
    { "unknown key", "k\xef\xbf\xbd" "ey" } },
  { "file/group-not-utf8", "[pub\xff" "sub]\n", {}, {},
    { "unknown group", "pub\xef\xbf\xbd" "sub" } },
  /* GKeyFile's own message quotes the bad line as it is. */
  { "file/syntax-not-utf8", "[p\xff\x06u]\nlisten=[::1]:0\n", {}, {}, { "bad.conf" } },
  /* the default file */
  { "xdg/not-a-number", "[pubsub]\nqueue-size=lots\n", {}, {}, { "queue-size", "pubsub.conf" },
    TRUE },
  { "xdg/unknown-key", "[pubsub]\nfrobnicate=1\n", {}, {}, { "frobnicate", "pubsub.conf" },
    TRUE },
  /* environment */
  { "env/queue-size-word", NULL, { "PUBSUB_QUEUE_SIZE=abc" }, {},
    { "queue-size", "PUBSUB_QUEUE_SIZE" } },
  { "env/queue-size-zero", NULL, { "PUBSUB_QUEUE_SIZE=0" }, {}, { "queue-size" } },
  { "env/history-size-negative", NULL, { "PUBSUB_HISTORY_SIZE=-5" }, {}, { "history-size" } },
  { "env/heartbeat-huge", NULL, { "PUBSUB_HEARTBEAT_INTERVAL=99999999" }, {},
    { "heartbeat-interval" } },
  { "env/max-connections-zero", NULL, { "PUBSUB_MAX_CONNECTIONS=0" }, {},
    { "max-connections" } },
  { "env/addr-nohost", NULL, { "ADDR=nohost" }, {}, { "listen", "ADDR" } },
  { "env/addr-port-range", NULL, { "ADDR=1.2.3.4:99999" }, {}, { "listen" } },
  { "env/addr-hostname", NULL, { "ADDR=example.com:80" }, {}, { "listen" } },
  { "env/bus", NULL, { "PUBSUB_BUS=tcp" }, {}, { "bus" } },
  /* options */
  { "option/queue-size-zero", NULL, {}, { "--queue-size", "0" }, { "queue-size" } },
  { "option/queue-size-word", NULL, {}, { "--queue-size", "abc" }, { "queue-size" } },
  { "option/queue-size-negative", NULL, {}, { "--queue-size", "-1" }, { "queue-size" } },
  { "option/queue-size-hex", NULL, {}, { "--queue-size", "0x10" }, { "queue-size" } },
  { "option/queue-size-space", NULL, {}, { "--queue-size", "5 " }, { "queue-size" } },
  { "option/queue-size-missing", NULL, {}, { "--queue-size" }, { "queue-size" } },
  { "option/history-size-huge", NULL, {}, { "--history-size", "1000001" },
    { "history-size" } },
  { "option/heartbeat-huge", NULL, {}, { "--heartbeat-interval", "99999999" },
    { "heartbeat-interval" } },
  { "option/max-topics-zero", NULL, {}, { "--max-topics", "0" }, { "max-topics" } },
  { "option/max-message-bytes-huge", NULL, {}, { "--max-message-bytes", "4294967296" },
    { "max-message-bytes" } },
  { "option/shutdown-grace-word", NULL, {}, { "--shutdown-grace", "soon" },
    { "shutdown-grace" } },
  { "option/listen-nohost", NULL, {}, { "--listen", "nohost" }, { "listen" } },
  { "option/listen-port-range", NULL, {}, { "--listen", "1.2.3.4:99999" }, { "listen" } },
  { "option/listen-hostname", NULL, {}, { "--listen", "example.com:80" }, { "listen" } },
  { "option/listen-no-port", NULL, {}, { "--listen", "127.0.0.1" }, { "listen" } },
  { "option/listen-empty-port", NULL, {}, { "--listen", "127.0.0.1:" }, { "listen" } },
  { "option/listen-negative-port", NULL, {}, { "--listen", "127.0.0.1:-1" }, { "listen" } },
  { "option/listen-port-word", NULL, {}, { "--listen", "127.0.0.1:http" }, { "listen" } },
  { "option/listen-v6-unclosed", NULL, {}, { "--listen", "[::1:80" }, { "listen" } },
  { "option/listen-empty", NULL, {}, { "--listen", "" }, { "listen" } },
  { "option/bus", NULL, {}, { "--bus", "tcp" }, { "bus" } },
  { "option/bus-empty", NULL, {}, { "--bus", "" }, { "bus" } },
  { "option/api-key-empty", NULL, {}, { "--api-key", "" }, { "api-key" } },
  { "option/missing-config", NULL, {}, { "--config", "/nonexistent/pubsub.conf" },
    { "/nonexistent/pubsub.conf" } },
  { "option/unknown", NULL, {}, { "--frobnicate" }, { "frobnicate" } },
  { "option/unknown-short", NULL, {}, { "-Z" }, { "-Z" } },
  { "option/stray-argument", NULL, {}, { "extra" }, { "extra" } },
  { "option/stray-after-options", NULL, {}, { "--queue-size", "5", "more" }, { "more" } },
};

static void
test_bad_value (gconstpointer data)
{
  const BadCase *row = data;
  g_autoptr(GPtrArray) args = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) env = g_ptr_array_new ();
  g_autofree char *path = NULL;
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  int status;

  if (row->file != NULL && row->default_file)
    path = write_default_config (row->file);
  else if (row->file != NULL)
    {
      path = write_config ("bad.conf", row->file);
      g_ptr_array_add (args, g_strdup ("--config"));
      g_ptr_array_add (args, g_strdup (path));
    }
  for (gsize i = 0; i < G_N_ELEMENTS (row->args) && row->args[i] != NULL; i++)
    g_ptr_array_add (args, g_strdup (row->args[i]));
  g_ptr_array_add (args, NULL);
  for (gsize i = 0; i < G_N_ELEMENTS (row->env) && row->env[i] != NULL; i++)
    g_ptr_array_add (env, (gpointer) row->env[i]);
  g_ptr_array_add (env, NULL);

  status = pubsub_test_run ((const char * const *) env->pdata,
                            (const char * const *) args->pdata, &out, &err);
  g_test_message ("exit %d, stderr: %s", status, err);
  g_assert_cmpint (status, ==, 2);
  g_assert_null (strstr (err, "Listening on"));
  /* Messages are UTF-8 whatever the input was (GError's rule), and a bad
   * configuration is the user's mistake, not a warning about our code. */
  g_assert_true (g_utf8_validate (err, -1, NULL));
  g_assert_null (strstr (err, "-WARNING **"));
  g_assert_null (strstr (err, "-CRITICAL **"));
  for (gsize i = 0; i < G_N_ELEMENTS (row->expect) && row->expect[i] != NULL; i++)
    if (strstr (err, row->expect[i]) == NULL)
      g_test_fail_printf ("stderr does not name \"%s\": %s", row->expect[i], err);
}

/* ---- precedence --------------------------------------------------------- */

static PubsubTestServer *
start_with (const char         *file,
            const char * const *env,
            const char * const *args)
{
  g_autoptr(GPtrArray) all = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *path = NULL;

  if (file != NULL)
    {
      path = write_config ("pubsub.conf", file);
      g_ptr_array_add (all, g_strdup ("--config"));
      g_ptr_array_add (all, g_strdup (path));
    }
  for (gsize i = 0; args != NULL && args[i] != NULL; i++)
    g_ptr_array_add (all, g_strdup (args[i]));
  g_ptr_array_add (all, NULL);
  return pubsub_test_server_start_full (PUBSUB_TEST_SERVER_NO_LISTEN, env,
                                        (const char * const *) all->pdata);
}

static void
assert_health_at (const char *host,
                  guint16     port)
{
  PubsubTestServer fake = { 0, };
  g_autoptr(PubsubTestResponse) response = NULL;

  fake.http_base = g_strdup_printf ("http://%s:%u", host, port);
  response = pubsub_test_request (&fake, "GET", "/health", NULL, NULL);
  g_assert_cmpuint (response->status, ==, 200);
  g_clear_object (&fake.session);
  g_free (fake.http_base);
}

typedef struct {
  const char *name;
  const char *file;
  const char *env[3];
  const char *args[3];
  const char *host;       /* as logged */
} ListenCase;

/* Distinct loopback addresses tell the sources apart. */
static const ListenCase listen_cases[] = {
  { "file", "[pubsub]\nlisten=127.0.0.2:0\n", {}, {}, "127.0.0.2" },
  { "env-over-file", "[pubsub]\nlisten=127.0.0.2:0\n", { "ADDR=127.0.0.3:0" }, {},
    "127.0.0.3" },
  { "option-over-env", "[pubsub]\nlisten=127.0.0.2:0\n", { "ADDR=127.0.0.3:0" },
    { "--listen", "127.0.0.4:0" }, "127.0.0.4" },
  { "option-over-file", "[pubsub]\nlisten=127.0.0.2:0\n", {}, { "--listen", "127.0.0.4:0" },
    "127.0.0.4" },
  { "env", NULL, { "ADDR=127.0.0.3:0" }, {}, "127.0.0.3" },
  { "seed-form", NULL, { "ADDR=:0" }, {}, "" },
  { "seed-form-file", "[pubsub]\nlisten=:0\n", {}, {}, "" },
  { "localhost", NULL, {}, { "--listen", "localhost:0" }, "127.0.0.1" },
};

static void
test_listen_precedence (gconstpointer data)
{
  const ListenCase *row = data;
  g_autoptr(PubsubTestServer) server = start_with (row->file, row->env, row->args);

  g_assert_cmpstr (server->host, ==, row->host);
  assert_health_at (*row->host != '\0' ? row->host : "127.0.0.1", server->port);
  /* ":PORT" means all interfaces: another loopback address reaches it too. */
  if (*row->host == '\0')
    assert_health_at ("127.0.0.5", server->port);
  pubsub_test_server_stop (server);
}

/* Nothing set: 127.0.0.1:8080. Held by us (or anyone), so the daemon must
 * fail to listen there, and say where. */
static void
test_listen_default (void)
{
  g_autoptr(GSocket) blocker = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                             G_SOCKET_PROTOCOL_TCP, NULL);
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) address = g_inet_socket_address_new (loopback, 8080);
  const char *args[] = { "--bus", "none", NULL };
  g_autofree char *err = NULL;
  g_autoptr(GError) error = NULL;
  int status;

  if (g_socket_bind (blocker, address, FALSE, &error))
    g_socket_listen (blocker, &error);
  if (error != NULL)
    g_test_message ("8080 is taken already (%s): fine, it is busy either way", error->message);

  status = pubsub_test_run (NULL, args, NULL, &err);
  g_test_message ("exit %d: %s", status, err);
  g_assert_cmpint (status, !=, 0);
  g_assert_cmpint (status, !=, 2);   /* not a bad setting */
  g_assert_nonnull (strstr (err, "127.0.0.1:8080"));
}

typedef struct {
  const char *name;
  const char *file;
  const char *env[3];
  const char *args[3];
  const char *key;        /* the key that works, or NULL for no auth */
  const char *wrong[3];   /* keys that must not */
} ApiKeyCase;

static const ApiKeyCase api_key_cases[] = {
  { "default", NULL, {}, {}, NULL, {} },
  { "file", "[pubsub]\napi-key=filekey\n", {}, {}, "filekey", { "envkey" } },
  { "env", NULL, { "API_KEY=envkey" }, {}, "envkey", { "filekey" } },
  { "env-over-file", "[pubsub]\napi-key=filekey\n", { "API_KEY=envkey" }, {}, "envkey",
    { "filekey" } },
  { "option-over-env", "[pubsub]\napi-key=filekey\n", { "API_KEY=envkey" },
    { "--api-key", "optkey" }, "optkey", { "filekey", "envkey" } },
  { "option-over-file", "[pubsub]\napi-key=filekey\n", {}, { "--api-key", "optkey" },
    "optkey", { "filekey" } },
};

static void
test_api_key_precedence (gconstpointer data)
{
  const ApiKeyCase *row = data;
  const char *args[] = { "--listen", "127.0.0.1:0", NULL, NULL, NULL };
  g_autoptr(PubsubTestServer) server = NULL;

  if (row->args[0] != NULL)
    {
      args[2] = row->args[0];
      args[3] = row->args[1];
    }
  server = start_with (row->file, row->env, args);
  if (row->key == NULL)
    g_assert_cmpuint (pubsub_test_http (server, "GET", "/topics", NULL, NULL, NULL), ==, 200);
  else
    {
      g_assert_cmpuint (pubsub_test_http (server, "GET", "/topics", NULL, NULL, NULL), ==, 401);
      g_assert_cmpuint (pubsub_test_http (server, "GET", "/topics", NULL, NULL,
                                          "X-API-Key", row->key, NULL), ==, 200);
      for (gsize i = 0; i < G_N_ELEMENTS (row->wrong) && row->wrong[i] != NULL; i++)
        g_assert_cmpuint (pubsub_test_http (server, "GET", "/topics", NULL, NULL,
                                            "X-API-Key", row->wrong[i], NULL), ==, 401);
    }
  pubsub_test_server_stop (server);
  if (row->key != NULL)
    {
      g_autofree char *log = pubsub_test_server_dup_own_log (server);

      g_assert_null (strstr (log, row->key));
    }
}

/* history-size is exactly observable: a replay asking for everything gets
 * min(published, history-size). */
typedef struct {
  const char *name;
  const char *file;
  const char *env[3];
  const char *args[3];
  guint       history;
} HistoryCase;

static const HistoryCase history_cases[] = {
  { "default", NULL, {}, {}, 100 },
  { "file", "[pubsub]\nhistory-size=3\n", {}, {}, 3 },
  { "env-over-file", "[pubsub]\nhistory-size=3\n", { "PUBSUB_HISTORY_SIZE=4" }, {}, 4 },
  { "option-over-env", "[pubsub]\nhistory-size=3\n", { "PUBSUB_HISTORY_SIZE=4" },
    { "--history-size", "5" }, 5 },
};

static void
test_history_precedence (gconstpointer data)
{
  const HistoryCase *row = data;
  const char *args[] = { "--listen", "127.0.0.1:0", NULL, NULL, NULL };
  g_autoptr(PubsubTestServer) server = NULL;
  g_autoptr(PubsubTestWs) ws = NULL;
  guint published = 120;
  guint events = 0;

  if (row->args[0] != NULL)
    {
      args[2] = row->args[0];
      args[3] = row->args[1];
    }
  server = start_with (row->file, row->env, args);
  ws = pubsub_test_ws_connect (server, NULL, NULL);
  pubsub_test_create_topic (server, "h", NULL);
  for (guint i = 0; i < published; i++)
    g_free (pubsub_test_ws_publish (ws, "h", "0"));
  pubsub_test_ws_subscribe (ws, "h", 1000);
  pubsub_test_ws_send (ws, "{\"type\":\"ping\",\"request_id\":\"end\"}");
  for (;;)
    {
      g_autoptr(PubsubTestFrame) frame = pubsub_test_ws_next (ws, 5000);
      const char *type = pubsub_test_frame_type (frame);

      if (g_strcmp0 (type, "pong") == 0)
        break;
      g_assert_cmpstr (type, ==, "event");
      events++;
    }
  g_assert_cmpuint (events, ==, MIN (row->history, published));
  g_clear_pointer (&ws, pubsub_test_ws_free);
  pubsub_test_server_stop (server);
}

/* queue-size: a subscriber that does not read asks for a replay of frames of
 * 32 KiB, more than the kernel's socket buffers hold (at most
 * net.ipv4.tcp_wmem's maximum, plus a little on the receiving side) plus the
 * bound. The replay is paced by the client, so it fills the queue to exactly
 * queue-size and waits; the next frame owed to the subscriber (the ack of a
 * second subscribe) overflows it, and it is cut. The daemon's debug log names
 * the bound that was exceeded. With a bound larger than the whole replay,
 * nothing overflows and the second subscribe goes through. */
#define QUEUE_FRAME_BYTES (32 * 1024)

static guint
kernel_frames (void)
{
  g_autofree char *text = NULL;
  guint64 wmem_max = 4 * 1024 * 1024;

  if (g_file_get_contents ("/proc/sys/net/ipv4/tcp_wmem", &text, NULL, NULL))
    {
      g_auto(GStrv) fields = g_strsplit_set (g_strstrip (text), " \t", -1);
      guint n = g_strv_length (fields);

      if (n >= 3)
        wmem_max = g_ascii_strtoull (fields[n - 1], NULL, 10);
    }
  /* Plus the receive side (4 KiB asked, doubled by the kernel) and slack. */
  return (guint) ((wmem_max + 64 * 1024) / QUEUE_FRAME_BYTES) + 8;
}

typedef struct {
  const char *name;
  const char *file;
  const char *env[3];
  const char *args[3];
  guint       queue_size;
} QueueCase;

static const QueueCase queue_cases[] = {
  { "default", NULL, {}, {}, 100 },
  { "file", "[pubsub]\nqueue-size=7\n", {}, {}, 7 },
  { "file-large", "[pubsub]\nqueue-size=1000\n", {}, {}, 1000 },
  { "env-over-file", "[pubsub]\nqueue-size=1000\n", { "PUBSUB_QUEUE_SIZE=8" }, {}, 8 },
  { "option-over-env", "[pubsub]\nqueue-size=7\n", { "PUBSUB_QUEUE_SIZE=8" },
    { "--queue-size", "9" }, 9 },
  { "option-large-over-env", NULL, { "PUBSUB_QUEUE_SIZE=8" }, { "--queue-size", "1000" }, 1000 },
};

static void
test_queue_size_precedence (gconstpointer data)
{
  const QueueCase *row = data;
  gboolean expect_cut = row->queue_size < 1000;
  guint replay = expect_cut ? kernel_frames () + row->queue_size + 10 : 300;
  g_autofree char *history = g_strdup_printf ("%u", replay);
  const char *args[] = { "--listen", "127.0.0.1:0", "--history-size", history, NULL, NULL, NULL };
  g_autoptr(GPtrArray) env = g_ptr_array_new ();
  g_autoptr(PubsubTestServer) server = NULL;
  g_autoptr(PubsubTestWs) publisher = NULL;
  g_autoptr(PubsubTestRawWs) raw = NULL;
  g_autofree char *pad = g_strnfill (QUEUE_FRAME_BYTES - 100, 'q');
  g_autofree char *payload = g_strdup_printf ("\"%s\"", pad);
  g_autofree char *subscribe = NULL;
  g_autofree char *cut_line = NULL;
  gboolean cut;
  gint64 deadline;

  g_assert_cmpuint (replay, <, 1000);
  if (row->args[0] != NULL)
    {
      args[4] = row->args[0];
      args[5] = row->args[1];
    }
  g_ptr_array_add (env, (gpointer) "G_MESSAGES_DEBUG=pubsubd");
  for (gsize i = 0; i < G_N_ELEMENTS (row->env) && row->env[i] != NULL; i++)
    g_ptr_array_add (env, (gpointer) row->env[i]);
  g_ptr_array_add (env, NULL);
  server = start_with (row->file, (const char * const *) env->pdata, args);

  publisher = pubsub_test_ws_connect (server, NULL, NULL);
  pubsub_test_create_topic (server, "q", NULL);
  pubsub_test_create_topic (server, "marker", NULL);
  for (guint i = 0; i < replay; i++)
    g_free (pubsub_test_ws_publish (publisher, "q", payload));

  /* Subscribe to the replay, then to a marker topic: once the marker counts
   * a subscriber, its ack found room in the queue. */
  raw = pubsub_test_raw_ws_connect (server, "/ws", 4096, NULL);
  g_assert_nonnull (raw);
  subscribe = g_strdup_printf ("{\"type\":\"subscribe\",\"topic\":\"q\",\"client_id\":\"r\","
                               "\"last_n\":%u}", replay);
  pubsub_test_raw_ws_send_text (raw, subscribe);
  pubsub_test_raw_ws_send_text (raw, "{\"type\":\"subscribe\",\"topic\":\"marker\","
                                     "\"client_id\":\"r\"}");
  cut_line = g_strdup_printf ("subscriber exceeded its queue of %u frames", row->queue_size);
  deadline = g_get_monotonic_time () + (gint64) 10 * G_USEC_PER_SEC * pubsub_test_timeout_scale ();
  while (strstr (server->log->str, "exceeded its queue") == NULL &&
         pubsub_test_topic_subscribers (server, "marker", NULL) != 1)
    {
      if (g_get_monotonic_time () > deadline)
        {
          g_printerr ("%s", server->log->str);
          g_error ("the replay was neither cut nor completed (the daemon's log is above)");
        }
      pubsub_test_iterate ();
    }
  cut = strstr (server->log->str, "exceeded its queue") != NULL;
  g_test_message ("a replay of %u frames of %u bytes: %s", replay, QUEUE_FRAME_BYTES,
                  cut ? "cut" : "not cut");
  if (!expect_cut)
    {
      g_assert_false (cut);
      g_assert_cmpint (pubsub_test_topic_subscribers (server, "q", NULL), ==, 1);
    }
  else
    {
      g_assert_true (cut);
      if (strstr (server->log->str, cut_line) == NULL)
        g_test_fail_printf ("expected \"%s\" in the log", cut_line);
      g_assert_cmpint (pubsub_test_topic_subscribers (server, "marker", NULL), ==, 0);
      g_assert_cmpint (pubsub_test_topic_subscribers (server, "q", NULL), ==, 0);
    }

  g_clear_pointer (&raw, pubsub_test_raw_ws_free);
  g_clear_pointer (&publisher, pubsub_test_ws_free);
  pubsub_test_server_stop (server);
}

/* ---- config files ------------------------------------------------------- */

/* $XDG_CONFIG_HOME/pubsub/pubsub.conf is read by default; --config replaces
 * it (a broken default file does not matter then). */
static void
test_config_files (void)
{
  g_autofree char *default_path = write_default_config ("[pubsub]\nlisten=127.0.0.2:0\n"
                                                        "api-key=xdgkey\n");
  g_autofree char *other = write_config ("other.conf", "[pubsub]\nlisten=127.0.0.3:0\n");
  g_autofree char *logged = g_strdup_printf ("Settings read from %s", default_path);
  g_autofree char *logged_other = g_strdup_printf ("Settings read from %s", other);
  const char *with_config[] = { "--config", other, NULL };
  PubsubTestServer *server;

  server = pubsub_test_server_start_full (PUBSUB_TEST_SERVER_NO_LISTEN, NULL, NULL);
  g_assert_cmpstr (server->host, ==, "127.0.0.2");
  g_assert_cmpuint (pubsub_test_http (server, "GET", "/topics", NULL, NULL, NULL), ==, 401);
  g_assert_cmpuint (pubsub_test_http (server, "GET", "/topics", NULL, NULL,
                                      "X-API-Key", "xdgkey", NULL), ==, 200);
  pubsub_test_server_wait_for_log (server, logged, 5000);
  pubsub_test_server_stop (server);
  {
    g_autofree char *log = pubsub_test_server_dup_own_log (server);

    g_assert_null (strstr (log, "xdgkey"));
  }
  pubsub_test_server_free (server);

  /* --config wins over the default file entirely: no key from it. */
  server = pubsub_test_server_start_full (PUBSUB_TEST_SERVER_NO_LISTEN, NULL, with_config);
  g_assert_cmpstr (server->host, ==, "127.0.0.3");
  g_assert_cmpuint (pubsub_test_http (server, "GET", "/topics", NULL, NULL, NULL), ==, 200);
  pubsub_test_server_wait_for_log (server, logged_other, 5000);
  pubsub_test_server_stop (server);
  pubsub_test_server_free (server);

  /* A broken default file is not read when --config names another. */
  g_free (write_default_config ("[pubsub]\nqueue-size=broken\n"));
  server = pubsub_test_server_start_full (PUBSUB_TEST_SERVER_NO_LISTEN, NULL, with_config);
  g_assert_cmpstr (server->host, ==, "127.0.0.3");
  g_assert_cmpuint (pubsub_test_http (server, "GET", "/health", NULL, NULL, NULL), ==, 200);
  pubsub_test_server_stop (server);
  pubsub_test_server_free (server);
}

/* Every key is accepted in the file, with its edge values. */
static void
test_all_keys (void)
{
  g_autoptr(PubsubTestServer) server = NULL;
  const char *file = "# every key\n"
                     "[pubsub]\n"
                     "listen = 127.0.0.1:0\n"
                     "api-key=k\n"
                     "queue-size=1\n"
                     "history-size=0\n"
                     "heartbeat-interval=0\n"
                     "max-message-bytes=64\n"
                     "max-connections=1\n"
                     "max-topics=1\n"
                     "shutdown-grace=0\n"
                     "bus=none\n";
  const char *args[] = { "--bus", "none", NULL };
  g_autoptr(PubsubTestResponse) second = NULL;

  server = start_with (file, NULL, args);
  pubsub_test_create_topic (server, "one", "k");
  /* max-topics=1 is in force. */
  second = pubsub_test_request (server, "POST", "/topics", "{\"name\":\"two\"}",
                                "X-API-Key", "k", NULL);
  g_assert_cmpuint (second->status, >=, 400);
  pubsub_test_server_stop (server);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  pubsub_test_quiet_debug ();

  for (gsize i = 0; i < G_N_ELEMENTS (bad_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/config/bad/%s", bad_cases[i].name);

      g_test_add_data_func (path, &bad_cases[i], test_bad_value);
    }
  g_test_add_func ("/config/listen/default", test_listen_default);
  for (gsize i = 0; i < G_N_ELEMENTS (listen_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/config/listen/%s", listen_cases[i].name);

      g_test_add_data_func (path, &listen_cases[i], test_listen_precedence);
    }
  for (gsize i = 0; i < G_N_ELEMENTS (api_key_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/config/api-key/%s", api_key_cases[i].name);

      g_test_add_data_func (path, &api_key_cases[i], test_api_key_precedence);
    }
  for (gsize i = 0; i < G_N_ELEMENTS (history_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/config/history-size/%s",
                                               history_cases[i].name);

      g_test_add_data_func (path, &history_cases[i], test_history_precedence);
    }
  for (gsize i = 0; i < G_N_ELEMENTS (queue_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/config/queue-size/%s", queue_cases[i].name);

      g_test_add_data_func (path, &queue_cases[i], test_queue_size_precedence);
    }
  g_test_add_func ("/config/files", test_config_files);
  g_test_add_func ("/config/all-keys", test_all_keys);

  return g_test_run ();
}
