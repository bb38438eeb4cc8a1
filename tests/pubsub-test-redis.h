/* pubsub-test-redis.h: a private redis-server for the cluster tests
 *
 * Each test that needs Redis starts its own redis-server, listening only on
 * a Unix socket in a fresh temporary directory (no TCP port, no RDB or AOF
 * unless the test asks for a SAVE), and can then break it on purpose: stop
 * it, kill it, restart it empty or with its saved data on the same socket
 * path, freeze it (SIGSTOP) and thaw it. Commands are sent over raw RESP on
 * the socket, so the tests need no Redis client library.
 *
 * Every wait iterates the default main context (the daemons' output must
 * keep being read) and fails the test at a deadline; deadlines are scaled
 * by pubsub_test_timeout_scale().
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct _PubsubTestRedis PubsubTestRedis;

/* Whether redis-server is on PATH; tests skip (g_test_skip) without it. */
gboolean          pubsub_test_redis_available       (void);

/**
 * pubsub_test_redis_start:
 *
 * Makes a temporary directory, starts redis-server on DIR/redis.sock (its
 * log in DIR/redis.log) and waits until it answers PING. The server dies
 * with the test process (PR_SET_PDEATHSIG) if the test aborts.
 */
PubsubTestRedis  *pubsub_test_redis_start           (void);

/* The socket's path, and the value of pubsubd's --cluster for it
 * ("unix:/tmp/pubsub-redis-XXXXXX/redis.sock"). */
const char       *pubsub_test_redis_get_socket_path (PubsubTestRedis *redis);
const char       *pubsub_test_redis_get_url         (PubsubTestRedis *redis);
/* The server's pid (0 while it is not running). */
GPid              pubsub_test_redis_get_pid         (PubsubTestRedis *redis);
gboolean          pubsub_test_redis_is_running      (PubsubTestRedis *redis);

/* SIGTERM (SIGCONT first if paused) and wait for the exit. */
void              pubsub_test_redis_stop            (PubsubTestRedis *redis);
/* SIGKILL and wait for the exit: the socket file stays behind. */
void              pubsub_test_redis_kill            (PubsubTestRedis *redis);
/**
 * pubsub_test_redis_restart:
 * @keep_data: %FALSE: start empty (any dump.rdb is removed first); %TRUE:
 *   start from DIR/dump.rdb, as written by a SAVE command
 *
 * Stops the server if it runs (SIGTERM), starts a new one on the same
 * socket path and waits until it answers.
 */
void              pubsub_test_redis_restart         (PubsubTestRedis *redis,
                                                     gboolean         keep_data);
/* SIGSTOP / SIGCONT: connections stay open, nothing is answered. */
void              pubsub_test_redis_pause           (PubsubTestRedis *redis);
void              pubsub_test_redis_resume          (PubsubTestRedis *redis);
gboolean          pubsub_test_redis_is_paused       (PubsubTestRedis *redis);

/**
 * pubsub_test_redis_commandv:
 * @argv: the command and its arguments, %NULL-terminated
 * @error: a Redis error reply ("ERR …") or a transport error (including a
 *   timeout after 5 s, scaled)
 *
 * Sends one command on a fresh connection and reads its reply, as text:
 * a status or bulk string as it is, an integer in decimal, an array's
 * elements one per line (nested arrays flattened), a nil "(nil)".
 *
 * Returns: (nullable): the reply, or %NULL with @error set
 */
char             *pubsub_test_redis_commandv        (PubsubTestRedis     *redis,
                                                     const char * const  *argv,
                                                     GError             **error);
/* The same, failing the test on any error. */
char             *pubsub_test_redis_command         (PubsubTestRedis *redis,
                                                     const char      *first_arg,
                                                     ...) G_GNUC_NULL_TERMINATED;
/* CONFIG SET @name @value, asserting the OK. */
void              pubsub_test_redis_config_set      (PubsubTestRedis *redis,
                                                     const char      *name,
                                                     const char      *value);
/**
 * pubsub_test_redis_clients_of:
 * @pid: a process connected to this server (a pubsubd node)
 * @pubsub_only: only its clients in pub/sub mode (CLIENT LIST flag P)
 *
 * Finds which Redis clients are that process's connections, whatever their
 * names: the peer of each of its Unix sockets (sock_diag) is one of
 * redis-server's descriptors, the fd= of CLIENT LIST.
 *
 * Returns: (transfer full): the ids, for CLIENT KILL ID
 */
GPtrArray        *pubsub_test_redis_clients_of      (PubsubTestRedis *redis,
                                                     GPid             pid,
                                                     gboolean         pubsub_only);
/* Everything redis-server has logged so far (all its runs). */
char             *pubsub_test_redis_dup_log         (PubsubTestRedis *redis);

/* Kills the server if it runs (SIGCONT + SIGKILL), removes the directory
 * and frees. */
void              pubsub_test_redis_free            (PubsubTestRedis *redis);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PubsubTestRedis, pubsub_test_redis_free)

G_END_DECLS
