/* bench-http.c: the WebSocket URL and POST /topics of pubsub-bench
 *
 * Both run before the measurement, once per run or per topic, so they use
 * plain blocking sockets and getaddrinfo ().
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "bench-http.h"
#include "bench-options.h"
#include "bench-util.h"

/* "X-API-Key: KEY\r\n", or "" without --api-key. */
static gchar *
api_key_header (void)
{
  if (!bench_options.api_key)
    return g_strdup ("");
  return g_strdup_printf ("X-API-Key: %s\r\n", bench_options.api_key);
}

/* Splits HOST:PORT, [HOST]:PORT or HOST (port 80) of the WebSocket URL. */
static void
split_ws_hostport (const char  *url,
                   const char  *hostport,
                   gchar      **host,
                   gchar      **port)
{
  const char *colon = strrchr (hostport, ':');

  if (hostport[0] == '[')
    {
      const char *bracket = strchr (hostport, ']');

      if (!bracket)
        bench_die ("bad URL %s", url);
      *host = g_strndup (hostport + 1, (gsize) (bracket - hostport - 1));
      *port = g_strdup (bracket[1] == ':' ? bracket + 2 : "80");
    }
  else if (colon)
    {
      *host = g_strndup (hostport, (gsize) (colon - hostport));
      *port = g_strdup (colon + 1);
    }
  else
    {
      *host = g_strdup (hostport);
      *port = g_strdup ("80");
    }
}

static void
resolve_ws_address (BenchWsTarget *target,
                    const char    *host,
                    const char    *port)
{
  struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
  int rc = getaddrinfo (host, port, &hints, &res);

  if (rc != 0)
    bench_die ("cannot resolve %s: %s", host, gai_strerror (rc));
  memcpy (&target->addr, res->ai_addr, res->ai_addrlen);
  target->addrlen = res->ai_addrlen;
  freeaddrinfo (res);
}

void
bench_ws_target_parse (BenchWsTarget *target,
                       const char    *url)
{
  const char *rest = url, *slash, *path;
  g_autofree gchar *host = NULL, *port = NULL, *key_header = NULL;

  if (g_str_has_prefix (rest, "ws://"))
    rest += 5;
  else if (g_str_has_prefix (rest, "wss://"))
    bench_die ("wss:// is not supported (the benchmark talks plain WebSocket over loopback)");
  else
    bench_die ("%s: a WebSocket URL must start with ws://", url);
  target->url = g_strdup (url);
  slash = strchr (rest, '/');
  target->hostport = slash ? g_strndup (rest, (gsize) (slash - rest)) : g_strdup (rest);
  path = slash ? slash : bench_options.nats ? "/" : "/ws";
  split_ws_hostport (url, target->hostport, &host, &port);
  resolve_ws_address (target, host, port);
  key_header = api_key_header ();
  target->request_head = g_strdup_printf ("GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                                          "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                                          "User-Agent: pubsub-bench\r\n%sSec-WebSocket-Key: ",
                                          path, target->hostport, key_header);
}

void
bench_ws_target_clear (BenchWsTarget *target)
{
  g_clear_pointer (&target->url, g_free);
  g_clear_pointer (&target->hostport, g_free);
  g_clear_pointer (&target->request_head, g_free);
}

/* --http split into what a request needs. */
typedef struct {
  const char *http;       /* not owned: the whole base, for messages */
  gchar      *hostport;   /* owned: for the Host header */
  gchar      *host;       /* owned: without brackets, to resolve */
  const char *port;       /* into hostport */
  const char *base;       /* into http: the path prefix */
} HttpBase;

static void
http_base_parse (HttpBase   *base,
                 const char *http)
{
  const char *rest = http, *slash;
  char *colon;

  base->http = http;
  if (!g_str_has_prefix (rest, "http://"))
    bench_die ("%s: a REST base must start with http://", http);
  rest += 7;
  slash = strchr (rest, '/');
  base->hostport = slash ? g_strndup (rest, (gsize) (slash - rest)) : g_strdup (rest);
  base->base = slash ? slash : "";
  colon = strrchr (base->hostport, ':');
  base->host = colon ? g_strndup (base->hostport, (gsize) (colon - base->hostport))
                     : g_strdup (base->hostport);
  base->port = colon ? colon + 1 : "80";
  if (base->host[0] == '[')
    {
      gchar *unbracketed = g_strndup (base->host + 1, strlen (base->host) - 2);

      g_free (base->host);
      base->host = unbracketed;
    }
}

static void
http_base_clear (HttpBase *base)
{
  g_clear_pointer (&base->hostport, g_free);
  g_clear_pointer (&base->host, g_free);
}

/* A blocking socket connected to the REST server, with 10 s timeouts. */
static int
http_connect (const HttpBase *base)
{
  struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
  struct timeval tv = { .tv_sec = 10 };
  int rc, fd;

  rc = getaddrinfo (base->host, base->port, &hints, &res);
  if (rc != 0)
    bench_die ("cannot resolve %s: %s", base->host, gai_strerror (rc));
  fd = socket (res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (connect (fd, res->ai_addr, res->ai_addrlen) < 0)
    bench_die ("POST %s/topics: connect: %s", base->http, g_strerror (errno));
  freeaddrinfo (res);
  return fd;
}

static void
http_send_all (const HttpBase *base,
               int             fd,
               const char     *data,
               gsize           len)
{
  gsize off = 0;

  while (off < len)
    {
      ssize_t w = send (fd, data + off, len - off, MSG_NOSIGNAL);

      if (w < 0)
        bench_die ("POST %s/topics: %s", base->http, g_strerror (errno));
      off += (gsize) w;
    }
}

/* TRUE once the headers and the body they announce are all in. */
static gboolean
http_response_complete (const char *resp,
                        gsize       got)
{
  const char *head_end = strstr (resp, "\r\n\r\n");
  const char *length;

  if (!head_end)
    return FALSE;
  length = strcasestr (resp, "\r\nContent-Length:");
  return length && length < head_end &&
         got >= (gsize) (head_end + 4 - resp) + strtoul (length + 17, NULL, 10);
}

/* Reads the response into resp (NUL-terminated, at most size - 1 bytes). */
static void
http_receive (const HttpBase *base,
              int             fd,
              char           *resp,
              gsize           size)
{
  gsize got = 0;

  for (;;)
    {
      ssize_t r = recv (fd, resp + got, size - 1 - got, 0);

      if (r < 0)
        bench_die ("POST %s/topics: %s", base->http, g_strerror (errno));
      if (r == 0)
        break;
      got += (gsize) r;
      resp[got] = 0;
      if (http_response_complete (resp, got) || got >= size - 1)
        break;
    }
  resp[got] = 0;
}

void
bench_http_create_topic (const char *http,
                         const char *name)
{
  HttpBase base = { 0 };
  g_autofree gchar *body = NULL, *req = NULL, *key_header = NULL;
  char resp[4096];
  int fd, status = 0;

  http_base_parse (&base, http);
  fd = http_connect (&base);
  body = g_strdup_printf ("{\"name\":\"%s\"}", name);
  key_header = api_key_header ();
  req = g_strdup_printf ("POST %s/topics HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                         "Content-Length: %zu\r\nConnection: close\r\n%s\r\n%s",
                         base.base, base.hostport, strlen (body), key_header, body);
  http_send_all (&base, fd, req, strlen (req));
  http_receive (&base, fd, resp, sizeof resp);
  close (fd);
  if (sscanf (resp, "HTTP/1.%*d %d", &status) != 1 || (status != 201 && status != 409))
    {
      const char *head_end = strstr (resp, "\r\n\r\n");

      bench_die ("POST %s/topics {\"name\":\"%s\"} answered %d%s%s", http, name,
                 status, head_end ? ": " : "", head_end ? head_end + 4 : "");
    }
  bench_note ("topic %s on %s: HTTP %d", name, http, status);
  http_base_clear (&base);
}
