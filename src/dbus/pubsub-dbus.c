/* pubsub-dbus.c: the broker on D-Bus (dev.pubsub.Broker1, dev.pubsub.Topic1)
 *
 * The broker object (/dev/pubsub/Broker) is a generated Broker1 skeleton whose
 * "handle-*" signals call into PubsubBroker; every topic is a generated object
 * skeleton with a Topic1 interface, exported through a
 * GDBusObjectManagerServer rooted at the broker path. All of it mirrors the
 * broker's own signals, so topics created over REST show up here and the
 * other way round.
 *
 * Counters that change on the hot path (a topic's Messages and Subscribers,
 * the broker's SubscriberCount) are not copied to D-Bus on every change: the
 * notify handlers only mark the object dirty and arm one broker-wide timer,
 * which copies the current values of the dirty objects. The timer fires at
 * once when the last flush is older than FLUSH_INTERVAL_MS (so a lone change
 * is visible immediately) and otherwise when the interval is over. The
 * generated skeletons then emit one PropertiesChanged per object and flush,
 * so a topic receiving 100k messages per second costs the bus four signals
 * per second.
 *
 * SubscriberJoined and SubscriberLeft cannot be coalesced (each names a
 * client), so each topic has a token bucket instead: SIGNAL_BURST signals at
 * once, then SIGNALS_PER_SECOND. What the bucket refuses is counted in
 * SignalsDropped, a property flushed like the counters above.
 *
 * The bus is optional: no bus, a closed connection or a lost name is one
 * warning, and the rest of the daemon (HTTP, WebSocket) keeps serving.
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <glib/gi18n.h>

#include "pubsub-dbus.h"
#include "pubsub-dbus-generated.h"
#include "pubsub-error.h"
#include "pubsub-protocol.h"

/* The shortest time between two property flushes: at most four
 * PropertiesChanged per second and object, and the final values are on the
 * bus within a quarter of a second. */
#define FLUSH_INTERVAL_MS 250

/* Subscriber signals per topic: a burst of 10, then 10 per second. */
#define SIGNALS_PER_SECOND 10
#define SIGNAL_BURST 10
#define SIGNAL_INTERVAL_US (G_USEC_PER_SEC / SIGNALS_PER_SECOND)

/**
 * pubsub_dbus_error_register:
 *
 * Gives every #PubsubError its D-Bus name, from the one table in
 * pubsub-error.c, as fwupd does for its domain. The daemon's replies do not
 * need it (return_error() names the error from the table itself); a GDBus
 * caller in the same process (the tests) does, to get its %PUBSUB_ERROR back
 * from a reply. Safe to call more than once.
 */
void
pubsub_dbus_error_register (void)
{
  static gsize registered = 0;

  if (!g_once_init_enter (&registered))
    return;
  for (guint code = 0; code < PUBSUB_ERROR_LAST; code++)
    {
      const char *name = pubsub_error_get_info (code)->dbus_name;

      /* Fails only for a name or code given twice: a bug in the table. */
      if (!g_dbus_error_register_error (PUBSUB_ERROR, (gint) code, name))
        g_warning ("D-Bus error %s is registered twice", name);
    }
  g_once_init_leave (&registered, 1);
}

/* One topic on the bus. Allocated once and never moved: it is the user data
 * of the topic's notify handlers and its dirty_link sits in the dirty queue. */
typedef struct {
  PubsubDBusService        *service;         /* unowned: owns this entry */
  PubsubTopic              *topic;           /* owned */
  PubsubDBusObjectSkeleton *object;          /* owned */
  PubsubDBusTopic1         *iface;           /* owned */
  gulong                    subscribers_id;
  gulong                    messages_id;
  gulong                    joined_id;
  gulong                    left_id;
  gint64                    signal_due;      /* the bucket: monotonic µs when it is full */
  gboolean                  dirty;           /* dirty_link is in service->dirty */
  GList                     dirty_link;      /* .data = this entry */
} TopicEntry;

struct _PubsubDBusService {
  GObject                   parent_instance;

  PubsubBroker             *broker;          /* owned */
  char                     *listen_address;  /* owned */
  PubsubDBusBroker1        *skeleton;        /* owned: Broker1 at PUBSUB_DBUS_PATH */
  GDBusObjectManagerServer *manager;         /* owned: topic objects */
  GHashTable               *topics;          /* owned: PubsubTopic* → owned TopicEntry */

  GQueue                    dirty;           /* TopicEntry links waiting for the flush */
  gboolean                  broker_dirty;    /* SubscriberCount waits for the flush */
  guint64                   signals_dropped;
  gboolean                  dropped_dirty;   /* SignalsDropped waits for the flush */
  guint                     flush_id;
  guint                     nodes_id;      /* cluster mode: polls the live nodes */
  gint64                    last_flush;      /* monotonic µs, 0 before the first */

  gulong                    topic_created_id;
  gulong                    topic_deleted_id;
  gulong                    topic_count_id;
  gulong                    subscriber_count_id;

  GCancellable             *cancellable;     /* owned: the pending g_bus_get() */
  GDBusConnection          *connection;      /* owned, NULL until the bus is there */
  guint                     owner_id;
  gboolean                  name_acquired;
};

G_DEFINE_FINAL_TYPE (PubsubDBusService, pubsub_dbus_service, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_BROKER,
  PROP_LISTEN_ADDRESS,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

/* ---- errors ------------------------------------------------------------ */

/* The name comes from the error table, so it is right whether or not
 * pubsub_dbus_error_register() ran, and an error of another domain can never
 * leave as GDBus's "UnmappedGError" name. */
static void
return_error (GDBusMethodInvocation *invocation,
              const GError          *error)
{
  const PubsubErrorInfo *info = pubsub_error_lookup (error);
  g_autofree char *internal = NULL;

  /* The broker's own messages are the same text REST and WebSocket clients
   * get; only what this layer adds is translated. */
  if (info == pubsub_error_get_info (PUBSUB_ERROR_INTERNAL))
    {
      internal = g_strdup_printf (_("Internal error: %s"), error->message);
      g_dbus_method_invocation_return_dbus_error (invocation, info->dbus_name, internal);
    }
  else
    g_dbus_method_invocation_return_dbus_error (invocation, info->dbus_name, error->message);
}

/* ---- dev.pubsub.Broker1 methods ------------------------------------------ */

/* The engine's answer to CreateTopic or DeleteTopic (no return value). */
static void
on_done (PubsubEngine            *engine,
         const PubsubEngineReply *reply,
         GObject                 *owner)
{
  GDBusMethodInvocation *invocation = G_DBUS_METHOD_INVOCATION (owner);

  if (reply->error != NULL)
    return_error (invocation, reply->error);
  else
    g_dbus_method_invocation_return_value (invocation, NULL);
}

/* The engine's answer to Publish: the message's id. */
static void
on_published (PubsubEngine            *engine,
              const PubsubEngineReply *reply,
              GObject                 *owner)
{
  GDBusMethodInvocation *invocation = G_DBUS_METHOD_INVOCATION (owner);

  if (reply->error != NULL)
    return_error (invocation, reply->error);
  else
    g_dbus_method_invocation_return_value (invocation,
                                           g_variant_new ("(s)", g_object_get_data (owner, "pubsub-id")));
}

static gboolean
handle_create_topic (PubsubDBusBroker1     *skeleton,
                     GDBusMethodInvocation *invocation,
                     const char            *name,
                     PubsubDBusService     *self)
{
  g_auto(PubsubEngineReply) reply = { 0, };

  g_debug ("D-Bus: CreateTopic from %s", g_dbus_method_invocation_get_sender (invocation));
  if (pubsub_broker_create_topic (self->broker, name, &reply, G_OBJECT (invocation), on_done))
    on_done (NULL, &reply, G_OBJECT (invocation));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_delete_topic (PubsubDBusBroker1     *skeleton,
                     GDBusMethodInvocation *invocation,
                     const char            *name,
                     PubsubDBusService     *self)
{
  g_auto(PubsubEngineReply) reply = { 0, };

  g_debug ("D-Bus: DeleteTopic from %s", g_dbus_method_invocation_get_sender (invocation));
  if (pubsub_broker_delete_topic (self->broker, name, &reply, G_OBJECT (invocation), on_done))
    on_done (NULL, &reply, G_OBJECT (invocation));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* Reads of the registry need the cluster too (SPEC §9). */
static gboolean
check_available (PubsubDBusService     *self,
                 GDBusMethodInvocation *invocation)
{
  g_autoptr(GError) error = NULL;

  if (pubsub_broker_is_available (self->broker))
    return TRUE;
  g_set_error_literal (&error, PUBSUB_ERROR, PUBSUB_ERROR_UNAVAILABLE,
                       "the cluster cannot be reached");
  return_error (invocation, error);
  return FALSE;
}

static gboolean
handle_list_topics (PubsubDBusBroker1     *skeleton,
                    GDBusMethodInvocation *invocation,
                    PubsubDBusService     *self)
{
  g_autoptr(GPtrArray) topics = NULL;
  GVariantBuilder builder;

  if (!check_available (self, invocation))
    return G_DBUS_METHOD_INVOCATION_HANDLED;
  topics = pubsub_broker_list_topics (self->broker);
  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a(su)"));
  for (guint i = 0; i < topics->len; i++)
    {
      PubsubTopic *topic = g_ptr_array_index (topics, i);

      g_variant_builder_add (&builder, "(su)", pubsub_topic_get_name (topic),
                             pubsub_broker_get_topic_subscribers (self->broker, topic));
    }
  pubsub_dbus_broker1_complete_list_topics (skeleton, invocation,
                                            g_variant_builder_end (&builder));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_get_stats (PubsubDBusBroker1     *skeleton,
                  GDBusMethodInvocation *invocation,
                  PubsubDBusService     *self)
{
  g_autoptr(GPtrArray) topics = NULL;
  GVariantBuilder builder;

  if (!check_available (self, invocation))
    return G_DBUS_METHOD_INVOCATION_HANDLED;
  topics = pubsub_broker_list_topics (self->broker);
  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a{sa{sv}}"));
  for (guint i = 0; i < topics->len; i++)
    {
      PubsubTopic *topic = g_ptr_array_index (topics, i);

      g_variant_builder_open (&builder, G_VARIANT_TYPE ("{sa{sv}}"));
      g_variant_builder_add (&builder, "s", pubsub_topic_get_name (topic));
      g_variant_builder_open (&builder, G_VARIANT_TYPE_VARDICT);
      g_variant_builder_add (&builder, "{sv}", "messages",
                             g_variant_new_uint64 (pubsub_topic_get_messages (topic)));
      g_variant_builder_add (&builder, "{sv}", "subscribers",
                             g_variant_new_uint32 (pubsub_broker_get_topic_subscribers (self->broker,
                                                                                        topic)));
      g_variant_builder_close (&builder);
      g_variant_builder_close (&builder);
    }
  pubsub_dbus_broker1_complete_get_stats (skeleton, invocation,
                                          g_variant_builder_end (&builder));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_publish (PubsubDBusBroker1     *skeleton,
                GDBusMethodInvocation *invocation,
                const char            *topic,
                const char            *id,
                const char            *payload_json,
                PubsubDBusService     *self)
{
  g_auto(PubsubEngineReply) reply = { 0, };
  g_autofree char *fresh_id = NULL;
  PubsubJsonValue payload;

  if (!pubsub_publish_args_check (topic, &id, &fresh_id, payload_json, &payload, &reply.error))
    {
      return_error (invocation, reply.error);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  g_object_set_data_full (G_OBJECT (invocation), "pubsub-id", g_strdup (id), g_free);
  if (pubsub_broker_publish (self->broker, topic, id, payload.text, payload.len, &reply,
                             G_OBJECT (invocation), on_published))
    on_published (NULL, &reply, G_OBJECT (invocation));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- coalesced property updates ---------------------------------------- */

static gboolean
flush_properties (gpointer user_data)
{
  PubsubDBusService *self = user_data;
  GList *link;

  self->flush_id = 0;
  self->last_flush = g_get_monotonic_time ();

  while ((link = g_queue_pop_head_link (&self->dirty)) != NULL)
    {
      TopicEntry *entry = link->data;

      entry->dirty = FALSE;
      pubsub_dbus_topic1_set_subscribers (entry->iface,
                                          pubsub_topic_get_subscribers (entry->topic));
      pubsub_dbus_topic1_set_messages (entry->iface, pubsub_topic_get_messages (entry->topic));
      pubsub_dbus_topic1_set_seq (entry->iface, pubsub_topic_get_messages (entry->topic));
    }

  if (self->broker_dirty)
    {
      self->broker_dirty = FALSE;
      pubsub_dbus_broker1_set_subscriber_count (self->skeleton,
                                                pubsub_broker_get_subscriber_count (self->broker));
    }
  if (self->dropped_dirty)
    {
      self->dropped_dirty = FALSE;
      pubsub_dbus_broker1_set_signals_dropped (self->skeleton, self->signals_dropped);
    }

  return G_SOURCE_REMOVE;
}

static void
schedule_flush (PubsubDBusService *self)
{
  gint64 next;
  gint64 now;
  guint delay_ms = 0;

  if (self->flush_id != 0)
    return;

  now = g_get_monotonic_time ();
  next = self->last_flush + FLUSH_INTERVAL_MS * G_TIME_SPAN_MILLISECOND;
  if (self->last_flush != 0 && next > now)
    delay_ms = (guint) ((next - now + G_TIME_SPAN_MILLISECOND - 1) / G_TIME_SPAN_MILLISECOND);
  self->flush_id = g_timeout_add (delay_ms, flush_properties, self);
  g_source_set_name_by_id (self->flush_id, "[pubsubd] D-Bus property flush");
}

/* On every publish of a busy topic: keep it O(1) and allocation-free. */
static void
on_topic_counter_changed (PubsubTopic *topic,
                          GParamSpec  *pspec,
                          TopicEntry  *entry)
{
  if (entry->dirty)
    return;

  entry->dirty = TRUE;
  g_queue_push_tail_link (&entry->service->dirty, &entry->dirty_link);
  schedule_flush (entry->service);
}

/* ---- rate-limited subscriber signals ----------------------------------- */

/* The token bucket, kept as the time at which it will be full again (GCRA):
 * each signal adds SIGNAL_INTERVAL_US; a signal fits while that stays within
 * SIGNAL_BURST intervals of now. No timer, no allocation. */
static gboolean
take_signal_token (TopicEntry *entry)
{
  gint64 now = g_get_monotonic_time ();
  gint64 due = MAX (entry->signal_due, now) + SIGNAL_INTERVAL_US;

  if (due - now > SIGNAL_BURST * SIGNAL_INTERVAL_US)
    {
      entry->service->signals_dropped++;
      entry->service->dropped_dirty = TRUE;
      schedule_flush (entry->service);
      return FALSE;
    }
  entry->signal_due = due;
  return TRUE;
}

static void
on_subscriber_joined (PubsubTopic *topic,
                      const char  *client_id,
                      TopicEntry  *entry)
{
  if (take_signal_token (entry))
    pubsub_dbus_broker1_emit_subscriber_joined (entry->service->skeleton,
                                                pubsub_topic_get_name (topic), client_id);
}

static void
on_subscriber_left (PubsubTopic       *topic,
                    const char        *client_id,
                    PubsubLeaveReason  reason,
                    TopicEntry        *entry)
{
  if (take_signal_token (entry))
    pubsub_dbus_broker1_emit_subscriber_left (entry->service->skeleton,
                                              pubsub_topic_get_name (topic), client_id,
                                              pubsub_leave_reason_to_string (reason));
}

/* ---- topic objects ----------------------------------------------------- */

static void
topic_entry_free (TopicEntry *entry)
{
  if (entry->dirty)
    g_queue_unlink (&entry->service->dirty, &entry->dirty_link);
  g_clear_signal_handler (&entry->subscribers_id, entry->topic);
  g_clear_signal_handler (&entry->messages_id, entry->topic);
  g_clear_signal_handler (&entry->joined_id, entry->topic);
  g_clear_signal_handler (&entry->left_id, entry->topic);
  g_clear_object (&entry->iface);
  g_clear_object (&entry->object);
  g_clear_object (&entry->topic);
  g_free (entry);
}

static char *
topic_object_path (const char *name)
{
  g_autofree char *escaped = g_dbus_escape_object_path (name);

  return g_strconcat (PUBSUB_DBUS_TOPICS_PATH "/", escaped, NULL);
}

static void
add_topic (PubsubDBusService *self,
           PubsubTopic       *topic)
{
  g_autofree char *path = topic_object_path (pubsub_topic_get_name (topic));
  TopicEntry *entry = g_new0 (TopicEntry, 1);

  entry->service = self;
  entry->topic = g_object_ref (topic);
  entry->dirty_link.data = entry;
  entry->iface = pubsub_dbus_topic1_skeleton_new ();
  pubsub_dbus_topic1_set_name (entry->iface, pubsub_topic_get_name (topic));
  pubsub_dbus_topic1_set_subscribers (entry->iface, pubsub_topic_get_subscribers (topic));
  pubsub_dbus_topic1_set_messages (entry->iface, pubsub_topic_get_messages (topic));
  pubsub_dbus_topic1_set_seq (entry->iface, pubsub_topic_get_messages (topic));
  pubsub_dbus_topic1_set_epoch (entry->iface, pubsub_topic_get_epoch (topic));
  entry->object = pubsub_dbus_object_skeleton_new (path);
  pubsub_dbus_object_skeleton_set_topic1 (entry->object, entry->iface);

  entry->subscribers_id = g_signal_connect (topic, "notify::subscribers",
                                            G_CALLBACK (on_topic_counter_changed), entry);
  entry->messages_id = g_signal_connect (topic, "notify::messages",
                                         G_CALLBACK (on_topic_counter_changed), entry);
  entry->joined_id = g_signal_connect (topic, "subscriber-joined",
                                       G_CALLBACK (on_subscriber_joined), entry);
  entry->left_id = g_signal_connect (topic, "subscriber-left",
                                     G_CALLBACK (on_subscriber_left), entry);

  g_hash_table_insert (self->topics, topic, entry);
  g_dbus_object_manager_server_export (self->manager, G_DBUS_OBJECT_SKELETON (entry->object));
}

static void
on_topic_created (PubsubBroker      *broker,
                  PubsubTopic       *topic,
                  PubsubDBusService *self)
{
  add_topic (self, topic);
  pubsub_dbus_broker1_emit_topic_created (self->skeleton, pubsub_topic_get_name (topic));
}

static void
on_topic_deleted (PubsubBroker      *broker,
                  PubsubTopic       *topic,
                  PubsubDBusService *self)
{
  TopicEntry *entry = g_hash_table_lookup (self->topics, topic);

  g_return_if_fail (entry != NULL);

  g_dbus_object_manager_server_unexport (self->manager,
                                         g_dbus_object_get_object_path (G_DBUS_OBJECT (entry->object)));
  g_hash_table_remove (self->topics, topic);
  pubsub_dbus_broker1_emit_topic_deleted (self->skeleton, pubsub_topic_get_name (topic));
}

/* Topics are created and deleted one at a time by a person or a script, and
 * each already costs a TopicCreated/TopicDeleted signal: no need to
 * coalesce, and a caller reading TopicCount after CreateTopic sees it. */
static void
on_topic_count_changed (PubsubBroker      *broker,
                        GParamSpec        *pspec,
                        PubsubDBusService *self)
{
  pubsub_dbus_broker1_set_topic_count (self->skeleton, pubsub_broker_get_topic_count (broker));
}

/* Changes with every (un)subscription, and counting is a walk over the
 * topics: leave both to the flush. */
static void
on_subscriber_count_changed (PubsubBroker      *broker,
                             GParamSpec        *pspec,
                             PubsubDBusService *self)
{
  self->broker_dirty = TRUE;
  schedule_flush (self);
}

/* ---- bus lifecycle ----------------------------------------------------- */

static void
on_name_acquired (GDBusConnection *connection,
                  const char      *name,
                  gpointer         user_data)
{
  PubsubDBusService *self = user_data;

  self->name_acquired = TRUE;
  g_message ("Acquired the D-Bus name %s", name);
}

/* Also called when the connection closes (the bus went away). */
static void
on_name_lost (GDBusConnection *connection,
              const char      *name,
              gpointer         user_data)
{
  PubsubDBusService *self = user_data;

  if (connection == NULL || g_dbus_connection_is_closed (connection))
    g_warning ("Lost the connection to the D-Bus bus; D-Bus is off, HTTP keeps serving");
  else if (self->name_acquired)
    g_warning ("Lost the D-Bus name %s to another process; HTTP keeps serving", name);
  else
    g_warning ("Could not own the D-Bus name %s (another pubsubd has it, or the bus "
               "policy forbids it); HTTP keeps serving", name);
  self->name_acquired = FALSE;
}

static gboolean
export_objects (PubsubDBusService  *self,
                GError            **error)
{
  if (!g_dbus_interface_skeleton_export (G_DBUS_INTERFACE_SKELETON (self->skeleton),
                                         self->connection, PUBSUB_DBUS_PATH, error))
    return FALSE;
  g_dbus_object_manager_server_set_connection (self->manager, self->connection);
  return TRUE;
}

static void
on_bus_get (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GDBusConnection) connection = g_bus_get_finish (result, &error);
  PubsubDBusService *self;

  /* Cancelled by stop() or dispose(): self may be gone, touch nothing. */
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;

  self = user_data;
  g_clear_object (&self->cancellable);
  if (connection == NULL)
    {
      g_warning ("Cannot connect to the D-Bus bus: %s; D-Bus is off, HTTP keeps serving",
                 error->message);
      return;
    }

  /* The default of a g_bus_get() connection is to exit(1) when the bus
   * goes away; this daemon outlives its bus. */
  g_dbus_connection_set_exit_on_close (connection, FALSE);
  self->connection = g_steal_pointer (&connection);

  /* Export first, so that whoever sees the name appear finds the objects. */
  if (!export_objects (self, &error))
    {
      g_warning ("Cannot export %s on D-Bus: %s; D-Bus is off, HTTP keeps serving",
                 PUBSUB_DBUS_PATH, error->message);
      return;
    }

  /* DO_NOT_QUEUE: a second instance is told at once (one warning) rather
   * than waiting silently in the queue. ALLOW_REPLACEMENT lets a newer
   * instance started with replacement take over; we then warn and go on. */
  self->owner_id = g_bus_own_name_on_connection (self->connection, PUBSUB_DBUS_NAME,
                                                 G_BUS_NAME_OWNER_FLAGS_ALLOW_REPLACEMENT |
                                                 G_BUS_NAME_OWNER_FLAGS_DO_NOT_QUEUE,
                                                 on_name_acquired, on_name_lost,
                                                 self, NULL);
}

/**
 * pubsub_dbus_service_start:
 * @bus_type: the bus to serve on; %G_BUS_TYPE_NONE does nothing
 *
 * Connects to the bus, exports the objects and then asks for the name, all
 * asynchronously. Failures are logged as warnings, never fatal.
 */
void
pubsub_dbus_service_start (PubsubDBusService *self,
                           GBusType           bus_type)
{
  g_return_if_fail (PUBSUB_IS_DBUS_SERVICE (self));
  g_return_if_fail (self->cancellable == NULL && self->connection == NULL);

  if (bus_type == G_BUS_TYPE_NONE)
    return;

  self->cancellable = g_cancellable_new ();
  g_bus_get (bus_type, self->cancellable, on_bus_get, self);
}

/**
 * pubsub_dbus_service_stop:
 *
 * Releases the name, unexports everything and drops the connection. Safe
 * at any time: before start(), while it is pending, after it failed, twice.
 */
void
pubsub_dbus_service_stop (PubsubDBusService *self)
{
  g_return_if_fail (PUBSUB_IS_DBUS_SERVICE (self));

  if (self->cancellable != NULL)
    g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);

  if (self->owner_id != 0)
    g_bus_unown_name (self->owner_id);
  self->owner_id = 0;
  self->name_acquired = FALSE;

  g_dbus_object_manager_server_set_connection (self->manager, NULL);
  if (g_dbus_interface_skeleton_get_connection (G_DBUS_INTERFACE_SKELETON (self->skeleton)) != NULL)
    g_dbus_interface_skeleton_unexport (G_DBUS_INTERFACE_SKELETON (self->skeleton));
  g_clear_object (&self->connection);
}

/* ---- GObject ----------------------------------------------------------- */

/* Other nodes come and go without telling this one: the count is polled
 * (the skeleton signals it only when it changes). */
static gboolean
update_nodes (gpointer user_data)
{
  PubsubDBusService *self = user_data;

  pubsub_dbus_broker1_set_nodes (self->skeleton,
                                 pubsub_engine_get_nodes (pubsub_broker_get_engine (self->broker)));
  return G_SOURCE_CONTINUE;
}

static void
setup_cluster_properties (PubsubDBusService *self)
{
  PubsubEngine *engine = pubsub_broker_get_engine (self->broker);

  pubsub_dbus_broker1_set_cluster (self->skeleton, pubsub_engine_get_cluster (engine));
  pubsub_dbus_broker1_set_node_id (self->skeleton, pubsub_engine_get_node_id (engine));
  update_nodes (self);
  if (*pubsub_engine_get_cluster (engine) != '\0')
    {
      self->nodes_id = g_timeout_add_seconds (1, update_nodes, self);
      g_source_set_name_by_id (self->nodes_id, "[pubsubd] D-Bus Nodes property");
    }
}

static void
setup_broker_skeleton (PubsubDBusService *self)
{
  self->skeleton = pubsub_dbus_broker1_skeleton_new ();
  pubsub_dbus_broker1_set_version (self->skeleton, PACKAGE_VERSION);
  pubsub_dbus_broker1_set_listen_address (self->skeleton,
                                          self->listen_address ? self->listen_address : "");
  pubsub_dbus_broker1_set_start_time (self->skeleton,
                                      (guint64) pubsub_broker_get_start_time (self->broker));
  pubsub_dbus_broker1_set_topic_count (self->skeleton,
                                       pubsub_broker_get_topic_count (self->broker));
  pubsub_dbus_broker1_set_subscriber_count (self->skeleton,
                                            pubsub_broker_get_subscriber_count (self->broker));
  setup_cluster_properties (self);

  g_signal_connect (self->skeleton, "handle-create-topic", G_CALLBACK (handle_create_topic), self);
  g_signal_connect (self->skeleton, "handle-delete-topic", G_CALLBACK (handle_delete_topic), self);
  g_signal_connect (self->skeleton, "handle-list-topics", G_CALLBACK (handle_list_topics), self);
  g_signal_connect (self->skeleton, "handle-get-stats", G_CALLBACK (handle_get_stats), self);
  g_signal_connect (self->skeleton, "handle-publish", G_CALLBACK (handle_publish), self);
}

static void
pubsub_dbus_service_constructed (GObject *object)
{
  PubsubDBusService *self = PUBSUB_DBUS_SERVICE (object);
  g_autoptr(GPtrArray) topics = NULL;

  G_OBJECT_CLASS (pubsub_dbus_service_parent_class)->constructed (object);

  g_assert (self->broker != NULL);

  setup_broker_skeleton (self);
  self->manager = g_dbus_object_manager_server_new (PUBSUB_DBUS_PATH);

  topics = pubsub_broker_list_topics (self->broker);
  for (guint i = 0; i < topics->len; i++)
    add_topic (self, g_ptr_array_index (topics, i));

  self->topic_created_id = g_signal_connect (self->broker, "topic-created",
                                             G_CALLBACK (on_topic_created), self);
  self->topic_deleted_id = g_signal_connect (self->broker, "topic-deleted",
                                             G_CALLBACK (on_topic_deleted), self);
  self->topic_count_id = g_signal_connect (self->broker, "notify::topic-count",
                                           G_CALLBACK (on_topic_count_changed), self);
  self->subscriber_count_id = g_signal_connect (self->broker, "notify::subscriber-count",
                                                G_CALLBACK (on_subscriber_count_changed), self);
}

static void
pubsub_dbus_service_dispose (GObject *object)
{
  PubsubDBusService *self = PUBSUB_DBUS_SERVICE (object);

  pubsub_dbus_service_stop (self);

  if (self->broker != NULL)
    {
      g_clear_signal_handler (&self->topic_created_id, self->broker);
      g_clear_signal_handler (&self->topic_deleted_id, self->broker);
      g_clear_signal_handler (&self->topic_count_id, self->broker);
      g_clear_signal_handler (&self->subscriber_count_id, self->broker);
    }
  g_clear_handle_id (&self->flush_id, g_source_remove);
  g_clear_handle_id (&self->nodes_id, g_source_remove);
  /* Entries unlink themselves from the dirty queue. */
  g_clear_pointer (&self->topics, g_hash_table_unref);
  g_clear_object (&self->manager);
  g_clear_object (&self->skeleton);
  g_clear_object (&self->broker);

  G_OBJECT_CLASS (pubsub_dbus_service_parent_class)->dispose (object);
}

static void
pubsub_dbus_service_finalize (GObject *object)
{
  PubsubDBusService *self = PUBSUB_DBUS_SERVICE (object);

  g_free (self->listen_address);

  G_OBJECT_CLASS (pubsub_dbus_service_parent_class)->finalize (object);
}

static void
pubsub_dbus_service_get_property (GObject    *object,
                                  guint       prop_id,
                                  GValue     *value,
                                  GParamSpec *pspec)
{
  PubsubDBusService *self = PUBSUB_DBUS_SERVICE (object);

  switch (prop_id)
    {
    case PROP_BROKER:
      g_value_set_object (value, self->broker);
      break;
    case PROP_LISTEN_ADDRESS:
      g_value_set_string (value, self->listen_address);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
pubsub_dbus_service_set_property (GObject      *object,
                                  guint         prop_id,
                                  const GValue *value,
                                  GParamSpec   *pspec)
{
  PubsubDBusService *self = PUBSUB_DBUS_SERVICE (object);

  switch (prop_id)
    {
    case PROP_BROKER:
      self->broker = g_value_dup_object (value);
      break;
    case PROP_LISTEN_ADDRESS:
      self->listen_address = g_value_dup_string (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
pubsub_dbus_service_class_init (PubsubDBusServiceClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->constructed = pubsub_dbus_service_constructed;
  object_class->dispose = pubsub_dbus_service_dispose;
  object_class->finalize = pubsub_dbus_service_finalize;
  object_class->get_property = pubsub_dbus_service_get_property;
  object_class->set_property = pubsub_dbus_service_set_property;

  properties[PROP_BROKER] =
    g_param_spec_object ("broker", NULL, NULL, PUBSUB_TYPE_BROKER,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  properties[PROP_LISTEN_ADDRESS] =
    g_param_spec_string ("listen-address", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  /* Register the error names before the first call can need them. */
  pubsub_dbus_error_register ();
}

static void
pubsub_dbus_service_init (PubsubDBusService *self)
{
  self->topics = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL,
                                        (GDestroyNotify) topic_entry_free);
  g_queue_init (&self->dirty);
}

/**
 * pubsub_dbus_service_new:
 * @broker: the broker to serve
 * @listen_address: (nullable): the HTTP address, shown as ListenAddress
 *
 * Returns: (transfer full): a service that does nothing until started
 */
PubsubDBusService *
pubsub_dbus_service_new (PubsubBroker *broker,
                         const char   *listen_address)
{
  g_return_val_if_fail (PUBSUB_IS_BROKER (broker), NULL);

  return g_object_new (PUBSUB_TYPE_DBUS_SERVICE,
                       "broker", broker,
                       "listen-address", listen_address,
                       NULL);
}
