/* pubsub-test-util.c: fixtures for tests that drive the real pubsubd
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include "pubsub-test-util.h"

/* ---------------------------------------------------------------------- */
/* Setup                                                                  */

static GLogFunc previous_handler;
static gpointer previous_handler_data;

static void
quiet_log_handler (const char     *domain,
                   GLogLevelFlags  level,
                   const char     *message,
                   gpointer        user_data)
{
  if (level & (G_LOG_LEVEL_DEBUG | G_LOG_LEVEL_INFO))
    return;
  previous_handler (domain, level, message, previous_handler_data);
}

void
pubsub_test_quiet_debug (void)
{
  if (g_getenv ("G_MESSAGES_DEBUG") != NULL)
    return;
  previous_handler = g_log_set_default_handler (quiet_log_handler, NULL);
}

/* ---------------------------------------------------------------------- */
/* Timing                                                                 */

gboolean
pubsub_test_under_wrapper (void)
{
  const char *wrapper = g_getenv ("PUBSUBD_WRAPPER");

  return wrapper != NULL && *wrapper != '\0';
}

guint
pubsub_test_timeout_scale (void)
{
  return pubsub_test_under_wrapper () ? 10 : 1;
}

/**
 * pubsub_test_scale_count:
 *
 * Returns: @under_wrapper when the daemon runs under a wrapper (valgrind is
 *   some 20–50 times slower), else @normal
 */
guint
pubsub_test_scale_count (guint normal,
                         guint under_wrapper)
{
  return pubsub_test_under_wrapper () ? under_wrapper : normal;
}

static gboolean
wake_up (gpointer user_data)
{
  return G_SOURCE_CONTINUE;
}

void
pubsub_test_iterate (void)
{
  static guint tick_id;

  /* A periodic no-op source bounds how long one blocking iteration waits, so
   * deadlines are checked even when nothing happens. */
  if (tick_id == 0)
    {
      tick_id = g_timeout_add (10, wake_up, NULL);
      g_source_set_static_name (g_main_context_find_source_by_id (NULL, tick_id),
                                "pubsub-test-tick");
    }
  g_main_context_iteration (NULL, TRUE);
}

void
pubsub_test_wait_until (PubsubTestCondition  condition,
                        gpointer             user_data,
                        guint                deadline_ms,
                        const char          *what)
{
  gint64 deadline = g_get_monotonic_time () +
                    (gint64) deadline_ms * pubsub_test_timeout_scale () * 1000;

  while (!condition (user_data))
    {
      if (g_get_monotonic_time () > deadline)
        g_error ("timed out after %u ms waiting for %s",
                 deadline_ms * pubsub_test_timeout_scale (), what);
      pubsub_test_iterate ();
    }
}

static gboolean
flag_is_set (gpointer user_data)
{
  return *(const gboolean *) user_data;
}

void
pubsub_test_wait_flag (const gboolean *flag,
                       guint           deadline_ms,
                       const char     *what)
{
  pubsub_test_wait_until (flag_is_set, (gpointer) flag, deadline_ms, what);
}

/* ---------------------------------------------------------------------- */
/* The daemon                                                             */

static const char *
pubsubd_path (void)
{
  const char *path = g_getenv ("PUBSUBD");

  if (path == NULL || *path == '\0')
    g_error ("$PUBSUBD is not set: run the tests with meson test");
  return path;
}

/* In the child, before exec: die with the test. A test that aborts (a
 * failed assertion) must not leave daemons behind. */
static void
die_with_parent (gpointer user_data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

/* The child's environment: ours minus every pubsubd setting, plus @env. */
static GSubprocessLauncher *
new_launcher (GSubprocessFlags    flags,
              const char * const *env)
{
  GSubprocessLauncher *launcher = g_subprocess_launcher_new (flags);
  g_auto(GStrv) parent_env = g_get_environ ();

  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);

  for (gsize i = 0; parent_env[i] != NULL; i++)
    {
      g_autofree char *name = g_strndup (parent_env[i], strcspn (parent_env[i], "="));

      if (g_str_equal (name, "ADDR") || g_str_equal (name, "API_KEY") ||
          g_str_has_prefix (name, "PUBSUB_"))
        g_subprocess_launcher_unsetenv (launcher, name);
    }
  /* G_TEST_OPTION_ISOLATE_DIRS points XDG_CONFIG_HOME and friends at
   * /dev/null for children; give the daemon this test's own directories, so
   * that $XDG_CONFIG_HOME/pubsub/pubsub.conf is this test's business. */
  g_subprocess_launcher_setenv (launcher, "HOME", g_get_home_dir (), TRUE);
  g_subprocess_launcher_setenv (launcher, "XDG_CONFIG_HOME", g_get_user_config_dir (), TRUE);
  g_subprocess_launcher_setenv (launcher, "XDG_DATA_HOME", g_get_user_data_dir (), TRUE);
  g_subprocess_launcher_setenv (launcher, "XDG_CACHE_HOME", g_get_user_cache_dir (), TRUE);

  for (gsize i = 0; env != NULL && env[i] != NULL; i++)
    {
      const char *eq = strchr (env[i], '=');

      if (eq == NULL)
        g_subprocess_launcher_unsetenv (launcher, env[i]);
      else
        {
          g_autofree char *name = g_strndup (env[i], (gsize) (eq - env[i]));

          g_subprocess_launcher_setenv (launcher, name, eq + 1, TRUE);
        }
    }
  return launcher;
}

static GPtrArray *
new_argv (const char * const *args)
{
  GPtrArray *argv = g_ptr_array_new_with_free_func (g_free);
  const char *wrapper = g_getenv ("PUBSUBD_WRAPPER");

  if (wrapper != NULL)
    {
      g_auto(GStrv) words = g_strsplit (wrapper, " ", -1);

      for (gsize i = 0; words[i] != NULL; i++)
        if (*words[i] != '\0')
          g_ptr_array_add (argv, g_strdup (words[i]));
    }
  g_ptr_array_add (argv, g_strdup (pubsubd_path ()));
  for (gsize i = 0; args != NULL && args[i] != NULL; i++)
    g_ptr_array_add (argv, g_strdup (args[i]));
  return argv;
}

static gboolean
args_have (const char * const *args,
           const char         *option)
{
  gsize len = strlen (option);

  for (gsize i = 0; args != NULL && args[i] != NULL; i++)
    if (strncmp (args[i], option, len) == 0 && (args[i][len] == '\0' || args[i][len] == '='))
      return TRUE;
  return FALSE;
}

/* "…Listening on http://HOST:PORT/" */
static void
parse_listening_line (PubsubTestServer *server,
                      const char       *line)
{
  static const char marker[] = "Listening on http://";
  const char *start = strstr (line, marker);
  const char *end;
  const char *colon;
  guint64 port;
  g_autofree char *port_text = NULL;
  const char *connect_host;

  if (start == NULL || server->port != 0)
    return;
  start += strlen (marker);
  end = strchr (start, '/');
  if (end == NULL)
    g_error ("cannot parse the listening line: %s", line);
  colon = g_strrstr_len (start, end - start, ":");
  if (colon == NULL)
    g_error ("no port in the listening line: %s", line);
  port_text = g_strndup (colon + 1, (gsize) (end - colon - 1));
  if (!g_ascii_string_to_unsigned (port_text, 10, 1, 65535, &port, NULL))
    g_error ("bad port in the listening line: %s", line);

  server->host = g_strndup (start, (gsize) (colon - start));
  server->port = (guint16) port;
  /* All interfaces (":PORT", "0.0.0.0", "[::]") are reached on loopback. */
  if (*server->host == '\0' || g_str_equal (server->host, "0.0.0.0") ||
      g_str_equal (server->host, "[::]"))
    connect_host = "127.0.0.1";
  else
    connect_host = server->host;
  server->http_base = g_strdup_printf ("http://%s:%u", connect_host, server->port);
  server->ws_url = g_strdup_printf ("ws://%s:%u/ws", connect_host, server->port);
}

static void read_next_line (PubsubTestServer *server);

static void
on_output_line (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *line = NULL;
  PubsubTestServer *server;

  line = g_data_input_stream_read_line_finish (G_DATA_INPUT_STREAM (source), result,
                                               NULL, &error);
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  server = user_data;
  if (line == NULL)
    {
      server->output_eof = TRUE;
      return;
    }
  g_string_append (server->log, line);
  g_string_append_c (server->log, '\n');
  parse_listening_line (server, line);
  read_next_line (server);
}

static void
read_next_line (PubsubTestServer *server)
{
  g_data_input_stream_read_line_async (server->output_stream, G_PRIORITY_DEFAULT,
                                       server->cancellable, on_output_line, server);
}

static void
on_exited (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  g_autoptr(GError) error = NULL;
  PubsubTestServer *server;

  if (!g_subprocess_wait_finish (G_SUBPROCESS (source), result, &error))
    {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return;
      g_error ("waiting for pubsubd: %s", error->message);
    }
  server = user_data;
  server->exited = TRUE;
  server->exit_status = g_subprocess_get_status (G_SUBPROCESS (source));
}

static gboolean
listening_or_gone (gpointer user_data)
{
  PubsubTestServer *server = user_data;

  return server->port != 0 || (server->exited && server->output_eof);
}

PubsubTestServer *
pubsub_test_server_start_full (PubsubTestServerFlags  flags,
                               const char * const    *env,
                               const char * const    *args)
{
  PubsubTestServer *server = g_new0 (PubsubTestServer, 1);
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GPtrArray) argv = new_argv (args);
  g_autoptr(GError) error = NULL;
  g_autofree char *command = NULL;
  const char *identifier;

  if (!(flags & PUBSUB_TEST_SERVER_NO_LISTEN) && !args_have (args, "--listen"))
    {
      g_ptr_array_add (argv, g_strdup ("--listen"));
      g_ptr_array_add (argv, g_strdup ("127.0.0.1:0"));
    }
  if (!(flags & PUBSUB_TEST_SERVER_NO_BUS) && !args_have (args, "--bus"))
    {
      g_ptr_array_add (argv, g_strdup ("--bus"));
      g_ptr_array_add (argv, g_strdup ("none"));
    }
  if (!(flags & PUBSUB_TEST_SERVER_HEARTBEAT) && !args_have (args, "--heartbeat-interval"))
    {
      g_ptr_array_add (argv, g_strdup ("--heartbeat-interval"));
      g_ptr_array_add (argv, g_strdup ("0"));
    }
  g_ptr_array_add (argv, NULL);
  command = g_strjoinv (" ", (char **) argv->pdata);
  g_test_message ("starting %s", command);

  /* stdout is the test's TAP stream: the daemon must not write into it. Its
   * debug and info messages go to stdout (GLib's default writer), the rest to
   * stderr: both are read, in one stream, into ->log. */
  launcher = new_launcher (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_MERGE, env);
  server->process = g_subprocess_launcher_spawnv (launcher, (const char * const *) argv->pdata,
                                                  &error);
  g_assert_no_error (error);
  identifier = g_subprocess_get_identifier (server->process);
  server->pid = (GPid) g_ascii_strtoll (identifier, NULL, 10);
  server->log = g_string_new (NULL);
  server->cancellable = g_cancellable_new ();
  server->output_stream =
    g_data_input_stream_new (g_subprocess_get_stdout_pipe (server->process));
  read_next_line (server);
  g_subprocess_wait_async (server->process, server->cancellable, on_exited, server);

  pubsub_test_wait_until (listening_or_gone, server, 10000, "pubsubd to listen");
  if (server->port == 0)
    g_error ("pubsubd exited (status %d) before listening:\n%s",
             server->exit_status, server->log->str);
  return server;
}

PubsubTestServer *
pubsub_test_server_start (const char *first_arg,
                          ...)
{
  g_autoptr(GPtrArray) args = g_ptr_array_new ();
  va_list ap;

  va_start (ap, first_arg);
  for (const char *arg = first_arg; arg != NULL; arg = va_arg (ap, const char *))
    g_ptr_array_add (args, (gpointer) arg);
  va_end (ap);
  g_ptr_array_add (args, NULL);
  return pubsub_test_server_start_full (PUBSUB_TEST_SERVER_DEFAULT, NULL,
                                        (const char * const *) args->pdata);
}

void
pubsub_test_server_signal (PubsubTestServer *server,
                           int               signum)
{
  g_assert_false (server->exited);
  g_subprocess_send_signal (server->process, signum);
}

static gboolean
exited_and_drained (gpointer user_data)
{
  PubsubTestServer *server = user_data;

  return server->exited && server->output_eof;
}

void
pubsub_test_server_wait_exit (PubsubTestServer *server,
                              guint             deadline_ms)
{
  pubsub_test_wait_until (exited_and_drained, server, deadline_ms, "pubsubd to exit");
}

/* A failure here fails the test but lets it (and the tests after it) go
 * on: the daemon is gone either way. */
static void
assert_exit_status_zero (PubsubTestServer *server)
{
  if (!WIFEXITED (server->exit_status) || WEXITSTATUS (server->exit_status) != 0)
    {
      /* The whole log: under valgrind it holds the error report. */
      g_printerr ("%s", server->log->str);
      if (WIFSIGNALED (server->exit_status))
        g_test_fail_printf ("pubsubd was killed by signal %d", WTERMSIG (server->exit_status));
      else
        g_test_fail_printf ("pubsubd exited with status %d (0 expected; see its log above)",
                            WEXITSTATUS (server->exit_status));
    }
}

void
pubsub_test_server_stop (PubsubTestServer *server)
{
  if (!server->exited)
    g_subprocess_send_signal (server->process, SIGTERM);
  pubsub_test_server_wait_exit (server, 15000);
  assert_exit_status_zero (server);
}

void
pubsub_test_server_free (PubsubTestServer *server)
{
  if (server == NULL)
    return;
  if (!server->exited)
    {
      g_subprocess_force_exit (server->process);
      g_subprocess_wait (server->process, NULL, NULL);
    }
  g_cancellable_cancel (server->cancellable);
  /* Let the cancelled callbacks run while their data is still alive. */
  while (g_main_context_iteration (NULL, FALSE))
    ;
  if (server->session != NULL)
    soup_session_abort (server->session);
  g_clear_object (&server->session);
  g_clear_object (&server->output_stream);
  g_clear_object (&server->cancellable);
  g_clear_object (&server->process);
  g_string_free (server->log, TRUE);
  g_free (server->host);
  g_free (server->http_base);
  g_free (server->ws_url);
  g_free (server);
}

typedef struct {
  PubsubTestServer *server;
  const char       *needle;
} LogWait;

static gboolean
log_contains (gpointer user_data)
{
  LogWait *wait = user_data;

  return strstr (wait->server->log->str, wait->needle) != NULL;
}

void
pubsub_test_server_wait_for_log (PubsubTestServer *server,
                                 const char       *needle,
                                 guint             deadline_ms)
{
  LogWait wait = { server, needle };
  g_autofree char *what = g_strdup_printf ("'%s' in the daemon's log", needle);

  pubsub_test_wait_until (log_contains, &wait, deadline_ms, what);
}

char *
pubsub_test_server_dup_own_log (PubsubTestServer *server)
{
  static GRegex *wrapper_line;

  if (wrapper_line == NULL)
    wrapper_line = g_regex_new ("^==[0-9]+==.*\\n", G_REGEX_MULTILINE | G_REGEX_OPTIMIZE, 0,
                                NULL);
  return g_regex_replace_literal (wrapper_line, server->log->str, -1, 0, "", 0, NULL);
}

guint64
pubsub_test_server_get_rss_kib (PubsubTestServer *server)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/status", (int) server->pid);
  g_autofree char *contents = NULL;
  g_autoptr(GError) error = NULL;
  const char *line;

  g_file_get_contents (path, &contents, NULL, &error);
  g_assert_no_error (error);
  line = strstr (contents, "\nVmRSS:");
  g_assert_nonnull (line);
  return g_ascii_strtoull (line + strlen ("\nVmRSS:"), NULL, 10);
}

typedef struct {
  gboolean  done;
  char     *out;
  char     *err;
  GError   *error;
} RunData;

static void on_communicated (GObject      *source,
                             GAsyncResult *result,
                             gpointer      user_data);

/* "==123==    still reachable: 84,357 (+84,357) bytes in 847 blocks" → 84357 */
static guint64
parse_leak_bytes (const char *text,
                  const char *label)
{
  const char *p = strstr (text, label);
  guint64 bytes = 0;

  if (p == NULL)
    return 0;
  for (p += strlen (label); *p == ' '; p++)
    ;
  for (; g_ascii_isdigit (*p) || *p == ','; p++)
    if (*p != ',')
      bytes = bytes * 10 + (guint64) (*p - '0');
  return bytes;
}

guint64
pubsub_test_server_get_memory_kib (PubsubTestServer *server)
{
  const char *wrapper = g_getenv ("PUBSUBD_WRAPPER");
  g_autoptr(GSubprocess) vgdb = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *pid = NULL;
  RunData data = { FALSE, };
  guint64 bytes;

  if (wrapper == NULL || strstr (wrapper, "valgrind") == NULL)
    return pubsub_test_server_get_rss_kib (server);

  pid = g_strdup_printf ("--pid=%d", (int) server->pid);
  vgdb = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_MERGE,
                           &error, "vgdb", pid, "leak_check", "summary", NULL);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8_async (vgdb, NULL, NULL, on_communicated, &data);
  pubsub_test_wait_flag (&data.done, 30000, "vgdb leak_check summary");
  g_assert_no_error (data.error);
  if (strstr (data.out, "still reachable:") == NULL)
    g_error ("vgdb could not ask memcheck for the heap in use: %s", data.out);
  bytes = parse_leak_bytes (data.out, "definitely lost:") +
          parse_leak_bytes (data.out, "indirectly lost:") +
          parse_leak_bytes (data.out, "possibly lost:") +
          parse_leak_bytes (data.out, "still reachable:") +
          parse_leak_bytes (data.out, "suppressed:");
  g_free (data.out);
  g_free (data.err);
  return bytes / 1024;
}

static void
on_communicated (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  RunData *data = user_data;

  g_subprocess_communicate_utf8_finish (G_SUBPROCESS (source), result, &data->out, &data->err,
                                        &data->error);
  data->done = TRUE;
}

int
pubsub_test_run (const char * const  *env,
                 const char * const  *args,
                 char               **out_stdout,
                 char               **out_stderr)
{
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GSubprocess) process = NULL;
  g_autoptr(GPtrArray) argv = new_argv (args);
  g_autoptr(GError) error = NULL;
  g_autofree char *command = NULL;
  RunData data = { FALSE, };
  gint64 deadline;

  g_ptr_array_add (argv, NULL);
  command = g_strjoinv (" ", (char **) argv->pdata);
  g_test_message ("running %s", command);

  launcher = new_launcher (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE, env);
  process = g_subprocess_launcher_spawnv (launcher, (const char * const *) argv->pdata, &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8_async (process, NULL, NULL, on_communicated, &data);
  deadline = g_get_monotonic_time () + (gint64) 30 * G_USEC_PER_SEC * pubsub_test_timeout_scale ();
  while (!data.done)
    {
      if (g_get_monotonic_time () > deadline)
        {
          /* Probably it took the settings and is serving: do not leave it. */
          g_subprocess_force_exit (process);
          g_subprocess_wait (process, NULL, NULL);
          g_error ("%s did not exit within 30 s", command);
        }
      pubsub_test_iterate ();
    }
  g_assert_no_error (data.error);
  if (!g_subprocess_get_if_exited (process))
    {
      g_printerr ("%s", data.err);
      g_error ("%s was killed by a signal", command);
    }
  if (out_stdout != NULL)
    *out_stdout = g_steal_pointer (&data.out);
  if (out_stderr != NULL)
    *out_stderr = g_steal_pointer (&data.err);
  g_free (data.out);
  g_free (data.err);
  return g_subprocess_get_exit_status (process);
}

static PubsubTestServer *shared_server;

PubsubTestServer *
pubsub_test_shared_server (const char * const *args,
                           gboolean           *out_started)
{
  gboolean started = shared_server == NULL;

  if (started)
    shared_server = pubsub_test_server_start_full (PUBSUB_TEST_SERVER_DEFAULT, NULL, args);
  if (out_started != NULL)
    *out_started = started;
  return shared_server;
}

void
pubsub_test_shared_server_stop (void)
{
  if (shared_server == NULL)
    return;
  pubsub_test_server_stop (shared_server);
  g_clear_pointer (&shared_server, pubsub_test_server_free);
}

/* ---------------------------------------------------------------------- */
/* REST                                                                   */

/* G_TEST_OPTION_ISOLATE_DIRS hides the GSettings schemas that GNOME's proxy
 * resolver reads, and SoupSession asks for the default resolver: use GIO's
 * dummy one (meson test sets this too). Called before the first session. */
static SoupSession *
new_session (void)
{
  if (g_getenv ("GIO_USE_PROXY_RESOLVER") == NULL)
    g_setenv ("GIO_USE_PROXY_RESOLVER", "dummy", TRUE);
  return soup_session_new_with_options ("max-conns-per-host", 64,
                                        "max-conns", 256,
                                        "timeout", 60,
                                        NULL);
}

static SoupSession *
server_session (PubsubTestServer *server)
{
  if (server->session == NULL)
    server->session = new_session ();
  return server->session;
}

void
pubsub_test_response_free (PubsubTestResponse *response)
{
  if (response == NULL)
    return;
  g_clear_pointer (&response->headers, soup_message_headers_unref);
  g_clear_pointer (&response->body, g_bytes_unref);
  g_clear_pointer (&response->json, json_node_unref);
  g_free (response);
}

typedef struct {
  gboolean  done;
  GBytes   *body;
  GError   *error;
} SendData;

static void
on_sent (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  SendData *data = user_data;

  data->body = soup_session_send_and_read_finish (SOUP_SESSION (source), result, &data->error);
  data->done = TRUE;
}

/* What every response of the REST API must be. A violation fails the test
 * but lets it go on (with an empty object as the body), so that one bad
 * response does not hide the results of the tests after it. */
static void
check_response (const char         *method,
                const char         *path,
                PubsubTestResponse *response,
                gboolean            error_shape)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  const char *content_type = soup_message_headers_get_content_type (response->headers, NULL);
  gsize len;
  const char *text = g_bytes_get_data (response->body, &len);
  JsonObject *object;
  JsonNode *inner;
  JsonNode *code = NULL;
  JsonNode *message = NULL;

  if (g_strcmp0 (content_type, "application/json") != 0)
    g_test_fail_printf ("%s %s -> %u: Content-Type is %s, not application/json", method, path,
                        response->status, content_type);
  if (!json_parser_load_from_data (parser, text, (gssize) len, &error) ||
      json_parser_get_root (parser) == NULL ||
      !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    {
      g_autofree char *copy = g_strndup (text, len);
      g_autofree char *shown = g_strescape (copy, NULL);
      g_autoptr(JsonObject) empty = json_object_new ();

      g_test_fail_printf ("%s %s -> %u: the body is not a JSON object: %s", method, path,
                          response->status, shown);
      response->json = json_node_init_object (json_node_alloc (), empty);
      return;
    }
  response->json = json_node_ref (json_parser_get_root (parser));
  if (response->status < 400 || !error_shape)
    return;

  object = json_node_get_object (response->json);
  inner = json_object_get_member (object, "error");
  if (inner != NULL && JSON_NODE_HOLDS_OBJECT (inner))
    {
      code = json_object_get_member (json_node_get_object (inner), "code");
      message = json_object_get_member (json_node_get_object (inner), "message");
    }
  if (code == NULL || !JSON_NODE_HOLDS_VALUE (code) ||
      json_node_get_value_type (code) != G_TYPE_STRING ||
      message == NULL || !JSON_NODE_HOLDS_VALUE (message) ||
      json_node_get_value_type (message) != G_TYPE_STRING ||
      *json_node_get_string (message) == '\0')
    g_test_fail_printf ("%s %s -> %u: not the error shape {\"error\":{\"code\":...,\"message\":...}}: %.*s",
                        method, path, response->status, (int) len, text);
}

static PubsubTestResponse *
request (PubsubTestServer   *server,
         const char         *method,
         const char         *path,
         GBytes             *body,
         gboolean            chunked,
         const char * const *headers,
         gboolean            error_shape,
         GError            **out_error)
{
  g_autofree char *url = g_strconcat (server->http_base, path, NULL);
  g_autoptr(SoupMessage) msg = soup_message_new (method, url);
  SoupMessageHeaders *request_headers;
  PubsubTestResponse *response;
  SendData data = { FALSE, };
  gboolean has_content_type = FALSE;

  g_assert_nonnull (msg);
  request_headers = soup_message_get_request_headers (msg);
  for (gsize i = 0; headers != NULL && headers[i] != NULL; i += 2)
    {
      g_assert_nonnull (headers[i + 1]);
      soup_message_headers_append (request_headers, headers[i], headers[i + 1]);
      if (g_ascii_strcasecmp (headers[i], "Content-Type") == 0)
        has_content_type = TRUE;
    }
  if (body != NULL)
    {
      const char *type = has_content_type ? NULL : "application/json";

      if (chunked)
        {
          g_autoptr(GInputStream) stream = g_memory_input_stream_new_from_bytes (body);

          soup_message_set_request_body (msg, type, stream, -1);
          soup_message_headers_set_encoding (request_headers, SOUP_ENCODING_CHUNKED);
        }
      else
        soup_message_set_request_body_from_bytes (msg, type, body);
    }

  soup_session_send_and_read_async (server_session (server), msg, G_PRIORITY_DEFAULT, NULL,
                                    on_sent, &data);
  pubsub_test_wait_flag (&data.done, 20000, "an HTTP response");
  if (data.error != NULL)
    {
      if (out_error == NULL)
        g_error ("%s %s: %s", method, path, data.error->message);
      g_propagate_error (out_error, data.error);
      return NULL;
    }

  response = g_new0 (PubsubTestResponse, 1);
  response->status = soup_message_get_status (msg);
  response->headers = soup_message_headers_ref (soup_message_get_response_headers (msg));
  response->body = data.body;
  check_response (method, path, response, error_shape);
  return response;
}

PubsubTestResponse *
pubsub_test_request_full (PubsubTestServer   *server,
                          const char         *method,
                          const char         *path,
                          GBytes             *body,
                          gboolean            chunked,
                          const char * const *headers,
                          GError            **out_error)
{
  return request (server, method, path, body, chunked, headers, TRUE, out_error);
}

PubsubTestResponse *
pubsub_test_request_lax (PubsubTestServer *server,
                         const char       *method,
                         const char       *path)
{
  return request (server, method, path, NULL, FALSE, NULL, FALSE, NULL);
}

static const char * const *
collect_pairs (GPtrArray  *array,
               const char *first,
               va_list     ap)
{
  for (const char *name = first; name != NULL; name = va_arg (ap, const char *))
    {
      g_ptr_array_add (array, (gpointer) name);
      g_ptr_array_add (array, (gpointer) va_arg (ap, const char *));
    }
  g_ptr_array_add (array, NULL);
  return (const char * const *) array->pdata;
}

PubsubTestResponse *
pubsub_test_request (PubsubTestServer *server,
                     const char       *method,
                     const char       *path,
                     const char       *body,
                     const char       *first_header,
                     ...)
{
  g_autoptr(GPtrArray) headers = g_ptr_array_new ();
  g_autoptr(GBytes) bytes = body != NULL ? g_bytes_new (body, strlen (body)) : NULL;
  va_list ap;

  va_start (ap, first_header);
  collect_pairs (headers, first_header, ap);
  va_end (ap);
  return pubsub_test_request_full (server, method, path, bytes, FALSE,
                                   (const char * const *) headers->pdata, NULL);
}

guint
pubsub_test_http (PubsubTestServer  *server,
                  const char        *method,
                  const char        *path,
                  const char        *body,
                  JsonNode         **out_json,
                  const char        *first_header,
                  ...)
{
  g_autoptr(GPtrArray) headers = g_ptr_array_new ();
  g_autoptr(GBytes) bytes = body != NULL ? g_bytes_new (body, strlen (body)) : NULL;
  g_autoptr(PubsubTestResponse) response = NULL;
  va_list ap;

  va_start (ap, first_header);
  collect_pairs (headers, first_header, ap);
  va_end (ap);
  response = pubsub_test_request_full (server, method, path, bytes, FALSE,
                                       (const char * const *) headers->pdata, NULL);
  if (out_json != NULL)
    *out_json = json_node_ref (response->json);
  return response->status;
}

const char *
pubsub_test_response_error_code (PubsubTestResponse *response)
{
  JsonObject *object = json_node_get_object (response->json);
  JsonNode *inner = json_object_get_member (object, "error");
  JsonNode *code;

  if (inner == NULL || !JSON_NODE_HOLDS_OBJECT (inner))
    return NULL;
  code = json_object_get_member (json_node_get_object (inner), "code");
  if (code == NULL || !JSON_NODE_HOLDS_VALUE (code) ||
      json_node_get_value_type (code) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (code);
}

void
pubsub_test_create_topic (PubsubTestServer *server,
                          const char       *name,
                          const char       *api_key)
{
  g_autofree char *body = g_strdup_printf ("{\"name\":\"%s\"}", name);
  g_autoptr(PubsubTestResponse) response = NULL;

  if (api_key != NULL)
    response = pubsub_test_request (server, "POST", "/topics", body, "X-API-Key", api_key, NULL);
  else
    response = pubsub_test_request (server, "POST", "/topics", body, NULL);
  g_assert_cmpuint (response->status, ==, 201);
}

PubsubTestResponse *
pubsub_test_get_topics (PubsubTestServer *server,
                        const char       *api_key)
{
  PubsubTestResponse *response;

  if (api_key != NULL)
    response = pubsub_test_request (server, "GET", "/topics", NULL, "X-API-Key", api_key, NULL);
  else
    response = pubsub_test_request (server, "GET", "/topics", NULL, NULL);
  g_assert_cmpuint (response->status, ==, 200);
  return response;
}

gint64
pubsub_test_topic_subscribers (PubsubTestServer *server,
                               const char       *name,
                               const char       *api_key)
{
  g_autoptr(PubsubTestResponse) response = pubsub_test_get_topics (server, api_key);
  JsonArray *topics;

  topics = json_object_get_array_member (json_node_get_object (response->json), "topics");
  for (guint i = 0; i < json_array_get_length (topics); i++)
    {
      JsonObject *topic = json_array_get_object_element (topics, i);

      if (g_str_equal (json_object_get_string_member (topic, "name"), name))
        return json_object_get_int_member (topic, "subscribers");
    }
  return -1;
}

/* ---------------------------------------------------------------------- */
/* Raw JSON spans                                                         */

static const char *
skip_ws (const char *p)
{
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
    p++;
  return p;
}

/* @p is at the start of a valid JSON value; returns the end of it. */
static const char *
skip_value (const char *p)
{
  if (*p == '"')
    {
      for (p++; *p != '"'; p++)
        {
          g_assert (*p != '\0');
          if (*p == '\\')
            p++;
        }
      return p + 1;
    }
  if (*p == '{' || *p == '[')
    {
      guint depth = 0;

      do
        {
          if (*p == '"')
            {
              p = skip_value (p);
              continue;
            }
          g_assert (*p != '\0');
          if (*p == '{' || *p == '[')
            depth++;
          else if (*p == '}' || *p == ']')
            depth--;
          p++;
        }
      while (depth > 0);
      return p;
    }
  while (*p != '\0' && strchr (",}] \t\r\n", *p) == NULL)
    p++;
  return p;
}

/* In the object at @p, the span of member @name's value, or NULL. */
static const char *
find_member (const char  *p,
             const char  *name,
             const char **out_end)
{
  gsize name_len = strlen (name);

  p = skip_ws (p);
  if (*p != '{')
    return NULL;
  p = skip_ws (p + 1);
  while (*p == '"')
    {
      const char *key = p + 1;
      const char *key_end = skip_value (p) - 1;
      const char *value;

      p = skip_ws (key_end + 1);
      g_assert (*p == ':');
      value = skip_ws (p + 1);
      p = skip_value (value);
      if ((gsize) (key_end - key) == name_len && memcmp (key, name, name_len) == 0)
        {
          *out_end = p;
          return value;
        }
      p = skip_ws (p);
      if (*p == ',')
        p = skip_ws (p + 1);
    }
  return NULL;
}

/* ---------------------------------------------------------------------- */
/* WebSocket frames                                                       */

void
pubsub_test_assert_timestamp (const char *ts)
{
  static GRegex *regex;
  g_autoptr(GDateTime) parsed = NULL;
  g_autoptr(GDateTime) now = NULL;
  GTimeSpan skew;

  if (regex == NULL)
    regex = g_regex_new ("^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z$",
                         G_REGEX_OPTIMIZE, 0, NULL);
  if (ts == NULL || !g_regex_match (regex, ts, 0, NULL))
    g_error ("bad timestamp %s: expected e.g. 2026-11-27T10:00:00.123Z", ts);
  /* And it is now, give or take. */
  parsed = g_date_time_new_from_iso8601 (ts, NULL);
  g_assert_nonnull (parsed);
  now = g_date_time_new_now_utc ();
  skew = g_date_time_difference (now, parsed);
  g_assert_cmpint (ABS (skew), <, 10 * 60 * G_TIME_SPAN_SECOND);
}

void
pubsub_test_frame_free (PubsubTestFrame *frame)
{
  if (frame == NULL)
    return;
  g_free (frame->text);
  g_clear_pointer (&frame->root, json_node_unref);
  g_free (frame);
}

const char *
pubsub_test_frame_get_string (PubsubTestFrame *frame,
                              const char      *member,
                              const char      *nested)
{
  JsonObject *object;
  JsonNode *node;

  g_assert_nonnull (frame->root);
  object = json_node_get_object (frame->root);
  node = json_object_get_member (object, member);
  if (node != NULL && nested != NULL)
    {
      if (!JSON_NODE_HOLDS_OBJECT (node))
        return NULL;
      node = json_object_get_member (json_node_get_object (node), nested);
    }
  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) ||
      json_node_get_value_type (node) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (node);
}

gboolean
pubsub_test_frame_has_member (PubsubTestFrame *frame,
                              const char      *member)
{
  g_assert_nonnull (frame->root);
  return json_object_has_member (json_node_get_object (frame->root), member);
}

const char *
pubsub_test_frame_type (PubsubTestFrame *frame)
{
  return pubsub_test_frame_get_string (frame, "type", NULL);
}

gint64
pubsub_test_event_sequence (PubsubTestFrame *frame)
{
  g_autofree char *raw = pubsub_test_frame_dup_raw (frame, "message", "payload", "n", NULL);

  if (raw == NULL)
    g_error ("not an event with payload.n: %.200s", frame->text);
  return g_ascii_strtoll (raw, NULL, 10);
}

char *
pubsub_test_frame_dup_raw (PubsubTestFrame *frame,
                           const char      *first_member,
                           ...)
{
  const char *start = frame->text;
  const char *end = NULL;
  va_list ap;

  va_start (ap, first_member);
  for (const char *name = first_member; name != NULL; name = va_arg (ap, const char *))
    {
      start = find_member (start, name, &end);
      if (start == NULL)
        break;
    }
  va_end (ap);
  return start != NULL ? g_strndup (start, (gsize) (end - start)) : NULL;
}

static PubsubTestFrame *
frame_new (SoupWebsocketDataType  type,
           GBytes                *message)
{
  PubsubTestFrame *frame = g_new0 (PubsubTestFrame, 1);
  gsize len;
  const char *data = g_bytes_get_data (message, &len);

  frame->type = type;
  frame->text = g_strndup (data, len);
  frame->len = len;
  if (type == SOUP_WEBSOCKET_DATA_TEXT)
    {
      g_autoptr(JsonParser) parser = json_parser_new ();
      g_autoptr(GError) error = NULL;
      JsonNode *ts;

      if (!json_parser_load_from_data (parser, data, (gssize) len, &error) ||
          json_parser_get_root (parser) == NULL ||
          !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
        g_error ("the server sent a text frame that is not a JSON object: %s", frame->text);
      frame->root = json_node_ref (json_parser_get_root (parser));
      /* Every server frame carries "ts". */
      ts = json_object_get_member (json_node_get_object (frame->root), "ts");
      if (ts == NULL || !JSON_NODE_HOLDS_VALUE (ts) ||
          json_node_get_value_type (ts) != G_TYPE_STRING)
        g_error ("a server frame without a string ts: %s", frame->text);
      pubsub_test_assert_timestamp (json_node_get_string (ts));
    }
  return frame;
}

static void
on_ws_message (SoupWebsocketConnection *conn,
               SoupWebsocketDataType    type,
               GBytes                  *message,
               PubsubTestWs            *ws)
{
  PubsubTestFrame *frame = frame_new (type, message);

  ws->n_received++;
  if (ws->on_frame != NULL)
    ws->on_frame (frame, ws->on_frame_data);
  if (ws->keep_frames)
    g_queue_push_tail (&ws->frames, frame);
  else
    pubsub_test_frame_free (frame);
}

static void
on_ws_closed (SoupWebsocketConnection *conn,
              PubsubTestWs            *ws)
{
  ws->closed = TRUE;
  ws->close_code = soup_websocket_connection_get_close_code (conn);
  ws->close_reason = g_strdup (soup_websocket_connection_get_close_data (conn));
}

static void
on_ws_error (SoupWebsocketConnection *conn,
             GError                  *error,
             PubsubTestWs            *ws)
{
  if (ws->error == NULL)
    ws->error = g_error_copy (error);
}

typedef struct {
  gboolean                 done;
  SoupWebsocketConnection *conn;
  GError                  *error;
} ConnectData;

static void
on_ws_connected (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  ConnectData *data = user_data;

  data->conn = soup_session_websocket_connect_finish (SOUP_SESSION (source), result,
                                                      &data->error);
  data->done = TRUE;
}

PubsubTestWs *
pubsub_test_ws_try_connect (PubsubTestServer   *server,
                            const char         *query,
                            const char * const *headers,
                            guint              *out_status)
{
  g_autoptr(SoupSession) session = new_session ();
  g_autofree char *url = query != NULL ? g_strconcat (server->ws_url, "?", query, NULL)
                                       : g_strdup (server->ws_url);
  g_autoptr(SoupMessage) msg = soup_message_new (SOUP_METHOD_GET, url);
  ConnectData data = { FALSE, };
  PubsubTestWs *ws;

  g_assert_nonnull (msg);
  /* Offer permessage-deflate, as browsers do (libsoup 3.2's session does
   * not by default): the server must decline it. */
  soup_session_add_feature_by_type (session, SOUP_TYPE_WEBSOCKET_EXTENSION_MANAGER);
  for (gsize i = 0; headers != NULL && headers[i] != NULL; i += 2)
    soup_message_headers_append (soup_message_get_request_headers (msg), headers[i],
                                 headers[i + 1]);
  soup_session_websocket_connect_async (session, msg, NULL, NULL, G_PRIORITY_DEFAULT, NULL,
                                        on_ws_connected, &data);
  pubsub_test_wait_flag (&data.done, 20000, "the WebSocket handshake");
  if (out_status != NULL)
    *out_status = soup_message_get_status (msg);
  if (data.conn == NULL)
    {
      g_test_message ("WebSocket upgrade refused: %u %s", soup_message_get_status (msg),
                      data.error->message);
      g_clear_error (&data.error);
      return NULL;
    }

  ws = g_new0 (PubsubTestWs, 1);
  ws->conn = data.conn;
  ws->offered_extensions =
    g_strdup (soup_message_headers_get_one (soup_message_get_request_headers (msg),
                                            "Sec-WebSocket-Extensions"));
  ws->keep_frames = TRUE;
  g_queue_init (&ws->frames);
  soup_websocket_connection_set_max_incoming_payload_size (ws->conn, 64 * 1024 * 1024);
  g_signal_connect (ws->conn, "message", G_CALLBACK (on_ws_message), ws);
  g_signal_connect (ws->conn, "closed", G_CALLBACK (on_ws_closed), ws);
  g_signal_connect (ws->conn, "error", G_CALLBACK (on_ws_error), ws);
  return ws;
}

PubsubTestWs *
pubsub_test_ws_connect (PubsubTestServer *server,
                        const char       *query,
                        const char       *first_header,
                        ...)
{
  g_autoptr(GPtrArray) headers = g_ptr_array_new ();
  PubsubTestWs *ws;
  guint status = 0;
  va_list ap;

  va_start (ap, first_header);
  collect_pairs (headers, first_header, ap);
  va_end (ap);
  ws = pubsub_test_ws_try_connect (server, query, (const char * const *) headers->pdata,
                                   &status);
  if (ws == NULL)
    g_error ("WebSocket upgrade to %s refused with HTTP %u", server->ws_url, status);
  g_assert_cmpuint (status, ==, 101);
  return ws;
}

void
pubsub_test_ws_send (PubsubTestWs *ws,
                     const char   *text)
{
  g_assert_cmpint (soup_websocket_connection_get_state (ws->conn), ==,
                   SOUP_WEBSOCKET_STATE_OPEN);
  soup_websocket_connection_send_text (ws->conn, text);
}

void
pubsub_test_ws_sendf (PubsubTestWs *ws,
                      const char   *format,
                      ...)
{
  g_autofree char *text = NULL;
  va_list ap;

  va_start (ap, format);
  text = g_strdup_vprintf (format, ap);
  va_end (ap);
  pubsub_test_ws_send (ws, text);
}

PubsubTestFrame *
pubsub_test_ws_next (PubsubTestWs *ws,
                     guint         deadline_ms)
{
  pubsub_test_wait_for (!g_queue_is_empty (&ws->frames) || ws->closed, deadline_ms);
  if (g_queue_is_empty (&ws->frames))
    g_error ("the connection closed (code %u, %s) while a frame was expected",
             ws->close_code, ws->close_reason);
  return g_queue_pop_head (&ws->frames);
}

PubsubTestFrame *
pubsub_test_ws_wait_for (PubsubTestWs *ws,
                         const char   *type,
                         guint         deadline_ms)
{
  gint64 deadline = g_get_monotonic_time () +
                    (gint64) deadline_ms * pubsub_test_timeout_scale () * 1000;

  for (;;)
    {
      PubsubTestFrame *frame;

      while (g_queue_is_empty (&ws->frames) && !ws->closed)
        {
          if (g_get_monotonic_time () > deadline)
            g_error ("timed out waiting for a frame of type %s", type);
          pubsub_test_iterate ();
        }
      if (g_queue_is_empty (&ws->frames))
        g_error ("the connection closed (code %u, %s) while waiting for a %s frame",
                 ws->close_code, ws->close_reason, type);
      frame = g_queue_pop_head (&ws->frames);
      if (frame->root != NULL &&
          g_strcmp0 (pubsub_test_frame_type (frame), type) == 0)
        return frame;
      pubsub_test_frame_free (frame);
    }
}

static GList *
find_frame_of_type (PubsubTestWs *ws,
                    const char   *type)
{
  for (GList *l = ws->frames.head; l != NULL; l = l->next)
    {
      PubsubTestFrame *frame = l->data;

      if (frame->root != NULL &&
          g_strcmp0 (pubsub_test_frame_type (frame), type) == 0)
        return l;
    }
  return NULL;
}

PubsubTestFrame *
pubsub_test_ws_take (PubsubTestWs *ws,
                     const char   *type,
                     guint         deadline_ms)
{
  GList *link;
  PubsubTestFrame *frame;

  pubsub_test_wait_for (find_frame_of_type (ws, type) != NULL || ws->closed, deadline_ms);
  link = find_frame_of_type (ws, type);
  if (link == NULL)
    g_error ("the connection closed (code %u, %s) while waiting for a %s frame",
             ws->close_code, ws->close_reason, type);
  frame = link->data;
  g_queue_delete_link (&ws->frames, link);
  return frame;
}

void
pubsub_test_ws_assert_quiet (PubsubTestWs *ws)
{
  g_autoptr(PubsubTestFrame) frame = NULL;

  pubsub_test_ws_send (ws, "{\"type\":\"ping\",\"request_id\":\"quiet-check\"}");
  frame = pubsub_test_ws_next (ws, 5000);
  if (g_strcmp0 (pubsub_test_frame_type (frame), "pong") != 0 ||
      g_strcmp0 (pubsub_test_frame_get_string (frame, "request_id", NULL), "quiet-check") != 0)
    g_error ("expected nothing but the pong, got: %s", frame->text);
}

void
pubsub_test_ws_subscribe (PubsubTestWs *ws,
                          const char   *topic,
                          gint64        last_n)
{
  g_autoptr(PubsubTestFrame) ack = NULL;

  pubsub_test_ws_sendf (ws, "{\"type\":\"subscribe\",\"topic\":\"%s\",\"client_id\":\"c\","
                        "\"last_n\":%" G_GINT64_FORMAT ",\"request_id\":\"sub-%s\"}",
                        topic, last_n, topic);
  ack = pubsub_test_ws_next (ws, 5000);
  if (g_strcmp0 (pubsub_test_frame_type (ack), "ack") != 0)
    g_error ("expected the ack of subscribe, got: %s", ack->text);
  g_assert_cmpstr (pubsub_test_frame_get_string (ack, "topic", NULL), ==, topic);
  g_assert_cmpstr (pubsub_test_frame_get_string (ack, "status", NULL), ==, "ok");
}

void
pubsub_test_ws_send_publish (PubsubTestWs *ws,
                             const char   *topic,
                             guint         n,
                             const char   *padding)
{
  g_autofree char *id = pubsub_test_uuid ();

  pubsub_test_ws_sendf (ws,
                        "{\"type\":\"publish\",\"topic\":\"%s\",\"request_id\":\"p%u\","
                        "\"message\":{\"id\":\"%s\",\"payload\":{\"n\":%u,\"pad\":\"%s\"}}}",
                        topic, n, id, n, padding != NULL ? padding : "");
}

void
pubsub_test_ws_count_ack (PubsubTestFrame *frame,
                          gpointer         counter)
{
  if (g_strcmp0 (pubsub_test_frame_type (frame), "ack") != 0)
    g_error ("the publisher got: %.200s", frame->text);
  (*(guint *) counter)++;
}

void
pubsub_test_ws_check_sequence (PubsubTestFrame *frame,
                               gpointer         sequence)
{
  PubsubTestSequence *seq = sequence;

  if (g_strcmp0 (pubsub_test_frame_type (frame), "event") != 0)
    g_error ("a subscriber got: %.200s", frame->text);
  g_assert_cmpint (pubsub_test_event_sequence (frame), ==, seq->next);
  seq->next++;
  seq->received++;
}

char *
pubsub_test_ws_publish (PubsubTestWs *ws,
                        const char   *topic,
                        const char   *payload_json)
{
  g_autofree char *id = pubsub_test_uuid ();
  g_autoptr(PubsubTestFrame) ack = NULL;

  pubsub_test_ws_sendf (ws, "{\"type\":\"publish\",\"topic\":\"%s\",\"request_id\":\"%s\","
                        "\"message\":{\"id\":\"%s\",\"payload\":%s}}",
                        topic, id, id, payload_json);
  ack = pubsub_test_ws_take (ws, "ack", 5000);
  g_assert_cmpstr (pubsub_test_frame_get_string (ack, "request_id", NULL), ==, id);
  g_assert_cmpstr (pubsub_test_frame_get_string (ack, "topic", NULL), ==, topic);
  return g_steal_pointer (&id);
}

void
pubsub_test_ws_wait_closed (PubsubTestWs *ws,
                            guint         deadline_ms)
{
  pubsub_test_wait_for (ws->closed, deadline_ms);
}

void
pubsub_test_ws_free (PubsubTestWs *ws)
{
  if (ws == NULL)
    return;
  if (soup_websocket_connection_get_state (ws->conn) == SOUP_WEBSOCKET_STATE_OPEN)
    soup_websocket_connection_close (ws->conn, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
  if (!ws->closed)
    pubsub_test_wait_for (ws->closed, 10000);
  g_signal_handlers_disconnect_by_data (ws->conn, ws);
  g_clear_object (&ws->conn);
  g_queue_clear_full (&ws->frames, (GDestroyNotify) pubsub_test_frame_free);
  g_free (ws->close_reason);
  g_free (ws->offered_extensions);
  g_clear_error (&ws->error);
  g_free (ws);
}

/* ---------------------------------------------------------------------- */
/* WebSocket by hand                                                      */

void
pubsub_test_raw_frame_free (PubsubTestRawFrame *frame)
{
  if (frame == NULL)
    return;
  g_bytes_unref (frame->payload);
  g_free (frame);
}

GByteArray *
pubsub_test_ws_client_frame (guint8        first_byte,
                             const void   *payload,
                             gsize         len,
                             const guint8 *mask_key)
{
  GByteArray *frame = g_byte_array_sized_new ((guint) len + 14);
  guint8 header[14];
  gsize header_len = 2;

  header[0] = first_byte;
  if (len < 126)
    header[1] = (guint8) len;
  else if (len <= G_MAXUINT16)
    {
      header[1] = 126;
      header[2] = (guint8) (len >> 8);
      header[3] = (guint8) len;
      header_len = 4;
    }
  else
    {
      header[1] = 127;
      for (guint i = 0; i < 8; i++)
        header[2 + i] = (guint8) ((guint64) len >> (56 - 8 * i));
      header_len = 10;
    }
  if (mask_key != NULL)
    {
      header[1] |= 0x80;
      memcpy (header + header_len, mask_key, 4);
      header_len += 4;
    }
  g_byte_array_append (frame, header, (guint) header_len);
  for (gsize i = 0; i < len; i++)
    {
      guint8 byte = ((const guint8 *) payload)[i] ^ (mask_key != NULL ? mask_key[i & 3] : 0);

      g_byte_array_append (frame, &byte, 1);
    }
  return frame;
}

PubsubTestRawFrame *
pubsub_test_ws_server_frame_pop (GByteArray *input)
{
  const guint8 *data = input->data;
  gsize available = input->len;
  gsize header_len = 2;
  guint64 len;
  PubsubTestRawFrame *frame;

  if (available < 2)
    return NULL;
  g_assert_cmphex (data[1] & 0x80, ==, 0);   /* server frames are unmasked */
  len = data[1] & 0x7f;
  if (len == 126)
    {
      if (available < 4)
        return NULL;
      len = ((guint64) data[2] << 8) | data[3];
      header_len = 4;
    }
  else if (len == 127)
    {
      if (available < 10)
        return NULL;
      len = 0;
      for (guint i = 0; i < 8; i++)
        len = (len << 8) | data[2 + i];
      header_len = 10;
    }
  if (available < header_len + len)
    return NULL;

  frame = g_new0 (PubsubTestRawFrame, 1);
  frame->opcode = data[0] & 0x0f;
  frame->fin = (data[0] & 0x80) != 0;
  frame->payload = g_bytes_new (data + header_len, (gsize) len);
  g_byte_array_remove_range (input, 0, (guint) (header_len + len));
  return frame;
}

void
pubsub_test_raw_ws_free (PubsubTestRawWs *raw)
{
  if (raw == NULL)
    return;
  if (raw->source != NULL)
    {
      g_source_destroy (raw->source);
      g_source_unref (raw->source);
    }
  g_socket_close (raw->socket, NULL);
  g_object_unref (raw->socket);
  g_byte_array_unref (raw->input);
  g_queue_clear_full (&raw->frames, (GDestroyNotify) pubsub_test_raw_frame_free);
  g_free (raw->close_reason);
  g_free (raw);
}

static void
socket_send_all (GSocket    *socket,
                 const void *data,
                 gsize       len)
{
  const guint8 *p = data;

  while (len > 0)
    {
      g_autoptr(GError) error = NULL;
      gssize n = g_socket_send (socket, (const char *) p, len, NULL, &error);

      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        {
          g_clear_error (&error);
          g_socket_condition_timed_wait (socket, G_IO_OUT,
                                         10 * G_USEC_PER_SEC * pubsub_test_timeout_scale (),
                                         NULL, &error);
          g_assert_no_error (error);
          continue;
        }
      g_assert_no_error (error);
      p += n;
      len -= (gsize) n;
    }
}

PubsubTestRawWs *
pubsub_test_raw_ws_connect (PubsubTestServer *server,
                            const char       *path,
                            int               rcvbuf,
                            guint            *out_status)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) address = g_inet_socket_address_new (loopback, server->port);
  g_autoptr(GString) answer = g_string_new (NULL);
  g_autofree char *request = NULL;
  PubsubTestRawWs *raw = g_new0 (PubsubTestRawWs, 1);
  guint status = 0;

  raw->input = g_byte_array_new ();
  raw->answer_close = TRUE;
  g_queue_init (&raw->frames);
  raw->socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                              G_SOCKET_PROTOCOL_TCP, &error);
  g_assert_no_error (error);
  if (rcvbuf > 0)
    {
      g_socket_set_option (raw->socket, SOL_SOCKET, SO_RCVBUF, rcvbuf, &error);
      g_assert_no_error (error);
    }
  g_socket_set_timeout (raw->socket, 10 * pubsub_test_timeout_scale ());
  g_socket_connect (raw->socket, address, NULL, &error);
  g_assert_no_error (error);

  request = g_strdup_printf ("GET %s HTTP/1.1\r\n"
                             "Host: 127.0.0.1:%u\r\n"
                             "Upgrade: websocket\r\n"
                             "Connection: Upgrade\r\n"
                             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                             "Sec-WebSocket-Version: 13\r\n"
                             "\r\n", path, server->port);
  socket_send_all (raw->socket, request, strlen (request));

  /* The answer's headers, a byte at a time: what follows belongs to frames. */
  while (!g_str_has_suffix (answer->str, "\r\n\r\n"))
    {
      char c;
      gssize n = g_socket_receive (raw->socket, &c, 1, NULL, &error);

      g_assert_no_error (error);
      if (n == 0)
        break;
      g_string_append_c (answer, c);
    }
  if (g_str_has_prefix (answer->str, "HTTP/1.1 "))
    status = (guint) g_ascii_strtoull (answer->str + strlen ("HTTP/1.1 "), NULL, 10);
  if (out_status != NULL)
    *out_status = status;
  if (status != 101)
    {
      g_test_message ("raw upgrade answered: %s", answer->str);
      pubsub_test_raw_ws_free (raw);
      return NULL;
    }
  return raw;
}

void
pubsub_test_raw_ws_send (PubsubTestRawWs *raw,
                         guint8           opcode,
                         const void      *data,
                         gsize            len)
{
  guint32 mask = g_random_int ();
  guint8 mask_bytes[4];
  g_autoptr(GByteArray) frame = NULL;

  memcpy (mask_bytes, &mask, 4);
  frame = pubsub_test_ws_client_frame (0x80 | opcode, data, len, mask_bytes);
  socket_send_all (raw->socket, frame->data, frame->len);
}

void
pubsub_test_raw_ws_send_text (PubsubTestRawWs *raw,
                              const char      *text)
{
  pubsub_test_raw_ws_send (raw, 0x1, text, strlen (text));
}

/* A small control frame, best effort, without blocking. */
static void
raw_send_nowait (PubsubTestRawWs *raw,
                 guint8           opcode,
                 const guint8    *payload,
                 gsize            len)
{
  guint8 frame[2 + 4 + 125];

  g_assert (len <= 125);
  frame[0] = 0x80 | opcode;
  frame[1] = 0x80 | (guint8) len;
  memset (frame + 2, 0, 4);                /* a zero mask */
  memcpy (frame + 6, payload, len);
  g_socket_send_with_blocking (raw->socket, (const char *) frame, 6 + len, FALSE, NULL, NULL);
}

/* Moves every complete frame from ->input to ->frames. */
static void
raw_parse_frames (PubsubTestRawWs *raw)
{
  PubsubTestRawFrame *frame;

  while ((frame = pubsub_test_ws_server_frame_pop (raw->input)) != NULL)
    {
      if (frame->opcode == 0x8 && !raw->got_close)
        {
          gsize len;
          const guint8 *data = g_bytes_get_data (frame->payload, &len);

          if (data == NULL)   /* an empty payload */
            data = (const guint8 *) "";
          raw->got_close = TRUE;
          if (len >= 2)
            raw->close_code = (gushort) ((data[0] << 8) | data[1]);
          raw->close_reason = g_strndup ((const char *) data + MIN (len, 2),
                                         len >= 2 ? len - 2 : 0);
          /* Answer as a client should, so the server need not wait for us. */
          if (raw->answer_close)
            raw_send_nowait (raw, 0x8, data, MIN (len, 2));
        }
      g_queue_push_tail (&raw->frames, frame);
    }
}

static gboolean
on_raw_readable (GSocket      *socket,
                 GIOCondition  condition,
                 gpointer      user_data)
{
  PubsubTestRawWs *raw = user_data;

  for (;;)
    {
      guint8 buffer[65536];
      g_autoptr(GError) error = NULL;
      gssize n = g_socket_receive (socket, (char *) buffer, sizeof buffer, NULL, &error);

      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        break;
      if (n <= 0)
        {
          /* EOF, or ECONNRESET when the server dropped unread data. */
          if (error != NULL)
            g_test_message ("raw socket: %s", error->message);
          raw->eof = TRUE;
          break;
        }
      raw->bytes_read += (guint64) n;
      g_byte_array_append (raw->input, buffer, (guint) n);
    }
  raw_parse_frames (raw);
  if (raw->eof)
    {
      g_clear_pointer (&raw->source, g_source_unref);
      return G_SOURCE_REMOVE;
    }
  return G_SOURCE_CONTINUE;
}

void
pubsub_test_raw_ws_start_reading (PubsubTestRawWs *raw)
{
  g_assert_null (raw->source);
  g_socket_set_blocking (raw->socket, FALSE);
  raw->source = g_socket_create_source (raw->socket, G_IO_IN | G_IO_HUP | G_IO_ERR, NULL);
  g_source_set_callback (raw->source, G_SOURCE_FUNC (on_raw_readable), raw, NULL);
  g_source_attach (raw->source, NULL);
}

/* ---------------------------------------------------------------------- */
/* Misc                                                                   */

char *
pubsub_test_uuid (void)
{
  return g_uuid_string_random ();
}

char *
pubsub_test_topic_name (void)
{
  static guint counter;

  return g_strdup_printf ("t-%u", ++counter);
}
