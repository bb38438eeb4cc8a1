/* pubsub-test-util.h: fixtures for tests that drive the real pubsubd
 *
 * The daemon runs as a child process ($PUBSUBD, prefixed by the words of
 * $PUBSUBD_WRAPPER, e.g. valgrind). Clients are libsoup's (REST and
 * WebSocket, async, on the default main context) or a raw TCP socket that
 * speaks just enough WebSocket to misbehave on purpose. Its frame encoder
 * and decoder also serve the unit tests that feed or read frames in-process.
 *
 * Nothing here sleeps: every wait iterates the default main context until a
 * condition holds, and a missed deadline fails the test with a message.
 * Deadlines are in milliseconds of normal speed; they are multiplied by
 * pubsub_test_timeout_scale() when the daemon runs under a wrapper.
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

G_BEGIN_DECLS

/* ---- setup ------------------------------------------------------------- */

/**
 * pubsub_test_quiet_debug:
 *
 * Call after g_test_init(): GTest prints every debug message as a TAP
 * comment, libsoup writes one per frame, and that drowns the log (and slows
 * valgrind runs). Drops debug and info messages unless G_MESSAGES_DEBUG is
 * set.
 */
void pubsub_test_quiet_debug (void);

/* ---- timing ------------------------------------------------------------ */

gboolean pubsub_test_under_wrapper (void);
guint    pubsub_test_timeout_scale (void);
guint    pubsub_test_scale_count (guint normal,
                                  guint under_wrapper);

typedef gboolean (*PubsubTestCondition) (gpointer user_data);

/**
 * pubsub_test_wait_until:
 * @condition: checked before each main-context iteration
 * @deadline_ms: normal-speed deadline (scaled under a wrapper)
 * @what: what is being waited for, for the failure message
 *
 * Iterates the default main context until @condition returns %TRUE; fails
 * the test (g_error) at the deadline.
 */
void pubsub_test_wait_until (PubsubTestCondition  condition,
                             gpointer             user_data,
                             guint                deadline_ms,
                             const char          *what);
void pubsub_test_wait_flag  (const gboolean *flag,
                             guint           deadline_ms,
                             const char     *what);

/* The same as a macro over any C expression, which is named in the failure. */
#define pubsub_test_wait_for(cond, deadline_ms)                                   \
  G_STMT_START {                                                                  \
    gint64 pubsub_test_deadline_ = g_get_monotonic_time () +                      \
      (gint64) (deadline_ms) * pubsub_test_timeout_scale () * 1000;               \
    while (!(cond))                                                               \
      {                                                                           \
        if (g_get_monotonic_time () > pubsub_test_deadline_)                      \
          g_error ("%s:%d: timed out after %u ms waiting for: %s",                \
                   __FILE__, __LINE__,                                            \
                   (guint) (deadline_ms) * pubsub_test_timeout_scale (), #cond);  \
        pubsub_test_iterate ();                                                   \
      }                                                                           \
  } G_STMT_END

/* One main-context iteration that returns within 10 ms even if idle. */
void pubsub_test_iterate (void);

/* ---- the daemon -------------------------------------------------------- */

typedef enum {
  PUBSUB_TEST_SERVER_DEFAULT   = 0,
  /* Do not add --listen 127.0.0.1:0 (the test sets listen some other way). */
  PUBSUB_TEST_SERVER_NO_LISTEN = 1 << 0,
  /* Do not add --bus none (the test sets the bus some other way). */
  PUBSUB_TEST_SERVER_NO_BUS    = 1 << 1,
  /* Do not add --heartbeat-interval 0 (keep the configured heartbeat). */
  PUBSUB_TEST_SERVER_HEARTBEAT = 1 << 2,
} PubsubTestServerFlags;

typedef struct {
  GSubprocess *process;
  GPid         pid;
  char        *host;        /* as logged: "127.0.0.1", "" for all interfaces */
  guint16      port;
  char        *http_base;   /* "http://127.0.0.1:PORT" (loopback for "") */
  char        *ws_url;      /* "ws://127.0.0.1:PORT/ws" */
  GString     *log;         /* everything on its stderr and stdout so far
                             * (GLib logs debug and info on stdout) */
  gboolean     output_eof;
  gboolean     exited;
  int          exit_status; /* valid once exited: the raw wait status */

  /* private */
  GDataInputStream *output_stream;
  GCancellable     *cancellable;
  SoupSession      *session;
} PubsubTestServer;

/**
 * pubsub_test_server_start:
 * @first_arg: extra pubsubd arguments, %NULL-terminated
 *
 * Spawns pubsubd (its output read into ->log as it comes) with --listen 127.0.0.1:0 (unless a --listen is given),
 * --bus none (unless a --bus is given) and --heartbeat-interval 0 (unless
 * one is given: a heartbeat arriving in the middle of an exact exchange would
 * make slow runs flaky), and waits for its "Listening on http://HOST:PORT/"
 * line. Fails the test if it exits first.
 */
PubsubTestServer *pubsub_test_server_start (const char *first_arg,
                                            ...);

/**
 * pubsub_test_server_start_full:
 * @flags: which defaults not to add
 * @env: (nullable): "NAME=VALUE" to set, or "NAME" to unset, in the child
 * @args: (nullable): the arguments
 *
 * As pubsub_test_server_start(). The child never inherits ADDR, API_KEY or
 * PUBSUB_* from the test's own environment, only what @env sets; its HOME and
 * XDG_CONFIG_HOME, XDG_DATA_HOME, XDG_CACHE_HOME are the test's own (isolated)
 * g_get_home_dir(), g_get_user_config_dir()… unless @env sets them.
 */
PubsubTestServer *pubsub_test_server_start_full (PubsubTestServerFlags  flags,
                                                 const char * const    *env,
                                                 const char * const    *args);

/**
 * pubsub_test_server_signal:
 * Sends @signum (SIGTERM, SIGINT…) and returns at once.
 */
void     pubsub_test_server_signal       (PubsubTestServer *server,
                                          int               signum);
/**
 * pubsub_test_server_wait_exit:
 * Waits for the process to exit; fails at the deadline.
 */
void     pubsub_test_server_wait_exit    (PubsubTestServer *server,
                                          guint             deadline_ms);
/**
 * pubsub_test_server_stop:
 * SIGTERM, then waits for exit and checks exit status 0 (so valgrind errors
 * in the daemon fail the test; the failure is marked with g_test_fail(), the
 * test goes on). Idempotent.
 */
void     pubsub_test_server_stop         (PubsubTestServer *server);
/* Kills the process if still running; frees. */
void     pubsub_test_server_free         (PubsubTestServer *server);
/* Waits until @needle appears in the daemon's log. */
void     pubsub_test_server_wait_for_log (PubsubTestServer *server,
                                          const char       *needle,
                                          guint             deadline_ms);
/* The log without the wrapper's own lines (valgrind's "==PID== …", which
 * quote the command line): what the daemon itself wrote. */
char    *pubsub_test_server_dup_own_log  (PubsubTestServer *server);
/* VmRSS of the daemon, in KiB, from /proc/PID/status. */
guint64  pubsub_test_server_get_rss_kib  (PubsubTestServer *server);
/**
 * pubsub_test_server_get_memory_kib:
 *
 * The daemon's memory, in KiB, for bounds: its VmRSS normally; under
 * valgrind the heap in use as memcheck counts it (asked with
 * `vgdb --pid=PID leak_check summary`), since RSS then mostly measures
 * memcheck itself (shadow memory, its 20 MB quarantine of freed blocks).
 */
guint64  pubsub_test_server_get_memory_kib (PubsubTestServer *server);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PubsubTestServer, pubsub_test_server_free)

/**
 * pubsub_test_run:
 * @env: (nullable): as for pubsub_test_server_start_full()
 * @args: the arguments (no defaults are added)
 * @out_stdout: (out) (optional): what it printed
 * @out_stderr: (out) (optional): what it printed on stderr
 *
 * Runs pubsubd to completion (for --help, --version and bad settings).
 *
 * Returns: its exit status; fails the test if it was killed by a signal or
 *   does not exit within 30 s.
 */
int pubsub_test_run (const char * const  *env,
                     const char * const  *args,
                     char               **out_stdout,
                     char               **out_stderr);

/**
 * pubsub_test_shared_server:
 * @args: (nullable): the arguments, for the first call only
 * @out_started: (out) (optional): set to whether this call started it
 *
 * One daemon for the cases of a test program that need no fresh one (the
 * rows of a table): started on the first call, the same one after. A
 * program that uses it calls pubsub_test_shared_server_stop() after
 * g_test_run().
 */
PubsubTestServer *pubsub_test_shared_server      (const char * const *args,
                                                  gboolean           *out_started);
/* Stops the shared daemon, if one was started (exit status 0 checked as by
 * pubsub_test_server_stop()), and frees it. */
void              pubsub_test_shared_server_stop (void);

/* ---- REST -------------------------------------------------------------- */

typedef struct {
  guint               status;
  SoupMessageHeaders *headers;   /* the response headers */
  GBytes             *body;
  JsonNode           *json;      /* the parsed body */
} PubsubTestResponse;

/**
 * pubsub_test_request:
 * @method: "GET", "POST", …
 * @path: e.g. "/topics"; may carry a query
 * @body: (nullable): sent with Content-Length; "application/json" unless a
 *   Content-Type header is given
 * @first_header: header name, value, name, value, …, %NULL
 *
 * Makes one HTTP request (async, iterating the main context) and checks
 * what every response must be: Content-Type application/json, a JSON object,
 * and for status >= 400 the error shape {"error":{"code":s,"message":s}}.
 * A violation fails the test (g_test_fail) but lets it go on, with an empty
 * object as ->json if the body was not one. A transport error fails it at
 * once. The daemon closes the connection after every response.
 */
PubsubTestResponse *pubsub_test_request (PubsubTestServer *server,
                                         const char       *method,
                                         const char       *path,
                                         const char       *body,
                                         const char       *first_header,
                                         ...);
/**
 * pubsub_test_request_full:
 * @body: (nullable): the body bytes
 * @chunked: send @body with Transfer-Encoding: chunked
 * @headers: (nullable): "Name", "value" pairs, %NULL-terminated
 * @out_error: (out) (optional): a transport error; with %NULL, one fails the test
 *
 * Returns: (nullable): the response, or %NULL on a transport error
 */
PubsubTestResponse *pubsub_test_request_full (PubsubTestServer   *server,
                                              const char         *method,
                                              const char         *path,
                                              GBytes             *body,
                                              gboolean            chunked,
                                              const char * const *headers,
                                              GError            **out_error);
/**
 * pubsub_test_request_lax:
 *
 * As pubsub_test_request() without a body or headers, except that a status
 * >= 400 need not carry the error shape: in cluster mode GET /health
 * answers 503 with the health object itself ("cluster":"down"). The body
 * must still be a JSON object.
 */
PubsubTestResponse *pubsub_test_request_lax (PubsubTestServer *server,
                                             const char       *method,
                                             const char       *path);
/* The common case: returns the status; *out_json (optional) gets the body. */
guint pubsub_test_http (PubsubTestServer  *server,
                        const char        *method,
                        const char        *path,
                        const char        *body,
                        JsonNode         **out_json,
                        const char        *first_header,
                        ...);
void  pubsub_test_response_free (PubsubTestResponse *response);
/* The error code of an error response ("TOPIC_NOT_FOUND"…). */
const char *pubsub_test_response_error_code (PubsubTestResponse *response);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PubsubTestResponse, pubsub_test_response_free)

/* POST /topics and assert 201 (@api_key may be NULL). */
void pubsub_test_create_topic (PubsubTestServer *server,
                               const char       *name,
                               const char       *api_key);
/* GET /topics (@api_key may be NULL) and assert 200. */
PubsubTestResponse *pubsub_test_get_topics (PubsubTestServer *server,
                                            const char       *api_key);
/* GET /topics → the subscriber count of @name, or -1 if there is none. */
gint64 pubsub_test_topic_subscribers (PubsubTestServer *server,
                                      const char       *name,
                                      const char       *api_key);

/* ---- WebSocket, with libsoup ------------------------------------------ */

typedef struct {
  SoupWebsocketDataType type;
  char                 *text;   /* the frame's bytes, NUL-terminated */
  gsize                 len;
  JsonNode             *root;   /* text frames: the parsed object */
} PubsubTestFrame;

void        pubsub_test_frame_free       (PubsubTestFrame *frame);
/* A string member of the frame's object (or of a nested object, e.g.
 * ("error", "code")); NULL when absent or not a string. */
const char *pubsub_test_frame_get_string (PubsubTestFrame *frame,
                                          const char      *member,
                                          const char      *nested);
gboolean    pubsub_test_frame_has_member (PubsubTestFrame *frame,
                                          const char      *member);
/* The frame's "type" ("ack", "event"…), or NULL. */
const char *pubsub_test_frame_type       (PubsubTestFrame *frame);
/* message.payload.n of an event as published by
 * pubsub_test_ws_send_publish(); fails the test (g_error) if there is none. */
gint64      pubsub_test_event_sequence   (PubsubTestFrame *frame);
/* The raw JSON text of a member, by path, e.g. ("message", "payload", NULL). */
char       *pubsub_test_frame_dup_raw    (PubsubTestFrame *frame,
                                          const char      *first_member,
                                          ...);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PubsubTestFrame, pubsub_test_frame_free)

typedef struct {
  SoupWebsocketConnection *conn;
  char                    *offered_extensions; /* what the client asked for */
  GQueue                   frames;      /* of PubsubTestFrame, oldest first */
  guint                    n_received;  /* frames ever received */
  gboolean                 closed;
  gushort                  close_code;
  char                    *close_reason;
  GError                  *error;       /* from the "error" signal, if any */
  /* Called for each frame as it arrives (before it is queued); may steal
   * nothing. For tests that count without queueing. */
  void                   (*on_frame) (PubsubTestFrame *frame, gpointer user_data);
  gpointer                 on_frame_data;
  gboolean                 keep_frames; /* default TRUE */
} PubsubTestWs;

/**
 * pubsub_test_ws_connect:
 * @query: (nullable): e.g. "api_key=secret"
 * @first_header: extra request header name, value, …, %NULL
 *
 * Connects to /ws with a SoupSession that offers permessage-deflate (as
 * browsers do) and fails the test unless the upgrade succeeds.
 * Every text frame received is checked: a JSON object with a "ts" of the
 * form 2026-11-27T10:00:00.123Z.
 */
PubsubTestWs *pubsub_test_ws_connect     (PubsubTestServer *server,
                                          const char       *query,
                                          const char       *first_header,
                                          ...);
/**
 * pubsub_test_ws_try_connect:
 * @headers: (nullable): "Name", "value" pairs, %NULL-terminated
 * @out_status: (out) (optional): the HTTP status of the handshake
 *
 * Returns: (nullable): the client, or %NULL if the upgrade was refused
 */
PubsubTestWs *pubsub_test_ws_try_connect (PubsubTestServer   *server,
                                          const char         *query,
                                          const char * const *headers,
                                          guint              *out_status);
void          pubsub_test_ws_send        (PubsubTestWs *ws,
                                          const char   *text);
void          pubsub_test_ws_sendf       (PubsubTestWs *ws,
                                          const char   *format,
                                          ...) G_GNUC_PRINTF (2, 3);
/* Pops the next frame, waiting up to @deadline_ms for one. */
PubsubTestFrame *pubsub_test_ws_next     (PubsubTestWs *ws,
                                          guint         deadline_ms);
/* Pops frames until one of @type arrives ("ack", "event"…); frames of other
 * types are dropped. */
PubsubTestFrame *pubsub_test_ws_wait_for (PubsubTestWs *ws,
                                          const char   *type,
                                          guint         deadline_ms);
/* Takes the first frame of @type out of the queue, waiting for one; frames
 * of other types stay queued, in order. */
PubsubTestFrame *pubsub_test_ws_take     (PubsubTestWs *ws,
                                          const char   *type,
                                          guint         deadline_ms);
/* Asserts that nothing at all arrives: sends a ping with @request_id and
 * checks that the very next frame is its pong. */
void          pubsub_test_ws_assert_quiet (PubsubTestWs *ws);
/* Subscribe and wait for the ack (asserting it, and its topic). */
void          pubsub_test_ws_subscribe   (PubsubTestWs *ws,
                                          const char   *topic,
                                          gint64        last_n);
/* Sends a publish of {"n":@n,"pad":@padding} (@padding may be NULL: "")
 * with request_id "p<n>" and a fresh id, without waiting for its ack. */
void          pubsub_test_ws_send_publish (PubsubTestWs *ws,
                                           const char   *topic,
                                           guint         n,
                                           const char   *padding);
/* An on_frame callback for a publisher: asserts every frame is an ack and
 * counts it in the guint that @counter points to. */
void          pubsub_test_ws_count_ack   (PubsubTestFrame *frame,
                                          gpointer         counter);

/* The events a subscriber has seen, numbered by their payload.n. */
typedef struct {
  gint64 next;       /* the payload.n expected next */
  guint  received;   /* events so far */
} PubsubTestSequence;

/* An on_frame callback for a subscriber (@sequence: a PubsubTestSequence):
 * asserts every frame is an event whose payload.n is ->next, in order, with
 * no gap, and counts it. */
void          pubsub_test_ws_check_sequence (PubsubTestFrame *frame,
                                             gpointer         sequence);

/* Publish and wait for the ack (other frames stay queued); returns the id. */
char         *pubsub_test_ws_publish     (PubsubTestWs *ws,
                                          const char   *topic,
                                          const char   *payload_json);
void          pubsub_test_ws_wait_closed (PubsubTestWs *ws,
                                          guint         deadline_ms);
/* Closes (code 1000) if still open, waits for "closed" and frees. */
void          pubsub_test_ws_free        (PubsubTestWs *ws);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PubsubTestWs, pubsub_test_ws_free)

/* ---- WebSocket, by hand over a raw TCP socket ------------------------- */

typedef struct {
  guint8   opcode;   /* 0x1 text, 0x2 binary, 0x8 close, 0x9 ping, 0xA pong */
  gboolean fin;      /* the FIN bit */
  GBytes  *payload;
} PubsubTestRawFrame;

void pubsub_test_raw_frame_free (PubsubTestRawFrame *frame);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PubsubTestRawFrame, pubsub_test_raw_frame_free)

/**
 * pubsub_test_ws_client_frame:
 * @first_byte: FIN, RSV and opcode, as sent (0x81: a whole text frame)
 * @mask_key: (nullable): the 4-byte masking key; %NULL: unmasked
 *
 * Encodes one client frame (RFC 6455 §5.2), with the shortest length form.
 */
GByteArray *pubsub_test_ws_client_frame (guint8        first_byte,
                                         const void   *payload,
                                         gsize         len,
                                         const guint8 *mask_key);
/**
 * pubsub_test_ws_server_frame_pop:
 * @input: bytes received from a server
 *
 * Asserts the first frame in @input is unmasked, as a server's must be.
 *
 * Returns: (nullable): that frame, removed from @input, or %NULL while it
 *   is incomplete
 */
PubsubTestRawFrame *pubsub_test_ws_server_frame_pop (GByteArray *input);

typedef struct {
  GSocket    *socket;
  GByteArray *input;          /* unparsed bytes */
  GQueue      frames;         /* of PubsubTestRawFrame */
  guint64     bytes_read;
  gboolean    eof;            /* EOF or a reset: the server dropped us */
  gboolean    got_close;
  gushort     close_code;
  char       *close_reason;
  gboolean    answer_close;   /* echo a close frame (default TRUE) */
  GSource    *source;
} PubsubTestRawWs;

/**
 * pubsub_test_raw_ws_connect:
 * @path: e.g. "/ws" or "/ws?api_key=k"
 * @rcvbuf: SO_RCVBUF set before connecting, or 0 for the default
 * @out_status: (out) (optional): the HTTP status of the answer
 *
 * Connects, writes the upgrade request by hand and reads the answer's
 * headers. Reads nothing more until pubsub_test_raw_ws_start_reading().
 *
 * Returns: (nullable): the client if the answer was 101
 */
PubsubTestRawWs *pubsub_test_raw_ws_connect       (PubsubTestServer *server,
                                                   const char       *path,
                                                   int               rcvbuf,
                                                   guint            *out_status);
/* A masked frame with FIN set. */
void             pubsub_test_raw_ws_send          (PubsubTestRawWs *raw,
                                                   guint8           opcode,
                                                   const void      *data,
                                                   gsize            len);
void             pubsub_test_raw_ws_send_text     (PubsubTestRawWs *raw,
                                                   const char      *text);
/* From now on, reads whatever arrives, on the main context, into ->frames. */
void             pubsub_test_raw_ws_start_reading (PubsubTestRawWs *raw);
void             pubsub_test_raw_ws_free          (PubsubTestRawWs *raw);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PubsubTestRawWs, pubsub_test_raw_ws_free)

/* ---- misc ------------------------------------------------------------- */

/* A fresh random UUID (lower case). */
char     *pubsub_test_uuid (void);
/* Asserts @ts looks like 2026-11-27T10:00:00.123Z. */
void      pubsub_test_assert_timestamp (const char *ts);
/* A unique topic name for this test ("t-<counter>"). */
char     *pubsub_test_topic_name (void);

G_END_DECLS
