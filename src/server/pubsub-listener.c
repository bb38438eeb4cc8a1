/* pubsub-listener.c: the listening sockets, the accept loop and the
 * connection budget
 *
 * Every TCP connection the daemon accepts, plain HTTP or later a WebSocket,
 * takes one slot of max-connections until its socket is closed. Over the
 * budget, a new connection is answered 503 at once, without reading its
 * request, and closed; the connections already open are not touched.
 *
 * A connection accepted while the budget is full is refused only after the
 * reads that are due have run: a client that closes one connection and at
 * once opens another sends its FIN before its SYN, but the accept may come
 * first (even in the same dispatch that answered the last request of the
 * old connection), before the read that sees the FIN and frees the slot
 * (see pubsub-http-front.c). The decision is a source attached anew when
 * the first such connection waits: it comes after every connection's
 * source in GLib's dispatch order, so in the next iteration the reads run
 * before it.
 *
 * The accept loop is our own (a GSocket source per listening socket) rather
 * than GSocketService's, which on EMFILE logs a warning and tries again at
 * once, forever (≈65,000 lines in two seconds with 120 clients over
 * `ulimit -n 64`). Here, running out of descriptors:
 *
 * - uses a spare descriptor (/dev/null, opened at start, as nginx and libuv
 *   do): it is closed to accept the connections already waiting, answer each
 *   a best-effort 503 and close it, so those clients learn at once instead of
 *   hanging; then it is opened again;
 * - pauses accepting for a back-off (50 ms, doubling up to 1 s), and resumes
 *   early as soon as one of our connections closes;
 * - logs one warning with a count, at most once a second.
 *
 * Closing after an error response is "lingering" (as nginx does): the
 * response is written, our side is shut down for writing, and what the
 * client still sends is read and dropped until it closes or LINGER_SECONDS
 * pass. Closing a socket with unread input makes the kernel send a reset,
 * which can destroy the response before the client has read it.
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pubsub-error.h"
#include "pubsub-listener.h"

/* Bursts of thousands of clients connecting at once. */
#define BACKLOG 4096
/* Accepts per wake-up, so a connection storm cannot starve the clients. */
#define ACCEPTS_PER_WAKEUP 64
/* Waiting connections closed per descriptor shortage, at most. */
#define DRAIN_MAX 1024
#define BACKOFF_FIRST_MS 50
#define BACKOFF_MAX_MS 1000
#define LINGER_SECONDS 5
/* Refused (never admitted) connections lingering at once; more are closed
 * right after their 503 is written. Within the descriptors main.c keeps
 * beyond max-connections. Admitted ones hold a slot meanwhile and are
 * bounded by the budget. */
#define MAX_LINGERING_REFUSED 32

/* A warning a client can trigger, at most once a second, with a count. */
typedef struct {
  void  (*print) (PubsubListener *self,
                  guint           count);
  gint64  logged_at;   /* monotonic µs */
  guint   pending;     /* events since the last warning */
  guint   timer_id;
} LogLimit;

typedef struct {
  PubsubListener *listener;  /* not owned */
  GSocket        *socket;    /* owned */
  GObject        *owner;     /* owned, nullable: see pubsub_listener_close_with() */
  GSource        *source;    /* owned */
  GList           link;      /* in listener->lingering, data = this */
  gboolean        admitted;  /* holds a slot of the budget */
} Lingering;

struct _PubsubListener {
  GObject        parent_instance;

  PubsubMetrics *metrics;           /* owned, nullable: counts the refusals */
  guint          max_connections;
  guint          open;              /* admitted, not released yet */
  GPtrArray     *sockets;           /* owned: the listening GSockets */
  GPtrArray     *sources;           /* owned: their accept sources; empty while paused */
  char          *address;           /* owned: as bound, HOST:PORT */
  int            spare_fd;
  guint          backoff_id;
  guint          backoff_ms;
  GQueue         lingering;         /* of Lingering, owned */
  guint          lingering_refused;
  GQueue         waiting;           /* of GSocket, owned: accepted with the budget full */
  GSource       *waiting_source;    /* owned, nullable: decides on them */
  LogLimit       shortage_log;
  LogLimit       refused_log;
  const char    *shortage_reason;   /* nullable: the last accept error (g_strerror) */
  gboolean       stopped;
};

G_DEFINE_FINAL_TYPE (PubsubListener, pubsub_listener, G_TYPE_OBJECT)

enum {
  SIGNAL_INCOMING,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

/* ---------------------------------------------------------------------- */
/* Rate-limited warnings                                                  */

static void log_limit_flush (PubsubListener *self,
                             LogLimit       *limit);

static gboolean
on_shortage_log_due (gpointer user_data)
{
  PubsubListener *self = user_data;

  self->shortage_log.timer_id = 0;
  log_limit_flush (self, &self->shortage_log);
  return G_SOURCE_REMOVE;
}

static gboolean
on_refused_log_due (gpointer user_data)
{
  PubsubListener *self = user_data;

  self->refused_log.timer_id = 0;
  log_limit_flush (self, &self->refused_log);
  return G_SOURCE_REMOVE;
}

static void
log_limit_flush (PubsubListener *self,
                 LogLimit       *limit)
{
  if (limit->pending == 0)
    return;
  limit->print (self, limit->pending);
  limit->pending = 0;
  limit->logged_at = g_get_monotonic_time ();
}

/* Counts @n events; warns now if the last warning is a second old, else
 * once that second is over. */
static void
log_limit_add (PubsubListener *self,
               LogLimit       *limit,
               guint           n,
               GSourceFunc     due)
{
  gint64 now = g_get_monotonic_time ();
  gint64 wait_us;

  limit->pending += n;
  if (limit->timer_id != 0)
    return;
  wait_us = limit->logged_at + G_USEC_PER_SEC - now;
  if (limit->logged_at == 0 || wait_us <= 0)
    {
      log_limit_flush (self, limit);
      return;
    }
  limit->timer_id = g_timeout_add ((guint) (wait_us / 1000) + 1, due, self);
}

static void
print_shortage (PubsubListener *self,
                guint           count)
{
  g_warning ("cannot accept connections: %s; %u waiting connections answered 503 and "
             "closed since the last warning; accepting pauses up to %u ms at a time",
             self->shortage_reason != NULL ? self->shortage_reason : "out of resources",
             count, BACKOFF_MAX_MS);
}

static void
print_refused (PubsubListener *self,
               guint           count)
{
  g_warning ("max-connections (%u) reached: %u new connections answered 503 "
             "since the last warning", self->max_connections, count);
}

/* ---------------------------------------------------------------------- */
/* Responses and lingering close                                          */

static const char *
reason_phrase (guint status)
{
  /* RFC 6585, not in libsoup 3.2's table. */
  if (status == 431)
    return "Request Header Fields Too Large";
  return soup_status_get_phrase (status);
}

/**
 * pubsub_http_error_response_new:
 * @error: a #PUBSUB_ERROR: its row of the error table gives the status and
 *   the code, its message the message
 *
 * A complete HTTP/1.1 response with the error JSON body and
 * `Connection: close`, for writing straight to a socket.
 */
GBytes *
pubsub_http_error_response_new (const GError *error)
{
  const PubsubErrorInfo *info = pubsub_error_lookup (error);
  guint status = info->http_status;
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonNode) node = NULL;
  g_autofree char *body = NULL;
  GString *response;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "error");
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "code");
  json_builder_add_string_value (builder, info->code);
  json_builder_set_member_name (builder, "message");
  json_builder_add_string_value (builder, error->message);
  json_builder_end_object (builder);
  json_builder_end_object (builder);
  node = json_builder_get_root (builder);
  body = json_to_string (node, FALSE);

  response = g_string_sized_new (256 + strlen (body));
  g_string_append_printf (response,
                          "HTTP/1.1 %u %s\r\n"
                          "Server: pubsubd/" PACKAGE_VERSION "\r\n"
                          "Content-Type: application/json\r\n"
                          "Content-Length: %zu\r\n"
                          "Connection: close\r\n"
                          "\r\n"
                          "%s",
                          status, reason_phrase (status), strlen (body), body);
  return g_string_free_to_bytes (response);
}

/* Best effort: a fresh socket's send buffer takes a small response whole; if
 * it does not, the client gets the close. */
static void
write_response (int     fd,
                GBytes *response)
{
  gsize len;
  const char *data;

  if (response == NULL)
    return;
  data = g_bytes_get_data (response, &len);
  while (send (fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno == EINTR)
    ;
}

static void
lingering_free (Lingering *lingering)
{
  PubsubListener *self = lingering->listener;

  g_queue_unlink (&self->lingering, &lingering->link);
  if (!lingering->admitted)
    self->lingering_refused--;
  g_source_destroy (lingering->source);
  g_source_unref (lingering->source);
  g_socket_close (lingering->socket, NULL);
  g_object_unref (lingering->socket);
  g_clear_object (&lingering->owner);
  g_free (lingering);
}

static void
lingering_finish (Lingering *lingering)
{
  PubsubListener *self = lingering->listener;
  gboolean admitted = lingering->admitted;

  lingering_free (lingering);
  if (admitted)
    pubsub_listener_release (self);
}

static gboolean
on_lingering_readable (GSocket      *socket,
                       GIOCondition  condition,
                       gpointer      user_data)
{
  Lingering *lingering = user_data;
  int fd = g_socket_get_fd (socket);
  char buffer[16 * 1024];

  /* No condition: woken by the deadline. */
  if (condition == 0)
    {
      lingering_finish (lingering);
      return G_SOURCE_REMOVE;
    }
  for (guint i = 0; i < 16; i++)
    {
      gssize n = recv (fd, buffer, sizeof buffer, MSG_DONTWAIT);

      if (n > 0)
        continue;
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return G_SOURCE_CONTINUE;
      /* The client closed, or the connection failed. */
      lingering_finish (lingering);
      return G_SOURCE_REMOVE;
    }
  return G_SOURCE_CONTINUE;
}

/**
 * pubsub_listener_close_with:
 * @socket: a connected socket; the listener takes it over
 * @owner: (nullable): kept until the socket is closed: the
 *   GSocketConnection over @socket, if any, which would close it when
 *   finalized
 * @response: (nullable): written first, best effort
 * @admitted: whether the connection holds a slot of the budget, to be
 *   released once it is closed
 *
 * Writes @response, shuts the socket down for writing, drops what the client
 * still sends until it closes or a few seconds pass, and closes.
 */
void
pubsub_listener_close_with (PubsubListener *self,
                            GSocket        *socket,
                            GObject        *owner,
                            GBytes         *response,
                            gboolean        admitted)
{
  int fd = g_socket_get_fd (socket);
  Lingering *lingering;

  g_return_if_fail (PUBSUB_IS_LISTENER (self));

  write_response (fd, response);
  shutdown (fd, SHUT_WR);
  if (!admitted && self->lingering_refused >= MAX_LINGERING_REFUSED)
    {
      g_socket_close (socket, NULL);
      return;
    }

  lingering = g_new0 (Lingering, 1);
  lingering->listener = self;
  lingering->socket = g_object_ref (socket);
  lingering->owner = owner != NULL ? g_object_ref (owner) : NULL;
  lingering->admitted = admitted;
  lingering->link.data = lingering;
  lingering->source = g_socket_create_source (socket, G_IO_IN, NULL);
  g_source_set_static_name (lingering->source, "pubsub-linger");
  g_source_set_callback (lingering->source, G_SOURCE_FUNC (on_lingering_readable), lingering,
                         NULL);
  g_source_set_ready_time (lingering->source,
                           g_get_monotonic_time () + LINGER_SECONDS * G_USEC_PER_SEC);
  g_source_attach (lingering->source, NULL);
  g_queue_push_tail_link (&self->lingering, &lingering->link);
  if (!admitted)
    self->lingering_refused++;
}

/* ---------------------------------------------------------------------- */
/* Accepting                                                              */

static void resume_accepting (PubsubListener *self);

static GBytes *
too_many_connections_response (void)
{
  g_autoptr(GError) error = g_error_new_literal (PUBSUB_ERROR, PUBSUB_ERROR_TOO_MANY_CONNECTIONS,
                                                 "the server has reached max-connections; "
                                                 "try again later");

  return pubsub_http_error_response_new (error);
}

static int
open_spare (void)
{
  return open ("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void
admit (PubsubListener *self,
       GSocket        *socket)
{
  self->open++;
  g_signal_emit (self, signals[SIGNAL_INCOMING], 0, socket);
}

static void
refuse (PubsubListener *self,
        GSocket        *socket)
{
  g_autoptr(GBytes) response = too_many_connections_response ();

  pubsub_listener_close_with (self, socket, NULL, response, FALSE);
  if (self->metrics != NULL)
    pubsub_metrics_count_refusal (self->metrics, PUBSUB_REFUSAL_MAX_CONNECTIONS);
  log_limit_add (self, &self->refused_log, 1, on_refused_log_due);
}

/* The connections accepted with the budget full, in order, once the reads
 * due have freed what they free. */
static gboolean
on_waiting_due (GSource     *source,
                GSourceFunc  callback,
                gpointer     user_data)
{
  PubsubListener *self = user_data;

  while (self->waiting.head != NULL)
    {
      g_autoptr(GSocket) socket = g_queue_pop_head (&self->waiting);

      if (self->open < self->max_connections && !self->stopped)
        admit (self, socket);
      else
        refuse (self, socket);
    }
  g_clear_pointer (&self->waiting_source, g_source_unref);
  return G_SOURCE_REMOVE;
}

static GSourceFuncs waiting_funcs = { .dispatch = on_waiting_due };

static void
take_connection (PubsubListener *self,
                 GSocket        *socket)
{
  if (self->open >= self->max_connections || self->waiting.head != NULL)
    {
      g_queue_push_tail (&self->waiting, g_object_ref (socket));
      /* Attached now, it is dispatched after the sources of the
       * connections already there. */
      if (self->waiting_source == NULL)
        {
          self->waiting_source = g_source_new (&waiting_funcs, sizeof (GSource));
          g_source_set_static_name (self->waiting_source, "pubsub-accept-waiting");
          g_source_set_callback (self->waiting_source, NULL, self, NULL);
          g_source_set_ready_time (self->waiting_source, 0);
          g_source_attach (self->waiting_source, NULL);
        }
      return;
    }
  admit (self, socket);
}

/* With the spare descriptor free: accepts what waits on @listening, answers
 * each 503 and closes it. Returns how many. */
static guint
drain_backlog (PubsubListener *self,
               GSocket        *listening)
{
  g_autoptr(GBytes) response = too_many_connections_response ();
  int listen_fd = g_socket_get_fd (listening);
  guint n = 0;

  while (n < DRAIN_MAX)
    {
      int fd = accept4 (listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

      if (fd < 0)
        {
          if (errno == EINTR || errno == ECONNABORTED)
            continue;
          break;
        }
      write_response (fd, response);
      close (fd);
      if (self->metrics != NULL)
        pubsub_metrics_count_refusal (self->metrics, PUBSUB_REFUSAL_ERROR);
      n++;
    }
  return n;
}

static void
pause_accepting (PubsubListener *self)
{
  for (guint i = 0; i < self->sources->len; i++)
    g_source_destroy (g_ptr_array_index (self->sources, i));
  g_ptr_array_set_size (self->sources, 0);
}

static gboolean
on_backoff_over (gpointer user_data)
{
  PubsubListener *self = user_data;

  self->backoff_id = 0;
  resume_accepting (self);
  return G_SOURCE_REMOVE;
}

/* EMFILE, ENFILE, ENOBUFS, ENOMEM: nothing can be accepted right now, and
 * the listening socket stays readable. */
static void
out_of_descriptors (PubsubListener *self,
                    GSocket        *listening,
                    int             error_number)
{
  guint closed = 0;

  if (self->spare_fd >= 0)
    {
      close (self->spare_fd);
      self->spare_fd = -1;
      closed = drain_backlog (self, listening);
      self->spare_fd = open_spare ();
    }
  self->shortage_reason = g_strerror (error_number);
  log_limit_add (self, &self->shortage_log, MAX (closed, 1), on_shortage_log_due);

  pause_accepting (self);
  self->backoff_ms = self->backoff_ms == 0 ? BACKOFF_FIRST_MS
                                           : MIN (self->backoff_ms * 2, BACKOFF_MAX_MS);
  g_clear_handle_id (&self->backoff_id, g_source_remove);
  self->backoff_id = g_timeout_add (self->backoff_ms, on_backoff_over, self);
}

static gboolean
on_acceptable (GSocket      *listening,
               GIOCondition  condition,
               gpointer      user_data)
{
  PubsubListener *self = user_data;
  int listen_fd = g_socket_get_fd (listening);

  for (guint i = 0; i < ACCEPTS_PER_WAKEUP; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GSocket) socket = NULL;
      int fd = accept4 (listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

      if (fd < 0)
        {
          int saved = errno;

          if (saved == EAGAIN || saved == EWOULDBLOCK)
            break;
          if (saved == EMFILE || saved == ENFILE || saved == ENOBUFS || saved == ENOMEM)
            {
              out_of_descriptors (self, listening, saved);
              return G_SOURCE_REMOVE;
            }
          /* A client that went away before we took it (ECONNABORTED), or a
           * network error it caused: nothing to do for the others. */
          g_debug ("accept: %s", g_strerror (saved));
          continue;
        }
      socket = g_socket_new_from_fd (fd, &error);
      if (socket == NULL)
        {
          g_debug ("accept: %s", error->message);
          close (fd);
          continue;
        }
      self->backoff_ms = 0;
      take_connection (self, socket);
      if (self->stopped || self->sources->len == 0)
        return G_SOURCE_REMOVE;
    }
  return G_SOURCE_CONTINUE;
}

static void
resume_accepting (PubsubListener *self)
{
  if (self->stopped || self->sources->len > 0)
    return;
  for (guint i = 0; i < self->sockets->len; i++)
    {
      GSource *source = g_socket_create_source (g_ptr_array_index (self->sockets, i), G_IO_IN,
                                                NULL);

      g_source_set_static_name (source, "pubsub-accept");
      g_source_set_callback (source, G_SOURCE_FUNC (on_acceptable), self, NULL);
      g_source_attach (source, NULL);
      g_ptr_array_add (self->sources, source);
    }
}

/* ---------------------------------------------------------------------- */
/* Binding                                                                */

static GSocket *
bind_socket (GSocketAddress  *address,
             GError         **error)
{
  GSocketFamily family = g_socket_address_get_family (address);
  g_autoptr(GSocket) socket = g_socket_new (family, G_SOCKET_TYPE_STREAM,
                                            G_SOCKET_PROTOCOL_TCP, error);

  if (socket == NULL)
    return NULL;
  /* An IPv6 wildcard also takes IPv4 clients where the system allows it. */
  if (family == G_SOCKET_FAMILY_IPV6)
    g_socket_set_option (socket, IPPROTO_IPV6, IPV6_V6ONLY, 0, NULL);
  g_socket_set_blocking (socket, FALSE);
  g_socket_set_listen_backlog (socket, BACKLOG);
  if (!g_socket_bind (socket, address, TRUE, error) || !g_socket_listen (socket, error))
    return NULL;
  return g_steal_pointer (&socket);
}

static guint16
socket_port (GSocket *socket)
{
  g_autoptr(GSocketAddress) local = g_socket_get_local_address (socket, NULL);

  return local != NULL ? g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (local)) : 0;
}

/* All interfaces: one dual-stack IPv6 socket, or IPv4 beside it where IPv6
 * is off or only takes IPv6. */
static gboolean
bind_any (PubsubListener  *self,
          guint16          port,
          GError         **error)
{
  g_autoptr(GInetAddress) any6 = g_inet_address_new_any (G_SOCKET_FAMILY_IPV6);
  g_autoptr(GInetAddress) any4 = g_inet_address_new_any (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) address6 = g_inet_socket_address_new (any6, port);
  g_autoptr(GSocketAddress) address4 = NULL;
  g_autoptr(GError) error6 = NULL;
  GSocket *socket6 = bind_socket (address6, &error6);
  GSocket *socket4;
  int v6only = 0;

  if (socket6 != NULL)
    {
      g_ptr_array_add (self->sockets, socket6);
      port = socket_port (socket6);
      if (!g_socket_get_option (socket6, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, NULL) || !v6only)
        return TRUE;
    }
  else if (!g_error_matches (error6, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED) &&
           !g_error_matches (error6, G_IO_ERROR, G_IO_ERROR_FAILED))
    {
      g_propagate_error (error, g_steal_pointer (&error6));
      return FALSE;
    }

  address4 = g_inet_socket_address_new (any4, port);
  socket4 = bind_socket (address4, error);
  if (socket4 == NULL)
    return FALSE;
  g_ptr_array_add (self->sockets, socket4);
  return TRUE;
}

/**
 * pubsub_listener_listen:
 * @host: an IP address, "localhost", or "" for all interfaces
 * @port: the port, 0 for a free one
 *
 * Binds, and starts accepting. Admitted connections are handed out by the
 * "incoming" signal.
 */
gboolean
pubsub_listener_listen (PubsubListener  *self,
                        const char      *host,
                        guint16          port,
                        GError         **error)
{
  g_autoptr(GInetAddress) inet = NULL;
  g_autoptr(GSocketAddress) address = NULL;
  g_autofree char *host_text = NULL;
  GSocket *socket;

  g_return_val_if_fail (PUBSUB_IS_LISTENER (self), FALSE);
  g_return_val_if_fail (self->sockets->len == 0, FALSE);

  if (host[0] == '\0')
    {
      if (!bind_any (self, port, error))
        return FALSE;
      self->address = g_strdup_printf (":%u", socket_port (g_ptr_array_index (self->sockets, 0)));
    }
  else
    {
      inet = g_str_equal (host, "localhost") ? g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4)
                                             : g_inet_address_new_from_string (host);
      if (inet == NULL)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                       "'%s' is not an IP address", host);
          return FALSE;
        }
      address = g_inet_socket_address_new (inet, port);
      socket = bind_socket (address, error);
      if (socket == NULL)
        return FALSE;
      g_ptr_array_add (self->sockets, socket);
      host_text = g_inet_address_to_string (inet);
      self->address = g_inet_address_get_family (inet) == G_SOCKET_FAMILY_IPV6
                        ? g_strdup_printf ("[%s]:%u", host_text, socket_port (socket))
                        : g_strdup_printf ("%s:%u", host_text, socket_port (socket));
    }
  resume_accepting (self);
  return TRUE;
}

/* ---------------------------------------------------------------------- */
/* Object                                                                 */

static void
pubsub_listener_dispose (GObject *object)
{
  PubsubListener *self = PUBSUB_LISTENER (object);

  pubsub_listener_stop (self);
  g_clear_handle_id (&self->shortage_log.timer_id, g_source_remove);
  g_clear_handle_id (&self->refused_log.timer_id, g_source_remove);
  while (self->lingering.head != NULL)
    lingering_free (self->lingering.head->data);
  if (self->waiting_source != NULL)
    {
      g_source_destroy (self->waiting_source);
      g_clear_pointer (&self->waiting_source, g_source_unref);
    }
  g_clear_object (&self->metrics);

  G_OBJECT_CLASS (pubsub_listener_parent_class)->dispose (object);
}

static void
pubsub_listener_finalize (GObject *object)
{
  PubsubListener *self = PUBSUB_LISTENER (object);

  if (self->spare_fd >= 0)
    close (self->spare_fd);
  g_ptr_array_unref (self->sources);
  g_ptr_array_unref (self->sockets);
  g_free (self->address);

  G_OBJECT_CLASS (pubsub_listener_parent_class)->finalize (object);
}

static void
pubsub_listener_class_init (PubsubListenerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = pubsub_listener_dispose;
  object_class->finalize = pubsub_listener_finalize;

  /**
   * PubsubListener::incoming:
   * @socket: a new connection, within the budget
   *
   * The handler takes the socket over; when the connection ends (its socket
   * closed), it calls pubsub_listener_release() once, or hands the socket
   * back with pubsub_listener_close_with().
   */
  signals[SIGNAL_INCOMING] =
    g_signal_new ("incoming", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_SOCKET);
}

static void
pubsub_listener_init (PubsubListener *self)
{
  self->sockets = g_ptr_array_new_with_free_func (g_object_unref);
  self->sources = g_ptr_array_new_with_free_func ((GDestroyNotify) g_source_unref);
  self->spare_fd = open_spare ();
  self->shortage_log.print = print_shortage;
  self->refused_log.print = print_refused;
  g_queue_init (&self->lingering);
  g_queue_init (&self->waiting);
}

/**
 * pubsub_listener_new:
 * @max_connections: the budget: connections open at once, of any kind
 * @metrics: (nullable): where refused connections are counted
 */
PubsubListener *
pubsub_listener_new (guint          max_connections,
                     PubsubMetrics *metrics)
{
  PubsubListener *self = g_object_new (PUBSUB_TYPE_LISTENER, NULL);

  self->max_connections = max_connections;
  self->metrics = metrics != NULL ? g_object_ref (metrics) : NULL;
  return self;
}

/**
 * pubsub_listener_get_address:
 *
 * Returns: the bound address as HOST:PORT (":PORT" for all interfaces)
 */
const char *
pubsub_listener_get_address (PubsubListener *self)
{
  g_return_val_if_fail (PUBSUB_IS_LISTENER (self), NULL);

  return self->address;
}

/**
 * pubsub_listener_get_open_count:
 *
 * Returns: the admitted connections still open
 */
guint
pubsub_listener_get_open_count (PubsubListener *self)
{
  g_return_val_if_fail (PUBSUB_IS_LISTENER (self), 0);

  return self->open;
}

/**
 * pubsub_listener_release:
 *
 * An admitted connection is closed: its slot is free, and its descriptor
 * too, so accepting resumes if it was paused for lack of them.
 */
void
pubsub_listener_release (PubsubListener *self)
{
  g_return_if_fail (PUBSUB_IS_LISTENER (self));
  g_return_if_fail (self->open > 0);

  self->open--;
  if (self->backoff_id != 0)
    {
      g_clear_handle_id (&self->backoff_id, g_source_remove);
      resume_accepting (self);
    }
}

/**
 * pubsub_listener_stop:
 *
 * Stops accepting and closes the listening sockets. Connections already
 * open, lingering ones included, are not touched.
 */
void
pubsub_listener_stop (PubsubListener *self)
{
  g_return_if_fail (PUBSUB_IS_LISTENER (self));

  self->stopped = TRUE;
  g_clear_handle_id (&self->backoff_id, g_source_remove);
  pause_accepting (self);
  /* Not taken: they close with the listening sockets. */
  while (self->waiting.head != NULL)
    {
      g_autoptr(GSocket) socket = g_queue_pop_head (&self->waiting);

      g_socket_close (socket, NULL);
    }
  for (guint i = 0; i < self->sockets->len; i++)
    g_socket_close (g_ptr_array_index (self->sockets, i), NULL);
  g_ptr_array_set_size (self->sockets, 0);
}
