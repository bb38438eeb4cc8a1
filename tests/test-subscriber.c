/* test-subscriber.c: the bounded outgoing queue of a connection
 * (src/pubsub-subscriber.c) over a real socket
 *
 * The subscriber writes to the output stream of a GSocketConnection made
 * from one end of a socketpair(AF_UNIX, SOCK_STREAM); the test is the client
 * at the other end, reading raw (unmasked) WebSocket frames from it. Nothing
 * sleeps: the main context is iterated until the queue is empty, and the
 * peer end is non-blocking and polled with short timeouts under an overall
 * deadline.
 *
 * A peer that never reads is made by shrinking the socket's send buffer:
 * once the kernel refuses bytes, frames stay in the queue, and the frame that
 * would exceed queue-size turns the subscriber slow.
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gio/gio.h>
#include <glib-unix.h>
#include <json-glib/json-glib.h>

#include "pubsub-broker.h"
#include "pubsub-error.h"
#include "pubsub-protocol.h"
#include "pubsub-ws-frame.h"
#include "pubsub-subscriber.h"
#include "pubsub-test-model.h"
#include "pubsub-test-util.h"

#define UUID "123e4567-e89b-12d3-a456-426614174000"
#define DEADLINE_SECONDS 10

/* ---------------------------------------------------------------------- */
/* Fixture                                                                */

typedef struct {
  GSocketConnection *connection;
  GOutputStream     *output;        /* owned by connection */
  int                peer;          /* the client's end, non-blocking */
  GByteArray        *inbox;         /* bytes read from peer, not yet parsed */
  PubsubBroker      *broker;
  PubsubIoLoop      *io;
  PubsubSubscriber  *subscriber;
  guint              slow_count;
  guint              drained_count;
} Fixture;

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GError) error = NULL;
  int fds[2];

  g_assert_no_errno (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds));
  socket = g_socket_new_from_fd (fds[0], &error);
  g_assert_no_error (error);
  f->connection = g_socket_connection_factory_create_connection (socket);
  f->output = g_io_stream_get_output_stream (G_IO_STREAM (f->connection));
  g_assert_true (G_IS_POLLABLE_OUTPUT_STREAM (f->output));
  f->peer = fds[1];
  g_assert_true (g_unix_set_fd_nonblocking (f->peer, TRUE, &error));
  g_assert_no_error (error);
  f->inbox = g_byte_array_new ();
  f->broker = pubsub_broker_new (NULL, pubsub_frame_new_event, 10, 100);
  f->io = pubsub_io_loop_new (&error);
  g_assert_no_error (error);
}

/* Runs whatever is ready now (flushes, writable sources), without blocking. */
static void
iterate_pending (void)
{
  for (guint i = 0; i < 100000 && g_main_context_iteration (NULL, FALSE); i++)
    ;
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  if (f->subscriber != NULL)
    {
      PubsubSubscriber *weak = f->subscriber;

      g_object_add_weak_pointer (G_OBJECT (weak), (gpointer *) &weak);
      pubsub_subscriber_close (f->subscriber);
      g_clear_object (&f->subscriber);
      iterate_pending ();   /* a scheduled flush holds a reference until it runs */
      g_assert_null (weak);
    }
  g_clear_object (&f->io);
  g_clear_object (&f->broker);
  g_clear_object (&f->connection);
  if (f->peer >= 0)
    close (f->peer);
  g_byte_array_unref (f->inbox);
}

static void
on_slow_consumer (PubsubSubscriber *subscriber,
                  Fixture          *f)
{
  g_assert_true (subscriber == f->subscriber);
  /* Subscriptions are already dropped when this is emitted. */
  g_assert_cmpuint (pubsub_subscriber_get_subscription_count (subscriber), ==, 0);
  g_assert_true (pubsub_subscriber_is_slow (subscriber));
  f->slow_count++;
}

static void
on_drained (PubsubSubscriber *subscriber,
            Fixture          *f)
{
  g_assert_cmpuint (pubsub_subscriber_get_queue_length (subscriber), ==, 0);
  f->drained_count++;
}

/* @sndbuf: 0 for the kernel's default, else a small send buffer */
static void
make_subscriber (Fixture *f,
                 guint    queue_size,
                 gint     sndbuf)
{
  if (sndbuf > 0)
    {
      g_autoptr(GError) error = NULL;

      g_assert_true (g_socket_set_option (g_socket_connection_get_socket (f->connection),
                                          SOL_SOCKET, SO_SNDBUF, sndbuf, &error));
      g_assert_no_error (error);
    }
  f->subscriber = pubsub_subscriber_new (f->io, f->output, queue_size, NULL);
  g_signal_connect (f->subscriber, "slow-consumer", G_CALLBACK (on_slow_consumer), f);
  g_signal_connect (f->subscriber, "drained", G_CALLBACK (on_drained), f);
}

static void
drain (Fixture *f)
{
  gint64 deadline = g_get_monotonic_time () + DEADLINE_SECONDS * G_USEC_PER_SEC;

  while (pubsub_subscriber_get_queue_length (f->subscriber) > 0)
    {
      if (g_get_monotonic_time () > deadline)
        g_error ("the subscriber's queue did not drain (%u frames left)",
                 pubsub_subscriber_get_queue_length (f->subscriber));
      if (!g_main_context_iteration (NULL, FALSE))
        g_usleep (1000);
    }
}

/* ---------------------------------------------------------------------- */
/* The peer: reading server frames                                        */

/* Reads what the socket holds, waiting up to @timeout_ms for the first byte. */
static gsize
peer_read (Fixture *f,
           int      timeout_ms)
{
  struct pollfd pfd = { f->peer, POLLIN, 0 };
  gsize total = 0;

  if (poll (&pfd, 1, timeout_ms) <= 0)
    return 0;
  for (;;)
    {
      guint8 buffer[65536];
      ssize_t n = read (f->peer, buffer, sizeof buffer);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && errno == EAGAIN)
        break;
      g_assert_cmpint (n, >=, 0);
      if (n == 0)
        break;
      g_byte_array_append (f->inbox, buffer, (guint) n);
      total += (gsize) n;
    }
  return total;
}

/* Takes one complete frame off the inbox, or returns NULL. */
static PubsubTestRawFrame *
inbox_pop (Fixture *f)
{
  PubsubTestRawFrame *frame = pubsub_test_ws_server_frame_pop (f->inbox);

  if (frame != NULL)
    g_assert_true (frame->fin);   /* the subscriber never fragments */
  return frame;
}

/* Reads exactly @n frames, iterating the main context while waiting. */
static GPtrArray *
collect_frames (Fixture *f,
                guint    n)
{
  GPtrArray *frames = g_ptr_array_new_with_free_func ((GDestroyNotify) pubsub_test_raw_frame_free);
  gint64 deadline = g_get_monotonic_time () + DEADLINE_SECONDS * G_USEC_PER_SEC;

  while (frames->len < n)
    {
      PubsubTestRawFrame *frame = inbox_pop (f);

      if (frame != NULL)
        {
          g_ptr_array_add (frames, frame);
          continue;
        }
      if (g_get_monotonic_time () > deadline)
        g_error ("expected %u frames, got %u (%u bytes pending)", n, frames->len, f->inbox->len);
      iterate_pending ();
      peer_read (f, 10);
    }
  return frames;
}

/* Nothing more arrives: not already read, not in the queue, not in the socket. */
static void
assert_no_more_frames (Fixture *f)
{
  iterate_pending ();
  if (f->subscriber != NULL)
    g_assert_cmpuint (pubsub_subscriber_get_queue_length (f->subscriber), ==, 0);
  peer_read (f, 20);
  g_assert_cmpuint (f->inbox->len, ==, 0);
}

static JsonObject *
frame_object (PubsubTestRawFrame *frame,
              JsonParser         *parser)
{
  g_autoptr(GError) error = NULL;
  gsize size;
  const char *json = g_bytes_get_data (frame->payload, &size);
  JsonNode *root;

  g_assert_cmpuint (frame->opcode, ==, 0x1);
  g_assert_true (json_parser_load_from_data (parser, json, (gssize) size, &error));
  g_assert_no_error (error);
  root = json_parser_get_root (parser);
  g_assert_nonnull (root);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (root));
  return json_node_get_object (root);
}

static const char *
frame_type (PubsubTestRawFrame *frame)
{
  static char type[32];
  g_autoptr(JsonParser) parser = json_parser_new ();
  JsonObject *object = frame_object (frame, parser);

  g_strlcpy (type, json_object_get_string_member (object, "type"), sizeof type);
  return type;
}

/* An event frame: its topic and message.payload.n. */
static gint64
event_number (PubsubTestRawFrame *frame,
              const char         *topic)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  JsonObject *object = frame_object (frame, parser);
  JsonObject *message;

  g_assert_cmpstr (json_object_get_string_member (object, "type"), ==, "event");
  g_assert_cmpstr (json_object_get_string_member (object, "topic"), ==, topic);
  message = json_object_get_object_member (object, "message");
  /* Each message has an id of its own (publish_n). */
  g_assert_true (g_uuid_string_is_valid (json_object_get_string_member (message, "id")));
  return json_object_get_int_member (json_object_get_object_member (message, "payload"), "n");
}

static void
assert_events (GPtrArray  *frames,
               guint       from_index,
               const char *topic,
               gint64      first,
               gint64      last)
{
  g_assert_cmpuint (frames->len, >=, from_index + (guint) (last - first + 1));
  for (gint64 n = first; n <= last; n++)
    g_assert_cmpint (event_number (g_ptr_array_index (frames, from_index + (guint) (n - first)),
                                   topic), ==, n);
}

/* ---------------------------------------------------------------------- */
/* Publishing                                                             */

/* Subscribes with a replay of the last @last_n stored messages. */
static gboolean
subscribe_last_n (PubsubSubscriber *subscriber,
                  PubsubTopic      *topic,
                  const char       *client_id,
                  guint64           last_n)
{
  gboolean recovered = TRUE;
  guint64 after = pubsub_topic_replay_start (topic, NULL, last_n, &recovered);

  g_assert_false (recovered);
  return pubsub_subscriber_subscribe (subscriber, topic, client_id, after);
}

static PubsubMessage *
publish_n (Fixture    *f,
           const char *topic,
           guint       n,
           gsize       padding)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *pad = g_strnfill (padding, 'p');
  g_autofree char *payload = g_strdup_printf ("{\"n\":%u,\"pad\":\"%s\"}", n, pad);
  g_autofree char *id = g_uuid_string_random ();
  PubsubMessage *message;

  message = pubsub_test_broker_publish (f->broker, topic, id, payload, strlen (payload), NULL, &error);
  g_assert_no_error (error);
  return message;
}

static void
publish_range (Fixture    *f,
               const char *topic,
               guint       first,
               guint       last)
{
  for (guint n = first; n <= last; n++)
    pubsub_message_unref (publish_n (f, topic, n, 0));
}

/* ---------------------------------------------------------------------- */
/* Tests                                                                  */

/* Frames reach the peer in order, byte for byte the message's frame. */
static void
test_order (Fixture       *f,
            gconstpointer  data)
{
  PubsubTopic *a = pubsub_test_broker_create (f->broker, "a", NULL);
  PubsubTopic *b = pubsub_test_broker_create (f->broker, "b", NULL);
  g_autoptr(GPtrArray) messages = g_ptr_array_new_with_free_func ((GDestroyNotify) pubsub_message_unref);
  g_autoptr(GPtrArray) frames = NULL;

  make_subscriber (f, 100, 0);
  g_assert_true (subscribe_last_n (f->subscriber, a, "c1", 0));
  g_assert_true (subscribe_last_n (f->subscriber, b, "c1", 0));
  g_assert_cmpuint (pubsub_subscriber_get_subscription_count (f->subscriber), ==, 2);
  g_assert_cmpuint (pubsub_topic_get_subscribers (a), ==, 1);
  g_assert_cmpuint (pubsub_topic_get_subscribers (b), ==, 1);

  /* Interleaved over two topics. */
  for (guint n = 0; n < 60; n++)
    g_ptr_array_add (messages, publish_n (f, n % 3 == 0 ? "b" : "a", n, n));
  g_assert_cmpuint (pubsub_subscriber_get_queue_length (f->subscriber), ==, 60);
  drain (f);
  g_assert_cmpuint (f->drained_count, >=, 1);

  frames = collect_frames (f, 60);
  for (guint n = 0; n < 60; n++)
    {
      PubsubTestRawFrame *frame = g_ptr_array_index (frames, n);
      GBytes *sent = pubsub_message_get_frame (g_ptr_array_index (messages, n));
      gsize size;
      const guint8 *bytes = g_bytes_get_data (sent, &size);
      gsize header = pubsub_ws_frame_payload_offset (sent);

      g_assert_cmpint (event_number (frame, n % 3 == 0 ? "b" : "a"), ==, n);
      g_assert_cmpmem (g_bytes_get_data (frame->payload, NULL), g_bytes_get_size (frame->payload),
                       bytes + header, size - header);
    }
  assert_no_more_frames (f);
  g_assert_false (pubsub_subscriber_is_slow (f->subscriber));
  g_assert_cmpuint (f->slow_count, ==, 0);
}

/* Replies sent directly are queued in line with events. */
static void
test_send_direct (Fixture       *f,
                  gconstpointer  data)
{
  PubsubTopic *t = pubsub_test_broker_create (f->broker, "t", NULL);
  g_autoptr(GBytes) pong = pubsub_frame_new_pong (NULL);
  g_autoptr(GBytes) ping = pubsub_ws_frame_new_ping ();
  g_autoptr(GPtrArray) frames = NULL;

  make_subscriber (f, 10, 0);
  g_assert_true (pubsub_subscriber_send (f->subscriber, pong));
  g_assert_true (subscribe_last_n (f->subscriber, t, "c", 0));
  publish_range (f, "t", 0, 0);
  g_assert_true (pubsub_subscriber_send (f->subscriber, ping));
  publish_range (f, "t", 1, 1);
  drain (f);

  frames = collect_frames (f, 4);
  g_assert_cmpstr (frame_type (g_ptr_array_index (frames, 0)), ==, "pong");
  g_assert_cmpint (event_number (g_ptr_array_index (frames, 1), "t"), ==, 0);
  g_assert_cmpuint (((PubsubTestRawFrame *) g_ptr_array_index (frames, 2))->opcode, ==, 0x9);
  g_assert_cmpuint (g_bytes_get_size (((PubsubTestRawFrame *) g_ptr_array_index (frames, 2))->payload),
                    ==, 0);
  g_assert_cmpint (event_number (g_ptr_array_index (frames, 3), "t"), ==, 1);
  assert_no_more_frames (f);
}

typedef struct {
  guint64 last_n;
  guint   first_replayed;   /* of 0..14 published with a history of 10 */
} ReplayRow;

static const ReplayRow replay_rows[] = {
  { 0, 15 },
  { 1, 14 },
  { 4, 11 },
  { 10, 5 },
  { 11, 5 },
  { 1000, 5 },
  { G_GUINT64_CONSTANT (4294967296), 5 },   /* 2^32: no truncation to 32 bits */
  { G_GUINT64_CONSTANT (4294967297), 5 },
  { G_MAXUINT64, 5 },
};

/* The ack, then the last min(last_n, stored) oldest first, then live events
 * with no gap and no duplicate. */
static void
test_replay (Fixture       *f,
             gconstpointer  data)
{
  const ReplayRow *row = data;
  PubsubTopic *t = pubsub_test_broker_create (f->broker, "t", NULL);
  g_autoptr(GBytes) ack = pubsub_frame_new_ack (NULL, "t");
  g_autoptr(GPtrArray) frames = NULL;
  guint replayed = 15 - row->first_replayed;

  make_subscriber (f, 100, 0);
  publish_range (f, "t", 0, 14);
  g_assert_cmpuint (pubsub_topic_get_history_length (t), ==, 10);

  g_assert_true (pubsub_subscriber_send (f->subscriber, ack));
  g_assert_true (subscribe_last_n (f->subscriber, t, "c", row->last_n));
  g_assert_cmpuint (pubsub_subscriber_get_queue_length (f->subscriber), ==, 1 + replayed);
  publish_range (f, "t", 15, 19);
  drain (f);

  frames = collect_frames (f, 1 + replayed + 5);
  g_assert_cmpstr (frame_type (g_ptr_array_index (frames, 0)), ==, "ack");
  assert_events (frames, 1, "t", row->first_replayed, 19);
  assert_no_more_frames (f);
}

/* Subscribing again changes nothing: no second replay, no double delivery. */
static void
test_subscribe_twice (Fixture       *f,
                      gconstpointer  data)
{
  PubsubTopic *t = pubsub_test_broker_create (f->broker, "t", NULL);
  g_autoptr(GPtrArray) frames = NULL;

  make_subscriber (f, 100, 0);
  publish_range (f, "t", 0, 2);
  g_assert_true (subscribe_last_n (f->subscriber, t, "c", 10));
  g_assert_cmpuint (pubsub_subscriber_get_queue_length (f->subscriber), ==, 3);
  g_assert_false (subscribe_last_n (f->subscriber, t, "c", 10));
  g_assert_false (subscribe_last_n (f->subscriber, t, "other-client-id", 10));
  g_assert_cmpuint (pubsub_subscriber_get_queue_length (f->subscriber), ==, 3);
  g_assert_cmpuint (pubsub_subscriber_get_subscription_count (f->subscriber), ==, 1);
  g_assert_cmpuint (pubsub_topic_get_subscribers (t), ==, 1);

  publish_range (f, "t", 3, 4);
  drain (f);
  frames = collect_frames (f, 5);
  assert_events (frames, 0, "t", 0, 4);
  assert_no_more_frames (f);
}

static void
test_unsubscribe (Fixture       *f,
                  gconstpointer  data)
{
  PubsubTopic *a = pubsub_test_broker_create (f->broker, "a", NULL);
  PubsubTopic *b = pubsub_test_broker_create (f->broker, "b", NULL);
  g_autoptr(GPtrArray) frames = NULL;

  make_subscriber (f, 100, 0);
  g_assert_true (subscribe_last_n (f->subscriber, a, "c", 0));
  g_assert_true (subscribe_last_n (f->subscriber, b, "c", 0));
  publish_range (f, "a", 0, 0);

  g_assert_true (pubsub_subscriber_unsubscribe (f->subscriber, "a"));
  g_assert_false (pubsub_subscriber_unsubscribe (f->subscriber, "a"));
  g_assert_false (pubsub_subscriber_unsubscribe (f->subscriber, "never"));
  g_assert_cmpuint (pubsub_topic_get_subscribers (a), ==, 0);
  g_assert_cmpuint (pubsub_topic_get_subscribers (b), ==, 1);
  g_assert_cmpuint (pubsub_subscriber_get_subscription_count (f->subscriber), ==, 1);
  g_assert_cmpuint (pubsub_broker_get_subscriber_count (f->broker), ==, 1);

  /* Already queued events still go out; later ones do not. */
  publish_range (f, "a", 1, 3);
  publish_range (f, "b", 4, 4);
  pubsub_subscriber_unsubscribe_all (f->subscriber, PUBSUB_LEAVE_UNSUBSCRIBED);
  g_assert_cmpuint (pubsub_topic_get_subscribers (b), ==, 0);
  g_assert_cmpuint (pubsub_subscriber_get_subscription_count (f->subscriber), ==, 0);
  publish_range (f, "b", 5, 5);

  /* Subscribing again after unsubscribing works (with a replay). */
  g_assert_true (subscribe_last_n (f->subscriber, a, "c", 1));
  drain (f);
  frames = collect_frames (f, 3);
  assert_events (frames, 0, "a", 0, 0);
  assert_events (frames, 1, "b", 4, 4);
  assert_events (frames, 2, "a", 3, 3);
  assert_no_more_frames (f);
}

/* A frame handed to the kernel no longer counts: with a socket that has
 * room, a queue of 2 takes any number of frames sent in one go. */
static void
test_written_frames_do_not_count (Fixture       *f,
                                  gconstpointer  data)
{
  g_autoptr(GPtrArray) frames = NULL;

  make_subscriber (f, 2, 0);
  for (guint n = 0; n < 100; n++)
    {
      g_autofree char *msg = g_strdup_printf ("m%u", n);
      g_autoptr(GBytes) frame = pubsub_frame_new_info (msg, NULL);

      g_assert_true (pubsub_subscriber_send (f->subscriber, frame));
      g_assert_cmpuint (pubsub_subscriber_get_queue_length (f->subscriber), <=, 2);
    }
  g_assert_false (pubsub_subscriber_is_slow (f->subscriber));
  drain (f);

  frames = collect_frames (f, 100);
  for (guint n = 0; n < 100; n++)
    {
      g_autoptr(JsonParser) parser = json_parser_new ();
      g_autofree char *msg = g_strdup_printf ("m%u", n);
      JsonObject *object = frame_object (g_ptr_array_index (frames, n), parser);

      g_assert_cmpstr (json_object_get_string_member (object, "msg"), ==, msg);
    }
  assert_no_more_frames (f);
  g_assert_cmpuint (f->slow_count, ==, 0);
}

/* A reading client asking for more history than queue-size is not cut. */
static void
test_replay_beyond_queue_size (Fixture       *f,
                               gconstpointer  data)
{
  PubsubTopic *t;
  g_autoptr(GPtrArray) frames = NULL;

  g_clear_object (&f->broker);
  f->broker = pubsub_broker_new (NULL, pubsub_frame_new_event, 50, 10);
  t = pubsub_test_broker_create (f->broker, "t", NULL);
  make_subscriber (f, 5, 0);
  publish_range (f, "t", 0, 49);

  g_assert_true (subscribe_last_n (f->subscriber, t, "c", 50));
  g_assert_false (pubsub_subscriber_is_slow (f->subscriber));
  g_assert_cmpuint (pubsub_subscriber_get_queue_length (f->subscriber), <=, 5);
  g_assert_cmpuint (pubsub_topic_get_subscribers (t), ==, 1);

  /* And a burst of live events larger than the queue, too. */
  publish_range (f, "t", 50, 149);
  g_assert_false (pubsub_subscriber_is_slow (f->subscriber));
  drain (f);

  frames = collect_frames (f, 150);
  assert_events (frames, 0, "t", 0, 149);
  assert_no_more_frames (f);
  g_assert_cmpuint (f->slow_count, ==, 0);
}

/* Sends frames until the kernel refuses bytes; returns the queue length then. */
static guint
fill_socket (Fixture *f)
{
  g_autofree char *msg = g_strnfill (3000, 'x');
  g_autoptr(GBytes) big = pubsub_frame_new_info (msg, NULL);

  for (guint i = 0; i < 10000; i++)
    {
      g_assert_true (pubsub_subscriber_send (f->subscriber, big));
      iterate_pending ();
      if (pubsub_subscriber_get_queue_length (f->subscriber) > 0)
        return pubsub_subscriber_get_queue_length (f->subscriber);
    }
  g_error ("the socket never filled up");
}

/* The exact bound: queue-size frames may wait; the next one is too many. */
static void
test_bound_exact (Fixture       *f,
                  gconstpointer  data)
{
  PubsubTopic *t = pubsub_test_broker_create (f->broker, "t", NULL);
  g_autoptr(GBytes) small = pubsub_frame_new_pong (NULL);
  guint pending;

  make_subscriber (f, 4, 4096);
  g_assert_true (subscribe_last_n (f->subscriber, t, "c", 0));
  pending = fill_socket (f);
  g_assert_cmpuint (pending, ==, 1);

  /* The socket stays full: nobody reads. */
  for (guint i = pending; i < 4; i++)
    {
      g_assert_true (pubsub_subscriber_send (f->subscriber, small));
      iterate_pending ();
    }
  g_assert_cmpuint (pubsub_subscriber_get_queue_length (f->subscriber), ==, 4);
  g_assert_false (pubsub_subscriber_is_slow (f->subscriber));
  g_assert_cmpuint (f->slow_count, ==, 0);
  g_assert_cmpuint (pubsub_topic_get_subscribers (t), ==, 1);

  /* One more: slow, the frame is dropped, the subscriptions go. */
  g_assert_false (pubsub_subscriber_send (f->subscriber, small));
  g_assert_true (pubsub_subscriber_is_slow (f->subscriber));
  g_assert_cmpuint (f->slow_count, ==, 1);
  g_assert_cmpuint (pubsub_subscriber_get_queue_length (f->subscriber), ==, 4);
  g_assert_cmpuint (pubsub_subscriber_get_subscription_count (f->subscriber), ==, 0);
  g_assert_cmpuint (pubsub_topic_get_subscribers (t), ==, 0);

  /* Slow stays slow, and says so once. */
  g_assert_false (pubsub_subscriber_send (f->subscriber, small));
  g_assert_false (subscribe_last_n (f->subscriber, t, "c", 0));
  g_assert_cmpuint (pubsub_topic_get_subscribers (t), ==, 0);
  g_assert_cmpuint (f->slow_count, ==, 1);
  g_assert_cmpuint (pubsub_subscriber_get_queue_length (f->subscriber), ==, 4);
}

/* Through the topic: a subscriber that never reads is cut exactly once, its
 * queue never exceeds queue-size, and what was queued still arrives in
 * order, followed by the final frames, once the client reads after all. */
static void
test_slow_consumer (Fixture       *f,
                    gconstpointer  data)
{
  const guint queue_size = 8;
  PubsubTopic *a = pubsub_test_broker_create (f->broker, "a", NULL);
  PubsubTopic *b = pubsub_test_broker_create (f->broker, "b", NULL);
  g_autoptr(GPtrArray) frames = NULL;
  guint published = 0;
  guint queued_before_final;
  guint final_queued;

  make_subscriber (f, queue_size, 4096);
  g_assert_true (subscribe_last_n (f->subscriber, a, "c", 0));
  g_assert_true (subscribe_last_n (f->subscriber, b, "c", 0));
  g_assert_cmpuint (pubsub_broker_get_subscriber_count (f->broker), ==, 2);

  while (f->slow_count == 0)
    {
      g_assert_cmpuint (published, <, 10000);
      pubsub_message_unref (publish_n (f, "a", published++, 1000));
      g_assert_cmpuint (pubsub_subscriber_get_queue_length (f->subscriber), <=, queue_size);
      iterate_pending ();
    }
  /* The last publish is the one that did not fit. */
  g_assert_cmpuint (f->slow_count, ==, 1);
  g_assert_cmpuint (pubsub_subscriber_get_queue_length (f->subscriber), ==, queue_size);
  g_assert_cmpuint (pubsub_subscriber_get_subscription_count (f->subscriber), ==, 0);
  g_assert_cmpuint (pubsub_topic_get_subscribers (a), ==, 0);
  g_assert_cmpuint (pubsub_topic_get_subscribers (b), ==, 0);
  g_assert_cmpuint (pubsub_broker_get_subscriber_count (f->broker), ==, 0);

  /* Publishers carry on; nothing more reaches the slow one. */
  for (guint i = 0; i < 20; i++)
    {
      pubsub_message_unref (publish_n (f, i % 2 ? "a" : "b", 100000 + i, 10));
      iterate_pending ();
    }
  g_assert_cmpuint (f->slow_count, ==, 1);
  g_assert_cmpuint (pubsub_subscriber_get_queue_length (f->subscriber), ==, queue_size);

  /* The SLOW_CONSUMER error and the close frame go out past the bound, but
   * only a few frames past it. */
  queued_before_final = pubsub_subscriber_get_queue_length (f->subscriber);
  for (guint i = 0; i < 10; i++)
    {
      g_autofree char *msg = g_strdup_printf ("final-%u", i);
      g_autoptr(GBytes) final = pubsub_frame_new_info (msg, NULL);

      pubsub_subscriber_send_final (f->subscriber, final);
      g_assert_cmpuint (pubsub_subscriber_get_queue_length (f->subscriber), <=, queue_size + 4);
    }
  final_queued = pubsub_subscriber_get_queue_length (f->subscriber) - queued_before_final;
  g_assert_cmpuint (final_queued, ==, 4);

  /* The client reads at last: every event before the cut, in order, no
   * gap, then the final frames. */
  frames = collect_frames (f, published - 1 + final_queued);
  assert_events (frames, 0, "a", 0, published - 2);
  for (guint i = 0; i < final_queued; i++)
    {
      g_autoptr(JsonParser) parser = json_parser_new ();
      g_autofree char *msg = g_strdup_printf ("final-%u", i);
      JsonObject *object = frame_object (g_ptr_array_index (frames, published - 1 + i), parser);

      g_assert_cmpstr (json_object_get_string_member (object, "msg"), ==, msg);
    }
  assert_no_more_frames (f);
  g_assert_cmpuint (f->slow_count, ==, 1);
}

/* Topic deletion: the topic_deleted info, the subscription goes, the
 * connection stays usable. */
static void
test_topic_deleted (Fixture       *f,
                    gconstpointer  data)
{
  PubsubTopic *t = pubsub_test_broker_create (f->broker, "t", NULL);
  PubsubTopic *u = pubsub_test_broker_create (f->broker, "u", NULL);
  g_autoptr(GPtrArray) frames = NULL;

  make_subscriber (f, 100, 0);
  g_assert_true (subscribe_last_n (f->subscriber, t, "c", 0));
  g_assert_true (subscribe_last_n (f->subscriber, u, "c", 0));
  publish_range (f, "t", 0, 0);

  g_assert_true (pubsub_test_broker_delete (f->broker, "t", NULL));
  g_assert_cmpuint (pubsub_subscriber_get_subscription_count (f->subscriber), ==, 1);
  g_assert_false (pubsub_subscriber_unsubscribe (f->subscriber, "t"));
  g_assert_cmpuint (pubsub_broker_get_subscriber_count (f->broker), ==, 1);
  publish_range (f, "u", 1, 1);

  /* A new topic of the same name is a new subscription. */
  t = pubsub_test_broker_create (f->broker, "t", NULL);
  publish_range (f, "t", 2, 2);
  g_assert_true (subscribe_last_n (f->subscriber, t, "c", 0));
  publish_range (f, "t", 3, 3);
  drain (f);

  frames = collect_frames (f, 4);
  assert_events (frames, 0, "t", 0, 0);
  {
    g_autoptr(JsonParser) parser = json_parser_new ();
    JsonObject *info = frame_object (g_ptr_array_index (frames, 1), parser);

    g_assert_cmpstr (json_object_get_string_member (info, "type"), ==, "info");
    g_assert_cmpstr (json_object_get_string_member (info, "topic"), ==, "t");
    g_assert_cmpstr (json_object_get_string_member (info, "msg"), ==, "topic_deleted");
    g_assert_true (json_object_has_member (info, "ts"));
  }
  assert_events (frames, 2, "u", 1, 1);
  assert_events (frames, 3, "t", 3, 3);
  assert_no_more_frames (f);
  g_assert_cmpuint (f->slow_count, ==, 0);
}

/* Closing drops everything and stops writing; disposing does the same. */
static void
test_close (Fixture       *f,
            gconstpointer  data)
{
  PubsubTopic *t = pubsub_test_broker_create (f->broker, "t", NULL);
  g_autoptr(GBytes) pong = pubsub_frame_new_pong (NULL);

  make_subscriber (f, 10, 0);
  g_assert_true (subscribe_last_n (f->subscriber, t, "c", 0));
  publish_range (f, "t", 0, 2);
  g_assert_cmpuint (pubsub_subscriber_get_queue_length (f->subscriber), ==, 3);

  pubsub_subscriber_close (f->subscriber);
  g_assert_cmpuint (pubsub_subscriber_get_queue_length (f->subscriber), ==, 0);
  g_assert_cmpuint (pubsub_subscriber_get_subscription_count (f->subscriber), ==, 0);
  g_assert_cmpuint (pubsub_topic_get_subscribers (t), ==, 0);
  g_assert_false (pubsub_subscriber_send (f->subscriber, pong));
  pubsub_subscriber_send_final (f->subscriber, pong);
  g_assert_cmpuint (pubsub_subscriber_get_queue_length (f->subscriber), ==, 0);
  pubsub_subscriber_close (f->subscriber);   /* idempotent */
  publish_range (f, "t", 3, 3);
  pubsub_subscriber_flush (f->subscriber);
  assert_no_more_frames (f);
  g_assert_cmpuint (f->slow_count, ==, 0);
}

static void
test_dispose (Fixture       *f,
              gconstpointer  data)
{
  PubsubTopic *t = pubsub_test_broker_create (f->broker, "t", NULL);
  PubsubSubscriber *weak;

  make_subscriber (f, 10, 0);
  g_assert_true (subscribe_last_n (f->subscriber, t, "c", 0));
  g_assert_cmpuint (pubsub_topic_get_subscribers (t), ==, 1);
  weak = f->subscriber;
  g_object_add_weak_pointer (G_OBJECT (weak), (gpointer *) &weak);
  g_clear_object (&f->subscriber);
  g_assert_null (weak);
  g_assert_cmpuint (pubsub_topic_get_subscribers (t), ==, 0);
  publish_range (f, "t", 0, 0);   /* no handler left behind */
  assert_no_more_frames (f);
}

/* The client went away: writing fails, the subscriber stops writing (the
 * reading side notices and closes); it is not a slow consumer. */
static void
test_peer_gone (Fixture       *f,
                gconstpointer  data)
{
  PubsubTopic *t = pubsub_test_broker_create (f->broker, "t", NULL);
  g_autoptr(GBytes) pong = pubsub_frame_new_pong (NULL);

  make_subscriber (f, 10, 0);
  g_assert_true (subscribe_last_n (f->subscriber, t, "c", 0));
  close (f->peer);
  f->peer = -1;
  publish_range (f, "t", 0, 1);
  iterate_pending ();
  g_assert_cmpuint (pubsub_subscriber_get_queue_length (f->subscriber), ==, 0);
  g_assert_false (pubsub_subscriber_send (f->subscriber, pong));
  g_assert_cmpuint (pubsub_subscriber_get_queue_length (f->subscriber), ==, 0);
  g_assert_false (pubsub_subscriber_is_slow (f->subscriber));
  g_assert_cmpuint (f->slow_count, ==, 0);
}

/* The send that finds the client gone (its own flush fails, queue full)
 * must report the frame as dropped, like every send after it, and must not
 * leave it queued behind a dead output. */
static void
test_peer_gone_while_full (Fixture       *f,
                           gconstpointer  data)
{
  g_autoptr(GBytes) first = pubsub_frame_new_info ("first", NULL);
  g_autoptr(GBytes) second = pubsub_frame_new_info ("second", NULL);

  make_subscriber (f, 1, 0);
  close (f->peer);
  f->peer = -1;
  /* Queued; the flush pass has not run yet. */
  g_assert_true (pubsub_subscriber_send (f->subscriber, first));
  g_assert_cmpuint (pubsub_subscriber_get_queue_length (f->subscriber), ==, 1);
  /* The queue is full, so this send flushes at once, and the write fails. */
  g_assert_false (pubsub_subscriber_send (f->subscriber, second));
  g_assert_cmpuint (pubsub_subscriber_get_queue_length (f->subscriber), ==, 0);
  g_assert_false (pubsub_subscriber_is_slow (f->subscriber));
  g_assert_cmpuint (f->slow_count, ==, 0);
}

/* ---------------------------------------------------------------------- */

int
main (int    argc,
      char **argv)
{
  /* A write to a closed peer must be an error, not a signal. */
  signal (SIGPIPE, SIG_IGN);

  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

#define ADD(path, func) g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("/subscriber/order", test_order);
  ADD ("/subscriber/send-direct", test_send_direct);
  for (gsize i = 0; i < G_N_ELEMENTS (replay_rows); i++)
    {
      g_autofree char *path = g_strdup_printf ("/subscriber/replay/last-n-%" G_GUINT64_FORMAT,
                                               replay_rows[i].last_n);

      g_test_add (path, Fixture, &replay_rows[i], fixture_setup, test_replay, fixture_teardown);
    }
  ADD ("/subscriber/subscribe-twice", test_subscribe_twice);
  ADD ("/subscriber/unsubscribe", test_unsubscribe);
  ADD ("/subscriber/written-frames-do-not-count", test_written_frames_do_not_count);
  ADD ("/subscriber/replay-beyond-queue-size", test_replay_beyond_queue_size);
  ADD ("/subscriber/bound-exact", test_bound_exact);
  ADD ("/subscriber/slow-consumer", test_slow_consumer);
  ADD ("/subscriber/topic-deleted", test_topic_deleted);
  ADD ("/subscriber/close", test_close);
  ADD ("/subscriber/dispose", test_dispose);
  ADD ("/subscriber/peer-gone", test_peer_gone);
#undef ADD

  /* Known bugs, last so that they hide nothing when they fail. */
  g_test_add ("/subscriber/bug/peer-gone-while-full", Fixture, NULL, fixture_setup,
              test_peer_gone_while_full, fixture_teardown);

  return g_test_run ();
}
