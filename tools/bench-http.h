/* bench-http.h: where pubsub-bench connects: the WebSocket URL resolved to
 * an address and an upgrade request, and the one REST call it makes
 * (POST /topics)
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <sys/socket.h>

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
  struct sockaddr_storage addr;
  socklen_t               addrlen;
  gchar                  *url;            /* owned: ws://HOST[:PORT][/PATH] */
  gchar                  *hostport;       /* owned: as written in the URL */
  gchar                  *request_head;   /* owned: the upgrade request up to
                                           * the value of Sec-WebSocket-Key */
} BenchWsTarget;

/* From url (ws://HOST[:PORT][/PATH]); dies on a bad or unresolvable URL. */
void bench_ws_target_parse (BenchWsTarget *target,
                            const char    *url);
void bench_ws_target_clear (BenchWsTarget *target);

/* POST {"name": NAME} to http + /topics (http: a REST base such as
 * bench_options.http); 201 and 409 are both fine, anything else is fatal. */
void bench_http_create_topic (const char *http,
                              const char *name);

G_END_DECLS
