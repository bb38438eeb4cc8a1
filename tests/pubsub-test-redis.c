/* pubsub-test-redis.c: a private redis-server for the cluster tests
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>

#include <gio/gunixsocketaddress.h>
#include <glib/gstdio.h>

#include "pubsub-test-redis.h"
#include "pubsub-test-util.h"

/* The directories of the servers alive, for a test that aborts (a failed
 * g_assert or g_error raises SIGABRT or SIGTRAP, and no teardown runs):
 * the handler kills the servers and removes their files with
 * async-signal-safe calls only, so the paths are made beforehand. */
#define MAX_LIVE 8
#define LIVE_PATH_MAX 256

typedef struct {
  gboolean used;
  pid_t    pid;
  char     dir[LIVE_PATH_MAX];
  char     files[3][LIVE_PATH_MAX];   /* redis.sock, redis.log, dump.rdb */
} LiveEntry;

static LiveEntry live[MAX_LIVE];

struct _PubsubTestRedis {
  LiveEntry   *live;
  char        *dir;
  char        *socket_path;
  char        *url;
  char        *log_path;
  GSubprocess *process;     /* NULL while not running */
  GPid         pid;
  gboolean     exited;      /* of ->process */
  gboolean     paused;
};

gboolean
pubsub_test_redis_available (void)
{
  g_autofree char *path = g_find_program_in_path ("redis-server");

  return path != NULL;
}

const char *
pubsub_test_redis_get_socket_path (PubsubTestRedis *redis)
{
  return redis->socket_path;
}

const char *
pubsub_test_redis_get_url (PubsubTestRedis *redis)
{
  return redis->url;
}

GPid
pubsub_test_redis_get_pid (PubsubTestRedis *redis)
{
  return redis->process != NULL ? redis->pid : 0;
}

gboolean
pubsub_test_redis_is_running (PubsubTestRedis *redis)
{
  return redis->process != NULL && !redis->exited;
}

gboolean
pubsub_test_redis_is_paused (PubsubTestRedis *redis)
{
  return redis->paused;
}

char *
pubsub_test_redis_dup_log (PubsubTestRedis *redis)
{
  char *contents = NULL;

  if (!g_file_get_contents (redis->log_path, &contents, NULL, NULL))
    return g_strdup ("");
  return contents;
}

/* ---------------------------------------------------------------------- */
/* RESP over a fresh connection                                           */

typedef struct {
  GSocket    *socket;
  GByteArray *input;
  gsize       pos;       /* parsed up to here */
} Connection;

static void
connection_clear (Connection *conn)
{
  g_clear_object (&conn->socket);
  g_clear_pointer (&conn->input, g_byte_array_unref);
}

static gboolean
connection_open (PubsubTestRedis  *redis,
                 Connection       *conn,
                 GError          **error)
{
  g_autoptr(GSocketAddress) address = g_unix_socket_address_new (redis->socket_path);

  conn->input = g_byte_array_new ();
  conn->pos = 0;
  conn->socket = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM,
                               G_SOCKET_PROTOCOL_DEFAULT, error);
  if (conn->socket == NULL)
    return FALSE;
  /* A frozen server accepts (the kernel's backlog) and never answers. */
  g_socket_set_timeout (conn->socket, 5 * pubsub_test_timeout_scale ());
  return g_socket_connect (conn->socket, address, NULL, error);
}

static gboolean
connection_send_all (Connection  *conn,
                     const char  *data,
                     gsize        len,
                     GError     **error)
{
  while (len > 0)
    {
      gssize sent = g_socket_send (conn->socket, data, len, NULL, error);

      if (sent < 0)
        return FALSE;
      data += sent;
      len -= (gsize) sent;
    }
  return TRUE;
}

/* Makes sure @need bytes are buffered after ->pos. */
static gboolean
connection_fill (Connection  *conn,
                 gsize        need,
                 GError     **error)
{
  while (conn->input->len - conn->pos < need)
    {
      char buffer[16384];
      gssize got = g_socket_receive (conn->socket, buffer, sizeof buffer, NULL, error);

      if (got < 0)
        return FALSE;
      if (got == 0)
        {
          g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                               "redis-server closed the connection");
          return FALSE;
        }
      g_byte_array_append (conn->input, (const guint8 *) buffer, (guint) got);
    }
  return TRUE;
}

/* One CRLF-terminated line, without the CRLF. */
static char *
connection_read_line (Connection  *conn,
                      GError     **error)
{
  for (;;)
    {
      const guint8 *start = conn->input->data + conn->pos;
      gsize avail = conn->input->len - conn->pos;
      const guint8 *cr = avail > 0 ? memchr (start, '\r', avail) : NULL;

      if (cr != NULL && (gsize) (cr - start) + 1 < avail)
        {
          char *line = g_strndup ((const char *) start, (gsize) (cr - start));

          conn->pos += (gsize) (cr - start) + 2;
          return line;
        }
      if (!connection_fill (conn, avail + 1, error))
        return NULL;
    }
}

/* Appends one reply (of any type) to @out; an error reply sets @error. */
static gboolean
connection_read_reply (Connection  *conn,
                       GString     *out,
                       gboolean    *out_nil,
                       GError     **error)
{
  g_autofree char *line = connection_read_line (conn, error);
  gint64 count;

  if (line == NULL)
    return FALSE;
  switch (line[0])
    {
    case '+':
    case ':':
      g_string_append (out, line + 1);
      return TRUE;
    case '-':
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s", line + 1);
      return FALSE;
    case '$':
      count = g_ascii_strtoll (line + 1, NULL, 10);
      if (count < 0)
        {
          g_string_append (out, "(nil)");
          if (out_nil != NULL)
            *out_nil = TRUE;
          return TRUE;
        }
      if (!connection_fill (conn, (gsize) count + 2, error))
        return FALSE;
      g_string_append_len (out, (const char *) conn->input->data + conn->pos, (gssize) count);
      conn->pos += (gsize) count + 2;
      return TRUE;
    case '*':
      count = g_ascii_strtoll (line + 1, NULL, 10);
      if (count < 0)
        {
          g_string_append (out, "(nil)");
          if (out_nil != NULL)
            *out_nil = TRUE;
          return TRUE;
        }
      for (gint64 i = 0; i < count; i++)
        {
          if (i > 0)
            g_string_append_c (out, '\n');
          if (!connection_read_reply (conn, out, NULL, error))
            return FALSE;
        }
      return TRUE;
    default:
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                   "not a RESP reply: %s", line);
      return FALSE;
    }
}

char *
pubsub_test_redis_commandv (PubsubTestRedis     *redis,
                            const char * const  *argv,
                            GError             **error)
{
  Connection conn = { NULL, };
  g_autoptr(GString) request = g_string_new (NULL);
  g_autoptr(GString) reply = g_string_new (NULL);
  gboolean nil = FALSE;
  gboolean ok;

  g_string_append_printf (request, "*%u\r\n", g_strv_length ((char **) argv));
  for (gsize i = 0; argv[i] != NULL; i++)
    g_string_append_printf (request, "$%zu\r\n%s\r\n", strlen (argv[i]), argv[i]);

  ok = connection_open (redis, &conn, error) &&
       connection_send_all (&conn, request->str, request->len, error) &&
       connection_read_reply (&conn, reply, &nil, error);
  connection_clear (&conn);
  if (!ok)
    return NULL;
  return g_string_free (g_steal_pointer (&reply), FALSE);
}

char *
pubsub_test_redis_command (PubsubTestRedis *redis,
                           const char      *first_arg,
                           ...)
{
  g_autoptr(GPtrArray) args = g_ptr_array_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *command = NULL;
  char *reply;
  va_list ap;

  va_start (ap, first_arg);
  for (const char *arg = first_arg; arg != NULL; arg = va_arg (ap, const char *))
    g_ptr_array_add (args, (gpointer) arg);
  va_end (ap);
  g_ptr_array_add (args, NULL);

  reply = pubsub_test_redis_commandv (redis, (const char * const *) args->pdata, &error);
  if (reply == NULL)
    {
      command = g_strjoinv (" ", (char **) args->pdata);
      g_error ("redis command '%s': %s", command, error->message);
    }
  return reply;
}

void
pubsub_test_redis_config_set (PubsubTestRedis *redis,
                              const char      *name,
                              const char      *value)
{
  g_autofree char *reply = pubsub_test_redis_command (redis, "CONFIG", "SET", name, value, NULL);

  g_assert_cmpstr (reply, ==, "OK");
}

/* ---------------------------------------------------------------------- */
/* Which Redis clients a process is                                       */

/* Every Unix socket's inode → its peer's inode (as `ss -x` finds them:
 * sock_diag over netlink, UDIAG_SHOW_PEER). */
static GHashTable *
unix_socket_peers (void)
{
  GHashTable *peers = g_hash_table_new (NULL, NULL);
  struct {
    struct nlmsghdr      header;
    struct unix_diag_req request;
  } query = { { 0, }, { 0, } };
  int fd = socket (AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  gboolean done = FALSE;

  if (fd < 0)
    g_error ("netlink sock_diag: %s", g_strerror (errno));
  query.header.nlmsg_len = sizeof query;
  query.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  query.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  query.request.sdiag_family = AF_UNIX;
  query.request.udiag_states = (guint32) -1;
  query.request.udiag_show = UDIAG_SHOW_PEER;
  if (send (fd, &query, sizeof query, 0) != (ssize_t) sizeof query)
    g_error ("netlink sock_diag: %s", g_strerror (errno));

  while (!done)
    {
      guint32 buffer[8192];
      ssize_t got = recv (fd, buffer, sizeof buffer, 0);
      struct nlmsghdr *header = (struct nlmsghdr *) buffer;
      size_t left;

      if (got <= 0)
        g_error ("netlink sock_diag: %s", got < 0 ? g_strerror (errno) : "EOF");
      for (left = (size_t) got; NLMSG_OK (header, left); header = NLMSG_NEXT (header, left))
        {
          struct unix_diag_msg *message = NLMSG_DATA (header);
          struct rtattr *attr = (struct rtattr *) (message + 1);
          size_t attrs_len;

          if (header->nlmsg_type == NLMSG_DONE)
            {
              done = TRUE;
              break;
            }
          if (header->nlmsg_type == NLMSG_ERROR)
            g_error ("netlink sock_diag: an error reply");
          attrs_len = header->nlmsg_len - NLMSG_LENGTH (sizeof *message);
          for (; RTA_OK (attr, attrs_len); attr = RTA_NEXT (attr, attrs_len))
            if (attr->rta_type == UNIX_DIAG_PEER)
              g_hash_table_insert (peers, GUINT_TO_POINTER (message->udiag_ino),
                                   GUINT_TO_POINTER (*(guint32 *) RTA_DATA (attr)));
        }
    }
  close (fd);
  return peers;
}

/* The socket inodes of a process → its fd numbers ("socket:[123]"). */
static GHashTable *
socket_fds (GPid pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/fd", (int) pid);
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  GHashTable *fds = g_hash_table_new (NULL, NULL);
  const char *name;

  if (dir == NULL)
    g_error ("cannot list %s", path);
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *link = g_build_filename (path, name, NULL);
      g_autofree char *target = g_file_read_link (link, NULL);
      guint inode;

      /* "socket:[123]" */
      if (target == NULL || !g_str_has_prefix (target, "socket:["))
        continue;
      inode = (guint) g_ascii_strtoull (target + strlen ("socket:["), NULL, 10);
      g_hash_table_insert (fds, GUINT_TO_POINTER (inode),
                           GUINT_TO_POINTER ((guint) g_ascii_strtoull (name, NULL, 10)));
    }
  return fds;
}

GPtrArray *
pubsub_test_redis_clients_of (PubsubTestRedis *redis,
                              GPid             pid,
                              gboolean         pubsub_only)
{
  g_autoptr(GHashTable) peers = unix_socket_peers ();
  g_autoptr(GHashTable) theirs = socket_fds (pid);
  g_autoptr(GHashTable) ours = NULL;
  g_autoptr(GHashTable) redis_fds = g_hash_table_new (NULL, NULL);
  g_autofree char *list = NULL;
  g_auto(GStrv) lines = NULL;
  GPtrArray *ids = g_ptr_array_new_with_free_func (g_free);
  GHashTableIter iter;
  gpointer inode;

  g_assert_true (pubsub_test_redis_is_running (redis));
  ours = socket_fds (redis->pid);
  /* Their socket's peer is one of redis-server's: that fd is the client. */
  g_hash_table_iter_init (&iter, theirs);
  while (g_hash_table_iter_next (&iter, &inode, NULL))
    {
      gpointer peer = g_hash_table_lookup (peers, inode);
      gpointer fd;

      if (peer != NULL && g_hash_table_lookup_extended (ours, peer, NULL, &fd))
        g_hash_table_add (redis_fds, fd);
    }

  list = pubsub_test_redis_command (redis, "CLIENT", "LIST", NULL);
  lines = g_strsplit (list, "\n", -1);
  for (gsize i = 0; lines[i] != NULL; i++)
    {
      g_auto(GStrv) fields = g_strsplit (lines[i], " ", -1);
      const char *id = NULL;
      gint64 fd = -1;
      gboolean pubsub = FALSE;

      for (gsize j = 0; fields[j] != NULL; j++)
        {
          if (g_str_has_prefix (fields[j], "id="))
            id = fields[j] + 3;
          else if (g_str_has_prefix (fields[j], "fd="))
            fd = g_ascii_strtoll (fields[j] + 3, NULL, 10);
          else if (g_str_has_prefix (fields[j], "flags="))
            pubsub = strchr (fields[j] + 6, 'P') != NULL;
        }
      if (id != NULL && fd >= 0 && g_hash_table_contains (redis_fds, GINT_TO_POINTER ((int) fd)) &&
          (pubsub || !pubsub_only))
        g_ptr_array_add (ids, g_strdup (id));
    }
  return ids;
}

/* ---------------------------------------------------------------------- */
/* Cleaning up after an abort                                             */

static void
on_fatal_signal (int signum)
{
  for (guint i = 0; i < MAX_LIVE; i++)
    {
      if (!live[i].used)
        continue;
      if (live[i].pid > 0)
        kill (live[i].pid, SIGKILL);
      for (guint k = 0; k < G_N_ELEMENTS (live[i].files); k++)
        unlink (live[i].files[k]);
      rmdir (live[i].dir);
    }
  signal (signum, SIG_DFL);
  raise (signum);
}

static LiveEntry *
live_add (const char *dir)
{
  static const char *const names[] = { "redis.sock", "redis.log", "dump.rdb" };
  static gboolean installed;

  if (!installed)
    {
      struct sigaction action = { 0, };

      action.sa_handler = on_fatal_signal;
      sigemptyset (&action.sa_mask);
      action.sa_flags = SA_RESETHAND;
      sigaction (SIGABRT, &action, NULL);
      sigaction (SIGTRAP, &action, NULL);
      installed = TRUE;
    }
  for (guint i = 0; i < MAX_LIVE; i++)
    {
      if (live[i].used)
        continue;
      g_assert_cmpuint (g_strlcpy (live[i].dir, dir, LIVE_PATH_MAX), <, LIVE_PATH_MAX);
      for (guint k = 0; k < G_N_ELEMENTS (names); k++)
        g_snprintf (live[i].files[k], LIVE_PATH_MAX, "%s/%s", dir, names[k]);
      live[i].pid = 0;
      live[i].used = TRUE;
      return &live[i];
    }
  g_error ("more than %u redis-servers at once", MAX_LIVE);
}

/* ---------------------------------------------------------------------- */
/* The process                                                            */

static void
die_with_parent (gpointer user_data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

static void
on_exited (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  gboolean *exited = user_data;

  g_subprocess_wait_finish (G_SUBPROCESS (source), result, NULL);
  *exited = TRUE;
}

typedef struct {
  PubsubTestRedis *redis;
  gboolean         answered;
} ReadyCheck;

/* PING on a fresh connection; TRUE once "+PONG" comes back. Startup
 * errors of the process are checked by the caller. */
static gboolean
ready_or_gone (gpointer user_data)
{
  ReadyCheck *check = user_data;
  static const char *const ping[] = { "PING", NULL };
  g_autofree char *reply = NULL;

  if (check->redis->exited)
    return TRUE;
  reply = pubsub_test_redis_commandv (check->redis, ping, NULL);
  check->answered = g_strcmp0 (reply, "PONG") == 0;
  return check->answered;
}

static void
spawn (PubsubTestRedis *redis)
{
  g_autoptr(GSubprocessLauncher) launcher =
    g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE);
  g_autoptr(GError) error = NULL;
  ReadyCheck check = { redis, FALSE };
  /* Only the socket: no TCP port, nothing written to disk unless asked. */
  const char *argv[] = {
    "redis-server",
    "--port", "0",
    "--unixsocket", redis->socket_path,
    "--unixsocketperm", "700",
    "--save", "",
    "--appendonly", "no",
    "--dir", redis->dir,
    "--logfile", redis->log_path,
    NULL
  };

  g_assert_null (redis->process);
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  redis->process = g_subprocess_launcher_spawnv (launcher, argv, &error);
  g_assert_no_error (error);
  redis->pid = (GPid) g_ascii_strtoll (g_subprocess_get_identifier (redis->process), NULL, 10);
  redis->live->pid = redis->pid;
  redis->exited = FALSE;
  redis->paused = FALSE;
  g_subprocess_wait_async (redis->process, NULL, on_exited, &redis->exited);

  pubsub_test_wait_until (ready_or_gone, &check, 10000, "redis-server to answer PING");
  if (!check.answered)
    {
      g_autofree char *log = pubsub_test_redis_dup_log (redis);

      g_error ("redis-server exited before answering:\n%s", log);
    }
  g_test_message ("redis-server %d ready on %s", (int) redis->pid, redis->socket_path);
}

/* Sends @signum and waits for the process to be gone. */
static void
terminate (PubsubTestRedis *redis,
           int              signum)
{
  if (redis->process == NULL)
    return;
  if (!redis->exited)
    {
      /* A stopped process does not act on SIGTERM until it runs again. */
      if (redis->paused)
        g_subprocess_send_signal (redis->process, SIGCONT);
      g_subprocess_send_signal (redis->process, signum);
      pubsub_test_wait_flag (&redis->exited, 15000, "redis-server to exit");
    }
  redis->paused = FALSE;
  g_clear_object (&redis->process);
  redis->pid = 0;
  redis->live->pid = 0;
}

PubsubTestRedis *
pubsub_test_redis_start (void)
{
  PubsubTestRedis *redis = g_new0 (PubsubTestRedis, 1);
  g_autoptr(GError) error = NULL;

  /* In /tmp, not in the test's isolated (and deep) directories: a Unix
   * socket path must fit in sun_path's 108 bytes. */
  redis->dir = g_dir_make_tmp ("pubsub-redis-XXXXXX", &error);
  g_assert_no_error (error);
  redis->live = live_add (redis->dir);
  redis->socket_path = g_build_filename (redis->dir, "redis.sock", NULL);
  redis->url = g_strconcat ("unix:", redis->socket_path, NULL);
  redis->log_path = g_build_filename (redis->dir, "redis.log", NULL);
  g_assert_cmpuint (strlen (redis->socket_path), <, 100);
  spawn (redis);
  return redis;
}

void
pubsub_test_redis_stop (PubsubTestRedis *redis)
{
  terminate (redis, SIGTERM);
}

void
pubsub_test_redis_kill (PubsubTestRedis *redis)
{
  terminate (redis, SIGKILL);
}

void
pubsub_test_redis_restart (PubsubTestRedis *redis,
                           gboolean         keep_data)
{
  terminate (redis, SIGTERM);
  if (!keep_data)
    {
      g_autofree char *dump = g_build_filename (redis->dir, "dump.rdb", NULL);

      if (g_unlink (dump) != 0 && errno != ENOENT)
        g_error ("removing %s: %s", dump, g_strerror (errno));
    }
  spawn (redis);
}

void
pubsub_test_redis_pause (PubsubTestRedis *redis)
{
  g_assert_true (pubsub_test_redis_is_running (redis));
  g_subprocess_send_signal (redis->process, SIGSTOP);
  redis->paused = TRUE;
}

void
pubsub_test_redis_resume (PubsubTestRedis *redis)
{
  g_assert_true (pubsub_test_redis_is_running (redis));
  g_subprocess_send_signal (redis->process, SIGCONT);
  redis->paused = FALSE;
}

static void
remove_dir (const char *path)
{
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  if (dir == NULL)
    return;
  /* redis-server writes only plain files here (socket, log, dump). */
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *file = g_build_filename (path, name, NULL);

      if (g_unlink (file) != 0)
        g_warning ("removing %s: %s", file, g_strerror (errno));
    }
  if (g_rmdir (path) != 0)
    g_warning ("removing %s: %s", path, g_strerror (errno));
}

void
pubsub_test_redis_free (PubsubTestRedis *redis)
{
  if (redis == NULL)
    return;
  terminate (redis, SIGKILL);
  remove_dir (redis->dir);
  redis->live->used = FALSE;
  g_free (redis->dir);
  g_free (redis->socket_path);
  g_free (redis->url);
  g_free (redis->log_path);
  g_free (redis);
}
