/* pubsub-http-front.c: HTTP connections before (or without) a WebSocket
 * upgrade: keep-alive, time limits, head limits, early refusals
 *
 * Each connection the listener admits is handed to libsoup with
 * soup_server_accept_iostream(), through a PubsubHttpInput so that we see
 * its bytes, its end and its close, and is followed here through states:
 *
 *   HEAD ──got headers──► BODY ──body read──► RESPONDING ──finished──► IDLE
 *    ▲                                            │                     │
 *    └──────────────── first bytes of the next request ◄────────────────┘
 *   (and UPGRADED after a 101: the WebSocket's own rules apply)
 *
 * Time limits, each a FIFO of deadlines (one constant timeout per queue,
 * so appending keeps it sorted) behind a single timer:
 *   HEAD        the whole head within header-timeout, from the accept or
 *               from the first byte of a keep-alive request: 408 if some of
 *               it came, a plain close if nothing did;
 *   BODY        no progress for idle-timeout: 408;
 *   RESPONDING  the client takes nothing of the response for idle-timeout:
 *               closed;
 *   IDLE        idle-timeout between two requests: closed.
 *
 * Keep-alive in libsoup 3.2.3 needs two things from us:
 * - its request_finished() keeps a connection open only when the server
 *   has a listener of its own ("priv->listeners"); ours is a socketpair
 *   that never becomes readable, so it never accepts anything;
 * - an idle keep-alive connection that the client closes is dropped by
 *   libsoup but never closed or freed (fixed in 3.3.0): the input hook sees
 *   the end first, keeps it from libsoup, and the connection is closed here.
 *
 * Closing one ourselves, or answering it without reading its request (413,
 * 431, 408…), takes the connection back from libsoup with
 * soup_server_message_steal_connection() on its latest message — valid
 * whenever libsoup is waiting for I/O on it, which is always the case when
 * a timer fires or a handler runs — and then writes a raw response and
 * closes through the listener (lingering, so the client reads it).
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pubsub-error.h"
#include "pubsub-http-front.h"
#include "pubsub-http-input.h"

typedef enum {
  CONN_HEAD,
  CONN_BODY,
  CONN_RESPONDING,
  CONN_IDLE,
  CONN_CLOSING,    /* a close is due at the next timer pass */
  CONN_UPGRADED,
} ConnState;

typedef struct {
  GQueue queue;      /* of Conn, by deadline */
  gint64 timeout;    /* µs */
} DeadlineQueue;

typedef struct {
  PubsubHttpFront   *front;         /* not owned; NULL once the front is gone (an
                                     * upgraded connection it left to its owner) */
  GSocketConnection *connection;    /* owned */
  GSocketAddress    *remote;        /* owned: carries this Conn (conn_quark ()), the
                                     * way back from a libsoup message */
  PubsubHttpInput   *input;         /* not owned: libsoup's stream holds it */
  SoupServerMessage *msg;           /* owned, nullable: the latest request */
  gulong             wrote_handler; /* on msg */
  ConnState          state;
  GList              link;          /* in the queue of its state, data = this */
  DeadlineQueue     *queue;         /* that queue, or NULL */
  gint64             deadline;      /* monotonic µs */
  guint64            head_bytes;    /* read since the current head began */
  gboolean           ended;         /* libsoup saw the end of the stream */
  gboolean           released;      /* socket closed and budget slot given back */
} Conn;

struct _PubsubHttpFront {
  GObject         parent_instance;

  SoupServer     *soup;            /* owned */
  PubsubListener *listener;        /* owned */
  PubsubMetrics  *metrics;         /* owned, nullable: counts the open connections */
  int             keepalive_peer;  /* the silent end of libsoup's listener socketpair */
  DeadlineQueue   head_queue;      /* HEAD */
  DeadlineQueue   idle_queue;      /* BODY, RESPONDING, IDLE */
  DeadlineQueue   now_queue;       /* CLOSING */
  DeadlineQueue   upgraded;        /* UPGRADED: no deadline, listed for dispose */
  GSource        *timer;           /* owned */
  gboolean        shutting_down;
};

G_DEFINE_FINAL_TYPE (PubsubHttpFront, pubsub_http_front, G_TYPE_OBJECT)

static GQuark
conn_quark (void)
{
  static GQuark quark;

  if (quark == 0)
    quark = g_quark_from_static_string ("pubsub-http-conn");
  return quark;
}

static void conn_close (Conn   *conn,
                        GBytes *response);

/* ---------------------------------------------------------------------- */
/* Deadlines                                                              */

static void
arm_timer (PubsubHttpFront *self,
           gint64           deadline)
{
  gint64 armed = g_source_get_ready_time (self->timer);

  if (armed < 0 || deadline < armed)
    g_source_set_ready_time (self->timer, deadline);
}

static void
conn_unqueue (Conn *conn)
{
  if (conn->queue == NULL)
    return;
  g_queue_unlink (&conn->queue->queue, &conn->link);
  conn->queue = NULL;
}

/* Appends @conn to @queue: a constant timeout keeps the queue sorted. */
static void
conn_queue (Conn          *conn,
            DeadlineQueue *queue)
{
  conn_unqueue (conn);
  conn->deadline = g_get_monotonic_time () + queue->timeout;
  conn->queue = queue;
  g_queue_push_tail_link (&queue->queue, &conn->link);
  arm_timer (conn->front, conn->deadline);
}

static void
conn_enter (Conn      *conn,
            ConnState  state)
{
  PubsubHttpFront *self = conn->front;

  conn->state = state;
  switch (state)
    {
    case CONN_HEAD:
      conn_queue (conn, &self->head_queue);
      break;
    case CONN_BODY:
    case CONN_RESPONDING:
    case CONN_IDLE:
      conn_queue (conn, &self->idle_queue);
      break;
    case CONN_CLOSING:
      conn_queue (conn, &self->now_queue);
      break;
    case CONN_UPGRADED:
      conn_unqueue (conn);
      conn->queue = &self->upgraded;
      g_queue_push_tail_link (&self->upgraded.queue, &conn->link);
      break;
    default:
      g_assert_not_reached ();
    }
}

/* Progress in a body or a response: the idle deadline starts again. */
static void
conn_touch (Conn *conn)
{
  if (conn->state == CONN_BODY || conn->state == CONN_RESPONDING)
    conn_queue (conn, &conn->front->idle_queue);
}

static GBytes *
error_response (PubsubError  code,
                const char  *message)
{
  g_autoptr(GError) error = g_error_new_literal (PUBSUB_ERROR, code, message);

  return pubsub_http_error_response_new (error);
}

static GBytes *
request_timeout_response (void)
{
  return error_response (PUBSUB_ERROR_REQUEST_TIMEOUT, "the request did not arrive in time");
}

static void
conn_expired (Conn *conn)
{
  g_autoptr(GBytes) response = NULL;

  switch (conn->state)
    {
    case CONN_HEAD:
      /* libsoup parsed the head, but the request skipped our early handler
       * (a path it refuses itself, for one): it is in its body. */
      if (conn->msg != NULL && soup_server_message_get_method (conn->msg) != NULL)
        {
          conn_enter (conn, CONN_BODY);
          return;
        }
      if (conn->head_bytes > 0)
        response = request_timeout_response ();
      break;
    case CONN_BODY:
      response = request_timeout_response ();
      break;
    case CONN_RESPONDING:
    case CONN_IDLE:
    case CONN_CLOSING:
      break;
    case CONN_UPGRADED:
    default:
      g_assert_not_reached ();
    }
  conn_close (conn, response);
}

static void
expire_queue (DeadlineQueue *queue,
              gint64         now)
{
  while (queue->queue.head != NULL)
    {
      Conn *conn = queue->queue.head->data;

      if (conn->deadline > now)
        return;
      conn_unqueue (conn);
      conn_expired (conn);
    }
}

static gboolean
on_timer (GSource     *source,
          GSourceFunc  callback,
          gpointer     user_data)
{
  PubsubHttpFront *self = user_data;
  DeadlineQueue *queues[] = { &self->now_queue, &self->head_queue, &self->idle_queue };
  gint64 now = g_get_monotonic_time ();

  g_source_set_ready_time (source, -1);
  for (guint i = 0; i < G_N_ELEMENTS (queues); i++)
    expire_queue (queues[i], now);
  for (guint i = 0; i < G_N_ELEMENTS (queues); i++)
    if (queues[i]->queue.head != NULL)
      arm_timer (self, ((Conn *) queues[i]->queue.head->data)->deadline);
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs timer_funcs = { .dispatch = on_timer };

/* ---------------------------------------------------------------------- */
/* Connections                                                            */

static Conn *
conn_from_message (SoupServerMessage *msg)
{
  GSocketAddress *remote = soup_server_message_get_remote_address (msg);

  return remote != NULL ? g_object_get_qdata (G_OBJECT (remote), conn_quark ()) : NULL;
}

static void
conn_set_message (Conn              *conn,
                  SoupServerMessage *msg)
{
  if (conn->msg == msg)
    return;
  if (conn->msg != NULL)
    {
      g_clear_signal_handler (&conn->wrote_handler, conn->msg);
      g_clear_object (&conn->msg);
    }
  if (msg == NULL)
    return;
  conn->msg = g_object_ref (msg);
  conn->wrote_handler = g_signal_connect_swapped (msg, "wrote-body-data",
                                                  G_CALLBACK (conn_touch), conn);
}

static void
conn_free (Conn *conn)
{
  conn_unqueue (conn);
  if (conn->input != NULL)
    pubsub_http_input_detach (conn->input);
  conn_set_message (conn, NULL);
  g_object_set_qdata (G_OBJECT (conn->remote), conn_quark (), NULL);
  g_object_unref (conn->remote);
  g_object_unref (conn->connection);
  g_free (conn);
}

/* Closes the socket, or answers @response on it first; the budget slot is
 * released once it is closed. */
static void
conn_finish (Conn   *conn,
             GBytes *response)
{
  PubsubListener *listener;
  GSocket *socket = g_socket_connection_get_socket (conn->connection);

  if (conn->released)
    return;
  conn->released = TRUE;
  if (conn->front == NULL)
    {
      g_io_stream_close (G_IO_STREAM (conn->connection), NULL, NULL);
      return;
    }
  listener = conn->front->listener;
  if (response != NULL)
    {
      pubsub_listener_close_with (listener, socket, G_OBJECT (conn->connection), response, TRUE);
      return;
    }
  g_io_stream_close (G_IO_STREAM (conn->connection), NULL, NULL);
  pubsub_listener_release (listener);
}

/* Takes the connection back from libsoup and closes it, after @response if
 * not %NULL. */
static void
conn_close (Conn   *conn,
            GBytes *response)
{
  g_autoptr(GIOStream) stolen = NULL;

  conn_unqueue (conn);
  /* No hook from here on: dropping libsoup's stream closes ours. */
  if (conn->input != NULL)
    pubsub_http_input_detach (conn->input);
  conn->input = NULL;
  if (conn->msg != NULL)
    stolen = soup_server_message_steal_connection (conn->msg);
  g_clear_object (&stolen);
  conn_finish (conn, response);
  conn_free (conn);
}

/* Input hooks */

static void
on_input_received (gpointer data,
                   gsize    n)
{
  Conn *conn = data;

  switch (conn->state)
    {
    case CONN_HEAD:
    case CONN_IDLE:
      conn->head_bytes += n;
      break;
    case CONN_BODY:
      conn_touch (conn);
      break;
    case CONN_RESPONDING:
    case CONN_CLOSING:
    case CONN_UPGRADED:
    default:
      break;
    }
}

static gboolean
on_input_ended (gpointer data)
{
  Conn *conn = data;

  /* Between two requests, libsoup 3.2.3 would lose the connection: it is
   * taken back from libsoup at the next timer pass, but its socket and its
   * slot of the budget are given back now, so that a client that closes
   * and at once connects again finds its slot free. */
  if (conn->state == CONN_IDLE || conn->state == CONN_CLOSING)
    {
      if (conn->state == CONN_IDLE)
        {
          conn_enter (conn, CONN_CLOSING);
          conn_finish (conn, NULL);
        }
      return TRUE;
    }
  conn->ended = TRUE;
  return FALSE;
}

/* libsoup is done with the connection (or the WebSocket closed it). */
static void
on_input_closed (gpointer data)
{
  Conn *conn = data;
  g_autoptr(GBytes) response = NULL;

  conn->input = NULL;
  /* It gave up reading a head while the client was still sending: the head
   * is over its limit, and it answers nothing. */
  if (conn->front != NULL && conn->state == CONN_HEAD && !conn->ended &&
      conn->head_bytes > PUBSUB_HTTP_MAX_HEAD_BYTES)
    response = error_response (PUBSUB_ERROR_REQUEST_HEADER_TOO_LARGE,
                               "the request head is larger than 64 KiB");
  conn_finish (conn, response);
  conn_free (conn);
}

static const PubsubHttpInputHooks input_hooks = {
  .received = on_input_received,
  .ended = on_input_ended,
  .closed = on_input_closed,
};

static void
on_incoming (PubsubListener  *listener,
             GSocket         *socket,
             PubsubHttpFront *self)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocketAddress) local = g_socket_get_local_address (socket, NULL);
  g_autoptr(GIOStream) stream = NULL;
  g_autoptr(PubsubHttpInput) input = NULL;
  Conn *conn;

  conn = g_new0 (Conn, 1);
  conn->front = self;
  conn->link.data = conn;
  conn->connection = g_socket_connection_factory_create_connection (socket);
  conn->remote = g_socket_get_remote_address (socket, NULL);
  if (local == NULL || conn->remote == NULL || self->shutting_down)
    {
      /* Already gone (no peer address), or we are stopping. */
      g_clear_object (&conn->remote);
      g_io_stream_close (G_IO_STREAM (conn->connection), NULL, NULL);
      g_object_unref (conn->connection);
      g_free (conn);
      pubsub_listener_release (listener);
      return;
    }
  g_object_set_qdata (G_OBJECT (conn->remote), conn_quark (), conn);
  /* Open until the GSocketConnection goes, which is when its socket closes. */
  if (self->metrics != NULL)
    pubsub_metrics_track_connection (self->metrics, G_OBJECT (conn->connection));

  /* Events are small and latency matters; our own writev() batches. */
  if (!g_socket_set_option (socket, IPPROTO_TCP, TCP_NODELAY, 1, &error))
    g_debug ("cannot set TCP_NODELAY: %s", error->message);
  g_clear_error (&error);

  input = pubsub_http_input_new (g_io_stream_get_input_stream (G_IO_STREAM (conn->connection)),
                                 &input_hooks, conn);
  conn->input = input;
  stream = g_simple_io_stream_new (G_INPUT_STREAM (input),
                                   g_io_stream_get_output_stream (G_IO_STREAM (conn->connection)));
  conn_enter (conn, CONN_HEAD);
  /* Emits request-started for the first request at once (before any byte
   * arrives), which gives the connection its message. */
  soup_server_accept_iostream (self->soup, stream, local, conn->remote, NULL);
}

/* ---------------------------------------------------------------------- */
/* libsoup's requests                                                     */

static void
on_request_started (SoupServer        *server,
                    SoupServerMessage *msg,
                    PubsubHttpFront   *self)
{
  Conn *conn = conn_from_message (msg);

  if (conn == NULL)
    return;
  conn_set_message (conn, msg);
  /* A keep-alive request: its first bytes just came. */
  if (conn->state == CONN_IDLE)
    conn_enter (conn, CONN_HEAD);
}

static void
on_request_read (SoupServer        *server,
                 SoupServerMessage *msg,
                 PubsubHttpFront   *self)
{
  Conn *conn = conn_from_message (msg);

  if (conn == NULL || conn->state == CONN_CLOSING)
    return;
  if (self->shutting_down)
    soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                  "Connection", "close");
  conn_enter (conn, CONN_RESPONDING);
}

/* Also for request-aborted. When libsoup does not keep the connection, it
 * closes it right after, and on_input_closed() frees it. */
static void
on_request_finished (SoupServer        *server,
                     SoupServerMessage *msg,
                     PubsubHttpFront   *self)
{
  Conn *conn = conn_from_message (msg);

  if (conn == NULL || conn->msg != msg || conn->state == CONN_CLOSING)
    return;
  /* The connection keeps its latest message until the next request; the
   * response it has written need not stay in memory meanwhile. */
  soup_message_body_truncate (soup_server_message_get_response_body (msg));
  conn->head_bytes = 0;
  conn->ended = FALSE;
  conn_enter (conn, self->shutting_down ? CONN_CLOSING : CONN_IDLE);
}

/* ---------------------------------------------------------------------- */
/* Object                                                                 */

static void
pubsub_http_front_dispose (GObject *object)
{
  PubsubHttpFront *self = PUBSUB_HTTP_FRONT (object);
  DeadlineQueue *queues[] = { &self->now_queue, &self->head_queue, &self->idle_queue };

  if (self->soup != NULL)
    g_signal_handlers_disconnect_by_data (self->soup, self);
  if (self->listener != NULL)
    g_signal_handlers_disconnect_by_data (self->listener, self);
  /* Connections still in libsoup's hands are closed with the server; the
   * WebSocket ones are closed by their owner, and release their slot
   * then. */
  for (guint i = 0; i < G_N_ELEMENTS (queues); i++)
    while (queues[i]->queue.head != NULL)
      conn_close (queues[i]->queue.head->data, NULL);
  while (self->upgraded.queue.head != NULL)
    {
      Conn *conn = self->upgraded.queue.head->data;

      conn_unqueue (conn);
      conn->front = NULL;
    }
  if (self->timer != NULL)
    {
      g_source_destroy (self->timer);
      g_clear_pointer (&self->timer, g_source_unref);
    }
  g_clear_object (&self->soup);
  g_clear_object (&self->listener);
  g_clear_object (&self->metrics);

  G_OBJECT_CLASS (pubsub_http_front_parent_class)->dispose (object);
}

static void
pubsub_http_front_finalize (GObject *object)
{
  PubsubHttpFront *self = PUBSUB_HTTP_FRONT (object);

  if (self->keepalive_peer >= 0)
    close (self->keepalive_peer);

  G_OBJECT_CLASS (pubsub_http_front_parent_class)->finalize (object);
}

static void
pubsub_http_front_class_init (PubsubHttpFrontClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = pubsub_http_front_dispose;
  object_class->finalize = pubsub_http_front_finalize;
}

static void
pubsub_http_front_init (PubsubHttpFront *self)
{
  self->keepalive_peer = -1;
  g_queue_init (&self->head_queue.queue);
  g_queue_init (&self->idle_queue.queue);
  g_queue_init (&self->now_queue.queue);
  g_queue_init (&self->upgraded.queue);
}

/* See the top of the file: a listener that makes libsoup keep connections
 * alive, and never accepts anything (its socket is one end of a socketpair
 * whose other end never writes). */
static gboolean
enable_keepalive (PubsubHttpFront  *self,
                  GError          **error)
{
  g_autoptr(GSocket) socket = NULL;
  int fds[2];

  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) != 0)
    {
      int saved = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                   "socketpair: %s", g_strerror (saved));
      return FALSE;
    }
  self->keepalive_peer = fds[1];
  socket = g_socket_new_from_fd (fds[0], error);
  if (socket == NULL)
    {
      close (fds[0]);
      return FALSE;
    }
  return soup_server_listen_socket (self->soup, socket, 0, error);
}

/**
 * pubsub_http_front_new:
 * @soup: the server that reads and answers the requests
 * @listener: where the connections come from
 * @metrics: (nullable): where the open connections are counted
 * @header_timeout: seconds a request head may take
 * @idle_timeout: seconds a connection may stay without progress
 *
 * Returns: (transfer full) (nullable): the front, or %NULL with @error set
 */
PubsubHttpFront *
pubsub_http_front_new (SoupServer      *soup,
                       PubsubListener  *listener,
                       PubsubMetrics   *metrics,
                       guint            header_timeout,
                       guint            idle_timeout,
                       GError         **error)
{
  g_autoptr(PubsubHttpFront) self = g_object_new (PUBSUB_TYPE_HTTP_FRONT, NULL);

  self->soup = g_object_ref (soup);
  self->listener = g_object_ref (listener);
  self->metrics = metrics != NULL ? g_object_ref (metrics) : NULL;
  self->head_queue.timeout = (gint64) header_timeout * G_USEC_PER_SEC;
  self->idle_queue.timeout = (gint64) idle_timeout * G_USEC_PER_SEC;
  self->now_queue.timeout = 0;
  if (!enable_keepalive (self, error))
    return NULL;

  self->timer = g_source_new (&timer_funcs, sizeof (GSource));
  g_source_set_static_name (self->timer, "pubsub-http-deadlines");
  g_source_set_callback (self->timer, NULL, self, NULL);
  g_source_attach (self->timer, NULL);

  g_signal_connect (listener, "incoming", G_CALLBACK (on_incoming), self);
  g_signal_connect (soup, "request-started", G_CALLBACK (on_request_started), self);
  g_signal_connect (soup, "request-read", G_CALLBACK (on_request_read), self);
  g_signal_connect (soup, "request-finished", G_CALLBACK (on_request_finished), self);
  g_signal_connect (soup, "request-aborted", G_CALLBACK (on_request_finished), self);
  return g_steal_pointer (&self);
}

/* Returns: (nullable): why the head of @msg is refused, or NULL */
static GError *
check_head (SoupServerMessage *msg)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  GUri *uri = soup_server_message_get_uri (msg);
  const char *query = g_uri_get_query (uri);
  SoupMessageHeadersIter iter;
  const char *name;
  const char *value;
  guint fields = 0;

  if (strlen (g_uri_get_path (uri)) + (query != NULL ? strlen (query) + 1 : 0) >
      PUBSUB_HTTP_MAX_LINE_BYTES)
    return g_error_new_literal (PUBSUB_ERROR, PUBSUB_ERROR_URI_TOO_LONG,
                                "the request target is longer than 8 KiB");
  soup_message_headers_iter_init (&iter, headers);
  while (soup_message_headers_iter_next (&iter, &name, &value))
    {
      if (++fields > PUBSUB_HTTP_MAX_HEADER_FIELDS)
        return g_error_new_literal (PUBSUB_ERROR, PUBSUB_ERROR_REQUEST_HEADER_TOO_LARGE,
                                    "the request has more than 100 header fields");
      /* "Name: value\r\n" */
      if (strlen (name) + strlen (value) + 4 > PUBSUB_HTTP_MAX_LINE_BYTES)
        return g_error_new_literal (PUBSUB_ERROR, PUBSUB_ERROR_REQUEST_HEADER_TOO_LARGE,
                                    "a request header line is longer than 8 KiB");
    }
  return NULL;
}

/**
 * pubsub_http_front_check_head:
 * @msg: a request whose head was just read (call from an early handler)
 *
 * Refuses a request whose target is over 8 KiB (414 URI_TOO_LONG), with a
 * header line over 8 KiB or more than 100 header fields (431
 * REQUEST_HEADER_TOO_LARGE): answered at once and closed.
 *
 * Returns: %FALSE if @msg was refused: leave it alone
 */
gboolean
pubsub_http_front_check_head (PubsubHttpFront   *self,
                              SoupServerMessage *msg)
{
  g_autoptr(GError) error = NULL;
  Conn *conn;

  g_return_val_if_fail (PUBSUB_IS_HTTP_FRONT (self), FALSE);

  conn = conn_from_message (msg);
  if (conn == NULL)
    return TRUE;
  error = check_head (msg);
  if (error != NULL)
    {
      pubsub_http_front_refuse (self, msg, error);
      return FALSE;
    }
  if (conn->state == CONN_HEAD)
    conn_enter (conn, CONN_BODY);
  return TRUE;
}

/**
 * pubsub_http_front_refuse:
 * @msg: a request being read (from an early handler or a got-chunk
 *   handler)
 * @error: a #PUBSUB_ERROR: the status, code and message of the answer
 *
 * Answers @msg with the error JSON and `Connection: close` at once, without
 * reading the rest of its body, and closes the connection.
 */
void
pubsub_http_front_refuse (PubsubHttpFront   *self,
                          SoupServerMessage *msg,
                          const GError      *error)
{
  g_autoptr(GBytes) response = NULL;
  Conn *conn;

  g_return_if_fail (PUBSUB_IS_HTTP_FRONT (self));

  /* Whatever happens to the connection, libsoup must not call the handler
   * or answer this one. */
  soup_server_message_set_status (msg, pubsub_error_http_status (error), NULL);
  conn = conn_from_message (msg);
  if (conn == NULL || conn->state == CONN_UPGRADED)
    return;
  g_debug ("refusing a request: %s", pubsub_error_to_code (error));
  response = pubsub_http_error_response_new (error);
  conn_close (conn, response);
}

/**
 * pubsub_http_front_take_upgraded:
 * @msg: a request answered 101 (call from its "wrote-informational")
 *
 * Takes the connection from libsoup for its WebSocket. Its budget slot is
 * released when the returned stream is closed.
 *
 * Returns: (transfer full): the connection's stream
 */
GIOStream *
pubsub_http_front_take_upgraded (PubsubHttpFront   *self,
                                 SoupServerMessage *msg)
{
  Conn *conn;

  g_return_val_if_fail (PUBSUB_IS_HTTP_FRONT (self), NULL);

  conn = conn_from_message (msg);
  if (conn != NULL)
    {
      conn_enter (conn, CONN_UPGRADED);
      conn_set_message (conn, NULL);
    }
  return soup_server_message_steal_connection (msg);
}

/**
 * pubsub_http_front_shutdown:
 *
 * Closes the connections that have no request in flight (idle, or no byte
 * of a request yet); the others close after their response.
 */
void
pubsub_http_front_shutdown (PubsubHttpFront *self)
{
  g_autoptr(GPtrArray) idle = g_ptr_array_new ();
  DeadlineQueue *queues[] = { &self->head_queue, &self->idle_queue };

  g_return_if_fail (PUBSUB_IS_HTTP_FRONT (self));

  if (self->shutting_down)
    return;
  self->shutting_down = TRUE;
  for (guint i = 0; i < G_N_ELEMENTS (queues); i++)
    for (GList *l = queues[i]->queue.head; l != NULL; l = l->next)
      {
        Conn *conn = l->data;

        if (conn->state == CONN_IDLE || (conn->state == CONN_HEAD && conn->head_bytes == 0))
          g_ptr_array_add (idle, conn);
      }
  for (guint i = 0; i < idle->len; i++)
    conn_close (g_ptr_array_index (idle, i), NULL);
}
