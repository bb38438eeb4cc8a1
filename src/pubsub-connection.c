/* pubsub-connection.c: one WebSocket client and the protocol it speaks
 *
 * libsoup parses the client's frames (unmasking, fragments, UTF-8, pings,
 * the close handshake). Everything written back goes through the
 * connection's PubsubSubscriber: our JSON frames directly, libsoup's control
 * frames through a PubsubFrameOutputStream. So one bounded, countable queue
 * holds all that is waiting for the kernel.
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include "pubsub-connection.h"
#include "pubsub-error.h"
#include "pubsub-frame-output-stream.h"
#include "pubsub-protocol.h"
#include "pubsub-subscriber.h"
#include "pubsub-ws-stream.h"

/* libsoup closes frames above its own limit without a close code; keeping it
 * well above max-message-bytes leaves the 1009 decision to us. */
#define SOUP_LIMIT_FACTOR 2
#define SOUP_LIMIT_MINIMUM (128 * 1024)

struct _PubsubConnection {
  GObject                  parent_instance;

  PubsubBroker            *broker;        /* owned */
  PubsubSubscriber        *subscriber;    /* owned */
  SoupWebsocketConnection *websocket;     /* owned */
  gsize                    max_message_bytes;
  gint64                   last_activity; /* monotonic µs */
  gulong                   drained_handler;
  gboolean                 shutting_down;
  gboolean                 closed;
};

G_DEFINE_FINAL_TYPE (PubsubConnection, pubsub_connection, G_TYPE_OBJECT)

enum {
  SIGNAL_CLOSED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static void
pubsub_connection_dispose (GObject *object)
{
  PubsubConnection *self = PUBSUB_CONNECTION (object);

  if (self->websocket != NULL)
    g_signal_handlers_disconnect_by_data (self->websocket, self);
  if (self->subscriber != NULL)
    {
      g_clear_signal_handler (&self->drained_handler, self->subscriber);
      g_signal_handlers_disconnect_by_data (self->subscriber, self);
      pubsub_subscriber_close (self->subscriber);
    }
  g_clear_object (&self->websocket);
  g_clear_object (&self->subscriber);
  g_clear_object (&self->broker);

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
}

/* soup_websocket_connection_close() must be called at most once. */
static void
close_websocket (PubsubConnection *self,
                 gushort           code,
                 const char       *reason)
{
  if (soup_websocket_connection_get_state (self->websocket) == SOUP_WEBSOCKET_STATE_OPEN)
    soup_websocket_connection_close (self->websocket, code, reason);
}

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
handle_subscribe (PubsubConnection     *self,
                  const PubsubRequest  *request,
                  GError              **error)
{
  PubsubTopic *topic = pubsub_broker_get_topic (self->broker, request->topic, error);

  if (topic == NULL)
    return FALSE;
  /* The ack goes first, then the replay, then live events. */
  send_ack (self, request);
  pubsub_subscriber_subscribe (self->subscriber, topic, request->client_id, request->last_n);
  return TRUE;
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

static gboolean
handle_publish (PubsubConnection     *self,
                const PubsubRequest  *request,
                GError              **error)
{
  g_autoptr(PubsubMessage) message = NULL;

  message = pubsub_broker_publish (self->broker, request->topic, request->message_id,
                                   request->payload, request->payload_len, error);
  if (message == NULL)
    return FALSE;
  send_ack (self, request);
  return TRUE;
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
      switch (request.type)
        {
        case PUBSUB_REQUEST_SUBSCRIBE:
          ok = handle_subscribe (self, &request, &error);
          break;
        case PUBSUB_REQUEST_UNSUBSCRIBE:
          ok = handle_unsubscribe (self, &request, &error);
          break;
        case PUBSUB_REQUEST_PUBLISH:
          ok = handle_publish (self, &request, &error);
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

static void
on_message (SoupWebsocketConnection *websocket,
            SoupWebsocketDataType    type,
            GBytes                  *message,
            PubsubConnection        *self)
{
  gsize len;
  const char *text = g_bytes_get_data (message, &len);

  self->last_activity = g_get_monotonic_time ();
  if (self->closed || pubsub_subscriber_is_slow (self->subscriber))
    return;

  if (len > self->max_message_bytes)
    {
      g_debug ("closing a connection that sent a %" G_GSIZE_FORMAT "-byte frame", len);
      close_websocket (self, SOUP_WEBSOCKET_CLOSE_TOO_BIG, "message too big");
      return;
    }
  if (type != SOUP_WEBSOCKET_DATA_TEXT)
    {
      g_autoptr(GError) error =
        g_error_new_literal (PUBSUB_ERROR, PUBSUB_ERROR_BAD_REQUEST,
                             "binary frames are not supported: send JSON in text frames");
      send_error (self, NULL, error);
      return;
    }
  handle_text (self, text, len);
}

static void
on_pong (SoupWebsocketConnection *websocket,
         GBytes                  *message,
         PubsubConnection        *self)
{
  self->last_activity = g_get_monotonic_time ();
}

static void
on_slow_consumer (PubsubSubscriber *subscriber,
                  PubsubConnection *self)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) frame = NULL;

  g_debug ("closing a slow consumer");
  error = g_error_new (PUBSUB_ERROR, PUBSUB_ERROR_SLOW_CONSUMER,
                       "the outgoing queue overflowed; the client does not read fast enough");
  frame = pubsub_frame_new_error (NULL, error);
  pubsub_subscriber_send_final (self->subscriber, frame);
  close_websocket (self, SOUP_WEBSOCKET_CLOSE_POLICY_VIOLATION, "SLOW_CONSUMER");
}

static void
on_closed (SoupWebsocketConnection *websocket,
           PubsubConnection        *self)
{
  g_autoptr(PubsubConnection) hold = g_object_ref (self);

  if (self->closed)
    return;
  self->closed = TRUE;
  g_debug ("WebSocket connection closed (code %u)",
           soup_websocket_connection_get_close_code (websocket));
  pubsub_subscriber_close (self->subscriber);
  g_signal_emit (self, signals[SIGNAL_CLOSED], 0);
}

/**
 * pubsub_connection_new:
 * @broker: the broker
 * @stream: the client's connection, stolen from the HTTP server after the 101
 * @uri: the request URI
 * @origin: (nullable): the Origin header
 * @queue_size: the bound of the outgoing queue
 * @max_message_bytes: larger frames are closed with 1009
 */
PubsubConnection *
pubsub_connection_new (PubsubBroker *broker,
                       GIOStream    *stream,
                       GUri         *uri,
                       const char   *origin,
                       guint         queue_size,
                       gsize         max_message_bytes)
{
  PubsubConnection *self = g_object_new (PUBSUB_TYPE_CONNECTION, NULL);
  g_autoptr(GOutputStream) frames = NULL;
  g_autoptr(GIOStream) websocket_stream = NULL;

  self->broker = g_object_ref (broker);
  self->max_message_bytes = max_message_bytes;
  self->subscriber = pubsub_subscriber_new (g_io_stream_get_output_stream (stream), queue_size);
  frames = pubsub_frame_output_stream_new (self->subscriber);
  websocket_stream = pubsub_ws_stream_new (stream, frames);
  self->websocket = soup_websocket_connection_new (websocket_stream, uri,
                                                   SOUP_WEBSOCKET_CONNECTION_SERVER,
                                                   origin, NULL, NULL);
  soup_websocket_connection_set_max_incoming_payload_size (
    self->websocket, MAX ((guint64) max_message_bytes * SOUP_LIMIT_FACTOR, SOUP_LIMIT_MINIMUM));

  g_signal_connect (self->websocket, "message", G_CALLBACK (on_message), self);
  g_signal_connect (self->websocket, "pong", G_CALLBACK (on_pong), self);
  g_signal_connect (self->websocket, "closed", G_CALLBACK (on_closed), self);
  g_signal_connect (self->subscriber, "slow-consumer", G_CALLBACK (on_slow_consumer), self);
  return self;
}

/**
 * pubsub_connection_heartbeat:
 * @info_ping: the shared {"type":"info","msg":"ping"} frame of this beat
 * @idle_limit_us: a client silent for longer is dead
 *
 * Sends the heartbeat and a WebSocket ping, or closes a client that has sent
 * nothing, not even a pong, for @idle_limit_us.
 */
void
pubsub_connection_heartbeat (PubsubConnection *self,
                             GBytes           *info_ping,
                             gint64            idle_limit_us)
{
  g_autoptr(GBytes) ping = NULL;

  g_return_if_fail (PUBSUB_IS_CONNECTION (self));

  if (self->closed || self->shutting_down)
    return;
  if (g_get_monotonic_time () - self->last_activity > idle_limit_us)
    {
      g_debug ("closing a connection silent for two heartbeat intervals");
      close_websocket (self, SOUP_WEBSOCKET_CLOSE_GOING_AWAY, "heartbeat timeout");
      return;
    }
  ping = pubsub_frame_new_ping ();
  if (pubsub_subscriber_send (self->subscriber, info_ping))
    pubsub_subscriber_send (self->subscriber, ping);
}

static void
on_drained_for_shutdown (PubsubSubscriber *subscriber,
                         PubsubConnection *self)
{
  g_clear_signal_handler (&self->drained_handler, self->subscriber);
  close_websocket (self, SOUP_WEBSOCKET_CLOSE_GOING_AWAY, "server shutting down");
}

/**
 * pubsub_connection_shutdown:
 *
 * Flushes what is queued, then closes with 1001. libsoup's close timer (5 s)
 * starts when the close frame is queued, so waiting for the queue to drain
 * first lets a longer shutdown-grace apply to the backlog.
 */
void
pubsub_connection_shutdown (PubsubConnection *self)
{
  g_return_if_fail (PUBSUB_IS_CONNECTION (self));

  if (self->closed || self->shutting_down)
    return;
  self->shutting_down = TRUE;
  pubsub_subscriber_unsubscribe_all (self->subscriber);
  if (pubsub_subscriber_get_queue_length (self->subscriber) == 0)
    {
      close_websocket (self, SOUP_WEBSOCKET_CLOSE_GOING_AWAY, "server shutting down");
      return;
    }
  self->drained_handler = g_signal_connect (self->subscriber, "drained",
                                            G_CALLBACK (on_drained_for_shutdown), self);
  pubsub_subscriber_flush (self->subscriber);
}
