/* test-http.c: the HTTP front of the real pubsubd over raw TCP: keep-alive
 * and pipelining (SPEC §8), the time limits of a connection, the
 * max-connections budget for every connection, descriptor exhaustion, and
 * the limits of a request head
 *
 * Every client here is a plain socket written and read by hand, so that
 * what is on the wire — the order of answers, a close, a reset, silence — is
 * exactly what is asserted. Reads iterate the main context (the daemon's log
 * is read there) and fail the test at a deadline; nothing sleeps.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pubsub-test-util.h"

/* ---- a raw HTTP client ------------------------------------------------- */

typedef struct {
  int         fd;
  GByteArray *input;   /* received, not yet taken */
  gboolean    eof;     /* end of stream, or a reset */
  gboolean    reset;   /* it was a reset */
} Client;

typedef struct {
  guint               status;
  SoupMessageHeaders *headers;
  GBytes             *body;
  JsonNode           *json;     /* the body, if it is JSON */
} Answer;

static void
answer_free (Answer *answer)
{
  if (answer == NULL)
    return;
  soup_message_headers_unref (answer->headers);
  g_bytes_unref (answer->body);
  g_clear_pointer (&answer->json, json_node_unref);
  g_free (answer);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Answer, answer_free)

static void
client_free (Client *client)
{
  if (client == NULL)
    return;
  if (client->fd >= 0)
    close (client->fd);
  g_byte_array_unref (client->input);
  g_free (client);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Client, client_free)

static gint64
deadline_after (guint ms)
{
  return g_get_monotonic_time () + (gint64) ms * pubsub_test_timeout_scale () * 1000;
}

static Client *
client_connect (PubsubTestServer *server)
{
  Client *client = g_new0 (Client, 1);
  struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons (server->port) };

  address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  client->input = g_byte_array_new ();
  client->fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  g_assert_cmpint (client->fd, >=, 0);
  /* The handshake completes in the kernel, whether or not pubsubd accepts. */
  g_assert_cmpint (connect (client->fd, (struct sockaddr *) &address, sizeof address), ==, 0);
  g_assert_cmpint (fcntl (client->fd, F_SETFL, O_NONBLOCK), ==, 0);
  return client;
}

/* Reads what is there. Returns whether anything (data or the end) came. */
static gboolean
client_poll (Client *client)
{
  gboolean got = FALSE;

  while (!client->eof)
    {
      guint8 buffer[64 * 1024];
      gssize n = recv (client->fd, buffer, sizeof buffer, 0);

      if (n > 0)
        {
          g_byte_array_append (client->input, buffer, (guint) n);
          got = TRUE;
          continue;
        }
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        break;
      client->eof = TRUE;
      client->reset = n < 0;
      got = TRUE;
    }
  return got;
}

static void
client_send (Client     *client,
             const void *data,
             gsize       len)
{
  const guint8 *p = data;
  gint64 deadline = deadline_after (10000);

  while (len > 0)
    {
      gssize n = send (client->fd, p, len, MSG_NOSIGNAL);

      if (n > 0)
        {
          p += n;
          len -= (gsize) n;
          continue;
        }
      if (n < 0 && errno == EINTR)
        continue;
      g_assert_true (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
      /* The server's window is full: let it (and our reads) move. */
      client_poll (client);
      if (g_get_monotonic_time () > deadline)
        g_error ("timed out sending %zu more bytes", len);
      pubsub_test_iterate ();
    }
}

static void
client_send_text (Client     *client,
                  const char *text)
{
  client_send (client, text, strlen (text));
}

/* Tries to send; returns FALSE once the server is gone (reset, pipe). */
static gboolean
client_try_send (Client     *client,
                 const void *data,
                 gsize       len)
{
  const guint8 *p = data;

  while (len > 0)
    {
      gssize n = send (client->fd, p, len, MSG_NOSIGNAL);

      if (n > 0)
        {
          p += n;
          len -= (gsize) n;
          continue;
        }
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        {
          client_poll (client);
          if (client->eof)
            return FALSE;
          pubsub_test_iterate ();
          continue;
        }
      return FALSE;
    }
  return TRUE;
}

/* A whole answer at the front of the input, taken from it; or NULL. */
static Answer *
client_take_answer (Client *client)
{
  const char *data = (const char *) client->input->data;
  const char *end;
  g_autoptr(Answer) answer = NULL;
  g_autofree char *reason = NULL;
  SoupHTTPVersion version;
  gsize head_len;
  goffset body_len = 0;

  if (client->input->len == 0)
    return NULL;
  end = g_strstr_len (data, client->input->len, "\r\n\r\n");
  if (end == NULL)
    return NULL;
  head_len = (gsize) (end - data) + 4;
  answer = g_new0 (Answer, 1);
  answer->headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  if (!soup_headers_parse_response (data, (int) head_len, answer->headers, &version,
                                    &answer->status, &reason))
    g_error ("not an HTTP response: %.*s", (int) head_len, data);
  g_assert_cmpint (version, ==, SOUP_HTTP_1_1);
  if (answer->status != SOUP_STATUS_SWITCHING_PROTOCOLS)
    {
      g_assert_cmpint (soup_message_headers_get_encoding (answer->headers), ==,
                       SOUP_ENCODING_CONTENT_LENGTH);
      body_len = soup_message_headers_get_content_length (answer->headers);
    }
  if (client->input->len < head_len + (gsize) body_len)
    return NULL;
  answer->body = g_bytes_new (data + head_len, (gsize) body_len);
  g_byte_array_remove_range (client->input, 0, (guint) (head_len + (gsize) body_len));
  if (g_strcmp0 (soup_message_headers_get_content_type (answer->headers, NULL),
                 "application/json") == 0)
    {
      g_autoptr(JsonParser) parser = json_parser_new ();
      g_autoptr(GError) error = NULL;

      json_parser_load_from_data (parser, g_bytes_get_data (answer->body, NULL),
                                  (gssize) g_bytes_get_size (answer->body), &error);
      g_assert_no_error (error);
      answer->json = json_parser_steal_root (parser);
      g_assert_nonnull (answer->json);
    }
  return g_steal_pointer (&answer);
}

/* The next answer; NULL if the connection ends first. Fails at the deadline. */
static Answer *
client_read_answer (Client *client,
                    guint   deadline_ms)
{
  gint64 deadline = deadline_after (deadline_ms);

  for (;;)
    {
      Answer *answer = client_take_answer (client);

      if (answer != NULL)
        return answer;
      if (client->eof)
        return NULL;
      if (!client_poll (client))
        {
          if (g_get_monotonic_time () > deadline)
            g_error ("timed out after %u ms waiting for an answer",
                     deadline_ms * pubsub_test_timeout_scale ());
          pubsub_test_iterate ();
        }
    }
}

/* Waits for the end of the connection; returns the monotonic time it came. */
static gint64
client_wait_closed (Client *client,
                    guint   deadline_ms)
{
  gint64 deadline = deadline_after (deadline_ms);

  while (!client->eof)
    {
      if (!client_poll (client))
        {
          if (g_get_monotonic_time () > deadline)
            g_error ("timed out after %u ms waiting for the server to close",
                     deadline_ms * pubsub_test_timeout_scale ());
          pubsub_test_iterate ();
        }
    }
  return g_get_monotonic_time ();
}

/* Asserts nothing arrives (no data, no close) for @ms of real time. */
static void
client_assert_quiet (Client *client,
                     guint   ms)
{
  gint64 until = g_get_monotonic_time () + (gint64) ms * 1000;

  while (g_get_monotonic_time () < until)
    {
      client_poll (client);
      g_assert_false (client->eof);
      g_assert_cmpuint (client->input->len, ==, 0);
      pubsub_test_iterate ();
    }
}

static char *
request_text (const char *method,
              const char *path,
              const char *body,
              const char *extra_headers)
{
  g_autofree char *body_headers = NULL;

  if (body != NULL)
    body_headers = g_strdup_printf ("Content-Type: application/json\r\n"
                                    "Content-Length: %zu\r\n", strlen (body));
  return g_strdup_printf ("%s %s HTTP/1.1\r\n"
                          "Host: 127.0.0.1\r\n"
                          "%s%s"
                          "\r\n"
                          "%s",
                          method, path,
                          body_headers != NULL ? body_headers : "",
                          extra_headers != NULL ? extra_headers : "",
                          body != NULL ? body : "");
}

static const char *
answer_error_code (Answer *answer)
{
  JsonObject *object;
  JsonObject *error;

  if (answer->json == NULL || !JSON_NODE_HOLDS_OBJECT (answer->json))
    return NULL;
  object = json_node_get_object (answer->json);
  error = json_object_get_object_member (object, "error");
  return error != NULL ? json_object_get_string_member (error, "code") : NULL;
}

static void
assert_answer (Answer     *answer,
               guint       status,
               const char *code)
{
  g_assert_nonnull (answer);
  if (answer->status != status ||
      (code != NULL && g_strcmp0 (answer_error_code (answer), code) != 0))
    g_error ("expected %u %s, got %u: %.*s", status, code != NULL ? code : "",
             answer->status, (int) g_bytes_get_size (answer->body),
             (const char *) g_bytes_get_data (answer->body, NULL));
  g_assert_nonnull (answer->json);
}

static gboolean
answer_closes (Answer *answer)
{
  return soup_message_headers_header_contains (answer->headers, "Connection", "close");
}

/* ---- keep-alive -------------------------------------------------------- */

typedef struct {
  const char *method;
  const char *path;
  const char *body;      /* TOPIC stands for the topic, here and in the path */
  guint       status;
  const char *code;
} Step;

/* GET and POST with bodies, errors in between (404, 405, 409, 400): one
 * connection serves them all, in order. */
static const Step steps[] = {
  { "GET", "/health", NULL, 200, NULL },
  { "POST", "/topics", "{\"name\":\"TOPIC\"}", 201, NULL },
  { "GET", "/topics", NULL, 200, NULL },
  { "GET", "/no/such/path", NULL, 404, "NOT_FOUND" },
  { "POST", "/topics", "{\"name\":\"TOPIC\"}", 409, "TOPIC_EXISTS" },
  { "PUT", "/health", NULL, 405, "METHOD_NOT_ALLOWED" },
  { "POST", "/topics", "{\"name\":", 400, "BAD_REQUEST" },
  { "GET", "/stats", NULL, 200, NULL },
  { "DELETE", "/topics/TOPIC", NULL, 200, NULL },
  { "DELETE", "/topics/TOPIC", NULL, 404, "TOPIC_NOT_FOUND" },
};

static char *
fill_topic (const char *pattern,
            const char *topic)
{
  g_auto(GStrv) parts = g_strsplit (pattern, "TOPIC", -1);

  return g_strjoinv (topic, parts);
}

static char *
step_request (const Step *step,
              const char *topic)
{
  g_autofree char *path = fill_topic (step->path, topic);
  g_autofree char *body = step->body != NULL ? fill_topic (step->body, topic) : NULL;

  return request_text (step->method, path, body, NULL);
}

static void
test_keepalive_sequential (void)
{
  g_autoptr(PubsubTestServer) server = pubsub_test_server_start (NULL);
  g_autoptr(Client) client = client_connect (server);
  guint rounds = pubsub_test_scale_count (10, 3);

  for (guint round = 0; round < rounds; round++)
    {
      g_autofree char *topic = g_strdup_printf ("seq-%u", round);

      for (guint i = 0; i < G_N_ELEMENTS (steps); i++)
        {
          g_autofree char *request = step_request (&steps[i], topic);
          g_autoptr(Answer) answer = NULL;

          client_send_text (client, request);
          answer = client_read_answer (client, 5000);
          assert_answer (answer, steps[i].status, steps[i].code);
          g_assert_false (answer_closes (answer));
        }
    }
  /* Nothing more came, and the connection still works. */
  g_assert_cmpuint (client->input->len, ==, 0);
  {
    g_autofree char *request = request_text ("GET", "/health", NULL, NULL);
    g_autoptr(Answer) answer = NULL;

    client_send_text (client, request);
    answer = client_read_answer (client, 5000);
    assert_answer (answer, 200, NULL);
  }
  pubsub_test_server_stop (server);
}

static void
test_keepalive_pipelined (void)
{
  g_autoptr(PubsubTestServer) server = pubsub_test_server_start (NULL);
  g_autoptr(Client) client = client_connect (server);
  g_autoptr(GString) all = g_string_new (NULL);
  guint rounds = pubsub_test_scale_count (10, 3);

  /* Every request of every round in one write. */
  for (guint round = 0; round < rounds; round++)
    {
      g_autofree char *topic = g_strdup_printf ("pipe-%u", round);

      for (guint i = 0; i < G_N_ELEMENTS (steps); i++)
        {
          g_autofree char *request = step_request (&steps[i], topic);

          g_string_append (all, request);
        }
    }
  client_send (client, all->str, all->len);

  for (guint round = 0; round < rounds; round++)
    for (guint i = 0; i < G_N_ELEMENTS (steps); i++)
      {
        g_autoptr(Answer) answer = client_read_answer (client, 10000);

        assert_answer (answer, steps[i].status, steps[i].code);
        g_assert_false (answer_closes (answer));
      }
  client_assert_quiet (client, 200);
  pubsub_test_server_stop (server);
}

/* What Python's http.client and requests.Session do: one request, the whole
 * answer read, the next request on the same socket. It used to fail every
 * second time with "Connection reset by peer". */
static void
test_keepalive_reuse (void)
{
  g_autoptr(PubsubTestServer) server = pubsub_test_server_start (NULL);
  g_autoptr(Client) client = client_connect (server);
  guint n = pubsub_test_scale_count (200, 20);

  for (guint i = 0; i < n; i++)
    {
      g_autofree char *request = request_text ("GET", "/health", NULL,
                                               "Accept-Encoding: identity\r\n"
                                               "Connection: keep-alive\r\n");
      g_autoptr(Answer) answer = NULL;

      client_send_text (client, request);
      answer = client_read_answer (client, 5000);
      assert_answer (answer, 200, NULL);
      g_assert_false (answer_closes (answer));
    }
  g_assert_false (client->eof);
  pubsub_test_server_stop (server);
}

/* Connection: close and HTTP/1.0 are honoured: the answer, then the end. */
static void
test_keepalive_close_requested (void)
{
  g_autoptr(PubsubTestServer) server = pubsub_test_server_start (NULL);

  {
    g_autoptr(Client) client = client_connect (server);
    g_autofree char *request = request_text ("GET", "/health", NULL, "Connection: close\r\n");
    g_autoptr(Answer) answer = NULL;

    client_send_text (client, request);
    answer = client_read_answer (client, 5000);
    assert_answer (answer, 200, NULL);
    client_wait_closed (client, 5000);
    g_assert_cmpuint (client->input->len, ==, 0);
  }
  {
    g_autoptr(Client) client = client_connect (server);
    g_autoptr(Answer) answer = NULL;

    client_send_text (client, "GET /health HTTP/1.0\r\n\r\n");
    client_wait_closed (client, 5000);
    g_assert_cmpuint (client->input->len, >, 0);
    g_assert_true (g_str_has_prefix ((const char *) client->input->data, "HTTP/1.0 200 "));
  }
  pubsub_test_server_stop (server);
}

/* A client that sends its requests and then shuts its side gets every
 * answer, then the close. */
static void
test_keepalive_half_close (void)
{
  g_autoptr(PubsubTestServer) server = pubsub_test_server_start (NULL);
  g_autoptr(Client) client = client_connect (server);
  g_autofree char *one = request_text ("GET", "/health", NULL, NULL);
  g_autofree char *two = request_text ("GET", "/stats", NULL, NULL);
  g_autofree char *both = g_strconcat (one, two, NULL);

  client_send_text (client, both);
  g_assert_cmpint (shutdown (client->fd, SHUT_WR), ==, 0);
  {
    g_autoptr(Answer) first = client_read_answer (client, 5000);
    g_autoptr(Answer) second = client_read_answer (client, 5000);

    assert_answer (first, 200, NULL);
    assert_answer (second, 200, NULL);
    g_assert_true (json_object_has_member (json_node_get_object (second->json), "topics"));
  }
  client_wait_closed (client, 5000);
  pubsub_test_server_stop (server);
}

static guint
count_open_fds (PubsubTestServer *server)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/fd", (int) server->pid);
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  guint n = 0;

  g_assert_nonnull (dir);
  while (g_dir_read_name (dir) != NULL)
    n++;
  return n;
}

/* Clients that close their idle keep-alive connection: each is closed and
 * forgotten (libsoup 3.2.3 alone would keep every one, descriptor and all),
 * and its slot of max-connections is free at once: with a budget of one, a
 * client that closes and connects again straight away gets in every time
 * (its close comes before its new connection, and the server sees both
 * before it decides). */
static void
test_keepalive_client_closes_idle (void)
{
  g_autoptr(PubsubTestServer) server = pubsub_test_server_start ("--max-connections", "1", NULL);
  guint baseline = count_open_fds (server);
  guint n = pubsub_test_scale_count (50, 10);

  for (guint i = 0; i < n; i++)
    {
      g_autoptr(Client) client = client_connect (server);
      g_autofree char *request = request_text ("GET", "/health", NULL, NULL);
      g_autoptr(Answer) answer = NULL;

      client_send_text (client, request);
      answer = client_read_answer (client, 5000);
      assert_answer (answer, 200, NULL);
      /* Idle keep-alive, then gone. */
      g_assert_false (answer_closes (answer));
      g_assert_false (client->eof);
    }
  pubsub_test_wait_for (count_open_fds (server) <= baseline, 5000);
  pubsub_test_server_stop (server);
}

/* A WebSocket upgrade on a connection that already served a request. */
static void
test_keepalive_then_websocket (void)
{
  g_autoptr(PubsubTestServer) server = pubsub_test_server_start (NULL);
  g_autoptr(Client) client = client_connect (server);
  g_autofree char *health = request_text ("GET", "/health", NULL, NULL);
  const char *upgrade = "GET /ws HTTP/1.1\r\n"
                        "Host: 127.0.0.1\r\n"
                        "Upgrade: websocket\r\n"
                        "Connection: Upgrade\r\n"
                        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                        "Sec-WebSocket-Version: 13\r\n"
                        "\r\n";
  const char *ping = "{\"type\":\"ping\",\"request_id\":\"r1\"}";
  guint8 frame[2 + 4 + 64];
  gsize len = strlen (ping);
  gint64 deadline;
  g_autoptr(Answer) first = NULL;
  g_autoptr(Answer) switching = NULL;

  client_send_text (client, health);
  first = client_read_answer (client, 5000);
  assert_answer (first, 200, NULL);

  client_send_text (client, upgrade);
  switching = client_read_answer (client, 5000);
  g_assert_nonnull (switching);
  g_assert_cmpuint (switching->status, ==, 101);

  /* A masked text frame (mask 0: the payload is sent as is). */
  g_assert_cmpuint (len, <, 64);
  frame[0] = 0x81;
  frame[1] = 0x80 | (guint8) len;
  memset (frame + 2, 0, 4);
  memcpy (frame + 6, ping, len);
  client_send (client, frame, 6 + len);

  deadline = deadline_after (5000);
  for (;;)
    {
      client_poll (client);
      if (client->input->len >= 2 && client->input->len >= 2u + (client->input->data[1] & 0x7f))
        break;
      g_assert_false (client->eof);
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      pubsub_test_iterate ();
    }
  g_assert_cmpuint (client->input->data[0], ==, 0x81);
  g_assert_nonnull (g_strstr_len ((const char *) client->input->data + 2,
                                  client->input->data[1] & 0x7f, "\"type\":\"pong\""));
  pubsub_test_server_stop (server);
}

/* ---- 413: answered at once, then closed -------------------------------- */

/* A declared body over max-message-bytes: the answer comes before a byte of
 * the body is sent, with Connection: close, and the connection ends. The
 * requests answered before it on the same connection were answered in
 * order; a request pipelined after it is not answered. */
static void
test_too_large_declared (void)
{
  g_autoptr(PubsubTestServer) server = pubsub_test_server_start ("--max-message-bytes", "1024",
                                                                 NULL);
  g_autoptr(Client) client = client_connect (server);
  g_autofree char *health = request_text ("GET", "/health", NULL, NULL);
  g_autofree char *missing = request_text ("GET", "/missing", NULL, NULL);
  g_autoptr(GString) pipelined = g_string_new (NULL);
  g_autoptr(Answer) one = NULL;
  g_autoptr(Answer) two = NULL;
  g_autoptr(Answer) refused = NULL;

  g_string_append (pipelined, health);
  g_string_append (pipelined, missing);
  g_string_append (pipelined, "POST /topics HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                              "Content-Type: application/json\r\n"
                              "Content-Length: 1000000\r\n\r\n");
  g_string_append (pipelined, health);
  client_send (client, pipelined->str, pipelined->len);

  one = client_read_answer (client, 5000);
  assert_answer (one, 200, NULL);
  two = client_read_answer (client, 5000);
  assert_answer (two, 404, "NOT_FOUND");
  refused = client_read_answer (client, 5000);
  assert_answer (refused, 413, "PAYLOAD_TOO_LARGE");
  g_assert_true (answer_closes (refused));
  client_wait_closed (client, 10000);
  g_assert_cmpuint (client->input->len, ==, 0);

  /* At the limit is fine, on a connection of its own. */
  {
    g_autoptr(Client) other = client_connect (server);
    g_autoptr(GString) name = g_string_new ("{\"name\":\"");
    g_autofree char *request = NULL;
    g_autoptr(Answer) answer = NULL;

    while (name->len < 1024 - 2)
      g_string_append_c (name, 'a');
    g_string_append (name, "\"}");
    g_assert_cmpuint (name->len, ==, 1024);
    request = request_text ("POST", "/topics", name->str, NULL);
    client_send_text (other, request);
    answer = client_read_answer (other, 5000);
    /* Too long a name, but read and parsed: 400, not 413. */
    assert_answer (answer, 400, "BAD_REQUEST");
    g_assert_false (answer_closes (answer));
  }
  pubsub_test_server_stop (server);
}

/* A Content-Length that is not a number of bytes: 400 and the connection
 * closed, and nothing in the daemon's log (libsoup 3.2.3 itself logs a GLib
 * warning for a negative one: a line per request for any client). */
static void
test_bad_content_length (void)
{
  static const char *const values[] = { "-5", "99999999999999999999999", "+7", " " };
  g_autoptr(PubsubTestServer) server = pubsub_test_server_start (NULL);
  g_autofree char *log = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (values); i++)
    {
      g_autoptr(Client) client = client_connect (server);
      g_autofree char *request = g_strdup_printf ("POST /topics HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                                  "Content-Length: %s\r\n\r\n", values[i]);
      g_autoptr(Answer) answer = NULL;

      client_send_text (client, request);
      answer = client_read_answer (client, 5000);
      g_assert_cmpuint (answer->status, ==, 400);
      client_wait_closed (client, 10000);
    }
  pubsub_test_server_stop (server);
  log = pubsub_test_server_dup_own_log (server);
  g_assert_null (strstr (log, "WARNING"));
  g_assert_null (strstr (log, "CRITICAL"));
}

/* Chunked: the answer comes as soon as the limit is passed, while the
 * client has not finished its body. */
static void
test_too_large_chunked (void)
{
  g_autoptr(PubsubTestServer) server = pubsub_test_server_start ("--max-message-bytes", "1024",
                                                                 NULL);
  g_autoptr(Client) client = client_connect (server);
  g_autofree char *health = request_text ("GET", "/health", NULL, NULL);
  g_autoptr(Answer) first = NULL;
  g_autoptr(Answer) refused = NULL;
  char chunk[600];

  client_send_text (client, health);
  first = client_read_answer (client, 5000);
  assert_answer (first, 200, NULL);

  client_send_text (client, "POST /topics HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                            "Content-Type: application/json\r\n"
                            "Transfer-Encoding: chunked\r\n\r\n");
  memset (chunk, ' ', sizeof chunk);
  for (guint i = 0; i < 2; i++)
    {
      client_send_text (client, "258\r\n");
      client_send (client, chunk, sizeof chunk);
      client_send_text (client, "\r\n");
    }
  /* 1200 bytes sent, no last chunk: the answer must not wait for it. */
  refused = client_read_answer (client, 5000);
  assert_answer (refused, 413, "PAYLOAD_TOO_LARGE");
  g_assert_true (answer_closes (refused));
  client_wait_closed (client, 10000);
  pubsub_test_server_stop (server);
}

/* ---- time limits ------------------------------------------------------- */

/* A request head must be complete within header-timeout: a silent client is
 * closed without a word, a partial head gets 408, and trickling bytes does
 * not extend the time. */
static void
test_header_timeout (void)
{
  g_autoptr(PubsubTestServer) server = pubsub_test_server_start ("--header-timeout", "1",
                                                                 "--idle-timeout", "60",
                                                                 NULL);
  g_autoptr(Client) silent = client_connect (server);
  g_autoptr(Client) partial = client_connect (server);
  g_autoptr(Client) trickle = client_connect (server);
  const char *head = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaa\r\n";
  gint64 start = g_get_monotonic_time ();
  gint64 deadline = deadline_after (5000);
  gsize sent = 0;
  gint64 closed_at;
  g_autoptr(Answer) timed_out = NULL;

  client_send_text (partial, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n");

  /* One byte every 100 ms: the head is never finished. */
  while (!trickle->eof)
    {
      gint64 next = g_get_monotonic_time () + 100 * 1000;

      if (sent < strlen (head) && !client_try_send (trickle, head + sent, 1))
        break;
      sent++;
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      while (g_get_monotonic_time () < next && !trickle->eof)
        {
          client_poll (trickle);
          pubsub_test_iterate ();
        }
    }
  /* The deadline runs from the accept, a moment before @start at most. */
  closed_at = client_wait_closed (trickle, 5000);
  g_assert_cmpint (closed_at - start, >=, 1000 * 1000 - 100 * 1000);
  g_assert_true (g_str_has_prefix ((const char *) trickle->input->data, "HTTP/1.1 408 "));

  closed_at = client_wait_closed (silent, 5000);
  g_assert_cmpint (closed_at - start, >=, 1000 * 1000 - 100 * 1000);
  g_assert_cmpuint (silent->input->len, ==, 0);

  timed_out = client_read_answer (partial, 5000);
  assert_answer (timed_out, 408, "REQUEST_TIMEOUT");
  g_assert_true (answer_closes (timed_out));
  client_wait_closed (partial, 5000);
  pubsub_test_server_stop (server);
}

/* Between requests, idle-timeout applies, not header-timeout; a connection
 * in use is never cut. */
static void
test_idle_timeout (void)
{
  g_autoptr(PubsubTestServer) server = pubsub_test_server_start ("--header-timeout", "1",
                                                                 "--idle-timeout", "3",
                                                                 NULL);
  g_autoptr(Client) client = client_connect (server);
  g_autofree char *request = request_text ("GET", "/health", NULL, NULL);
  gint64 answered_at = 0;
  gint64 closed_at;

  /* Requests 400 ms apart for 2 s: longer than header-timeout in all. */
  for (guint i = 0; i < 6; i++)
    {
      g_autoptr(Answer) answer = NULL;
      gint64 next;

      client_send_text (client, request);
      answer = client_read_answer (client, 5000);
      assert_answer (answer, 200, NULL);
      answered_at = g_get_monotonic_time ();
      next = answered_at + 400 * 1000;
      while (g_get_monotonic_time () < next)
        {
          client_poll (client);
          g_assert_false (client->eof);
          pubsub_test_iterate ();
        }
    }
  closed_at = client_wait_closed (client, 10000);
  g_assert_cmpint (closed_at - answered_at, >=, 3000 * 1000 - 50 * 1000);
  g_assert_cmpuint (client->input->len, ==, 0);
  pubsub_test_server_stop (server);
}

/* A body that stops coming: 408 after idle-timeout. */
static void
test_body_stall (void)
{
  g_autoptr(PubsubTestServer) server = pubsub_test_server_start ("--idle-timeout", "1", NULL);
  g_autoptr(Client) client = client_connect (server);
  g_autoptr(Answer) answer = NULL;
  gint64 start = g_get_monotonic_time ();

  client_send_text (client, "POST /topics HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                            "Content-Type: application/json\r\n"
                            "Content-Length: 100\r\n\r\n{\"name\":");
  answer = client_read_answer (client, 5000);
  g_assert_cmpint (g_get_monotonic_time () - start, >=, 1000 * 1000 - 50 * 1000);
  assert_answer (answer, 408, "REQUEST_TIMEOUT");
  client_wait_closed (client, 10000);
  pubsub_test_server_stop (server);
}

/* ---- max-connections --------------------------------------------------- */

/* Over the budget, a new connection is answered 503 without being read, and
 * closed; those inside are untouched. */
static void
test_budget_plain_http (void)
{
  g_autoptr(PubsubTestServer) server = pubsub_test_server_start ("--max-connections", "3", NULL);
  g_autofree char *request = request_text ("GET", "/health", NULL, NULL);
  Client *inside[3];
  gint64 deadline;

  for (guint i = 0; i < G_N_ELEMENTS (inside); i++)
    {
      g_autoptr(Answer) answer = NULL;

      inside[i] = client_connect (server);
      client_send_text (inside[i], request);
      answer = client_read_answer (inside[i], 5000);
      assert_answer (answer, 200, NULL);
    }

  for (guint i = 0; i < 3; i++)
    {
      g_autoptr(Client) over = client_connect (server);
      g_autoptr(Answer) answer = client_read_answer (over, 5000);

      assert_answer (answer, 503, "TOO_MANY_CONNECTIONS");
      g_assert_true (answer_closes (answer));
      client_wait_closed (over, 10000);
    }

  for (guint i = 0; i < G_N_ELEMENTS (inside); i++)
    {
      g_autoptr(Answer) answer = NULL;

      client_send_text (inside[i], request);
      answer = client_read_answer (inside[i], 5000);
      assert_answer (answer, 200, NULL);
    }

  /* One leaves: the next one gets in, once the server has seen it go. */
  client_free (inside[0]);
  deadline = deadline_after (5000);
  for (;;)
    {
      g_autoptr(Client) next = client_connect (server);
      g_autoptr(Answer) answer = NULL;

      client_send_text (next, request);
      answer = client_read_answer (next, 5000);
      g_assert_nonnull (answer);
      if (answer->status == 200)
        {
          inside[0] = g_steal_pointer (&next);
          break;
        }
      assert_answer (answer, 503, "TOO_MANY_CONNECTIONS");
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
    }
  for (guint i = 0; i < G_N_ELEMENTS (inside); i++)
    client_free (inside[i]);
  pubsub_test_server_stop (server);
}

/* WebSocket and plain HTTP connections share the one budget. */
static void
test_budget_shared (void)
{
  g_autoptr(PubsubTestServer) server = pubsub_test_server_start ("--max-connections", "2", NULL);
  g_autoptr(PubsubTestRawWs) ws = NULL;
  g_autoptr(PubsubTestRawWs) refused_ws = NULL;
  g_autoptr(Client) http = client_connect (server);
  g_autofree char *request = request_text ("GET", "/health", NULL, NULL);
  g_autoptr(Answer) answer = NULL;
  guint status = 0;

  client_send_text (http, request);
  answer = client_read_answer (http, 5000);
  assert_answer (answer, 200, NULL);
  g_clear_pointer (&answer, answer_free);

  ws = pubsub_test_raw_ws_connect (server, "/ws", 0, &status);
  g_assert_nonnull (ws);

  /* Full: a WebSocket client and a REST client are both refused. */
  refused_ws = pubsub_test_raw_ws_connect (server, "/ws", 0, &status);
  g_assert_null (refused_ws);
  g_assert_cmpuint (status, ==, 503);
  {
    g_autoptr(Client) over = client_connect (server);

    client_send_text (over, request);
    answer = client_read_answer (over, 5000);
    assert_answer (answer, 503, "TOO_MANY_CONNECTIONS");
    g_clear_pointer (&answer, answer_free);
  }

  /* The one inside still works. */
  client_send_text (http, request);
  answer = client_read_answer (http, 5000);
  assert_answer (answer, 200, NULL);
  pubsub_test_server_stop (server);
}

/* ---- descriptors running out ------------------------------------------- */

/* The RLIMIT_NOFILE that leaves the daemon @free_wanted more descriptors:
 * one more than the highest number it may then open. */
static guint
limit_leaving_free (PubsubTestServer *server,
                    guint             free_wanted)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/fd", (int) server->pid);
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  gboolean used[1024] = { FALSE };
  const char *name;
  guint free_count = 0;

  g_assert_nonnull (dir);
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      guint64 fd = g_ascii_strtoull (name, NULL, 10);

      if (fd < G_N_ELEMENTS (used))
        used[fd] = TRUE;
    }
  for (guint fd = 0; fd < G_N_ELEMENTS (used); fd++)
    if (!used[fd] && ++free_count == free_wanted)
      return fd + 1;
  g_assert_not_reached ();
}

/* Lines of the daemon's own log (not valgrind's "==PID==" and "--PID--"
 * ones) that contain @needle, or all of them for "". */
static guint
count_log_lines (PubsubTestServer *server,
                 const char       *needle)
{
  g_auto(GStrv) lines = g_strsplit (server->log->str, "\n", -1);
  guint n = 0;

  for (guint i = 0; lines[i] != NULL; i++)
    if (lines[i][0] != '\0' && !g_str_has_prefix (lines[i], "==") &&
        !g_str_has_prefix (lines[i], "--") && strstr (lines[i], needle) != NULL)
      n++;
  return n;
}

/* With the descriptor limit reached, the clients over it are answered and
 * closed at once (not left hanging in the backlog), the log says so a
 * bounded number of times, those inside keep working, and accepting resumes
 * by itself once descriptors are free again. */
static void
test_out_of_descriptors (void)
{
  g_autoptr(PubsubTestServer) server = pubsub_test_server_start ("--header-timeout", "600",
                                                                 NULL);
  g_autoptr(GPtrArray) clients = g_ptr_array_new_with_free_func ((GDestroyNotify) client_free);
  g_autofree char *request = request_text ("GET", "/health", NULL, NULL);
  const guint room = 8;
  const guint n_clients = 40;
  struct rlimit limit;
  guint refused = 0;
  guint inside = 0;
  gint64 start;
  gint64 deadline;

  limit.rlim_cur = limit.rlim_max = limit_leaving_free (server, room);
  g_assert_cmpint (prlimit (server->pid, RLIMIT_NOFILE, &limit, NULL), ==, 0);

  start = g_get_monotonic_time ();
  for (guint i = 0; i < n_clients; i++)
    g_ptr_array_add (clients, client_connect (server));

  /* Each is closed (refused) or stays open, and the refused ones are closed
   * promptly: none hangs. */
  deadline = deadline_after (5000);
  for (;;)
    {
      refused = 0;
      for (guint i = 0; i < clients->len; i++)
        {
          Client *client = g_ptr_array_index (clients, i);

          client_poll (client);
          if (client->eof)
            {
              /* A best-effort 503, or just the close. */
              if (client->input->len > 0)
                g_assert_true (g_str_has_prefix ((const char *) client->input->data,
                                                 "HTTP/1.1 503 "));
              refused++;
            }
        }
      if (refused >= n_clients - room)
        break;
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      pubsub_test_iterate ();
    }
  g_assert_cmpuint (refused, <, n_clients);

  /* Those still open are being served. */
  for (guint i = 0; i < clients->len; i++)
    {
      Client *client = g_ptr_array_index (clients, i);
      g_autoptr(Answer) answer = NULL;

      if (client->eof)
        continue;
      client_send_text (client, request);
      answer = client_read_answer (client, 5000);
      assert_answer (answer, 200, NULL);
      inside++;
    }
  g_assert_cmpuint (inside, >, 0);
  g_assert_cmpuint (inside + refused, ==, n_clients);

  /* Free the descriptors: new clients are served again. */
  g_ptr_array_set_size (clients, 0);
  deadline = deadline_after (5000);
  for (;;)
    {
      g_autoptr(Client) client = client_connect (server);
      g_autoptr(Answer) answer = NULL;

      client_send_text (client, request);
      answer = client_read_answer (client, 5000);
      if (answer != NULL && answer->status == 200)
        break;
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
    }

  /* One warning a second at most (and one more for the last count). */
  g_test_message ("daemon log:\n%s", server->log->str);
  g_assert_cmpuint (count_log_lines (server, "cannot accept connections"), >=, 1);
  g_assert_cmpuint (count_log_lines (server, "cannot accept connections"), <=,
                    (g_get_monotonic_time () - start) / G_USEC_PER_SEC + 2);
  g_assert_cmpuint (count_log_lines (server, ""), <, 20);
  pubsub_test_server_stop (server);
}

/* ---- request heads ------------------------------------------------------ */

typedef struct {
  const char *name;
  guint       n_fields;      /* extra header fields */
  gsize       field_len;     /* the length of each value */
  gsize       target_len;    /* extra bytes of query in the target */
  guint       status;
  const char *code;
} HeadCase;

static const HeadCase head_cases[] = {
  { "fields-100", 98, 10, 0, 200, NULL },          /* + Host and Connection */
  { "fields-101", 99, 10, 0, 431, "REQUEST_HEADER_TOO_LARGE" },
  { "line-8k", 1, 8 * 1024 - 64, 0, 200, NULL },
  { "line-over-8k", 1, 8 * 1024 + 1, 0, 431, "REQUEST_HEADER_TOO_LARGE" },
  { "head-60k", 60, 1000, 0, 200, NULL },
  { "head-70k", 70, 1000, 0, 431, "REQUEST_HEADER_TOO_LARGE" },
  { "head-2m", 1, 2 * 1024 * 1024, 0, 431, "REQUEST_HEADER_TOO_LARGE" },
  { "target-8k", 0, 0, 8 * 1024 - 64, 200, NULL },
  { "target-over-8k", 0, 0, 8 * 1024 + 1, 414, "URI_TOO_LONG" },
};

static PubsubTestServer *shared_server;

/* One daemon for the rows of the table; stopped (exit status 0) in main(). */
static PubsubTestServer *
get_shared_server (void)
{
  if (shared_server == NULL)
    shared_server = pubsub_test_server_start (NULL);
  return shared_server;
}

static void
test_head_limits (gconstpointer data)
{
  const HeadCase *row = data;
  g_autoptr(Client) client = client_connect (get_shared_server ());
  g_autoptr(GString) request = g_string_new ("GET /health");
  g_autofree char *value = g_strnfill (row->field_len, 'v');
  g_autoptr(Answer) answer = NULL;

  if (row->target_len > 0)
    {
      g_string_append (request, "?pad=");
      for (gsize i = 0; i < row->target_len - strlen ("?pad="); i++)
        g_string_append_c (request, 'p');
    }
  g_string_append (request, " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n");
  for (guint i = 0; i < row->n_fields; i++)
    g_string_append_printf (request, "X-F%u: %s\r\n", i, value);
  g_string_append (request, "\r\n");

  /* The server may answer before it has read the whole head. */
  client_try_send (client, request->str, request->len);
  answer = client_read_answer (client, 10000);
  assert_answer (answer, row->status, row->code);
  if (row->status == 200)
    {
      g_autofree char *again = request_text ("GET", "/health", NULL, NULL);
      g_autoptr(Answer) second = NULL;

      g_assert_false (answer_closes (answer));
      client_send_text (client, again);
      second = client_read_answer (client, 5000);
      assert_answer (second, 200, NULL);
    }
  else
    {
      g_assert_true (answer_closes (answer));
      client_wait_closed (client, 10000);
    }
}

/* ---- shutdown ----------------------------------------------------------- */

/* SIGTERM closes idle keep-alive connections and ones that sent nothing: the
 * daemon does not wait for them. */
static void
test_shutdown_with_idle_clients (void)
{
  g_autoptr(PubsubTestServer) server = pubsub_test_server_start ("--shutdown-grace", "30", NULL);
  g_autoptr(Client) idle = client_connect (server);
  g_autoptr(Client) silent = client_connect (server);
  g_autofree char *request = request_text ("GET", "/health", NULL, NULL);
  g_autoptr(Answer) answer = NULL;

  client_send_text (idle, request);
  answer = client_read_answer (idle, 5000);
  assert_answer (answer, 200, NULL);

  pubsub_test_server_signal (server, SIGTERM);
  client_wait_closed (idle, 5000);
  client_wait_closed (silent, 5000);
  pubsub_test_server_wait_exit (server, 5000);
  pubsub_test_server_stop (server);
}

int
main (int    argc,
      char **argv)
{
  int status;

  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  pubsub_test_quiet_debug ();

  g_test_add_func ("/http/keepalive/sequential", test_keepalive_sequential);
  g_test_add_func ("/http/keepalive/pipelined", test_keepalive_pipelined);
  g_test_add_func ("/http/keepalive/reuse", test_keepalive_reuse);
  g_test_add_func ("/http/keepalive/close-requested", test_keepalive_close_requested);
  g_test_add_func ("/http/keepalive/half-close", test_keepalive_half_close);
  g_test_add_func ("/http/keepalive/client-closes-idle", test_keepalive_client_closes_idle);
  g_test_add_func ("/http/keepalive/then-websocket", test_keepalive_then_websocket);
  g_test_add_func ("/http/too-large/declared", test_too_large_declared);
  g_test_add_func ("/http/too-large/chunked", test_too_large_chunked);
  g_test_add_func ("/http/bad-content-length", test_bad_content_length);
  g_test_add_func ("/http/timeout/header", test_header_timeout);
  g_test_add_func ("/http/timeout/idle", test_idle_timeout);
  g_test_add_func ("/http/timeout/body-stall", test_body_stall);
  g_test_add_func ("/http/budget/plain-http", test_budget_plain_http);
  g_test_add_func ("/http/budget/shared", test_budget_shared);
  g_test_add_func ("/http/out-of-descriptors", test_out_of_descriptors);
  for (guint i = 0; i < G_N_ELEMENTS (head_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/http/head/%s", head_cases[i].name);

      g_test_add_data_func (path, &head_cases[i], test_head_limits);
    }
  g_test_add_func ("/http/shutdown/idle-clients", test_shutdown_with_idle_clients);

  status = g_test_run ();
  if (shared_server != NULL)
    {
      pubsub_test_server_stop (shared_server);
      pubsub_test_server_free (shared_server);
    }
  return status;
}
