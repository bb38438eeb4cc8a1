/* test-dashboard-http.c: how the real pubsubd serves its dashboard (SPEC §10):
 * the page at GET / and its files under /dashboard/, their content types and
 * headers, 404, 405, HEAD, revalidation, and that the page needs no API key
 *
 * What the page does in a browser is tests/dashboard/ (suite "browser").
 *
 * SPDX-License-Identifier: MIT
 */
#include <string.h>

#include "pubsub-test-util.h"

#define API_KEY "dash-Key_7"

/* ---- helpers ------------------------------------------------------------ */

typedef struct {
  guint               status;
  SoupMessageHeaders *headers;
  GBytes             *body;
} Reply;

static void
reply_free (Reply *reply)
{
  g_clear_pointer (&reply->headers, soup_message_headers_unref);
  g_clear_pointer (&reply->body, g_bytes_unref);
  g_free (reply);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Reply, reply_free)

typedef struct {
  gboolean  done;
  GBytes   *body;
  GError   *error;
} Sent;

static void
on_sent (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  Sent *sent = user_data;

  sent->body = soup_session_send_and_read_finish (SOUP_SESSION (source), result, &sent->error);
  sent->done = TRUE;
}

static SoupSession *session;

static SoupSession *
get_session (void)
{
  if (session == NULL)
    session = soup_session_new_with_options ("timeout", 60, NULL);
  return session;
}

/* One request with our own session: pubsub_test_request() insists on JSON,
 * and pages are not. @header and @value may be NULL. */
static Reply *
request (PubsubTestServer *server,
         const char       *method,
         const char       *path,
         const char       *header,
         const char       *value)
{
  g_autofree char *url = g_strconcat (server->http_base, path, NULL);
  g_autoptr(SoupMessage) msg = soup_message_new (method, url);
  Sent sent = { FALSE, };
  Reply *reply;

  g_assert_nonnull (msg);
  if (header != NULL)
    soup_message_headers_append (soup_message_get_request_headers (msg), header, value);
  soup_session_send_and_read_async (get_session (), msg, G_PRIORITY_DEFAULT, NULL,
                                    on_sent, &sent);
  pubsub_test_wait_flag (&sent.done, 20000, "an HTTP response");
  g_assert_no_error (sent.error);

  reply = g_new0 (Reply, 1);
  reply->status = soup_message_get_status (msg);
  reply->headers = soup_message_headers_ref (soup_message_get_response_headers (msg));
  reply->body = sent.body;
  return reply;
}

static char *
reply_text (Reply *reply)
{
  gsize len;
  const char *data = g_bytes_get_data (reply->body, &len);

  return g_strndup (data, len);
}

/* Errors have the shape of every other error: {"error":{"code","message"}}. */
static void
assert_json_error (Reply      *reply,
                   guint       status,
                   const char *code)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *text = reply_text (reply);
  JsonObject *inner;

  g_assert_cmpuint (reply->status, ==, status);
  g_assert_cmpstr (soup_message_headers_get_content_type (reply->headers, NULL), ==,
                   "application/json");
  json_parser_load_from_data (parser, text, -1, &error);
  g_assert_no_error (error);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)));
  inner = json_object_get_object_member (json_node_get_object (json_parser_get_root (parser)),
                                         "error");
  g_assert_nonnull (inner);
  g_assert_cmpstr (json_object_get_string_member (inner, "code"), ==, code);
  g_assert_cmpstr (json_object_get_string_member (inner, "message"), !=, "");
}

/* What every file of the dashboard is served with. */
static void
assert_page_headers (Reply      *reply,
                     const char *content_type)
{
  const char *csp = soup_message_headers_get_one (reply->headers, "Content-Security-Policy");

  g_assert_cmpstr (soup_message_headers_get_one (reply->headers, "Content-Type"), ==,
                   content_type);
  g_assert_cmpstr (soup_message_headers_get_one (reply->headers, "Cache-Control"), ==,
                   "no-cache");
  g_assert_cmpstr (soup_message_headers_get_one (reply->headers, "X-Content-Type-Options"), ==,
                   "nosniff");
  g_assert_nonnull (soup_message_headers_get_one (reply->headers, "ETag"));
  /* Only our own files; the WebSocket goes back to where the page came from;
   * no inline script. */
  g_assert_nonnull (csp);
  g_assert_nonnull (strstr (csp, "default-src 'none'"));
  g_assert_nonnull (strstr (csp, "script-src 'self';"));
  g_assert_nonnull (strstr (csp, "connect-src 'self' ws: wss:"));
  g_assert_null (strstr (csp, "unsafe"));
  g_assert_null (strstr (csp, "http"));
}

static const char *
expected_content_type (const char *path)
{
  if (g_str_has_suffix (path, ".js"))
    return "text/javascript; charset=utf-8";
  if (g_str_has_suffix (path, ".css"))
    return "text/css; charset=utf-8";
  if (g_str_has_suffix (path, ".svg"))
    return "image/svg+xml";
  if (g_str_has_suffix (path, ".html") || g_str_equal (path, "/"))
    return "text/html; charset=utf-8";
  g_assert_not_reached ();
}

/* The values of every src="…" and href="…" in @html. */
static GPtrArray *
referenced_urls (const char *html)
{
  GPtrArray *urls = g_ptr_array_new_with_free_func (g_free);
  const char *attributes[] = { " src=\"", " href=\"" };

  for (gsize i = 0; i < G_N_ELEMENTS (attributes); i++)
    for (const char *at = strstr (html, attributes[i]); at != NULL;
         at = strstr (at + 1, attributes[i]))
      {
        const char *start = at + strlen (attributes[i]);
        const char *end = strchr (start, '"');

        g_assert_nonnull (end);
        g_ptr_array_add (urls, g_strndup (start, (gsize) (end - start)));
      }
  return urls;
}

/* ---- the page and its files -------------------------------------------- */

static void
test_page (void)
{
  g_autoptr(PubsubTestServer) server = pubsub_test_server_start (NULL);
  g_autoptr(Reply) page = request (server, "GET", "/", NULL, NULL);
  g_autofree char *html = reply_text (page);
  g_autoptr(GPtrArray) urls = referenced_urls (html);
  gboolean has_script = FALSE;
  gboolean has_style = FALSE;

  g_assert_cmpuint (page->status, ==, 200);
  assert_page_headers (page, "text/html; charset=utf-8");
  g_assert_true (g_ascii_strncasecmp (html, "<!doctype html>", strlen ("<!doctype html>")) == 0);
  g_assert_nonnull (strstr (html, "<meta name=\"viewport\""));
  /* Inline scripts would be refused by the page's own policy. */
  g_assert_null (strstr (html, "<script>"));
  g_assert_null (strstr (html, " style=\""));

  /* Self-contained: everything it loads is one of our files, and is there. */
  g_assert_cmpuint (urls->len, >=, 4);
  for (guint i = 0; i < urls->len; i++)
    {
      const char *url = g_ptr_array_index (urls, i);
      g_autoptr(Reply) file = NULL;

      g_test_message ("the page loads %s", url);
      g_assert_true (g_str_has_prefix (url, "/dashboard/"));
      file = request (server, "GET", url, NULL, NULL);
      g_assert_cmpuint (file->status, ==, 200);
      g_assert_cmpuint (g_bytes_get_size (file->body), >, 0);
      assert_page_headers (file, expected_content_type (url));
      has_script |= g_str_has_suffix (url, "/app.js");
      has_style |= g_str_has_suffix (url, "/style.css");
    }
  g_assert_true (has_script);
  g_assert_true (has_style);

  pubsub_test_server_stop (server);
}

/* uPlot goes out with its licence. */
static void
test_vendored_licence (void)
{
  g_autoptr(PubsubTestServer) server = pubsub_test_server_start (NULL);
  g_autoptr(Reply) uplot = request (server, "GET", "/dashboard/uPlot.iife.min.js", NULL, NULL);
  g_autofree char *text = reply_text (uplot);

  g_assert_cmpuint (uplot->status, ==, 200);
  g_assert_true (g_str_has_prefix (text, "/*!"));
  g_assert_nonnull (strstr (text, "MIT License"));
  g_assert_nonnull (strstr (text, "Leon Sorokin"));

  pubsub_test_server_stop (server);
}

static void
test_head (void)
{
  g_autoptr(PubsubTestServer) server = pubsub_test_server_start (NULL);
  g_autoptr(Reply) get = request (server, "GET", "/", NULL, NULL);
  g_autoptr(Reply) head = request (server, "HEAD", "/", NULL, NULL);

  g_assert_cmpuint (head->status, ==, 200);
  assert_page_headers (head, "text/html; charset=utf-8");
  g_assert_cmpuint (g_bytes_get_size (head->body), ==, 0);
  g_assert_cmpint (soup_message_headers_get_content_length (head->headers), ==,
                   (goffset) g_bytes_get_size (get->body));

  pubsub_test_server_stop (server);
}

/* no-cache means "ask first": the ETag makes asking cheap. */
static void
test_revalidation (void)
{
  g_autoptr(PubsubTestServer) server = pubsub_test_server_start (NULL);
  g_autoptr(Reply) first = request (server, "GET", "/dashboard/app.js", NULL, NULL);
  const char *etag = soup_message_headers_get_one (first->headers, "ETag");
  g_autoptr(Reply) same = NULL;
  g_autoptr(Reply) other = NULL;
  g_autoptr(Reply) page = NULL;

  g_assert_cmpuint (first->status, ==, 200);
  g_assert_nonnull (etag);
  g_assert_true (g_str_has_prefix (etag, "\"") && g_str_has_suffix (etag, "\""));

  same = request (server, "GET", "/dashboard/app.js", "If-None-Match", etag);
  g_assert_cmpuint (same->status, ==, 304);
  g_assert_cmpuint (g_bytes_get_size (same->body), ==, 0);
  g_assert_cmpstr (soup_message_headers_get_one (same->headers, "ETag"), ==, etag);
  g_assert_cmpstr (soup_message_headers_get_one (same->headers, "Cache-Control"), ==,
                   "no-cache");

  other = request (server, "GET", "/dashboard/app.js", "If-None-Match", "\"0123456789\"");
  g_assert_cmpuint (other->status, ==, 200);
  g_assert_cmpuint (g_bytes_get_size (other->body), ==, g_bytes_get_size (first->body));

  /* Another file has another tag. */
  page = request (server, "GET", "/", "If-None-Match", etag);
  g_assert_cmpuint (page->status, ==, 200);
  g_assert_cmpstr (soup_message_headers_get_one (page->headers, "ETag"), !=, etag);

  pubsub_test_server_stop (server);
}

/* ---- 404, 405 ------------------------------------------------------------ */

static const char * const missing_paths[] = {
  "/dashboard/",
  "/dashboard/nope.js",
  "/dashboard/app.js/x",
  "/dashboard/../app.js",
  "/dashboard/%2e%2e/app.js",
  "/dashboard/pubsub.gresource.xml",
  "/dashboard/APP.JS",
  "/index.html",
  "/app.js",
};

static void
test_not_found (void)
{
  g_autoptr(PubsubTestServer) server = pubsub_test_server_start (NULL);

  for (gsize i = 0; i < G_N_ELEMENTS (missing_paths); i++)
    {
      g_autoptr(Reply) reply = request (server, "GET", missing_paths[i], NULL, NULL);

      g_test_message ("GET %s", missing_paths[i]);
      assert_json_error (reply, 404, "NOT_FOUND");
      g_assert_null (soup_message_headers_get_one (reply->headers, "Allow"));
    }

  pubsub_test_server_stop (server);
}

static const struct {
  const char *method;
  const char *path;
} wrong_methods[] = {
  { "POST", "/" },
  { "PUT", "/" },
  { "DELETE", "/" },
  { "POST", "/dashboard/app.js" },
  { "DELETE", "/dashboard/style.css" },
  { "PATCH", "/dashboard/uPlot.iife.min.js" },
};

static void
test_method_not_allowed (void)
{
  g_autoptr(PubsubTestServer) server = pubsub_test_server_start (NULL);

  for (gsize i = 0; i < G_N_ELEMENTS (wrong_methods); i++)
    {
      g_autoptr(Reply) reply = request (server, wrong_methods[i].method, wrong_methods[i].path,
                                        NULL, NULL);

      g_test_message ("%s %s", wrong_methods[i].method, wrong_methods[i].path);
      assert_json_error (reply, 405, "METHOD_NOT_ALLOWED");
      g_assert_cmpstr (soup_message_headers_get_one (reply->headers, "Allow"), ==, "GET, HEAD");
    }

  pubsub_test_server_stop (server);
}

/* ---- authentication ------------------------------------------------------ */

/* The page is public, like /health; what it asks for is not. */
static void
test_public_with_api_key (void)
{
  g_autoptr(PubsubTestServer) server = pubsub_test_server_start ("--api-key", API_KEY, NULL);
  g_autoptr(Reply) page = request (server, "GET", "/", NULL, NULL);
  g_autoptr(Reply) script = request (server, "GET", "/dashboard/app.js", NULL, NULL);
  g_autoptr(Reply) stats = request (server, "GET", "/stats", NULL, NULL);
  g_autoptr(Reply) stats_with_key = request (server, "GET", "/stats", "X-API-Key", API_KEY);

  g_assert_cmpuint (page->status, ==, 200);
  g_assert_cmpuint (script->status, ==, 200);
  assert_json_error (stats, 401, "UNAUTHORIZED");
  g_assert_cmpuint (stats_with_key->status, ==, 200);

  pubsub_test_server_stop (server);
}

int
main (int   argc,
      char *argv[])
{
  int status;

  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  pubsub_test_quiet_debug ();

  g_test_add_func ("/dashboard/page", test_page);
  g_test_add_func ("/dashboard/vendored-licence", test_vendored_licence);
  g_test_add_func ("/dashboard/head", test_head);
  g_test_add_func ("/dashboard/revalidation", test_revalidation);
  g_test_add_func ("/dashboard/not-found", test_not_found);
  g_test_add_func ("/dashboard/method-not-allowed", test_method_not_allowed);
  g_test_add_func ("/dashboard/public-with-api-key", test_public_with_api_key);

  status = g_test_run ();
  g_clear_object (&session);
  return status;
}
