/* main.c: pubsubd — locale, settings, signals, the main loop
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <glib-unix.h>
#include <glib/gi18n.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>

#include "pubsub-broker.h"
#include "pubsub-config.h"
#include "pubsub-dbus.h"
#include "pubsub-http.h"
#include "pubsub-memory-engine.h"
#include "pubsub-protocol.h"
#include "pubsub-redis-engine.h"

typedef struct {
  GMainLoop         *loop;
  PubsubHttpServer  *http;
  gboolean           stopping;
} Daemon;

static gboolean
on_stop_signal (gpointer user_data)
{
  Daemon *daemon = user_data;

  if (daemon->stopping)
    {
      g_message ("second stop signal: exiting now");
      g_main_loop_quit (daemon->loop);
      return G_SOURCE_CONTINUE;
    }
  daemon->stopping = TRUE;
  g_message ("shutting down");
  pubsub_http_server_shutdown (daemon->http);
  return G_SOURCE_CONTINUE;
}

static void
on_http_stopped (PubsubHttpServer *http,
                 Daemon           *daemon)
{
  g_main_loop_quit (daemon->loop);
}

/* Each WebSocket client is a file descriptor: take the whole hard limit,
 * as Go and nginx do, and say so when max-connections cannot fit in it. */
static void
raise_file_limit (guint max_connections)
{
  /* Listening sockets, D-Bus, REST requests in flight, log files… */
  const rlim_t reserve = 64;
  struct rlimit limit;

  if (getrlimit (RLIMIT_NOFILE, &limit) != 0)
    return;
  if (limit.rlim_cur < limit.rlim_max)
    {
      limit.rlim_cur = limit.rlim_max;
      if (setrlimit (RLIMIT_NOFILE, &limit) != 0)
        getrlimit (RLIMIT_NOFILE, &limit);
    }
  if (limit.rlim_cur != RLIM_INFINITY && (rlim_t) max_connections + reserve > limit.rlim_cur)
    g_warning ("max-connections is %u but only %lu file descriptors are allowed "
               "(ulimit -n): connections beyond about %lu will fail",
               max_connections, (unsigned long) limit.rlim_cur,
               (unsigned long) (limit.rlim_cur - MIN (limit.rlim_cur, reserve)));
}

static GBusType
bus_type_for (PubsubBus bus)
{
  return bus == PUBSUB_BUS_SYSTEM ? G_BUS_TYPE_SYSTEM : G_BUS_TYPE_SESSION;
}

/* The name a node goes by without node-id: unique on one machine, since
 * two nodes cannot listen on one port (the pid when the port is picked at
 * listen time, which comes after the engine is made). */
static char *
default_node_id (const PubsubConfig *config)
{
  guint16 port = 0;

  if (pubsub_config_split_listen (config->listen, NULL, &port, NULL) && port != 0)
    return g_strdup_printf ("%s:%u", g_get_host_name (), port);
  return g_strdup_printf ("%s:pid%ld", g_get_host_name (), (long) getpid ());
}

/* The cluster's engine when cluster is set, the memory engine otherwise;
 * both go by node-id (D-Bus NodeId). */
static gboolean
engine_new (const PubsubConfig  *config,
            PubsubEngine       **out_engine,
            GError             **error)
{
  g_autofree char *node_id = NULL;

  node_id = config->node_id != NULL ? g_strdup (config->node_id) : default_node_id (config);
  if (config->cluster == NULL)
    *out_engine = pubsub_memory_engine_new (node_id);
  else
    *out_engine = pubsub_redis_engine_new (config->cluster, config->cluster_prefix, node_id, error);
  return *out_engine != NULL;
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(PubsubConfig) config = pubsub_config_new ();
  g_autoptr(PubsubEngine) engine = NULL;
  g_autoptr(PubsubBroker) broker = NULL;
  g_autoptr(PubsubHttpServer) http = NULL;
  g_autoptr(PubsubDBusService) dbus = NULL;
  g_autoptr(GMainLoop) loop = NULL;
  g_autoptr(GError) error = NULL;
  gboolean version = FALSE;
  Daemon daemon = { NULL, };
  guint sigint_id;
  guint sigterm_id;

  setlocale (LC_ALL, "");
  bindtextdomain (GETTEXT_PACKAGE, LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);
  g_set_prgname ("pubsubd");

  if (!pubsub_config_load (config, &argc, &argv, &version, &error))
    {
      /* TRANSLATORS: %s is a message saying which setting is wrong */
      g_printerr (_("pubsubd: %s\n"), error->message);
      g_printerr (_("Run “pubsubd --help” for the options.\n"));
      return PUBSUB_CONFIG_EXIT_USAGE;
    }
  if (version)
    {
      g_print ("pubsubd %s\n", PACKAGE_VERSION);
      return 0;
    }

  /* Writes to vanished clients must fail with EPIPE, not kill us. */
  signal (SIGPIPE, SIG_IGN);
  raise_file_limit (config->max_connections);

  /* Signals first: a stop request right after start must still be graceful. */
  loop = g_main_loop_new (NULL, FALSE);
  daemon.loop = loop;
  sigint_id = g_unix_signal_add (SIGINT, on_stop_signal, &daemon);
  sigterm_id = g_unix_signal_add (SIGTERM, on_stop_signal, &daemon);

  if (!engine_new (config, &engine, &error))
    {
      g_printerr (_("pubsubd: %s\n"), error->message);
      return PUBSUB_CONFIG_EXIT_USAGE;
    }
  /* In cluster mode, it connects now and keeps trying while Redis is
   * unreachable; the daemon serves meanwhile, answering UNAVAILABLE. */
  broker = pubsub_broker_new (engine, pubsub_frame_new_event, config->history_size,
                              config->max_topics);
  http = pubsub_http_server_new (broker, config);
  daemon.http = http;
  g_signal_connect (http, "stopped", G_CALLBACK (on_http_stopped), &daemon);
  if (!pubsub_http_server_listen (http, &error))
    {
      g_printerr (_("pubsubd: %s\n"), error->message);
      return 1;
    }
  g_message ("Listening on http://%s/", pubsub_http_server_get_address (http));
  if (config->config_file != NULL)
    g_message ("Settings read from %s", config->config_file);

  if (config->bus != PUBSUB_BUS_NONE)
    {
      dbus = pubsub_dbus_service_new (broker, pubsub_http_server_get_address (http));
      pubsub_dbus_service_start (dbus, bus_type_for (config->bus));
    }

  g_main_loop_run (loop);

  g_source_remove (sigint_id);
  g_source_remove (sigterm_id);
  if (dbus != NULL)
    pubsub_dbus_service_stop (dbus);
  g_message ("stopped");
  return 0;
}
