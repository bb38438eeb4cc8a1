/* pubsub-http.c: the HTTP side: REST routes, the WebSocket upgrade,
 * heartbeats and graceful shutdown
 *
 * libsoup 3.2.3's own listener leaks a GSocket per connection and stops
 * accepting for good after one EMFILE, so connections are accepted by our own
 * PubsubListener (which also keeps the max-connections budget for every
 * connection) and served by PubsubHttpFront (keep-alive, time limits, head
 * limits), which hands them to soup_server_accept_iostream().
 *
 * Request bodies are bounded by max-message-bytes: they are never accumulated
 * by libsoup, only into our own capped buffer.
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include <string.h>

#include "pubsub-connection.h"
#include "pubsub-dashboard.h"
#include "pubsub-error.h"
#include "pubsub-http-front.h"
#include "pubsub-http.h"
#include "pubsub-json.h"
#include "pubsub-listener.h"
#include "pubsub-metrics.h"
#include "pubsub-protocol.h"
#include "pubsub-rest.h"

#define BODY_KEY "pubsub-body"
/* What the engine's later answer needs of its request. */
#define NAME_KEY "pubsub-name"
#define ID_KEY "pubsub-id"
#define SYNCED_KEY "pubsub-synced"

struct _PubsubHttpServer {
  GObject         parent_instance;

  PubsubBroker   *broker;           /* owned */
  PubsubIoLoop   *io;               /* owned: the WebSocket clients' reads and flushes */
  PubsubMetrics  *metrics;          /* owned */
  SoupServer     *soup;             /* owned */
  PubsubListener *listener;         /* owned, nullable until listening */
  PubsubHttpFront *front;          /* owned, nullable until listening */
  char           *listen;           /* owned: as configured */
  char           *address;          /* owned: as bound, HOST:PORT */
  char           *api_key;          /* owned, nullable */
  guint           queue_size;
  guint           history_size;
  guint           max_message_bytes;
  guint           max_connections;
  guint           header_timeout;
  guint           idle_timeout;
  guint           heartbeat_interval;
  guint           shutdown_grace;
  GHashTable     *connections;      /* owned set of owned PubsubConnection */
  GHashTable     *in_flight;        /* set of SoupServerMessage, weak */
  guint           heartbeat_id;
  guint           grace_id;
  gint64          refused_logged_at;  /* monotonic µs */
  guint           refused_unlogged;
  gboolean        shutting_down;
  gboolean        stopped;
};

G_DEFINE_FINAL_TYPE (PubsubHttpServer, pubsub_http_server, G_TYPE_OBJECT)

enum {
  SIGNAL_STOPPED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

/* A request body, capped at max-message-bytes + 1 byte. */
typedef struct {
  PubsubHttpServer *server;  /* not owned */
  GByteArray *data;
  gsize       limit;
  gboolean    too_large;
} RequestBody;

static void
request_body_free (RequestBody *body)
{
  g_byte_array_unref (body->data);
  g_free (body);
}

/* ---------------------------------------------------------------------- */
/* Responses                                                              */

static void
respond_json (SoupServerMessage *msg,
              guint              status,
              JsonNode          *node)
{
  gsize len;
  char *text = json_to_string (node, FALSE);

  len = strlen (text);
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_TAKE, text, len);
}

/* Every error response comes here: status, code and body shape all come
 * from the PUBSUB_ERROR table, as for WebSocket frames and D-Bus replies. */
static void
respond_gerror (SoupServerMessage *msg,
                const GError      *error)
{
  const PubsubErrorInfo *info = pubsub_error_lookup (error);
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonNode) node = NULL;

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
  respond_json (msg, info->http_status, node);
}

static void respond_new_error (SoupServerMessage *msg,
                               PubsubError        code,
                               const char        *format,
                               ...) G_GNUC_PRINTF (3, 4);

static void
respond_new_error (SoupServerMessage *msg,
                   PubsubError        code,
                   const char        *format,
                   ...)
{
  g_autoptr(GError) error = NULL;
  va_list args;

  va_start (args, format);
  error = g_error_new_valist (PUBSUB_ERROR, code, format, args);
  va_end (args);
  respond_gerror (msg, error);
}

static void
respond_method_not_allowed (SoupServerMessage *msg,
                            const char        *allow)
{
  soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Allow", allow);
  respond_new_error (msg, PUBSUB_ERROR_METHOD_NOT_ALLOWED,
                     "method %s is not allowed here; use %s",
                     soup_server_message_get_method (msg), allow);
}

static void
respond_payload_too_large (SoupServerMessage *msg)
{
  respond_new_error (msg, PUBSUB_ERROR_PAYLOAD_TOO_LARGE,
                     "request body is larger than max-message-bytes");
}

static void
respond_status (SoupServerMessage *msg,
                guint              status,
                const char        *label,
                const char        *topic)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonNode) node = NULL;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "status");
  json_builder_add_string_value (builder, label);
  json_builder_set_member_name (builder, "topic");
  json_builder_add_string_value (builder, topic);
  json_builder_end_object (builder);
  node = json_builder_get_root (builder);
  respond_json (msg, status, node);
}

/* ---------------------------------------------------------------------- */
/* Authentication                                                         */

/* Compares digests, so the time taken says nothing about the key. */
static gboolean
api_key_matches (const char *given,
                 const char *expected)
{
  g_autofree char *given_digest = NULL;
  g_autofree char *expected_digest = NULL;
  guint8 difference = 0;

  if (given == NULL)
    return FALSE;
  given_digest = g_compute_checksum_for_string (G_CHECKSUM_SHA256, given, -1);
  expected_digest = g_compute_checksum_for_string (G_CHECKSUM_SHA256, expected, -1);
  for (gsize i = 0; expected_digest[i] != '\0'; i++)
    difference |= (guint8) (given_digest[i] ^ expected_digest[i]);
  return difference == 0;
}

static gboolean
is_authorized (PubsubHttpServer  *self,
               SoupServerMessage *msg,
               GHashTable        *query,
               gboolean           allow_query)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  const char *given;

  if (self->api_key == NULL)
    return TRUE;
  given = soup_message_headers_get_one (headers, "X-API-Key");
  if (given == NULL && allow_query && query != NULL)
    given = g_hash_table_lookup (query, "api_key");
  return api_key_matches (given, self->api_key);
}

/* ---------------------------------------------------------------------- */
/* REST                                                                   */

static void
handle_list_topics (PubsubHttpServer  *self,
                    SoupServerMessage *msg)
{
  g_autoptr(GPtrArray) topics = pubsub_broker_list_topics (self->broker);
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonNode) node = NULL;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "topics");
  json_builder_begin_array (builder);
  for (guint i = 0; i < topics->len; i++)
    {
      PubsubTopic *topic = g_ptr_array_index (topics, i);

      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "name");
      json_builder_add_string_value (builder, pubsub_topic_get_name (topic));
      json_builder_set_member_name (builder, "subscribers");
      json_builder_add_int_value (builder, pubsub_broker_get_topic_subscribers (self->broker, topic));
      json_builder_end_object (builder);
    }
  json_builder_end_array (builder);
  json_builder_end_object (builder);
  node = json_builder_get_root (builder);
  respond_json (msg, SOUP_STATUS_OK, node);
}

static void respond_json_text (SoupServerMessage *msg, guint status, GString *json);

/* The engine's answers to REST calls: at once (memory) or later (cluster,
 * with the message paused meanwhile). */
static void
finish (SoupServerMessage *msg,
        gboolean           later)
{
  if (later)
    soup_server_message_unpause (msg);
}

static void
respond_topic_status (GObject                 *owner,
                      const PubsubEngineReply *reply,
                      guint                    status,
                      const char              *label,
                      gboolean                 later)
{
  SoupServerMessage *msg = SOUP_SERVER_MESSAGE (owner);

  if (reply->error != NULL)
    respond_gerror (msg, reply->error);
  else
    respond_status (msg, status, label, g_object_get_data (owner, NAME_KEY));
  finish (msg, later);
}

static void
on_topic_created (PubsubEngine            *engine,
                  const PubsubEngineReply *reply,
                  GObject                 *owner)
{
  respond_topic_status (owner, reply, SOUP_STATUS_CREATED, "created", engine != NULL);
}

static void
on_topic_deleted (PubsubEngine            *engine,
                  const PubsubEngineReply *reply,
                  GObject                 *owner)
{
  respond_topic_status (owner, reply, SOUP_STATUS_OK, "deleted", engine != NULL);
}

static void
on_message_published (PubsubEngine            *engine,
                      const PubsubEngineReply *reply,
                      GObject                 *owner)
{
  SoupServerMessage *msg = SOUP_SERVER_MESSAGE (owner);
  GString *json;

  if (reply->error != NULL)
    {
      respond_gerror (msg, reply->error);
      finish (msg, engine != NULL);
      return;
    }
  json = g_string_new ("{\"status\":\"published\",\"topic\":");
  pubsub_json_append_string (json, g_object_get_data (owner, NAME_KEY));
  g_string_append_printf (json, ",\"id\":\"%s\",\"seq\":%" G_GUINT64_FORMAT "%s}",
                          (const char *) g_object_get_data (owner, ID_KEY), reply->seq,
                          reply->duplicate ? ",\"duplicate\":true" : "");
  respond_json_text (msg, reply->duplicate ? SOUP_STATUS_OK : SOUP_STATUS_CREATED, json);
  finish (msg, engine != NULL);
}

static void
handle_create_topic (PubsubHttpServer  *self,
                     SoupServerMessage *msg)
{
  RequestBody *body = g_object_get_data (G_OBJECT (msg), BODY_KEY);
  g_auto(PubsubEngineReply) reply = { 0, };
  char *name;

  if (body->too_large)
    {
      respond_payload_too_large (msg);
      return;
    }
  name = pubsub_rest_parse_topic_body ((const char *) body->data->data, body->data->len,
                                       &reply.error);
  if (name == NULL)
    {
      respond_gerror (msg, reply.error);
      return;
    }
  g_object_set_data_full (G_OBJECT (msg), NAME_KEY, name, g_free);
  if (pubsub_broker_create_topic (self->broker, name, &reply, G_OBJECT (msg), on_topic_created))
    on_topic_created (NULL, &reply, G_OBJECT (msg));
  else
    soup_server_message_pause (msg);
}

/* The 404 of a name from a path: no valid topic has an invalid name, and
 * its text may not even be UTF-8. Returns: FALSE if it was answered */
static gboolean
check_path_name (SoupServerMessage *msg,
                 const char        *name)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *shown = NULL;

  if (pubsub_topic_name_is_valid (name, strlen (name)))
    return TRUE;
  shown = g_utf8_make_valid (name, -1);
  pubsub_set_topic_not_found_error (&error, shown);
  respond_gerror (msg, error);
  return FALSE;
}

static void
handle_delete_topic (PubsubHttpServer  *self,
                     SoupServerMessage *msg,
                     const char        *name)
{
  g_auto(PubsubEngineReply) reply = { 0, };

  if (!check_path_name (msg, name))
    return;
  g_object_set_data_full (G_OBJECT (msg), NAME_KEY, g_strdup (name), g_free);
  if (pubsub_broker_delete_topic (self->broker, name, &reply, G_OBJECT (msg), on_topic_deleted))
    on_topic_deleted (NULL, &reply, G_OBJECT (msg));
  else
    soup_server_message_pause (msg);
}

/* Takes @json (a complete JSON text) as the response body. */
static void
respond_json_text (SoupServerMessage *msg,
                   guint              status,
                   GString           *json)
{
  gsize len = json->len;

  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_TAKE,
                                    g_string_free (json, FALSE), len);
}

/* Returns: (transfer none) (nullable): the topic, or NULL once answered 404 */
static PubsubTopic *
find_topic (PubsubHttpServer  *self,
            SoupServerMessage *msg,
            const char        *name)
{
  g_autoptr(GError) error = NULL;
  PubsubTopic *topic;

  if (!check_path_name (msg, name))
    return NULL;
  topic = pubsub_broker_get_topic (self->broker, name, &error);
  if (topic == NULL)
    respond_gerror (msg, error);
  return topic;
}

/* GET /topics/{name} */
static void
handle_topic_info (PubsubHttpServer  *self,
                   SoupServerMessage *msg,
                   const char        *name)
{
  PubsubTopic *topic = find_topic (self, msg, name);
  GString *json;

  if (topic == NULL)
    return;
  json = g_string_new ("{\"name\":");
  pubsub_json_append_string (json, name);
  g_string_append_printf (json, ",\"epoch\":\"%s\",\"seq\":%" G_GUINT64_FORMAT
                          ",\"messages\":%" G_GUINT64_FORMAT ",\"stored\":%u,\"subscribers\":%u}",
                          pubsub_topic_get_epoch (topic), pubsub_topic_get_messages (topic),
                          pubsub_topic_get_messages (topic),
                          pubsub_topic_get_history_length (topic),
                          pubsub_broker_get_topic_subscribers (self->broker, topic));
  respond_json_text (msg, SOUP_STATUS_OK, json);
}

/* POST /topics/{name}/messages: what a WebSocket publish does, over HTTP. */
static void
handle_publish_message (PubsubHttpServer  *self,
                        SoupServerMessage *msg,
                        const char        *name)
{
  RequestBody *body = g_object_get_data (G_OBJECT (msg), BODY_KEY);
  g_auto(PubsubEngineReply) reply = { 0, };
  PubsubRestPublish request;

  if (body->too_large)
    {
      respond_payload_too_large (msg);
      return;
    }
  if (!check_path_name (msg, name))
    return;
  if (!pubsub_rest_parse_publish_body ((const char *) body->data->data, body->data->len,
                                       &request, &reply.error))
    {
      respond_gerror (msg, reply.error);
      return;
    }
  if (request.id[0] == '\0')
    {
      g_autofree char *fresh_id = g_uuid_string_random ();

      g_strlcpy (request.id, fresh_id, sizeof request.id);
    }
  g_object_set_data_full (G_OBJECT (msg), NAME_KEY, g_strdup (name), g_free);
  g_object_set_data_full (G_OBJECT (msg), ID_KEY, g_strdup (request.id), g_free);
  if (pubsub_broker_publish (self->broker, name, request.id, request.payload,
                             request.payload_len, &reply, G_OBJECT (msg), on_message_published))
    on_message_published (NULL, &reply, G_OBJECT (msg));
  else
    soup_server_message_pause (msg);
}

static gboolean
bad_query (GError     **error,
           const char  *message)
{
  g_set_error_literal (error, PUBSUB_ERROR, PUBSUB_ERROR_BAD_REQUEST, message);
  return FALSE;
}

/* Reads ?since, ?last_n and ?limit into the first and last seq to return.
 * Returns: FALSE once answered 400 */
static gboolean
messages_window (PubsubHttpServer  *self,
                 SoupServerMessage *msg,
                 PubsubTopic       *topic,
                 GHashTable        *query,
                 guint64           *out_first,
                 guint64           *out_last,
                 gboolean          *out_truncated)
{
  const char *since = query != NULL ? g_hash_table_lookup (query, "since") : NULL;
  const char *last_n = query != NULL ? g_hash_table_lookup (query, "last_n") : NULL;
  const char *limit_text = query != NULL ? g_hash_table_lookup (query, "limit") : NULL;
  guint64 last = pubsub_topic_get_messages (topic);
  guint64 stored_first = pubsub_topic_get_first_seq (topic);
  guint64 limit = self->history_size;
  guint64 value = 0;
  g_autoptr(GError) error = NULL;
  gboolean ok = TRUE;

  if (since != NULL && last_n != NULL)
    ok = bad_query (&error, "give either 'since' or 'last_n', not both");
  if (ok && limit_text != NULL)
    ok = pubsub_rest_parse_count ("limit", limit_text, &limit, &error);
  if (ok && limit == 0)
    ok = bad_query (&error, "query parameter 'limit' must be at least 1");
  if (ok && (since != NULL || last_n != NULL))
    ok = pubsub_rest_parse_count (since != NULL ? "since" : "last_n",
                                  since != NULL ? since : last_n, &value, &error);
  if (!ok)
    {
      respond_gerror (msg, error);
      return FALSE;
    }

  *out_truncated = FALSE;
  if (since != NULL)
    {
      /* Messages after seq N; what the history has moved past is gone. */
      *out_first = value >= last ? last + 1 : MAX (value + 1, stored_first);
      *out_truncated = value + 1 < stored_first;
    }
  else if (last_n != NULL)
    *out_first = last + 1 - MIN (value, last + 1 - stored_first);
  else
    *out_first = stored_first;
  /* At most history-size, oldest first: page forward with since. */
  limit = MIN (limit, self->history_size);
  *out_last = *out_first + MIN (limit, last + 1 - *out_first) - 1;
  return TRUE;
}

/* GET /topics/{name}/messages */
static void
handle_list_messages (PubsubHttpServer  *self,
                      SoupServerMessage *msg,
                      const char        *name,
                      GHashTable        *query)
{
  PubsubTopic *topic = find_topic (self, msg, name);
  gboolean truncated;
  guint64 first;
  guint64 last;
  GString *json;

  if (topic == NULL || !messages_window (self, msg, topic, query, &first, &last, &truncated))
    return;
  json = g_string_sized_new (256);
  g_string_append (json, "{\"topic\":");
  pubsub_json_append_string (json, name);
  g_string_append_printf (json, ",\"epoch\":\"%s\",\"seq\":%" G_GUINT64_FORMAT
                          ",\"truncated\":%s,\"messages\":[",
                          pubsub_topic_get_epoch (topic), pubsub_topic_get_messages (topic),
                          truncated ? "true" : "false");
  for (guint64 seq = first; seq <= last; seq++)
    {
      if (seq != first)
        g_string_append_c (json, ',');
      pubsub_rest_append_message (json, pubsub_topic_get_message (topic, seq));
    }
  g_string_append (json, "]}");
  respond_json_text (msg, SOUP_STATUS_OK, json);
}

/* /topics/{name} and /topics/{name}/messages (@rest is what follows
 * "/topics/", already percent-decoded by libsoup; no topic name has a '/'). */
static void
route_topic (PubsubHttpServer  *self,
             SoupServerMessage *msg,
             const char        *rest,
             GHashTable        *query)
{
  const char *method = soup_server_message_get_method (msg);
  const char *slash = strchr (rest, '/');
  g_autofree char *name = NULL;

  if (slash == NULL)
    {
      if (method == SOUP_METHOD_GET)
        handle_topic_info (self, msg, rest);
      else if (method == SOUP_METHOD_DELETE)
        handle_delete_topic (self, msg, rest);
      else
        respond_method_not_allowed (msg, "GET, DELETE");
      return;
    }
  if (!g_str_equal (slash, "/messages"))
    {
      respond_new_error (msg, PUBSUB_ERROR_NOT_FOUND, "no such endpoint");
      return;
    }
  name = g_strndup (rest, (gsize) (slash - rest));
  if (method == SOUP_METHOD_GET)
    handle_list_messages (self, msg, name, query);
  else if (method == SOUP_METHOD_POST)
    handle_publish_message (self, msg, name);
  else
    respond_method_not_allowed (msg, "GET, POST");
}

static void
handle_health (PubsubHttpServer  *self,
               SoupServerMessage *msg)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonNode) node = NULL;
  PubsubEngine *engine = pubsub_broker_get_engine (self->broker);
  gboolean available = pubsub_broker_is_available (self->broker);

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "uptime_sec");
  json_builder_add_int_value (builder, (gint64) pubsub_broker_get_uptime (self->broker));
  json_builder_set_member_name (builder, "topics");
  json_builder_add_int_value (builder, pubsub_broker_get_topic_count (self->broker));
  json_builder_set_member_name (builder, "subscribers");
  json_builder_add_int_value (builder, pubsub_broker_get_subscriber_count (self->broker));
  if (*pubsub_engine_get_cluster (engine) != '\0')
    {
      /* SPEC §9: a node that cannot reach the cluster is not healthy. */
      json_builder_set_member_name (builder, "cluster");
      json_builder_add_string_value (builder, available ? "up" : "down");
      json_builder_set_member_name (builder, "node");
      json_builder_add_string_value (builder, pubsub_engine_get_node_id (engine));
      json_builder_set_member_name (builder, "nodes");
      json_builder_add_int_value (builder, pubsub_engine_get_nodes (engine));
    }
  json_builder_end_object (builder);
  node = json_builder_get_root (builder);
  respond_json (msg, available ? SOUP_STATUS_OK : SOUP_STATUS_SERVICE_UNAVAILABLE, node);
}

/* The key of "Authorization: Bearer KEY" (RFC 6750), or NULL. */
static const char *
bearer_token (SoupServerMessage *msg)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  const char *value = soup_message_headers_get_one (headers, "Authorization");

  if (value == NULL || g_ascii_strncasecmp (value, "Bearer ", strlen ("Bearer ")) != 0)
    return NULL;
  for (value += strlen ("Bearer "); *value == ' '; value++)
    ;
  return value;
}

/* Prometheus's scrape. With an api-key: X-API-Key, or the bearer token that
 * a scrape config's authorization: credentials sends. */
static void
handle_metrics (PubsubHttpServer  *self,
                SoupServerMessage *msg)
{
  gsize len;
  char *text;

  if (soup_server_message_get_method (msg) != SOUP_METHOD_GET)
    {
      respond_method_not_allowed (msg, "GET");
      return;
    }
  if (!is_authorized (self, msg, NULL, FALSE) &&
      !api_key_matches (bearer_token (msg), self->api_key))
    {
      pubsub_metrics_count_refusal (self->metrics, PUBSUB_REFUSAL_UNAUTHORIZED);
      soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                    "WWW-Authenticate", "Bearer realm=\"pubsubd\"");
      respond_new_error (msg, PUBSUB_ERROR_UNAUTHORIZED,
                         "missing or wrong API key: send X-API-Key or Authorization: Bearer");
      return;
    }
  text = pubsub_metrics_render (self->metrics, g_hash_table_size (self->connections), &len);
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_server_message_set_response (msg, "text/plain; version=0.0.4; charset=utf-8",
                                    SOUP_MEMORY_TAKE, text, len);
}

static void
handle_stats (PubsubHttpServer  *self,
              SoupServerMessage *msg)
{
  g_autoptr(GPtrArray) topics = pubsub_broker_list_topics (self->broker);
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonNode) node = NULL;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "topics");
  json_builder_begin_object (builder);
  for (guint i = 0; i < topics->len; i++)
    {
      PubsubTopic *topic = g_ptr_array_index (topics, i);

      json_builder_set_member_name (builder, pubsub_topic_get_name (topic));
      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "messages");
      json_builder_add_int_value (builder, (gint64) pubsub_topic_get_messages (topic));
      json_builder_set_member_name (builder, "subscribers");
      json_builder_add_int_value (builder, pubsub_broker_get_topic_subscribers (self->broker, topic));
      json_builder_end_object (builder);
    }
  json_builder_end_object (builder);
  json_builder_end_object (builder);
  node = json_builder_get_root (builder);
  respond_json (msg, SOUP_STATUS_OK, node);
}

/* ---------------------------------------------------------------------- */
/* WebSocket upgrade                                                      */

static void
on_connection_closed (PubsubConnection *connection,
                      PubsubHttpServer *self);
static void
on_message_gone (gpointer  data,
                 GObject  *where_the_object_was);

/* At most one warning a second, however many clients are refused. */
static void
refuse_warning (PubsubHttpServer *self,
                const GError     *error)
{
  gint64 now = g_get_monotonic_time ();

  self->refused_unlogged++;
  if (now - self->refused_logged_at < G_USEC_PER_SEC)
    return;
  g_warning ("cannot serve a WebSocket client (%u refused): %s",
             self->refused_unlogged, error->message);
  self->refused_logged_at = now;
  self->refused_unlogged = 0;
}

static void
on_upgrade_written (SoupServerMessage *msg,
                    PubsubHttpServer  *self)
{
  /* Stealing the connection usually frees @msg. */
  g_autoptr(SoupServerMessage) hold = g_object_ref (msg);
  g_autoptr(GIOStream) stream = NULL;
  g_autoptr(GError) error = NULL;
  PubsubConnection *connection;

  if (g_hash_table_remove (self->in_flight, msg))
    g_object_weak_unref (G_OBJECT (msg), on_message_gone, self);
  stream = pubsub_http_front_take_upgraded (self->front, msg);
  connection = pubsub_connection_new (self->io, self->broker, self->metrics, stream,
                                      self->queue_size, self->max_message_bytes, &error);
  if (connection == NULL)
    {
      /* This client only: the socket is closed, the others keep going. */
      pubsub_metrics_count_refusal (self->metrics, PUBSUB_REFUSAL_ERROR);
      refuse_warning (self, error);
      return;
    }
  g_signal_connect (connection, "closed", G_CALLBACK (on_connection_closed), self);
  g_hash_table_add (self->connections, connection);
  g_debug ("WebSocket client connected (%u open)", g_hash_table_size (self->connections));
}

static void
handle_websocket (PubsubHttpServer  *self,
                  SoupServerMessage *msg,
                  GHashTable        *query)
{
  g_autoptr(GError) error = NULL;

  if (soup_server_message_get_method (msg) != SOUP_METHOD_GET)
    {
      respond_method_not_allowed (msg, "GET");
      return;
    }
  if (!is_authorized (self, msg, query, TRUE))
    {
      pubsub_metrics_count_refusal (self->metrics, PUBSUB_REFUSAL_UNAUTHORIZED);
      respond_new_error (msg, PUBSUB_ERROR_UNAUTHORIZED,
                         "missing or wrong API key: send X-API-Key or ?api_key=");
      return;
    }
  /* No max-connections check here: this connection already holds a slot of
   * the budget, which counts every accepted connection (PubsubListener). */
  /* No extensions are offered back: permessage-deflate would compress every
   * event once per subscriber. */
  if (!soup_websocket_server_check_handshake (msg, NULL, NULL, NULL, &error))
    {
      /* libsoup's own domain would read as INTERNAL: the client sent it. */
      respond_new_error (msg, PUBSUB_ERROR_BAD_REQUEST, "%s", error->message);
      return;
    }
  soup_websocket_server_process_handshake (msg, NULL, NULL, NULL, NULL);
  g_signal_connect_object (msg, "wrote-informational", G_CALLBACK (on_upgrade_written),
                           self, 0);
}

/* ---------------------------------------------------------------------- */
/* Routing                                                                */

static void route (SoupServer *server, SoupServerMessage *msg, const char *path,
                   GHashTable *query, gpointer user_data);

typedef struct {
  PubsubHttpServer *server;   /* unowned: it outlives its requests' engine calls */
  char             *path;
  GHashTable       *query;    /* nullable */
} Resume;

static void
resume_free (gpointer data)
{
  Resume *resume = data;

  g_free (resume->path);
  g_clear_pointer (&resume->query, g_hash_table_unref);
  g_free (resume);
}

/* The replica caught up: the read is routed again, now synced. */
static void
on_synced (PubsubEngine            *engine,
           const PubsubEngineReply *reply,
           GObject                 *owner)
{
  SoupServerMessage *msg = SOUP_SERVER_MESSAGE (owner);
  Resume *resume = g_object_get_data (owner, SYNCED_KEY);

  soup_server_message_unpause (msg);
  if (reply->error != NULL)
    respond_gerror (msg, reply->error);
  else
    route (NULL, msg, resume->path, resume->query, resume->server);
}

/* A read of the replica waits for the engine's sync (a cluster node's
 * read-your-writes; the memory engine answers at once). Returns: whether
 * the read can go on now */
static gboolean
synced (PubsubHttpServer  *self,
        SoupServerMessage *msg,
        const char        *path,
        GHashTable        *query)
{
  g_auto(PubsubEngineReply) reply = { 0, };
  Resume *resume;

  if (g_object_get_data (G_OBJECT (msg), SYNCED_KEY) != NULL)
    return TRUE;
  if (pubsub_broker_sync (self->broker, &reply, G_OBJECT (msg), on_synced))
    {
      if (reply.error != NULL)
        respond_gerror (msg, reply.error);
      return reply.error == NULL;
    }
  resume = g_new0 (Resume, 1);
  resume->server = self;
  resume->path = g_strdup (path);
  resume->query = query != NULL ? g_hash_table_ref (query) : NULL;
  g_object_set_data_full (G_OBJECT (msg), SYNCED_KEY, resume, resume_free);
  soup_server_message_pause (msg);
  return FALSE;
}

static void
route (SoupServer        *server,
       SoupServerMessage *msg,
       const char        *path,
       GHashTable        *query,
       gpointer           user_data)
{
  PubsubHttpServer *self = user_data;
  const char *method = soup_server_message_get_method (msg);

  if (g_str_equal (path, "/ws"))
    {
      handle_websocket (self, msg, query);
      return;
    }

  if (g_str_equal (path, "/metrics"))
    {
      handle_metrics (self, msg);
      return;
    }

  if (g_str_equal (path, "/health"))
    {
      if (method == SOUP_METHOD_GET)
        handle_health (self, msg);
      else
        respond_method_not_allowed (msg, "GET");
      return;
    }

  /* Public like /health: the calls the page makes need the key. */
  if (pubsub_dashboard_handle (msg, path))
    return;

  if (!g_str_equal (path, "/topics") && !g_str_equal (path, "/stats") &&
      !g_str_has_prefix (path, "/topics/"))
    {
      respond_new_error (msg, PUBSUB_ERROR_NOT_FOUND, "no such endpoint");
      return;
    }
  if (!is_authorized (self, msg, NULL, FALSE))
    {
      pubsub_metrics_count_refusal (self->metrics, PUBSUB_REFUSAL_UNAUTHORIZED);
      respond_new_error (msg, PUBSUB_ERROR_UNAUTHORIZED,
                         "missing or wrong API key: send it in the X-API-Key header");
      return;
    }

  if (method == SOUP_METHOD_GET && !synced (self, msg, path, query))
    return;

  if (g_str_equal (path, "/topics"))
    {
      if (method == SOUP_METHOD_GET)
        handle_list_topics (self, msg);
      else if (method == SOUP_METHOD_POST)
        handle_create_topic (self, msg);
      else
        respond_method_not_allowed (msg, "GET, POST");
    }
  else if (g_str_equal (path, "/stats"))
    {
      if (method == SOUP_METHOD_GET)
        handle_stats (self, msg);
      else
        respond_method_not_allowed (msg, "GET");
    }
  else
    route_topic (self, msg, path + strlen ("/topics/"), query);
}

/* 413 now, and the connection closed: the rest of the body is not read. */
static void
refuse_payload_too_large (PubsubHttpServer  *self,
                          SoupServerMessage *msg)
{
  g_autoptr(GError) error = g_error_new_literal (PUBSUB_ERROR, PUBSUB_ERROR_PAYLOAD_TOO_LARGE,
                                                 "request body is larger than max-message-bytes");

  pubsub_http_front_refuse (self->front, msg, error);
}

static void
on_got_chunk (SoupServerMessage *msg,
              GBytes            *chunk,
              RequestBody       *body)
{
  gsize size = g_bytes_get_size (chunk);

  if (body->too_large)
    return;
  if (body->data->len + size > body->limit)
    {
      body->too_large = TRUE;
      g_byte_array_set_size (body->data, 0);
      /* Answered now; the rest of the body is never read. */
      refuse_payload_too_large (body->server, msg);
      return;
    }
  g_byte_array_append (body->data, g_bytes_get_data (chunk, NULL), (guint) size);
}

/* Runs after the headers, before the body: heads over the limits are
 * refused; the body is never accumulated by libsoup, only into our capped
 * buffer; a body over the limit, declared or found while reading, is refused
 * at once and the connection closed, the rest of the body unread. */
/* RFC 9110 §8.6: 1*DIGIT. Longer than 18 digits is larger than any body
 * this server takes, and than what a goffset holds. */
static gboolean
content_length_is_valid (const char *value)
{
  gsize len = 0;

  if (value == NULL)
    return TRUE;
  for (; g_ascii_isdigit (value[len]); len++)
    ;
  return len > 0 && len <= 18 && value[len] == '\0';
}

static void
on_request_headers (SoupServer        *server,
                    SoupServerMessage *msg,
                    const char        *path,
                    GHashTable        *query,
                    gpointer           user_data)
{
  PubsubHttpServer *self = user_data;
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  RequestBody *body;

  if (!pubsub_http_front_check_head (self->front, msg))
    return;
  if (!content_length_is_valid (soup_message_headers_get_one (headers, "Content-Length")))
    {
      /* Refused before libsoup reads a body of that length: given "-5" it
       * would log a GLib warning per request, for any client to trigger. */
      g_autoptr(GError) error = g_error_new_literal (PUBSUB_ERROR, PUBSUB_ERROR_BAD_REQUEST,
                                                     "Content-Length must be a decimal number of bytes");

      pubsub_http_front_refuse (self->front, msg, error);
      return;
    }
  body = g_new0 (RequestBody, 1);
  body->server = self;
  body->data = g_byte_array_new ();
  body->limit = self->max_message_bytes;
  g_object_set_data_full (G_OBJECT (msg), BODY_KEY, body, (GDestroyNotify) request_body_free);
  soup_message_body_set_accumulate (soup_server_message_get_request_body (msg), FALSE);
  g_signal_connect (msg, "got-chunk", G_CALLBACK (on_got_chunk), body);

  if (soup_message_headers_get_encoding (headers) == SOUP_ENCODING_CONTENT_LENGTH &&
      soup_message_headers_get_content_length (headers) > (goffset) self->max_message_bytes)
    {
      body->too_large = TRUE;
      refuse_payload_too_large (self, msg);
    }
}

/* ---------------------------------------------------------------------- */
/* In-flight requests, for graceful shutdown                              */

static void maybe_stopped (PubsubHttpServer *self);

static void
on_message_gone (gpointer  data,
                 GObject  *where_the_object_was)
{
  PubsubHttpServer *self = data;

  g_hash_table_remove (self->in_flight, where_the_object_was);
  maybe_stopped (self);
}

static void
on_message_finished (SoupServerMessage *msg,
                     PubsubHttpServer  *self)
{
  if (g_hash_table_remove (self->in_flight, msg))
    g_object_weak_unref (G_OBJECT (msg), on_message_gone, self);
  maybe_stopped (self);
}

static void
on_request_started (SoupServer        *server,
                    SoupServerMessage *msg,
                    PubsubHttpServer  *self)
{
  g_hash_table_add (self->in_flight, msg);
  g_object_weak_ref (G_OBJECT (msg), on_message_gone, self);
  g_signal_connect_object (msg, "finished", G_CALLBACK (on_message_finished), self, 0);
}

/* ---------------------------------------------------------------------- */
/* Accepting                                                              */

static void
on_connection_closed (PubsubConnection *connection,
                      PubsubHttpServer *self)
{
  g_signal_handlers_disconnect_by_data (connection, self);
  g_hash_table_remove (self->connections, connection);
  maybe_stopped (self);
}

/* Returns: (transfer full): the open connections, each referenced */
static GPtrArray *
snapshot_connections (PubsubHttpServer *self)
{
  GPtrArray *connections = g_ptr_array_new_full (g_hash_table_size (self->connections),
                                                 g_object_unref);
  GHashTableIter iter;
  gpointer connection;

  g_hash_table_iter_init (&iter, self->connections);
  while (g_hash_table_iter_next (&iter, &connection, NULL))
    g_ptr_array_add (connections, g_object_ref (connection));
  return connections;
}

static gboolean
on_heartbeat (gpointer user_data)
{
  PubsubHttpServer *self = user_data;
  g_autoptr(GBytes) info_ping = pubsub_frame_new_info ("ping", NULL);
  gint64 idle_limit = (gint64) self->heartbeat_interval * 2 * G_USEC_PER_SEC;
  /* A copy: a heartbeat may close a connection. */
  g_autoptr(GPtrArray) connections = snapshot_connections (self);

  for (guint i = 0; i < connections->len; i++)
    pubsub_connection_heartbeat (g_ptr_array_index (connections, i), info_ping, idle_limit);
  return G_SOURCE_CONTINUE;
}

static void
pubsub_http_server_dispose (GObject *object)
{
  PubsubHttpServer *self = PUBSUB_HTTP_SERVER (object);
  GHashTableIter iter;
  gpointer msg;

  g_clear_handle_id (&self->heartbeat_id, g_source_remove);
  g_clear_handle_id (&self->grace_id, g_source_remove);
  if (self->in_flight != NULL)
    {
      g_hash_table_iter_init (&iter, self->in_flight);
      while (g_hash_table_iter_next (&iter, &msg, NULL))
        g_object_weak_unref (msg, on_message_gone, self);
      g_clear_pointer (&self->in_flight, g_hash_table_unref);
    }
  if (self->connections != NULL)
    {
      g_hash_table_iter_init (&iter, self->connections);
      while (g_hash_table_iter_next (&iter, &msg, NULL))
        g_signal_handlers_disconnect_by_data (msg, self);
      g_clear_pointer (&self->connections, g_hash_table_unref);
    }
  if (self->soup != NULL)
    g_signal_handlers_disconnect_by_data (self->soup, self);
  /* The front first: it takes its connections back from libsoup. */
  if (self->front != NULL)
    g_object_run_dispose (G_OBJECT (self->front));
  g_clear_object (&self->front);
  g_clear_object (&self->listener);
  g_clear_object (&self->soup);
  g_clear_object (&self->broker);
  g_clear_object (&self->metrics);
  /* Connections still held elsewhere keep the loop object, not its sources. */
  if (self->io != NULL)
    g_object_run_dispose (G_OBJECT (self->io));
  g_clear_object (&self->io);

  G_OBJECT_CLASS (pubsub_http_server_parent_class)->dispose (object);
}

static void
pubsub_http_server_finalize (GObject *object)
{
  PubsubHttpServer *self = PUBSUB_HTTP_SERVER (object);

  g_free (self->listen);
  g_free (self->address);
  g_free (self->api_key);

  G_OBJECT_CLASS (pubsub_http_server_parent_class)->finalize (object);
}

static void
pubsub_http_server_class_init (PubsubHttpServerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = pubsub_http_server_dispose;
  object_class->finalize = pubsub_http_server_finalize;

  /**
   * PubsubHttpServer::stopped:
   *
   * After pubsub_http_server_shutdown(): every client is gone, or the grace
   * period is over.
   */
  signals[SIGNAL_STOPPED] =
    g_signal_new ("stopped", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
pubsub_http_server_init (PubsubHttpServer *self)
{
  self->connections = g_hash_table_new_full (NULL, NULL, g_object_unref, NULL);
  self->in_flight = g_hash_table_new (NULL, NULL);
}

/**
 * pubsub_http_server_new:
 * @broker: the broker to serve
 * @config: the settings (copied)
 */
PubsubHttpServer *
pubsub_http_server_new (PubsubBroker       *broker,
                        const PubsubConfig *config)
{
  PubsubHttpServer *self = g_object_new (PUBSUB_TYPE_HTTP_SERVER, NULL);

  self->broker = g_object_ref (broker);
  self->metrics = pubsub_metrics_new (broker);
  self->listen = g_strdup (config->listen);
  self->api_key = g_strdup (config->api_key);
  self->queue_size = config->queue_size;
  self->history_size = config->history_size;
  self->max_message_bytes = config->max_message_bytes;
  self->max_connections = config->max_connections;
  self->header_timeout = config->header_timeout;
  self->idle_timeout = config->idle_timeout;
  self->heartbeat_interval = config->heartbeat_interval;
  self->shutdown_grace = config->shutdown_grace;

  self->soup = soup_server_new ("server-header", "pubsubd/" PACKAGE_VERSION " ", NULL);
  soup_server_add_early_handler (self->soup, NULL, on_request_headers, self, NULL);
  soup_server_add_handler (self->soup, NULL, route, self, NULL);
  g_signal_connect (self->soup, "request-started", G_CALLBACK (on_request_started), self);
  return self;
}

/**
 * pubsub_http_server_listen:
 *
 * Binds the listen address and starts accepting; heartbeats start too.
 */
gboolean
pubsub_http_server_listen (PubsubHttpServer  *self,
                           GError           **error)
{
  g_autofree char *host = NULL;
  guint16 port;

  g_return_val_if_fail (PUBSUB_IS_HTTP_SERVER (self), FALSE);
  g_return_val_if_fail (self->listener == NULL, FALSE);

  self->io = pubsub_io_loop_new (error);
  if (self->io == NULL)
    return FALSE;
  if (!pubsub_config_split_listen (self->listen, &host, &port, error))
    return FALSE;
  self->listener = pubsub_listener_new (self->max_connections, self->metrics);
  self->front = pubsub_http_front_new (self->soup, self->listener, self->metrics,
                                       self->header_timeout, self->idle_timeout, error);
  if (self->front == NULL)
    return FALSE;
  if (!pubsub_listener_listen (self->listener, host, port, error))
    {
      g_prefix_error (error, "cannot listen on %s: ", self->listen);
      return FALSE;
    }
  self->address = g_strdup (pubsub_listener_get_address (self->listener));

  if (self->heartbeat_interval > 0)
    self->heartbeat_id = g_timeout_add_seconds (self->heartbeat_interval, on_heartbeat, self);
  return TRUE;
}

/**
 * pubsub_http_server_get_address:
 *
 * Returns: the bound address as HOST:PORT (the real port when 0 was asked)
 */
const char *
pubsub_http_server_get_address (PubsubHttpServer *self)
{
  g_return_val_if_fail (PUBSUB_IS_HTTP_SERVER (self), NULL);

  return self->address;
}

static void
emit_stopped (PubsubHttpServer *self)
{
  if (self->stopped)
    return;
  self->stopped = TRUE;
  g_clear_handle_id (&self->grace_id, g_source_remove);
  g_signal_emit (self, signals[SIGNAL_STOPPED], 0);
}

static void
maybe_stopped (PubsubHttpServer *self)
{
  if (self->shutting_down && g_hash_table_size (self->connections) == 0 &&
      g_hash_table_size (self->in_flight) == 0)
    emit_stopped (self);
}

static gboolean
on_grace_expired (gpointer user_data)
{
  PubsubHttpServer *self = user_data;

  self->grace_id = 0;
  g_message ("shutdown grace period over: closing %u remaining connections",
             g_hash_table_size (self->connections));
  emit_stopped (self);
  return G_SOURCE_REMOVE;
}

/**
 * pubsub_http_server_shutdown:
 *
 * Stops accepting, lets requests in flight finish, flushes every WebSocket
 * client and closes it with 1001. Emits "stopped" when all are gone or after
 * shutdown-grace seconds, whichever comes first.
 */
void
pubsub_http_server_shutdown (PubsubHttpServer *self)
{
  g_autoptr(GPtrArray) connections = NULL;

  g_return_if_fail (PUBSUB_IS_HTTP_SERVER (self));

  if (self->shutting_down)
    return;
  self->shutting_down = TRUE;
  g_clear_handle_id (&self->heartbeat_id, g_source_remove);
  if (self->listener != NULL)
    pubsub_listener_stop (self->listener);
  if (self->front != NULL)
    pubsub_http_front_shutdown (self->front);

  connections = snapshot_connections (self);
  for (guint i = 0; i < connections->len; i++)
    pubsub_connection_shutdown (g_ptr_array_index (connections, i));

  self->grace_id = g_timeout_add_seconds (self->shutdown_grace, on_grace_expired, self);
  maybe_stopped (self);
}
