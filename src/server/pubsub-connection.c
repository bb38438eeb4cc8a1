/* pubsub-connection.c: one WebSocket client and the protocol it speaks
 *
 * After the HTTP upgrade the connection is ours: client frames are read and
 * parsed here (PubsubWsParser), and everything written back — events,
 * replies, pongs, the close frame — goes through the connection's
 * PubsubSubscriber, one bounded queue counted until the kernel has the bytes.
 *
 * SoupWebsocketConnection is not used: libsoup 3.2 keeps an unbounded,
 * invisible output queue, copies every frame per subscriber, and costs about
 * 14,000 instructions of its own per received frame (measured with
 * callgrind) — more than the broker's whole publish path.
 *
 * Closing follows RFC 6455 §7: the side that starts it sends a close frame
 * (behind what is queued) and waits for the answer; the server then closes
 * TCP. A client that never answers is dropped after CLOSE_TIMEOUT_SECONDS.
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <errno.h>
#include <gio/gfiledescriptorbased.h>
#include <sys/socket.h>

#include "pubsub-connection.h"
#include "pubsub-error.h"
#include "pubsub-protocol.h"
#include "pubsub-subscriber.h"
#include "pubsub-ws-frame.h"

/* Bytes read per read() call; the buffer lives on the stack. */
#define READ_CHUNK (64 * 1024)
/* Reads per wake-up, so one busy client cannot starve the others. */
#define MAX_READS_PER_WAKEUP 4
/* How long a closing client may stay silent before its answer to our close
 * frame (the value libsoup uses); it is also how long a slow consumer's
 * socket is kept for it to read its SLOW_CONSUMER error. A client still
 * sending is not cut before it stops (closing with unread input sends a
 * reset, which can destroy the close frame in flight), up to a hard cap. */
#define CLOSE_TIMEOUT_SECONDS 5
#define CLOSE_LINGER_MAX_SECONDS 60
/* Requests of one client waiting for a cluster's answer: past this many
 * the client is no longer read until some are answered, which bounds what
 * a client pipelining publishes can make the node hold. */
#define MAX_PENDING 256

/* What to do once the outgoing queue is empty. */
typedef enum {
  WHEN_DRAINED_NOTHING,
  WHEN_DRAINED_CLOSE,       /* our answer is out: close TCP */
  WHEN_DRAINED_SHUTDOWN,    /* the backlog is out: start the closing handshake */
} WhenDrained;

typedef enum {
  STATE_OPEN,
  STATE_CLOSING,   /* our close frame is queued; waiting for the answer */
  STATE_CLOSED,
} ConnectionState;

struct _PubsubConnection {
  GObject               parent_instance;

  PubsubIoLoop         *io;              /* owned */
  PubsubIoWatch         read_watch;
  PubsubBroker         *broker;          /* owned */
  PubsubSubscriber     *subscriber;      /* owned */
  PubsubMetrics        *metrics;         /* owned */
  PubsubCounters       *counters;        /* the metrics' */
  GIOStream            *stream;          /* owned: the stolen HTTP connection */
  GPollableInputStream *input;           /* borrowed from stream */
  int                   fd;              /* the client socket, for the read watch */
  gboolean              fd_is_socket;
  gboolean              direct_reads;    /* recv() on fd: libsoup's buffer is empty */
  gboolean              reading;         /* registered with the I/O loop */
  guint                 initial_read_id;
  GByteArray           *partial;         /* owned, nullable: an incomplete frame */
  PubsubWsParser        parser;
  guint64               skip;            /* bytes of a refused frame still to drop */
  gboolean              discard;         /* the frames cannot be followed any more */
  gint64                last_activity;   /* monotonic µs */
  gint64                closing_since;   /* monotonic µs */
  guint                 close_timeout_id;
  WhenDrained           when_drained;
  ConnectionState       state;
  gboolean              shutting_down;

  /* Cluster mode: requests waiting for the engine's answer, oldest first.
   * Publishes may overlap (the engine answers them in order); any other
   * request waits until nothing is pending, so a client's requests take
   * effect in the order it sent them. */
  GQueue                pending;         /* of owned Pending */
  gboolean              pending_publishes;
  GBytes               *deferred;        /* owned, nullable: the request that waits */
  PubsubRequestType     deferred_type;
  gboolean              blocked;         /* not reading until answers come */
};

/* A request the engine will answer later: its text, parsed again then (only
 * in cluster mode, where the Redis round trip dwarfs a parse). */
typedef struct {
  PubsubRequestType  type;
  GBytes            *text;
} Pending;

static void
pending_free (gpointer data)
{
  Pending *pending = data;

  g_bytes_unref (pending->text);
  g_free (pending);
}

G_DEFINE_FINAL_TYPE (PubsubConnection, pubsub_connection, G_TYPE_OBJECT)

enum {
  SIGNAL_CLOSED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static void close_now (PubsubConnection *self);

static void connection_readable (PubsubConnection *self);

static void
on_readable (GObject *object)
{
  connection_readable (PUBSUB_CONNECTION (object));
}

static void
stop_reading (PubsubConnection *self)
{
  g_clear_handle_id (&self->initial_read_id, g_source_remove);
  if (!self->reading)
    return;
  self->reading = FALSE;
  pubsub_io_loop_remove_reader (self->io, self->fd, &self->read_watch);
}

static void
pubsub_connection_dispose (GObject *object)
{
  PubsubConnection *self = PUBSUB_CONNECTION (object);

  stop_reading (self);
  g_clear_handle_id (&self->close_timeout_id, g_source_remove);
  if (self->subscriber != NULL)
    {
      pubsub_subscriber_set_drained_func (self->subscriber, NULL, NULL);
      g_signal_handlers_disconnect_by_data (self->subscriber, self);
      pubsub_subscriber_close (self->subscriber);
    }
  if (self->stream != NULL && !g_io_stream_is_closed (self->stream))
    g_io_stream_close (self->stream, NULL, NULL);
  g_clear_object (&self->stream);
  g_clear_object (&self->subscriber);
  g_clear_object (&self->broker);
  g_clear_object (&self->metrics);
  g_clear_object (&self->io);
  g_clear_pointer (&self->partial, g_byte_array_unref);
  g_queue_clear_full (&self->pending, pending_free);
  g_clear_pointer (&self->deferred, g_bytes_unref);
  pubsub_ws_parser_clear (&self->parser);

  G_OBJECT_CLASS (pubsub_connection_parent_class)->dispose (object);
}

static void
pubsub_connection_class_init (PubsubConnectionClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = pubsub_connection_dispose;

  /**
   * PubsubConnection::closed:
   *
   * The client is gone; the owner drops its reference.
   */
  signals[SIGNAL_CLOSED] =
    g_signal_new ("closed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
pubsub_connection_init (PubsubConnection *self)
{
  self->last_activity = g_get_monotonic_time ();
  self->read_watch.object = G_OBJECT (self);
  self->read_watch.func = on_readable;
}

/* ---------------------------------------------------------------------- */
/* Closing                                                                */

static gboolean
on_close_timeout (gpointer user_data)
{
  PubsubConnection *self = user_data;
  gint64 now = g_get_monotonic_time ();
  gint64 quiet_until = self->last_activity + CLOSE_TIMEOUT_SECONDS * G_USEC_PER_SEC;

  self->close_timeout_id = 0;
  if (now < quiet_until && now - self->closing_since < CLOSE_LINGER_MAX_SECONDS * G_USEC_PER_SEC)
    {
      self->close_timeout_id = g_timeout_add ((guint) ((quiet_until - now) / 1000) + 1,
                                              on_close_timeout, self);
      return G_SOURCE_REMOVE;
    }
  g_debug ("client did not finish the closing handshake in time");
  close_now (self);
  return G_SOURCE_REMOVE;
}

static void
arm_close_timeout (PubsubConnection *self)
{
  if (self->close_timeout_id != 0)
    return;
  self->closing_since = g_get_monotonic_time ();
  self->close_timeout_id = g_timeout_add_seconds (CLOSE_TIMEOUT_SECONDS, on_close_timeout, self);
}

/* Drops the TCP connection. Idempotent. */
static void
close_now (PubsubConnection *self)
{
  g_autoptr(PubsubConnection) hold = g_object_ref (self);

  if (self->state == STATE_CLOSED)
    return;
  self->state = STATE_CLOSED;
  stop_reading (self);
  g_clear_handle_id (&self->close_timeout_id, g_source_remove);
  self->when_drained = WHEN_DRAINED_NOTHING;
  pubsub_subscriber_close (self->subscriber);
  g_io_stream_close (self->stream, NULL, NULL);
  g_clear_pointer (&self->partial, g_byte_array_unref);
  pubsub_ws_parser_clear (&self->parser);
  g_signal_emit (self, signals[SIGNAL_CLOSED], 0);
}

static void close_websocket (PubsubConnection *self,
                             gushort           code,
                             const char       *reason);

/* Called on every flush that empties the queue. */
static void
on_drained (PubsubSubscriber *subscriber,
            gpointer          user_data)
{
  PubsubConnection *self = user_data;
  WhenDrained what = self->when_drained;

  self->when_drained = WHEN_DRAINED_NOTHING;
  switch (what)
    {
    case WHEN_DRAINED_CLOSE:
      close_now (self);
      break;
    case WHEN_DRAINED_SHUTDOWN:
      close_websocket (self, PUBSUB_WS_CLOSE_GOING_AWAY, "server shutting down");
      break;
    case WHEN_DRAINED_NOTHING:
    default:
      break;
    }
}

/* For when the client's part is over (it sent close, or broke the protocol):
 * our answer still goes out, then TCP is closed. */
static void
close_after_flush (PubsubConnection *self)
{
  stop_reading (self);
  arm_close_timeout (self);
  if (pubsub_subscriber_get_queue_length (self->subscriber) == 0)
    {
      close_now (self);
      return;
    }
  self->when_drained = WHEN_DRAINED_CLOSE;
}

/**
 * close_websocket:
 * @code: the close code, or 0 for a close frame without one
 * @reason: (nullable): a short English reason
 *
 * Starts the closing handshake: the close frame goes behind what is queued
 * (even past queue-size); the client's answer, or the timeout, ends it.
 */
static void
close_websocket (PubsubConnection *self,
                 gushort           code,
                 const char       *reason)
{
  g_autoptr(GBytes) frame = NULL;

  if (self->state != STATE_OPEN)
    return;
  self->state = STATE_CLOSING;
  /* A client may subscribe again while a shutdown flushes its backlog. */
  pubsub_subscriber_unsubscribe_all (self->subscriber,
                                     self->shutting_down ? PUBSUB_LEAVE_SHUTDOWN
                                                         : PUBSUB_LEAVE_CLOSED);
  frame = pubsub_ws_frame_new_close (code, reason);
  pubsub_subscriber_send_final (self->subscriber, frame);
  arm_close_timeout (self);
}

/* ---------------------------------------------------------------------- */
/* The protocol                                                           */

static void
send_error (PubsubConnection    *self,
            const PubsubRequest *request,
            const GError        *error)
{
  g_autoptr(GBytes) frame = pubsub_frame_new_error (request, error);

  pubsub_subscriber_send (self->subscriber, frame);
}

static void
send_ack (PubsubConnection    *self,
          const PubsubRequest *request)
{
  g_autoptr(GBytes) frame = pubsub_frame_new_ack (request, request->topic);

  pubsub_subscriber_send (self->subscriber, frame);
}

static gboolean
subscribe_now (PubsubConnection     *self,
               const PubsubRequest  *request,
               GError              **error)
{
  PubsubTopic *topic;
  g_autoptr(GBytes) ack = NULL;
  gboolean recovered;
  guint64 replay_after;

  /* The replica may be behind a cluster it cannot reach (SPEC §9). */
  if (!pubsub_broker_is_available (self->broker))
    {
      g_set_error_literal (error, PUBSUB_ERROR, PUBSUB_ERROR_UNAVAILABLE,
                           "the cluster cannot be reached");
      return FALSE;
    }
  topic = pubsub_broker_get_topic (self->broker, request->topic, error);

  if (topic == NULL)
    return FALSE;
  replay_after = pubsub_topic_replay_start (topic, request->has_since ? &request->since : NULL,
                                            request->last_n, &recovered);
  /* The ack goes first, then the replay, then live events. */
  ack = pubsub_frame_new_subscribe_ack (request, pubsub_topic_get_epoch (topic),
                                        pubsub_topic_get_messages (topic), recovered);
  pubsub_subscriber_send (self->subscriber, ack);
  pubsub_subscriber_subscribe (self->subscriber, topic, request->client_id, replay_after);
  return TRUE;
}

static void on_engine_reply (PubsubEngine *engine, const PubsubEngineReply *reply, GObject *owner);

static void
add_pending (PubsubConnection *self,
             PubsubRequestType type,
             const char       *text,
             gsize             len)
{
  Pending *pending = g_new (Pending, 1);

  pending->type = type;
  pending->text = g_bytes_new (text, len);
  g_queue_push_tail (&self->pending, pending);
  self->pending_publishes = type == PUBSUB_REQUEST_PUBLISH;
}

/* A subscription reads the node's replica: in a cluster, once it has every
 * change stored before the request (the engine's sync). */
static gboolean
handle_subscribe (PubsubConnection     *self,
                  const PubsubRequest  *request,
                  const char           *text,
                  gsize                 len,
                  GError              **error)
{
  g_auto(PubsubEngineReply) reply = { 0, };

  if (!pubsub_broker_sync (self->broker, &reply, G_OBJECT (self), on_engine_reply))
    {
      add_pending (self, PUBSUB_REQUEST_SUBSCRIBE, text, len);
      return TRUE;
    }
  if (reply.error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&reply.error));
      return FALSE;
    }
  return subscribe_now (self, request, error);
}

static gboolean
handle_unsubscribe (PubsubConnection     *self,
                    const PubsubRequest  *request,
                    GError              **error)
{
  if (pubsub_broker_get_topic (self->broker, request->topic, error) == NULL)
    return FALSE;
  pubsub_subscriber_unsubscribe (self->subscriber, request->topic);
  send_ack (self, request);
  return TRUE;
}

static void
send_publish_reply (PubsubConnection        *self,
                    const PubsubRequest     *request,
                    const PubsubEngineReply *reply)
{
  g_autoptr(GBytes) frame = NULL;

  if (reply->error != NULL)
    frame = pubsub_frame_new_error (request, reply->error);
  else
    frame = pubsub_frame_new_publish_ack (request, reply->seq, reply->duplicate);
  pubsub_subscriber_send (self->subscriber, frame);
}

static void
handle_publish (PubsubConnection    *self,
                const PubsubRequest *request,
                const char          *text,
                gsize                len)
{
  g_auto(PubsubEngineReply) reply = { 0, };

  if (pubsub_broker_publish (self->broker, request->topic, request->message_id,
                             request->payload, request->payload_len,
                             &reply, (GObject *) self, on_engine_reply))
    send_publish_reply (self, request, &reply);
  else
    add_pending (self, PUBSUB_REQUEST_PUBLISH, text, len);
}

/* Whether a request must wait for the pending ones: only publishes may
 * overlap, and only with publishes. */
static gboolean
must_wait (PubsubConnection  *self,
           PubsubRequestType  type)
{
  if (G_LIKELY (self->pending.length == 0))
    return FALSE;
  return type != PUBSUB_REQUEST_PUBLISH || !self->pending_publishes ||
         self->pending.length >= MAX_PENDING;
}

static void
block (PubsubConnection *self,
       PubsubRequestType type,
       const char       *text,
       gsize             len)
{
  self->deferred = g_bytes_new (text, len);
  self->deferred_type = type;
  self->blocked = TRUE;
}

static void
handle_text (PubsubConnection *self,
             const char       *text,
             gsize             len)
{
  g_auto(PubsubRequest) request = { 0, };
  g_autoptr(GError) error = NULL;
  gboolean ok = FALSE;

  if (pubsub_request_parse (text, len, &request, &error))
    {
      if (G_UNLIKELY (must_wait (self, request.type)))
        {
          block (self, request.type, text, len);
          return;
        }
      switch (request.type)
        {
        case PUBSUB_REQUEST_SUBSCRIBE:
          ok = handle_subscribe (self, &request, text, len, &error);
          break;
        case PUBSUB_REQUEST_UNSUBSCRIBE:
          ok = handle_unsubscribe (self, &request, &error);
          break;
        case PUBSUB_REQUEST_PUBLISH:
          handle_publish (self, &request, text, len);
          ok = TRUE;
          break;
        case PUBSUB_REQUEST_PING:
          {
            g_autoptr(GBytes) pong = pubsub_frame_new_pong (&request);

            pubsub_subscriber_send (self->subscriber, pong);
            ok = TRUE;
          }
          break;
        default:
          g_assert_not_reached ();
        }
    }
  if (!ok)
    send_error (self, &request, error);
}

static void resume (PubsubConnection *self);

/* The engine's later answer to the oldest pending request. */
static void
on_engine_reply (PubsubEngine            *engine,
                 const PubsubEngineReply *reply,
                 GObject                 *owner)
{
  PubsubConnection *self = PUBSUB_CONNECTION (owner);
  g_autoptr(GError) error = NULL;
  g_auto(PubsubRequest) request = { 0, };
  Pending *pending = g_queue_pop_head (&self->pending);
  gsize len;
  const char *text;

  if (pending == NULL)   /* disposed meanwhile */
    return;
  text = g_bytes_get_data (pending->text, &len);
  /* It parsed before: only a closed connection keeps it from mattering. */
  if (self->state == STATE_OPEN && pubsub_request_parse (text, len, &request, &error))
    {
      if (pending->type == PUBSUB_REQUEST_PUBLISH)
        send_publish_reply (self, &request, reply);
      else if (reply->error != NULL)
        send_error (self, &request, reply->error);
      else if (!subscribe_now (self, &request, &error))
        send_error (self, &request, error);
    }
  pending_free (pending);
  if (self->blocked && self->state == STATE_OPEN && !must_wait (self, self->deferred_type))
    resume (self);
}

static void
handle_client_close (PubsubConnection *self)
{
  gushort code = self->parser.close_code;

  if (self->state == STATE_CLOSING)
    {
      /* The answer to our close frame: the server closes TCP first. */
      close_now (self);
      return;
    }
  /* Echo the client's code (RFC 6455 §5.5.1); close TCP once it is out. */
  close_websocket (self, code == PUBSUB_WS_CLOSE_NO_STATUS ? 0 : code, NULL);
  close_after_flush (self);
}

/* The client broke the protocol or sent too much: say so with the close
 * code, and keep reading (stepping over the refused frame, or discarding
 * what cannot be parsed any more) until it answers or the timeout ends it.
 * Closing with unread data would send a reset that can destroy the close
 * frame before the client reads it. */
static void
fail_connection (PubsubConnection *self,
                 gsize             consumed)
{
  const PubsubWsParser *parser = &self->parser;

  g_debug ("closing a WebSocket client with %u: %s", parser->close_code, parser->problem);
  if (parser->skip > 0)
    self->skip = parser->skip;
  else if (consumed == 0)
    self->discard = TRUE;
  if (self->state == STATE_OPEN)
    close_websocket (self, parser->close_code, parser->problem);
}

/* Acts on one parsed frame. Returns: FALSE to stop reading. */
static gboolean
handle_event (PubsubConnection *self,
              PubsubWsEvent     event,
              gsize             consumed)
{
  const PubsubWsParser *parser = &self->parser;

  switch (event)
    {
    case PUBSUB_WS_CONTINUE:
    case PUBSUB_WS_PONG:
      return TRUE;

    case PUBSUB_WS_TEXT:
      /* After our close frame, data is read but no longer answered. */
      if (self->state == STATE_OPEN && !pubsub_subscriber_is_slow (self->subscriber))
        handle_text (self, (const char *) parser->payload, parser->payload_len);
      return TRUE;

    case PUBSUB_WS_BINARY:
      if (self->state == STATE_OPEN)
        {
          g_autoptr(GError) error =
            g_error_new_literal (PUBSUB_ERROR, PUBSUB_ERROR_BAD_REQUEST,
                                 "binary frames are not supported: send JSON in text frames");
          send_error (self, NULL, error);
        }
      return TRUE;

    case PUBSUB_WS_PING:
      if (self->state == STATE_OPEN)
        {
          g_autoptr(GBytes) pong = pubsub_ws_frame_new_pong (parser->payload,
                                                             parser->payload_len);
          pubsub_subscriber_send (self->subscriber, pong);
        }
      return TRUE;

    case PUBSUB_WS_CLOSE:
      handle_client_close (self);
      return FALSE;

    case PUBSUB_WS_FAIL:
      fail_connection (self, consumed);
      return TRUE;

    case PUBSUB_WS_NEED_MORE:
    default:
      g_assert_not_reached ();
    }
}

/* Returns: the bytes of @data used by complete frames */
static gsize
process_frames (PubsubConnection *self,
                guint8           *data,
                gsize             len)
{
  gsize offset = 0;

  while (self->reading && !self->blocked && offset < len)
    {
      gsize consumed;
      PubsubWsEvent event;

      if (self->discard)
        return len;
      if (self->skip > 0)
        {
          gsize step = (gsize) MIN (self->skip, (guint64) (len - offset));

          offset += step;
          self->skip -= step;
          continue;
        }
      event = pubsub_ws_parser_next (&self->parser, data + offset, len - offset, &consumed);
      if (event == PUBSUB_WS_NEED_MORE)
        break;
      offset += consumed;
      if (!handle_event (self, event, consumed))
        break;
    }
  return offset;
}

/* ---------------------------------------------------------------------- */
/* Reading                                                                */

/* Reads what is there, up to @size bytes. libsoup's input stream may hold
 * bytes the client sent right behind its handshake, so it is read until it
 * has nothing left; then the socket itself, with recv(): GIO's stack of
 * streams cost about 1,300 instructions per read, and a GError on every
 * would-block.
 *
 * Returns: the bytes read, 0 at the end of the stream, -1 on an error
 *   (@error set) or when nothing is there (@would_block set) */
static gssize
read_some (PubsubConnection  *self,
           guint8            *buffer,
           gsize              size,
           gboolean          *would_block,
           GError           **error)
{
  gssize n;

  *would_block = FALSE;
  if (G_UNLIKELY (!self->direct_reads))
    {
      g_autoptr(GError) local_error = NULL;

      n = g_pollable_input_stream_read_nonblocking (self->input, buffer, size, NULL, &local_error);
      if (n < 0 && g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        {
          *would_block = TRUE;
          self->direct_reads = self->fd_is_socket;
        }
      else if (n < 0)
        g_propagate_error (error, g_steal_pointer (&local_error));
      return n;
    }

  do
    n = recv (self->fd, buffer, size, MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
    *would_block = TRUE;
  else if (n < 0)
    {
      int saved = errno;

      g_set_error_literal (error, G_IO_ERROR, g_io_error_from_errno (saved), g_strerror (saved));
    }
  return n;
}

/* Keeps what process_frames() did not use of the @have bytes read (into
 * @chunk, or behind an incomplete frame in self->partial) for next time. */
static void
keep_rest (PubsubConnection *self,
           const guint8     *chunk,
           gsize             have,
           gsize             used)
{
  if (self->partial != NULL)
    {
      g_byte_array_remove_range (self->partial, 0, (guint) used);
      if (self->partial->len == 0)
        g_clear_pointer (&self->partial, g_byte_array_unref);
    }
  else if (used < have)
    {
      self->partial = g_byte_array_sized_new ((guint) (have - used));
      g_byte_array_append (self->partial, chunk + used, (guint) (have - used));
    }
}

/* The engine answered what a blocked client waited for: its deferred
 * request, then the frames behind it, then the socket again. */
static void
resume (PubsubConnection *self)
{
  g_autoptr(PubsubConnection) hold = g_object_ref (self);
  g_autoptr(GBytes) deferred = g_steal_pointer (&self->deferred);
  g_autoptr(GError) error = NULL;

  self->blocked = FALSE;
  if (!self->reading)
    {
      if (!pubsub_io_loop_add_reader (self->io, self->fd, &self->read_watch, &error))
        {
          g_debug ("cannot watch a WebSocket client again: %s", error->message);
          close_now (self);
          return;
        }
      self->reading = TRUE;
    }
  if (deferred != NULL)
    handle_text (self, g_bytes_get_data (deferred, NULL), g_bytes_get_size (deferred));
  if (self->partial != NULL && !self->blocked && self->state != STATE_CLOSED)
    {
      gsize used = process_frames (self, self->partial->data, self->partial->len);

      if (self->state == STATE_CLOSED || !self->reading)
        return;
      keep_rest (self, NULL, 0, used);
    }
  if (self->blocked && self->reading)
    stop_reading (self);
}

/* One read and the frames it completes. Returns: FALSE when there is
 * nothing more to read now. */
static gboolean
read_once (PubsubConnection *self)
{
  guint8 chunk[READ_CHUNK];
  g_autoptr(GError) error = NULL;
  guint8 *buffer = chunk;
  gsize have = 0;
  gboolean would_block;
  gboolean buffered;
  gssize n;
  gsize used;

  /* An incomplete frame from before: read behind it, in its own buffer. */
  if (self->partial != NULL)
    {
      have = self->partial->len;
      g_byte_array_set_size (self->partial, (guint) (have + READ_CHUNK));
      buffer = self->partial->data;
    }
  buffered = !self->direct_reads;
  n = read_some (self, buffer + have, READ_CHUNK, &would_block, &error);
  if (self->partial != NULL)
    g_byte_array_set_size (self->partial, (guint) (have + MAX (n, 0)));

  if (would_block)
    return FALSE;
  if (n <= 0)
    {
      g_debug ("WebSocket client went away: %s", n == 0 ? "end of stream" : error->message);
      close_now (self);
      return FALSE;
    }

  self->last_activity = g_get_monotonic_time ();
  self->counters->received_bytes += (guint64) n;
  have += (gsize) n;
  used = process_frames (self, buffer, have);
  if (self->state == STATE_CLOSED || !self->reading)
    return FALSE;
  keep_rest (self, chunk, have, used);
  if (self->blocked)
    {
      /* Waiting for the cluster: the socket's bytes stay in the kernel. */
      stop_reading (self);
      return FALSE;
    }
  /* A socket that gave less than asked for had no more: asking again
   * would cost a system call to hear EAGAIN (epoll wakes us for more). */
  return buffered || (gsize) n == READ_CHUNK;
}

static void
connection_readable (PubsubConnection *self)
{
  g_autoptr(PubsubConnection) hold = g_object_ref (self);

  for (guint i = 0; i < MAX_READS_PER_WAKEUP; i++)
    if (!read_once (self))
      break;
}

/* libsoup's buffered input may already hold what the client sent right
 * after its handshake; epoll cannot know about those bytes. */
static gboolean
on_initial_read (gpointer user_data)
{
  PubsubConnection *self = user_data;

  self->initial_read_id = 0;
  connection_readable (self);
  return G_SOURCE_REMOVE;
}

/* ---------------------------------------------------------------------- */

static void
on_slow_consumer (PubsubSubscriber *subscriber,
                  PubsubConnection *self)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) frame = NULL;

  g_debug ("closing a slow consumer");
  error = g_error_new_literal (PUBSUB_ERROR, PUBSUB_ERROR_SLOW_CONSUMER,
                               "the outgoing queue overflowed; the client does not read fast enough");
  frame = pubsub_frame_new_error (NULL, error);
  pubsub_subscriber_send_final (self->subscriber, frame);
  close_websocket (self, PUBSUB_WS_CLOSE_POLICY, "SLOW_CONSUMER");
}

static gboolean
fd_is_stream_socket (int fd)
{
  int type;
  socklen_t len = sizeof type;

  return getsockopt (fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM;
}

/**
 * pubsub_connection_new:
 * @io: the I/O loop that reads the client and flushes its queue
 * @broker: the broker
 * @metrics: where the connection's traffic is counted
 * @stream: the client's connection, stolen from the HTTP server after the 101
 * @queue_size: the bound of the outgoing queue
 * @max_message_bytes: larger messages are closed with 1009
 * @error: when the socket cannot be watched (the caller refuses the client)
 *
 * Returns: (transfer full) (nullable): the connection, reading
 */
PubsubConnection *
pubsub_connection_new (PubsubIoLoop  *io,
                       PubsubBroker  *broker,
                       PubsubMetrics *metrics,
                       GIOStream     *stream,
                       guint          queue_size,
                       gsize          max_message_bytes,
                       GError       **error)
{
  g_autoptr(PubsubConnection) self = g_object_new (PUBSUB_TYPE_CONNECTION, NULL);
  GOutputStream *output = g_io_stream_get_output_stream (stream);

  self->io = g_object_ref (io);
  self->broker = g_object_ref (broker);
  self->metrics = g_object_ref (metrics);
  self->counters = pubsub_metrics_get_counters (metrics);
  self->stream = g_object_ref (stream);
  self->input = G_POLLABLE_INPUT_STREAM (g_io_stream_get_input_stream (stream));
  pubsub_ws_parser_init (&self->parser, max_message_bytes);
  self->subscriber = pubsub_subscriber_new (io, output, queue_size, metrics);
  g_signal_connect (self->subscriber, "slow-consumer", G_CALLBACK (on_slow_consumer), self);
  pubsub_subscriber_set_drained_func (self->subscriber, on_drained, self);
  self->fd = g_file_descriptor_based_get_fd (G_FILE_DESCRIPTOR_BASED (output));
  self->fd_is_socket = fd_is_stream_socket (self->fd);
  if (!pubsub_io_loop_add_reader (io, self->fd, &self->read_watch, error))
    {
      self->state = STATE_CLOSED;
      return NULL;
    }
  self->reading = TRUE;
  self->initial_read_id = g_idle_add_full (G_PRIORITY_DEFAULT, on_initial_read, self, NULL);
  return g_steal_pointer (&self);
}

/**
 * pubsub_connection_heartbeat:
 * @info_ping: the shared {"type":"info","msg":"ping"} frame of this beat
 * @idle_limit_us: a client silent for longer is dead
 *
 * Sends the heartbeat and a WebSocket ping, or closes with 1001 a client
 * that has sent nothing, not even a pong, for @idle_limit_us.
 */
void
pubsub_connection_heartbeat (PubsubConnection *self,
                             GBytes           *info_ping,
                             gint64            idle_limit_us)
{
  g_autoptr(GBytes) ping = NULL;

  g_return_if_fail (PUBSUB_IS_CONNECTION (self));

  if (self->state != STATE_OPEN || self->shutting_down)
    return;
  if (g_get_monotonic_time () - self->last_activity > idle_limit_us)
    {
      g_debug ("closing a connection silent for two heartbeat intervals");
      close_websocket (self, PUBSUB_WS_CLOSE_GOING_AWAY, "heartbeat timeout");
      return;
    }
  ping = pubsub_ws_frame_new_ping ();
  if (pubsub_subscriber_send (self->subscriber, info_ping))
    pubsub_subscriber_send (self->subscriber, ping);
}

/**
 * pubsub_connection_shutdown:
 *
 * Stops the live events, flushes what is queued, then closes with 1001. The
 * close timeout starts only once the backlog is out, so the whole
 * shutdown-grace applies to it.
 */
void
pubsub_connection_shutdown (PubsubConnection *self)
{
  g_return_if_fail (PUBSUB_IS_CONNECTION (self));

  if (self->state != STATE_OPEN || self->shutting_down)
    return;
  self->shutting_down = TRUE;
  pubsub_subscriber_unsubscribe_all (self->subscriber, PUBSUB_LEAVE_SHUTDOWN);
  if (pubsub_subscriber_get_queue_length (self->subscriber) == 0)
    {
      close_websocket (self, PUBSUB_WS_CLOSE_GOING_AWAY, "server shutting down");
      return;
    }
  self->when_drained = WHEN_DRAINED_SHUTDOWN;
  pubsub_subscriber_flush (self->subscriber);
}
