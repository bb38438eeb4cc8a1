/* test-dbus.c: the D-Bus contract (SPEC §5) against the real pubsubd
 *
 * Every test gets its own bus (GTestDBus) and its own pubsubd, started by
 * pubsub-test-util with --bus session --listen 127.0.0.1:0 (and run under
 * $PUBSUBD_WRAPPER, e.g. valgrind, when set). A private bus per test rather
 * than one per binary is what lets /dbus/bus-lost take the bus away under a
 * running daemon.
 *
 * The client side is plain GDBus calls and signal subscriptions, not the
 * generated proxies, so the test checks the wire contract rather than the
 * code generator. Nothing sleeps: every wait iterates the main context until
 * a condition holds or a deadline fails the test.
 *
 * SPDX-License-Identifier: MIT
 */
#include <gio/gio.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include <signal.h>
#include <string.h>

#include "pubsub-dbus.h"
#include "pubsub-error.h"
#include "pubsub-test-util.h"

#define BUS_NAME     "dev.pubsub.Broker"
#define BROKER_PATH  "/dev/pubsub/Broker"
#define TOPICS_PATH  BROKER_PATH "/topics"
#define BROKER_IFACE "dev.pubsub.Broker1"
#define TOPIC_IFACE  "dev.pubsub.Topic1"
#define PROPS_IFACE  "org.freedesktop.DBus.Properties"
#define OM_IFACE     "org.freedesktop.DBus.ObjectManager"

/* Deadlines in seconds of normal speed (scaled under a wrapper). */
#define wait_for(cond, seconds) pubsub_test_wait_for (cond, (seconds) * 1000)

static const char *const session_bus_args[] = { "--bus", "session", NULL };

/* pubsubd on the session bus that GTestDBus set up for this process. */
static PubsubTestServer *
start_daemon (const char *const *extra_args)
{
  g_autoptr(GPtrArray) args = g_ptr_array_new ();

  for (guint i = 0; session_bus_args[i] != NULL; i++)
    g_ptr_array_add (args, (gpointer) session_bus_args[i]);
  for (guint i = 0; extra_args != NULL && extra_args[i] != NULL; i++)
    g_ptr_array_add (args, (gpointer) extra_args[i]);
  g_ptr_array_add (args, NULL);
  return pubsub_test_server_start_full (PUBSUB_TEST_SERVER_DEFAULT, NULL,
                                        (const char *const *) args->pdata);
}

/* SIGTERM, then the graceful exit with status 0 that SPEC §6 promises. */
static void
stop_daemon (PubsubTestServer *server)
{
  pubsub_test_server_stop (server);
  pubsub_test_server_free (server);
}

static char *
daemon_address (PubsubTestServer *server)
{
  return g_strdup_printf ("%s:%u", server->host, server->port);
}

/* ---- fixture: a bus, a client connection, a pubsubd -------------------- */

typedef struct {
  char     *sender;
  char     *path;
  char     *interface;
  char     *member;
  GVariant *parameters;
  gint64    time;           /* monotonic, when it was dispatched here */
} Signal;

static void
signal_free (Signal *signal)
{
  g_free (signal->sender);
  g_free (signal->path);
  g_free (signal->interface);
  g_free (signal->member);
  g_variant_unref (signal->parameters);
  g_free (signal);
}

typedef struct {
  GTestDBus       *bus;
  gboolean         bus_up;
  GDBusConnection *connection;  /* private: g_test_dbus_down need not wait for it */
  guint            signal_id;
  GPtrArray       *signals;     /* owned: every Signal received */
  PubsubTestServer *daemon;
  char            *owner;       /* unique name owning BUS_NAME */
  gint64           spawn_time;  /* real time just before spawning */
} Fixture;

typedef struct {
  const char *const *extra_args;
} TestCase;

static void
on_signal (GDBusConnection *connection,
           const char      *sender,
           const char      *path,
           const char      *interface,
           const char      *member,
           GVariant        *parameters,
           gpointer         user_data)
{
  Fixture *f = user_data;
  Signal *signal = g_new0 (Signal, 1);

  signal->sender = g_strdup (sender);
  signal->path = g_strdup (path);
  signal->interface = g_strdup (interface);
  signal->member = g_strdup (member);
  signal->parameters = g_variant_ref (parameters);
  signal->time = g_get_monotonic_time ();
  g_ptr_array_add (f->signals, signal);
}

static char *
get_name_owner (Fixture *f)
{
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;
  char *owner = NULL;

  reply = g_dbus_connection_call_sync (f->connection, "org.freedesktop.DBus",
                                       "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                       "GetNameOwner", g_variant_new ("(s)", BUS_NAME),
                                       G_VARIANT_TYPE ("(s)"), G_DBUS_CALL_FLAGS_NONE, -1,
                                       NULL, &error);
  if (reply != NULL)
    g_variant_get (reply, "(s)", &owner);
  return owner;
}

static gboolean
name_is_owned (Fixture *f)
{
  g_free (f->owner);
  f->owner = get_name_owner (f);
  return f->owner != NULL;
}

static void
fixture_set_up (Fixture       *f,
                gconstpointer  data)
{
  const TestCase *test_case = data;
  g_autoptr(GError) error = NULL;

  f->bus = g_test_dbus_new (G_TEST_DBUS_NONE);
  g_test_dbus_up (f->bus);
  f->bus_up = TRUE;

  f->connection = g_dbus_connection_new_for_address_sync (g_test_dbus_get_bus_address (f->bus),
                                                          G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                          G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                          NULL, NULL, &error);
  g_assert_no_error (error);
  f->signals = g_ptr_array_new_with_free_func ((GDestroyNotify) signal_free);
  f->signal_id = g_dbus_connection_signal_subscribe (f->connection, NULL, NULL, NULL, NULL, NULL,
                                                     G_DBUS_SIGNAL_FLAGS_NONE, on_signal, f, NULL);
  f->spawn_time = g_get_real_time ();
  f->daemon = start_daemon (test_case != NULL ? test_case->extra_args : NULL);
  wait_for (name_is_owned (f), 10);
}

static void
fixture_tear_down (Fixture       *f,
                   gconstpointer  data)
{
  g_clear_pointer (&f->daemon, stop_daemon);
  if (f->connection != NULL)
    {
      g_dbus_connection_signal_unsubscribe (f->connection, f->signal_id);
      g_dbus_connection_close_sync (f->connection, NULL, NULL);
    }
  g_clear_object (&f->connection);
  g_clear_pointer (&f->signals, g_ptr_array_unref);
  g_clear_pointer (&f->owner, g_free);
  if (f->bus_up)
    g_test_dbus_down (f->bus);
  g_clear_object (&f->bus);
}

/* ---- D-Bus helpers ------------------------------------------------------ */

static GVariant *
call (Fixture     *f,
      const char  *method,
      GVariant    *parameters,
      const char  *reply_type,
      GError     **error)
{
  return g_dbus_connection_call_sync (f->connection, BUS_NAME, BROKER_PATH, BROKER_IFACE,
                                      method, parameters,
                                      reply_type != NULL ? G_VARIANT_TYPE (reply_type) : NULL,
                                      G_DBUS_CALL_FLAGS_NONE, -1, NULL, error);
}

static void
call_ok (Fixture    *f,
         const char *method,
         GVariant   *parameters)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = call (f, method, parameters, "()", &error);

  g_assert_no_error (error);
}

static void
assert_call_fails (Fixture    *f,
                   const char *method,
                   GVariant   *parameters,
                   const char *error_name)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = call (f, method, parameters, NULL, &error);
  g_autofree char *remote = NULL;

  g_assert_null (reply);
  g_assert_nonnull (error);
  remote = g_dbus_error_get_remote_error (error);
  g_assert_cmpstr (remote, ==, error_name);
  /* The message is for a person: something beyond the name. */
  g_dbus_error_strip_remote_error (error);
  g_assert_cmpstr (error->message, !=, "");
}

static char *
publish (Fixture    *f,
         const char *topic,
         const char *id,
         const char *payload)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  char *message_id = NULL;

  reply = call (f, "Publish", g_variant_new ("(sss)", topic, id, payload), "(s)", &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(s)", &message_id);
  return message_id;
}

static GVariant *
get_property (Fixture    *f,
              const char *path,
              const char *interface,
              const char *name)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  GVariant *value = NULL;

  reply = g_dbus_connection_call_sync (f->connection, BUS_NAME, path, PROPS_IFACE, "Get",
                                       g_variant_new ("(ss)", interface, name),
                                       G_VARIANT_TYPE ("(v)"), G_DBUS_CALL_FLAGS_NONE, -1,
                                       NULL, &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(v)", &value);
  return value;
}

static guint32
get_uint32_property (Fixture    *f,
                     const char *path,
                     const char *interface,
                     const char *name)
{
  g_autoptr(GVariant) value = get_property (f, path, interface, name);

  return g_variant_get_uint32 (value);
}

static char *
topic_path (const char *name)
{
  g_autofree char *escaped = g_dbus_escape_object_path (name);

  return g_strconcat (TOPICS_PATH "/", escaped, NULL);
}

/* The first signal from the broker's owner matching all non-NULL fields,
 * and whose first argument is @arg0 when that is given. */
static Signal *
find_signal (Fixture    *f,
             const char *path,
             const char *interface,
             const char *member,
             const char *arg0)
{
  for (guint i = 0; i < f->signals->len; i++)
    {
      Signal *signal = g_ptr_array_index (f->signals, i);
      const char *first = NULL;

      if (g_strcmp0 (signal->sender, f->owner) != 0 ||
          (path != NULL && g_strcmp0 (signal->path, path) != 0) ||
          g_strcmp0 (signal->interface, interface) != 0 ||
          g_strcmp0 (signal->member, member) != 0)
        continue;
      if (arg0 != NULL)
        {
          g_autoptr(GVariant) child = NULL;

          if (g_variant_n_children (signal->parameters) == 0)
            continue;
          /* a string or an object path */
          child = g_variant_get_child_value (signal->parameters, 0);
          if (!g_variant_is_of_type (child, G_VARIANT_TYPE_STRING) &&
              !g_variant_is_of_type (child, G_VARIANT_TYPE_OBJECT_PATH))
            continue;
          first = g_variant_get_string (child, NULL);
          if (g_strcmp0 (first, arg0) != 0)
            continue;
        }
      return signal;
    }
  return NULL;
}

/* The last value of @property announced by PropertiesChanged on @path,
 * or NULL. Counts the signals carrying it in @out_count. */
static GVariant *
last_changed_value (Fixture    *f,
                    const char *path,
                    const char *interface,
                    const char *property,
                    guint      *out_count)
{
  GVariant *last = NULL;
  guint count = 0;

  for (guint i = 0; i < f->signals->len; i++)
    {
      Signal *signal = g_ptr_array_index (f->signals, i);
      g_autoptr(GVariant) changed = NULL;
      GVariant *value;
      const char *iface;

      if (g_strcmp0 (signal->sender, f->owner) != 0 ||
          g_strcmp0 (signal->path, path) != 0 ||
          g_strcmp0 (signal->member, "PropertiesChanged") != 0)
        continue;
      g_variant_get (signal->parameters, "(&s@a{sv}@as)", &iface, &changed, NULL);
      if (g_strcmp0 (iface, interface) != 0)
        continue;
      value = g_variant_lookup_value (changed, property, NULL);
      if (value == NULL)
        continue;
      count++;
      g_clear_pointer (&last, g_variant_unref);
      last = value;
    }
  if (out_count != NULL)
    *out_count = count;
  return last;
}

static gboolean
changed_to_uint (Fixture    *f,
                 const char *path,
                 const char *interface,
                 const char *property,
                 guint64     expected)
{
  g_autoptr(GVariant) value = last_changed_value (f, path, interface, property, NULL);

  if (value == NULL)
    return FALSE;
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_UINT64))
    return g_variant_get_uint64 (value) == expected;
  return g_variant_get_uint32 (value) == expected;
}

/* ---- HTTP -------------------------------------------------------------- */

/* Returns the status; the body, when asked for, as a string. */
static guint
http_request (PubsubTestServer  *server,
              const char        *method,
              const char        *path,
              const char        *body,
              char             **out_body)
{
  g_autoptr(PubsubTestResponse) response =
    pubsub_test_request (server, method, path, body, NULL);

  if (out_body != NULL)
    *out_body = g_strndup (g_bytes_get_data (response->body, NULL),
                           g_bytes_get_size (response->body));
  return response->status;
}

/* ---- tests -------------------------------------------------------------- */

static void
assert_method (GDBusInterfaceInfo *iface,
               const char         *name,
               const char         *in_signature,
               const char         *out_signature)
{
  GDBusMethodInfo *method = g_dbus_interface_info_lookup_method (iface, name);
  g_autoptr(GString) in = g_string_new (NULL);
  g_autoptr(GString) out = g_string_new (NULL);

  g_assert_nonnull (method);
  for (guint i = 0; method->in_args != NULL && method->in_args[i] != NULL; i++)
    g_string_append (in, method->in_args[i]->signature);
  for (guint i = 0; method->out_args != NULL && method->out_args[i] != NULL; i++)
    g_string_append (out, method->out_args[i]->signature);
  g_assert_cmpstr (in->str, ==, in_signature);
  g_assert_cmpstr (out->str, ==, out_signature);
}

static void
assert_property (GDBusInterfaceInfo *iface,
                 const char         *name,
                 const char         *signature)
{
  GDBusPropertyInfo *property = g_dbus_interface_info_lookup_property (iface, name);

  g_assert_nonnull (property);
  g_assert_cmpstr (property->signature, ==, signature);
  g_assert_cmpint (property->flags, ==, G_DBUS_PROPERTY_INFO_FLAGS_READABLE);
}

static void
assert_signal (GDBusInterfaceInfo *iface,
               const char         *name)
{
  GDBusSignalInfo *signal = g_dbus_interface_info_lookup_signal (iface, name);

  g_assert_nonnull (signal);
  g_assert_nonnull (signal->args[0]);
  g_assert_cmpstr (signal->args[0]->signature, ==, "s");
  g_assert_null (signal->args[1]);
}

static GDBusNodeInfo *
introspect (Fixture    *f,
            const char *path)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  GDBusNodeInfo *node;
  const char *xml;

  reply = g_dbus_connection_call_sync (f->connection, BUS_NAME, path,
                                       "org.freedesktop.DBus.Introspectable", "Introspect",
                                       NULL, G_VARIANT_TYPE ("(s)"), G_DBUS_CALL_FLAGS_NONE, -1,
                                       NULL, &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(&s)", &xml);
  node = g_dbus_node_info_new_for_xml (xml, &error);
  g_assert_no_error (error);
  return node;
}

static void
test_introspection (Fixture       *f,
                    gconstpointer  data)
{
  g_autoptr(GDBusNodeInfo) broker = NULL;
  g_autoptr(GDBusNodeInfo) topics = NULL;
  g_autoptr(GDBusNodeInfo) topic = NULL;
  g_autofree char *path = topic_path ("intro.spect");
  GDBusInterfaceInfo *iface;

  broker = introspect (f, BROKER_PATH);
  iface = g_dbus_node_info_lookup_interface (broker, BROKER_IFACE);
  g_assert_nonnull (iface);
  assert_method (iface, "CreateTopic", "s", "");
  assert_method (iface, "DeleteTopic", "s", "");
  assert_method (iface, "ListTopics", "", "a(su)");
  assert_method (iface, "GetStats", "", "a{sa{sv}}");
  assert_method (iface, "Publish", "sss", "s");
  assert_property (iface, "Version", "s");
  assert_property (iface, "ListenAddress", "s");
  assert_property (iface, "StartTime", "t");
  assert_property (iface, "TopicCount", "u");
  assert_property (iface, "SubscriberCount", "u");
  assert_signal (iface, "TopicCreated");
  assert_signal (iface, "TopicDeleted");
  g_assert_nonnull (g_dbus_node_info_lookup_interface (broker, OM_IFACE));

  call_ok (f, "CreateTopic", g_variant_new ("(s)", "intro.spect"));
  topics = introspect (f, TOPICS_PATH);
  g_assert_nonnull (topics->nodes[0]);
  g_assert_cmpstr (topics->nodes[0]->path, ==, "intro_2espect");

  topic = introspect (f, path);
  iface = g_dbus_node_info_lookup_interface (topic, TOPIC_IFACE);
  g_assert_nonnull (iface);
  assert_property (iface, "Name", "s");
  assert_property (iface, "Subscribers", "u");
  assert_property (iface, "Messages", "t");
  assert_property (iface, "Epoch", "s");
  assert_property (iface, "Seq", "t");
}

static void
test_properties (Fixture       *f,
                 gconstpointer  data)
{
  g_autoptr(GVariant) version = get_property (f, BROKER_PATH, BROKER_IFACE, "Version");
  g_autoptr(GVariant) address = get_property (f, BROKER_PATH, BROKER_IFACE, "ListenAddress");
  g_autoptr(GVariant) start = get_property (f, BROKER_PATH, BROKER_IFACE, "StartTime");
  g_autoptr(GVariant) all = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *expected_address = daemon_address (f->daemon);
  g_autofree char *expected_version = NULL;
  g_autofree char *version_output = NULL;
  const char *const version_args[] = { "--version", NULL };

  /* The same version as --version prints ("pubsubd 0.1.0"). */
  g_assert_cmpint (pubsub_test_run (NULL, version_args, &version_output, NULL), ==, 0);
  expected_version = g_strdup_printf ("pubsubd %s\n", g_variant_get_string (version, NULL));
  g_assert_cmpstr (version_output, ==, expected_version);
  g_assert_cmpstr (g_variant_get_string (address, NULL), ==, expected_address);
  /* µs since the epoch, between our spawn and now */
  g_assert_cmpuint (g_variant_get_uint64 (start), >=, (guint64) f->spawn_time);
  g_assert_cmpuint (g_variant_get_uint64 (start), <=, (guint64) g_get_real_time ());
  g_assert_cmpuint (get_uint32_property (f, BROKER_PATH, BROKER_IFACE, "TopicCount"), ==, 0);
  g_assert_cmpuint (get_uint32_property (f, BROKER_PATH, BROKER_IFACE, "SubscriberCount"), ==, 0);

  reply = g_dbus_connection_call_sync (f->connection, BUS_NAME, BROKER_PATH, PROPS_IFACE,
                                       "GetAll", g_variant_new ("(s)", BROKER_IFACE),
                                       G_VARIANT_TYPE ("(a{sv})"), G_DBUS_CALL_FLAGS_NONE, -1,
                                       NULL, &error);
  g_assert_no_error (error);
  all = g_variant_get_child_value (reply, 0);
  /* Version, ListenAddress, StartTime, TopicCount, SubscriberCount,
   * SignalsDropped (SPEC §10), Cluster, NodeId and Nodes (§9). */
  g_assert_cmpuint (g_variant_n_children (all), ==, 9);
  {
    g_autoptr(GVariant) cluster = g_variant_lookup_value (all, "Cluster", G_VARIANT_TYPE_STRING);
    g_autoptr(GVariant) node_id = g_variant_lookup_value (all, "NodeId", G_VARIANT_TYPE_STRING);
    g_autoptr(GVariant) nodes = g_variant_lookup_value (all, "Nodes", G_VARIANT_TYPE_UINT32);

    /* The in-memory engine: no cluster, one node, named. */
    g_assert_cmpstr (g_variant_get_string (cluster, NULL), ==, "");
    g_assert_cmpuint (strlen (g_variant_get_string (node_id, NULL)), >, 0);
    g_assert_cmpuint (g_variant_get_uint32 (nodes), ==, 1);
  }

  /* Read-only. */
  g_clear_pointer (&reply, g_variant_unref);
  reply = g_dbus_connection_call_sync (f->connection, BUS_NAME, BROKER_PATH, PROPS_IFACE, "Set",
                                       g_variant_new ("(ssv)", BROKER_IFACE, "TopicCount",
                                                      g_variant_new_uint32 (7)),
                                       NULL, G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
  g_assert_null (reply);
  g_assert_error (error, G_DBUS_ERROR, G_DBUS_ERROR_INVALID_ARGS);
}

static void
test_create_delete (Fixture       *f,
                    gconstpointer  data)
{
  const char *name = "orders.eu-west:1_a";
  g_autofree char *path = topic_path (name);
  g_autofree char *too_long = g_strnfill (129, 'a');
  g_autoptr(GVariant) topic_name = NULL;

  call_ok (f, "CreateTopic", g_variant_new ("(s)", name));

  /* TopicCount is current as soon as the call returns. */
  g_assert_cmpuint (get_uint32_property (f, BROKER_PATH, BROKER_IFACE, "TopicCount"), ==, 1);
  wait_for (find_signal (f, BROKER_PATH, BROKER_IFACE, "TopicCreated", name) != NULL, 5);
  wait_for (find_signal (f, BROKER_PATH, OM_IFACE, "InterfacesAdded", path) != NULL, 5);
  wait_for (changed_to_uint (f, BROKER_PATH, BROKER_IFACE, "TopicCount", 1), 5);
  topic_name = get_property (f, path, TOPIC_IFACE, "Name");
  g_assert_cmpstr (g_variant_get_string (topic_name, NULL), ==, name);

  assert_call_fails (f, "CreateTopic", g_variant_new ("(s)", name),
                     "dev.pubsub.Error.TopicExists");
  assert_call_fails (f, "CreateTopic", g_variant_new ("(s)", "bad name"),
                     "dev.pubsub.Error.InvalidArgument");
  assert_call_fails (f, "CreateTopic", g_variant_new ("(s)", ""),
                     "dev.pubsub.Error.InvalidArgument");
  assert_call_fails (f, "CreateTopic", g_variant_new ("(s)", too_long),
                     "dev.pubsub.Error.InvalidArgument");

  call_ok (f, "DeleteTopic", g_variant_new ("(s)", name));
  g_assert_cmpuint (get_uint32_property (f, BROKER_PATH, BROKER_IFACE, "TopicCount"), ==, 0);
  wait_for (find_signal (f, BROKER_PATH, BROKER_IFACE, "TopicDeleted", name) != NULL, 5);
  wait_for (find_signal (f, BROKER_PATH, OM_IFACE, "InterfacesRemoved", path) != NULL, 5);
  wait_for (changed_to_uint (f, BROKER_PATH, BROKER_IFACE, "TopicCount", 0), 5);

  assert_call_fails (f, "DeleteTopic", g_variant_new ("(s)", name),
                     "dev.pubsub.Error.TopicNotFound");

  /* A deleted name can be created again. */
  call_ok (f, "CreateTopic", g_variant_new ("(s)", name));
  g_assert_cmpuint (get_uint32_property (f, BROKER_PATH, BROKER_IFACE, "TopicCount"), ==, 1);
}

static guint
n_children_of_reply (Fixture    *f,
                     const char *method,
                     const char *reply_type)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = call (f, method, NULL, reply_type, &error);
  g_autoptr(GVariant) array = NULL;

  g_assert_no_error (error);
  array = g_variant_get_child_value (reply, 0);
  return (guint) g_variant_n_children (array);
}

static void
test_list_and_stats (Fixture       *f,
                     gconstpointer  data)
{
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) stats = NULL;
  g_autoptr(GVariant) a = NULL;
  g_autoptr(GVariant) b = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *printed = NULL;
  guint32 subscribers;
  guint64 messages;

  g_assert_cmpuint (n_children_of_reply (f, "ListTopics", "(a(su))"), ==, 0);
  g_assert_cmpuint (n_children_of_reply (f, "GetStats", "(a{sa{sv}})"), ==, 0);

  call_ok (f, "CreateTopic", g_variant_new ("(s)", "b"));
  call_ok (f, "CreateTopic", g_variant_new ("(s)", "B"));
  call_ok (f, "CreateTopic", g_variant_new ("(s)", "a"));
  for (guint i = 0; i < 3; i++)
    g_free (publish (f, "a", "", "{\"n\":1}"));

  /* Sorted by byte value: "B" < "a" < "b". */
  reply = call (f, "ListTopics", NULL, "(a(su))", &error);
  g_assert_no_error (error);
  printed = g_variant_print (reply, FALSE);
  g_assert_cmpstr (printed, ==, "([('B', 0), ('a', 0), ('b', 0)],)");
  g_clear_pointer (&reply, g_variant_unref);

  reply = call (f, "GetStats", NULL, "(a{sa{sv}})", &error);
  g_assert_no_error (error);
  stats = g_variant_get_child_value (reply, 0);
  g_assert_cmpuint (g_variant_n_children (stats), ==, 3);
  a = g_variant_lookup_value (stats, "a", G_VARIANT_TYPE_VARDICT);
  b = g_variant_lookup_value (stats, "b", G_VARIANT_TYPE_VARDICT);
  g_assert_nonnull (a);
  g_assert_nonnull (b);
  g_assert_true (g_variant_lookup (a, "messages", "t", &messages));
  g_assert_cmpuint (messages, ==, 3);
  g_assert_true (g_variant_lookup (a, "subscribers", "u", &subscribers));
  g_assert_cmpuint (subscribers, ==, 0);
  g_assert_true (g_variant_lookup (b, "messages", "t", &messages));
  g_assert_cmpuint (messages, ==, 0);
}

static void
test_publish (Fixture       *f,
              gconstpointer  data)
{
  const char *uuid = "0b0c1e46-7f6a-4d3e-9a57-3c1c5a1f0e2d";
  g_autofree char *fresh = NULL;
  g_autofree char *given = NULL;
  g_autofree char *path = topic_path ("p");

  call_ok (f, "CreateTopic", g_variant_new ("(s)", "p"));

  fresh = publish (f, "p", "", "{\"a\":[1,2.5,\"x\",null,true]}");
  g_assert_true (g_uuid_string_is_valid (fresh));
  given = publish (f, "p", uuid, "42");
  g_assert_cmpstr (given, ==, uuid);

  assert_call_fails (f, "Publish", g_variant_new ("(sss)", "p", "not-a-uuid", "1"),
                     "dev.pubsub.Error.InvalidArgument");
  assert_call_fails (f, "Publish", g_variant_new ("(sss)", "p", "", "{\"a\":"),
                     "dev.pubsub.Error.InvalidArgument");
  assert_call_fails (f, "Publish", g_variant_new ("(sss)", "p", "", ""),
                     "dev.pubsub.Error.InvalidArgument");
  assert_call_fails (f, "Publish", g_variant_new ("(sss)", "nope", "", "1"),
                     "dev.pubsub.Error.TopicNotFound");
  assert_call_fails (f, "Publish", g_variant_new ("(sss)", "bad name", "", "1"),
                     "dev.pubsub.Error.InvalidArgument");

  /* Only the two good ones were counted. */
  wait_for (changed_to_uint (f, path, TOPIC_IFACE, "Messages", 2), 2);
}


/* SPEC §8 on D-Bus: Epoch and Seq, and Publish by id is idempotent. */
static void
test_epoch_seq_idempotent (Fixture       *f,
                           gconstpointer  data)
{
  const char *uuid = "0b0c1e46-7f6a-4d3e-9a57-3c1c5a1f0e2d";
  g_autofree char *path = topic_path ("e");
  g_autofree char *first = NULL;
  g_autofree char *again = NULL;
  g_autofree char *other = NULL;
  g_autoptr(GVariant) epoch = NULL;
  g_autoptr(GVariant) seq = NULL;
  g_autoptr(GVariant) messages = NULL;
  const char *text;

  call_ok (f, "CreateTopic", g_variant_new ("(s)", "e"));
  epoch = get_property (f, path, TOPIC_IFACE, "Epoch");
  text = g_variant_get_string (epoch, NULL);
  g_assert_cmpuint (strlen (text), ==, 16);
  g_assert_cmpuint (strspn (text, "0123456789abcdef"), ==, 16);
  seq = get_property (f, path, TOPIC_IFACE, "Seq");
  g_assert_cmpuint (g_variant_get_uint64 (seq), ==, 0);

  first = publish (f, "e", uuid, "1");
  again = publish (f, "e", uuid, "2");
  g_assert_cmpstr (first, ==, uuid);
  g_assert_cmpstr (again, ==, uuid);
  other = publish (f, "e", "", "3");
  /* The retry was not published again: seq 2 is the third call's. */
  wait_for (changed_to_uint (f, path, TOPIC_IFACE, "Seq", 2), 2);
  messages = get_property (f, path, TOPIC_IFACE, "Messages");
  g_assert_cmpuint (g_variant_get_uint64 (messages), ==, 2);
}

static const char *const max_one_topic[] = { "--max-topics", "1", NULL };
static const TestCase limit_case = { max_one_topic };

static void
test_limit (Fixture       *f,
            gconstpointer  data)
{
  call_ok (f, "CreateTopic", g_variant_new ("(s)", "first"));
  assert_call_fails (f, "CreateTopic", g_variant_new ("(s)", "second"),
                     "dev.pubsub.Error.LimitExceeded");
}

/* A GDBus caller that registers the names from the error table gets
 * PUBSUB_ERROR back from the daemon's replies, with the broker's own message. */
static void
test_error_domain (Fixture       *f,
                   gconstpointer  data)
{
  g_autoptr(GError) missing = NULL;
  g_autoptr(GError) bad_name = NULL;
  g_autoptr(GVariant) reply = NULL;

  pubsub_dbus_error_register ();

  reply = call (f, "DeleteTopic", g_variant_new ("(s)", "nope"), NULL, &missing);
  g_assert_null (reply);
  g_assert_error (missing, PUBSUB_ERROR, PUBSUB_ERROR_TOPIC_NOT_FOUND);
  g_assert_true (g_dbus_error_strip_remote_error (missing));
  g_assert_cmpstr (missing->message, ==, "topic 'nope' does not exist");

  reply = call (f, "CreateTopic", g_variant_new ("(s)", "bad name"), NULL, &bad_name);
  g_assert_null (reply);
  g_assert_error (bad_name, PUBSUB_ERROR, PUBSUB_ERROR_BAD_REQUEST);
}

static void
test_object_manager (Fixture       *f,
                     gconstpointer  data)
{
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) objects = NULL;
  g_autoptr(GVariant) interfaces = NULL;
  g_autoptr(GVariant) props = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *path_x = topic_path ("x");
  g_autofree char *path_y = topic_path ("y.z");
  const char *name;
  guint32 subscribers;
  guint64 messages;

  call_ok (f, "CreateTopic", g_variant_new ("(s)", "x"));
  call_ok (f, "CreateTopic", g_variant_new ("(s)", "y.z"));
  g_free (publish (f, "y.z", "", "true"));

  reply = g_dbus_connection_call_sync (f->connection, BUS_NAME, BROKER_PATH, OM_IFACE,
                                       "GetManagedObjects", NULL,
                                       G_VARIANT_TYPE ("(a{oa{sa{sv}}})"),
                                       G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
  g_assert_no_error (error);
  objects = g_variant_get_child_value (reply, 0);
  g_assert_cmpuint (g_variant_n_children (objects), ==, 2);
  g_assert_true (g_variant_lookup (objects, path_x, "@a{sa{sv}}", &interfaces));
  g_clear_pointer (&interfaces, g_variant_unref);
  g_assert_true (g_variant_lookup (objects, path_y, "@a{sa{sv}}", &interfaces));
  props = g_variant_lookup_value (interfaces, TOPIC_IFACE, G_VARIANT_TYPE_VARDICT);
  g_assert_nonnull (props);
  g_assert_true (g_variant_lookup (props, "Name", "&s", &name));
  g_assert_cmpstr (name, ==, "y.z");
  g_assert_true (g_variant_lookup (props, "Subscribers", "u", &subscribers));
  g_assert_cmpuint (subscribers, ==, 0);
  /* Messages may lag by one flush: that is the documented rate limit. */
  g_assert_true (g_variant_lookup (props, "Messages", "t", &messages));
  g_assert_cmpuint (messages, <=, 1);
}

static void
test_rest_and_dbus (Fixture       *f,
                    gconstpointer  data)
{
  g_autofree char *body = NULL;
  g_autofree char *path = topic_path ("from-rest");

  /* REST → D-Bus */
  g_assert_cmpuint (http_request (f->daemon, "POST", "/topics", "{\"name\":\"from-rest\"}", NULL),
                    ==, 201);
  wait_for (find_signal (f, BROKER_PATH, BROKER_IFACE, "TopicCreated", "from-rest") != NULL, 5);
  wait_for (find_signal (f, BROKER_PATH, OM_IFACE, "InterfacesAdded", path) != NULL, 5);
  g_assert_cmpuint (http_request (f->daemon, "DELETE", "/topics/from-rest", NULL, NULL), ==, 200);
  wait_for (find_signal (f, BROKER_PATH, BROKER_IFACE, "TopicDeleted", "from-rest") != NULL, 5);
  wait_for (find_signal (f, BROKER_PATH, OM_IFACE, "InterfacesRemoved", path) != NULL, 5);

  /* D-Bus → REST */
  call_ok (f, "CreateTopic", g_variant_new ("(s)", "from-dbus"));
  g_assert_cmpuint (http_request (f->daemon, "GET", "/topics", NULL, &body), ==, 200);
  g_assert_cmpstr (body, ==, "{\"topics\":[{\"name\":\"from-dbus\",\"subscribers\":0}]}");
  g_clear_pointer (&body, g_free);
  call_ok (f, "DeleteTopic", g_variant_new ("(s)", "from-dbus"));
  g_assert_cmpuint (http_request (f->daemon, "GET", "/topics", NULL, &body), ==, 200);
  g_assert_cmpstr (body, ==, "{\"topics\":[]}");
}

static void
test_publish_to_websocket (Fixture       *f,
                           gconstpointer  data)
{
  const char *payload = "{\"text\":\"Grüße \\\"quoted\\\"\",\"n\":[1,-2.5e3,null],\"ok\":true}";
  g_autofree char *path = topic_path ("live");
  g_autofree char *id = NULL;
  g_autofree char *received = NULL;
  g_autoptr(JsonNode) expected = NULL;
  g_autoptr(JsonNode) actual = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(PubsubTestWs) ws = NULL;
  g_autoptr(PubsubTestFrame) event = NULL;
  g_autoptr(PubsubTestFrame) info = NULL;

  call_ok (f, "CreateTopic", g_variant_new ("(s)", "live"));
  ws = pubsub_test_ws_connect (f->daemon, NULL, NULL);
  pubsub_test_ws_subscribe (ws, "live", 0);

  /* Counters reach D-Bus within a flush. */
  wait_for (changed_to_uint (f, path, TOPIC_IFACE, "Subscribers", 1), 2);
  wait_for (changed_to_uint (f, BROKER_PATH, BROKER_IFACE, "SubscriberCount", 1), 2);
  g_assert_cmpuint (get_uint32_property (f, path, TOPIC_IFACE, "Subscribers"), ==, 1);

  id = publish (f, "live", "", payload);
  event = pubsub_test_ws_wait_for (ws, "event", 5000);
  g_assert_cmpstr (pubsub_test_frame_get_string (event, "topic", NULL), ==, "live");
  g_assert_cmpstr (pubsub_test_frame_get_string (event, "message", "id"), ==, id);
  received = pubsub_test_frame_dup_raw (event, "message", "payload", NULL);
  expected = json_from_string (payload, &error);
  g_assert_no_error (error);
  actual = json_from_string (received, &error);
  g_assert_no_error (error);
  g_assert_true (json_node_equal (actual, expected));

  /* Deleting over D-Bus tells the subscriber and keeps it connected. */
  call_ok (f, "DeleteTopic", g_variant_new ("(s)", "live"));
  info = pubsub_test_ws_wait_for (ws, "info", 5000);
  g_assert_cmpstr (pubsub_test_frame_get_string (info, "msg", NULL), ==, "topic_deleted");
  g_assert_cmpstr (pubsub_test_frame_get_string (info, "topic", NULL), ==, "live");
  wait_for (changed_to_uint (f, BROKER_PATH, BROKER_IFACE, "SubscriberCount", 0), 2);
  g_assert_false (ws->closed);
}

#define BURST_SIZE 2000
/* The test bus allows 128 pending replies per connection. */
#define BURST_WINDOW 64

typedef struct {
  GDBusConnection *connection;
  guint            sent;
  guint            replies;
  guint            errors;
  gint64           last_reply;
} Burst;

static void burst_send (Burst *burst);

static void
on_burst_reply (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  Burst *burst = user_data;
  g_autoptr(GVariant) reply = NULL;

  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, NULL);
  if (reply == NULL)
    burst->errors++;
  burst->replies++;
  burst->last_reply = g_get_monotonic_time ();
  burst_send (burst);
}

/* Keeps BURST_WINDOW calls in flight until BURST_SIZE are sent. */
static void
burst_send (Burst *burst)
{
  while (burst->sent < BURST_SIZE && burst->sent - burst->replies < BURST_WINDOW)
    {
      g_dbus_connection_call (burst->connection, BUS_NAME, BROKER_PATH, BROKER_IFACE, "Publish",
                              g_variant_new ("(sss)", "burst", "", "{\"i\":1}"),
                              G_VARIANT_TYPE ("(s)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL,
                              on_burst_reply, burst);
      burst->sent++;
    }
}

static void
test_coalesced_properties (Fixture       *f,
                           gconstpointer  data)
{
  g_autofree char *path = topic_path ("burst");
  g_autoptr(GVariant) messages = NULL;
  Burst burst = { f->connection, 0, };
  gint64 first_call;
  gint64 final_seen;
  guint n_signals = 0;
  guint64 elapsed_ms;

  call_ok (f, "CreateTopic", g_variant_new ("(s)", "burst"));

  first_call = g_get_monotonic_time ();
  burst_send (&burst);
  wait_for (burst.replies == BURST_SIZE, 60);
  g_assert_cmpuint (burst.errors, ==, 0);

  /* The final value is on the bus within a second of the last publish. */
  wait_for (changed_to_uint (f, path, TOPIC_IFACE, "Messages", BURST_SIZE), 2);
  final_seen = g_get_monotonic_time ();
  g_assert_cmpint (final_seen - burst.last_reply, <=,
                   G_USEC_PER_SEC * (gint64) pubsub_test_timeout_scale ());
  messages = get_property (f, path, TOPIC_IFACE, "Messages");
  g_assert_cmpuint (g_variant_get_uint64 (messages), ==, BURST_SIZE);

  /* Far fewer signals than messages: at most one per 250 ms flush (plus
   * the first), however fast the messages came. */
  g_clear_pointer (&messages, g_variant_unref);
  messages = last_changed_value (f, path, TOPIC_IFACE, "Messages", &n_signals);
  elapsed_ms = (guint64) (final_seen - first_call) / 1000;
  g_test_message ("%u messages in %" G_GUINT64_FORMAT " ms: %u PropertiesChanged",
                  BURST_SIZE, elapsed_ms, n_signals);
  g_assert_cmpuint (n_signals, >=, 1);
  g_assert_cmpuint (n_signals, <=, elapsed_ms / 250 + 2);
  g_assert_cmpuint (n_signals, <, BURST_SIZE / 10);
}

static void
test_bus_lost (Fixture       *f,
               gconstpointer  data)
{
  g_autofree char *body = NULL;

  call_ok (f, "CreateTopic", g_variant_new ("(s)", "survivor"));

  g_dbus_connection_signal_unsubscribe (f->connection, f->signal_id);
  g_clear_object (&f->connection);
  g_test_dbus_down (f->bus);
  f->bus_up = FALSE;

  pubsub_test_server_wait_for_log (f->daemon, "Lost the connection to the D-Bus bus", 10000);
  g_assert_false (f->daemon->exited);
  g_assert_cmpuint (http_request (f->daemon, "GET", "/health", NULL, NULL), ==, 200);
  g_assert_cmpuint (http_request (f->daemon, "GET", "/topics", NULL, &body), ==, 200);
  g_assert_cmpstr (body, ==, "{\"topics\":[{\"name\":\"survivor\",\"subscribers\":0}]}");
}

static void
test_name_taken (Fixture       *f,
                 gconstpointer  data)
{
  g_autofree char *first_owner = g_strdup (f->owner);
  g_autofree char *first_address = daemon_address (f->daemon);
  g_autofree char *owner = NULL;
  g_autoptr(GVariant) address = NULL;
  PubsubTestServer *second;

  second = start_daemon (NULL);
  pubsub_test_server_wait_for_log (second, "Could not own the D-Bus name", 10000);
  g_assert_false (second->exited);
  g_assert_cmpuint (http_request (second, "GET", "/health", NULL, NULL), ==, 200);

  /* The first instance keeps the name and keeps answering. */
  owner = get_name_owner (f);
  g_assert_cmpstr (owner, ==, first_owner);
  address = get_property (f, BROKER_PATH, BROKER_IFACE, "ListenAddress");
  g_assert_cmpstr (g_variant_get_string (address, NULL), ==, first_address);

  stop_daemon (second);
}

/* ---- SubscriberJoined / SubscriberLeft (SPEC §10) ---------------------- */

/* The subscriber signals about @topic so far, in order: "+client" for a
 * join, "-client:reason" for a leave, separated by spaces. */
static char *
subscriber_log (Fixture    *f,
                const char *topic)
{
  GString *log = g_string_new (NULL);

  for (guint i = 0; i < f->signals->len; i++)
    {
      Signal *signal = g_ptr_array_index (f->signals, i);
      const char *name;
      const char *client_id;
      const char *reason;

      if (g_strcmp0 (signal->sender, f->owner) != 0 ||
          g_strcmp0 (signal->path, BROKER_PATH) != 0 ||
          g_strcmp0 (signal->interface, BROKER_IFACE) != 0)
        continue;
      if (g_str_equal (signal->member, "SubscriberJoined"))
        {
          g_assert_true (g_variant_is_of_type (signal->parameters, G_VARIANT_TYPE ("(ss)")));
          g_variant_get (signal->parameters, "(&s&s)", &name, &client_id);
          if (g_str_equal (name, topic))
            g_string_append_printf (log, "%s+%s", log->len > 0 ? " " : "", client_id);
        }
      else if (g_str_equal (signal->member, "SubscriberLeft"))
        {
          g_assert_true (g_variant_is_of_type (signal->parameters, G_VARIANT_TYPE ("(sss)")));
          g_variant_get (signal->parameters, "(&s&s&s)", &name, &client_id, &reason);
          if (g_str_equal (name, topic))
            g_string_append_printf (log, "%s-%s:%s", log->len > 0 ? " " : "", client_id, reason);
        }
    }
  return g_string_free (log, FALSE);
}

static gboolean
subscriber_log_is (Fixture    *f,
                   const char *topic,
                   const char *expected)
{
  g_autofree char *log = subscriber_log (f, topic);

  return g_str_equal (log, expected);
}

/* Waits for the log of @topic to be exactly @expected (and says what it was
 * when it is not, at the deadline). */
static void
wait_for_subscriber_log (Fixture    *f,
                         const char *topic,
                         const char *expected)
{
  gint64 deadline = g_get_monotonic_time () +
                    10 * G_USEC_PER_SEC * (gint64) pubsub_test_timeout_scale ();

  while (!subscriber_log_is (f, topic, expected))
    {
      if (g_get_monotonic_time () > deadline)
        {
          g_autofree char *log = subscriber_log (f, topic);

          g_error ("the subscriber signals of '%s' are '%s', expected '%s'", topic, log, expected);
        }
      pubsub_test_iterate ();
    }
}

static void
ws_subscribe_as (PubsubTestWs *ws,
                 const char   *topic,
                 const char   *client_id)
{
  g_autoptr(PubsubTestFrame) ack = NULL;

  pubsub_test_ws_sendf (ws, "{\"type\":\"subscribe\",\"topic\":\"%s\",\"client_id\":\"%s\","
                        "\"request_id\":\"sub\"}", topic, client_id);
  ack = pubsub_test_ws_take (ws, "ack", 5000);
  g_assert_cmpstr (pubsub_test_frame_get_string (ack, "request_id", NULL), ==, "sub");
}

static void
ws_unsubscribe_as (PubsubTestWs *ws,
                   const char   *topic,
                   const char   *client_id)
{
  g_autoptr(PubsubTestFrame) ack = NULL;

  pubsub_test_ws_sendf (ws, "{\"type\":\"unsubscribe\",\"topic\":\"%s\",\"client_id\":\"%s\","
                        "\"request_id\":\"unsub\"}", topic, client_id);
  ack = pubsub_test_ws_take (ws, "ack", 5000);
  g_assert_cmpstr (pubsub_test_frame_get_string (ack, "request_id", NULL), ==, "unsub");
}

static void
assert_signal_signature (GDBusInterfaceInfo *iface,
                         const char         *name,
                         const char         *signature)
{
  GDBusSignalInfo *signal = g_dbus_interface_info_lookup_signal (iface, name);
  g_autoptr(GString) found = g_string_new (NULL);

  g_assert_nonnull (signal);
  for (guint i = 0; signal->args != NULL && signal->args[i] != NULL; i++)
    g_string_append (found, signal->args[i]->signature);
  g_assert_cmpstr (found->str, ==, signature);
}

static void
test_subscriber_introspection (Fixture       *f,
                               gconstpointer  data)
{
  g_autoptr(GDBusNodeInfo) broker = introspect (f, BROKER_PATH);
  GDBusInterfaceInfo *iface = g_dbus_node_info_lookup_interface (broker, BROKER_IFACE);
  g_autoptr(GVariant) dropped = NULL;

  g_assert_nonnull (iface);
  assert_signal_signature (iface, "SubscriberJoined", "ss");
  assert_signal_signature (iface, "SubscriberLeft", "sss");
  assert_property (iface, "SignalsDropped", "t");
  dropped = get_property (f, BROKER_PATH, BROKER_IFACE, "SignalsDropped");
  g_assert_cmpuint (g_variant_get_uint64 (dropped), ==, 0);
}

/* Joins, and leaves for each reason a client can cause or see. */
static void
test_subscriber_signals (Fixture       *f,
                         gconstpointer  data)
{
  g_autoptr(PubsubTestWs) alice = NULL;
  g_autoptr(PubsubTestWs) bob = NULL;
  g_autoptr(PubsubTestWs) carol = NULL;
  g_autoptr(PubsubTestFrame) info = NULL;
  gint left_index = -1;
  gint deleted_index = -1;

  call_ok (f, "CreateTopic", g_variant_new ("(s)", "room"));
  alice = pubsub_test_ws_connect (f->daemon, NULL, NULL);
  bob = pubsub_test_ws_connect (f->daemon, NULL, NULL);
  carol = pubsub_test_ws_connect (f->daemon, NULL, NULL);

  ws_subscribe_as (alice, "room", "alice");
  wait_for_subscriber_log (f, "room", "+alice");
  /* Subscribing again changes nothing, so says nothing. */
  ws_subscribe_as (alice, "room", "alice");
  ws_unsubscribe_as (alice, "room", "alice");
  wait_for_subscriber_log (f, "room", "+alice -alice:unsubscribed");
  /* Unsubscribing when not subscribed: nothing either. */
  ws_unsubscribe_as (alice, "room", "alice");

  ws_subscribe_as (bob, "room", "bob (ünïcode) \\\"quoted\\\"");
  g_clear_pointer (&bob, pubsub_test_ws_free);
  wait_for_subscriber_log (f, "room",
                           "+alice -alice:unsubscribed "
                           "+bob (ünïcode) \"quoted\" -bob (ünïcode) \"quoted\":closed");

  ws_subscribe_as (carol, "room", "carol");
  call_ok (f, "DeleteTopic", g_variant_new ("(s)", "room"));
  info = pubsub_test_ws_wait_for (carol, "info", 5000);
  g_assert_cmpstr (pubsub_test_frame_get_string (info, "msg", NULL), ==, "topic_deleted");
  wait_for_subscriber_log (f, "room",
                           "+alice -alice:unsubscribed "
                           "+bob (ünïcode) \"quoted\" -bob (ünïcode) \"quoted\":closed "
                           "+carol -carol:topic_deleted");

  /* The subscribers are gone before the topic is: on the bus in that order. */
  wait_for (find_signal (f, BROKER_PATH, BROKER_IFACE, "TopicDeleted", "room") != NULL, 5);
  for (guint i = 0; i < f->signals->len; i++)
    {
      Signal *signal = g_ptr_array_index (f->signals, i);
      g_autofree char *printed = g_variant_print (signal->parameters, FALSE);

      if (g_str_equal (signal->member, "SubscriberLeft") &&
          g_str_equal (printed, "('room', 'carol', 'topic_deleted')"))
        left_index = (gint) i;
      if (g_str_equal (signal->member, "TopicDeleted") && g_str_equal (printed, "('room',)"))
        deleted_index = (gint) i;
    }
  g_assert_cmpint (left_index, >=, 0);
  g_assert_cmpint (left_index, <, deleted_index);
}

static const char *const small_queue[] = { "--queue-size", "10", NULL };
static const TestCase small_queue_case = { small_queue };

static void
test_subscriber_left_slow (Fixture       *f,
                           gconstpointer  data)
{
  g_autoptr(PubsubTestRawWs) raw = pubsub_test_raw_ws_connect (f->daemon, "/ws", 4096, NULL);
  g_autofree char *pad = g_strnfill (8000, 'r');

  g_assert_nonnull (raw);
  call_ok (f, "CreateTopic", g_variant_new ("(s)", "busy"));
  pubsub_test_raw_ws_send_text (raw, "{\"type\":\"subscribe\",\"topic\":\"busy\","
                                     "\"client_id\":\"slowpoke\"}");
  wait_for_subscriber_log (f, "busy", "+slowpoke");

  /* Pongs it never reads overflow its queue. */
  for (guint i = 0; i < 1500 && subscriber_log_is (f, "busy", "+slowpoke"); i++)
    {
      g_autofree char *ping = g_strdup_printf ("{\"type\":\"ping\",\"request_id\":\"%u-%s\"}",
                                               i, pad);

      pubsub_test_raw_ws_send_text (raw, ping);
      pubsub_test_iterate ();
    }
  wait_for_subscriber_log (f, "busy", "+slowpoke -slowpoke:slow_consumer");
}

static void
test_subscriber_left_shutdown (Fixture       *f,
                               gconstpointer  data)
{
  g_autoptr(PubsubTestWs) dave = pubsub_test_ws_connect (f->daemon, NULL, NULL);

  call_ok (f, "CreateTopic", g_variant_new ("(s)", "news"));
  ws_subscribe_as (dave, "news", "dave");
  wait_for_subscriber_log (f, "news", "+dave");

  pubsub_test_server_signal (f->daemon, SIGTERM);
  wait_for_subscriber_log (f, "news", "+dave -dave:shutdown");
  pubsub_test_ws_wait_closed (dave, 10000);
  g_assert_cmpuint (dave->close_code, ==, 1001);
  /* The teardown checks the exit status. */
  pubsub_test_server_wait_exit (f->daemon, 15000);
}

#define STORM_CYCLES 100

/* A storm of joins and leaves on one topic: a burst goes out, then about
 * ten a second; the rest is counted in SignalsDropped, announced coalesced.
 * Another topic is not held back by it. */
static void
test_subscriber_signal_rate_limit (Fixture       *f,
                                   gconstpointer  data)
{
  g_autoptr(PubsubTestWs) storm = pubsub_test_ws_connect (f->daemon, NULL, NULL);
  g_autoptr(PubsubTestWs) calm = pubsub_test_ws_connect (f->daemon, NULL, NULL);
  g_autoptr(PubsubTestFrame) pong = NULL;
  g_autoptr(GVariant) property = NULL;
  g_autoptr(GVariant) announced = NULL;
  g_autofree char *log = NULL;
  guint emitted = 0;
  guint n_changed = 0;
  guint64 dropped = 0;
  gint64 start;
  double elapsed;

  call_ok (f, "CreateTopic", g_variant_new ("(s)", "storm"));
  call_ok (f, "CreateTopic", g_variant_new ("(s)", "calm"));

  start = g_get_monotonic_time ();
  for (guint i = 0; i < STORM_CYCLES; i++)
    {
      pubsub_test_ws_send (storm, "{\"type\":\"subscribe\",\"topic\":\"storm\",\"client_id\":\"s\"}");
      pubsub_test_ws_send (storm, "{\"type\":\"unsubscribe\",\"topic\":\"storm\",\"client_id\":\"s\"}");
    }
  pubsub_test_ws_send (storm, "{\"type\":\"ping\",\"request_id\":\"done\"}");
  pong = pubsub_test_ws_take (storm, "pong", 20000);
  elapsed = (double) (g_get_monotonic_time () - start) / G_USEC_PER_SEC;

  /* Every join and leave is either on the bus or counted. */
  for (gint64 deadline = g_get_monotonic_time () +
                         10 * G_USEC_PER_SEC * (gint64) pubsub_test_timeout_scale ();
       ; pubsub_test_iterate ())
    {
      g_clear_pointer (&log, g_free);
      g_clear_pointer (&announced, g_variant_unref);
      log = subscriber_log (f, "storm");
      emitted = *log == '\0' ? 0 : 1;
      for (const char *p = log; *p != '\0'; p++)
        emitted += *p == ' ';
      announced = last_changed_value (f, BROKER_PATH, BROKER_IFACE, "SignalsDropped", &n_changed);
      dropped = announced != NULL ? g_variant_get_uint64 (announced) : 0;
      if (emitted + dropped == 2 * STORM_CYCLES)
        break;
      if (g_get_monotonic_time () > deadline)
        g_error ("%u signals and %" G_GUINT64_FORMAT " dropped of %u", emitted, dropped,
                 2 * STORM_CYCLES);
    }
  g_test_message ("%u joins and leaves in %.3f s: %u signals, %" G_GUINT64_FORMAT " dropped, "
                  "%u PropertiesChanged", 2 * STORM_CYCLES, elapsed, emitted, dropped, n_changed);

  /* The burst, then ten a second at most. */
  g_assert_cmpuint (emitted, >=, 10);
  g_assert_cmpfloat (emitted, <=, 10 + 10 * elapsed + 1);
  g_assert_cmpuint (dropped, >, 0);
  g_assert_true (g_str_has_prefix (log, "+s -s:unsubscribed +s -s:unsubscribed"));
  property = get_property (f, BROKER_PATH, BROKER_IFACE, "SignalsDropped");
  g_assert_cmpuint (g_variant_get_uint64 (property), ==, dropped);
  /* Coalesced: at most one PropertiesChanged per 250 ms flush (and the first). */
  g_assert_cmpuint (n_changed, >=, 1);
  g_assert_cmpuint (n_changed, <=, (guint) (elapsed * 4) + 2 * pubsub_test_timeout_scale () + 2);

  /* The limit is per topic. */
  ws_subscribe_as (calm, "calm", "quiet");
  wait_for_subscriber_log (f, "calm", "+quiet");
}

/* Not a fixture test: there is no bus at all. */
static void
test_no_bus (void)
{
  const char *const env[] = { "DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent/pubsub-test-bus",
                              NULL };
  PubsubTestServer *server;

  server = pubsub_test_server_start_full (PUBSUB_TEST_SERVER_DEFAULT, env, session_bus_args);
  pubsub_test_server_wait_for_log (server, "Cannot connect to the D-Bus bus", 10000);
  g_assert_cmpuint (http_request (server, "GET", "/health", NULL, NULL), ==, 200);
  stop_daemon (server);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  pubsub_test_quiet_debug ();

#define ADD(path, test_case, func) \
  g_test_add (path, Fixture, test_case, fixture_set_up, func, fixture_tear_down)

  ADD ("/dbus/introspection", NULL, test_introspection);
  ADD ("/dbus/properties", NULL, test_properties);
  ADD ("/dbus/create-delete", NULL, test_create_delete);
  ADD ("/dbus/list-and-stats", NULL, test_list_and_stats);
  ADD ("/dbus/publish", NULL, test_publish);
  ADD ("/dbus/epoch-seq-idempotent", NULL, test_epoch_seq_idempotent);
  ADD ("/dbus/limit-exceeded", &limit_case, test_limit);
  ADD ("/dbus/error-domain", NULL, test_error_domain);
  ADD ("/dbus/object-manager", NULL, test_object_manager);
  ADD ("/dbus/rest-and-dbus", NULL, test_rest_and_dbus);
  ADD ("/dbus/publish-to-websocket", NULL, test_publish_to_websocket);
  ADD ("/dbus/coalesced-properties", NULL, test_coalesced_properties);
  ADD ("/dbus/bus-lost", NULL, test_bus_lost);
  ADD ("/dbus/name-taken", NULL, test_name_taken);
  ADD ("/dbus/subscriber/introspection", NULL, test_subscriber_introspection);
  ADD ("/dbus/subscriber/signals", NULL, test_subscriber_signals);
  ADD ("/dbus/subscriber/left-slow-consumer", &small_queue_case, test_subscriber_left_slow);
  ADD ("/dbus/subscriber/left-shutdown", NULL, test_subscriber_left_shutdown);
  ADD ("/dbus/subscriber/rate-limit", NULL, test_subscriber_signal_rate_limit);
  g_test_add_func ("/dbus/no-bus", test_no_bus);

#undef ADD

  return g_test_run ();
}
