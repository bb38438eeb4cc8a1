/* pubsub-settings.c: the one table of pubsubd's settings
 *
 * Defaults, ranges and --help texts live here and nowhere else: the loader
 * builds its options, file keys, variables and error messages from these
 * rows, and the model's GObject properties take their defaults and ranges
 * from them.
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <string.h>

#include <glib/gi18n.h>

#include "pubsub-settings.h"

#define FIELD(f) G_STRUCT_OFFSET (PubsubConfig, f)

/* Enum fields are stored through an int. */
G_STATIC_ASSERT (sizeof (PubsubBus) == sizeof (int));

static const char * const bus_choices[] = {
  [PUBSUB_BUS_SESSION] = "session",
  [PUBSUB_BUS_SYSTEM]  = "system",
  [PUBSUB_BUS_NONE]    = "none",
  [PUBSUB_BUS_NONE + 1] = NULL,
};

/* --help shows each row's help text followed by its default, so the
 * texts below never state one. */
static const PubsubSetting settings[PUBSUB_N_SETTINGS] = {
  [PUBSUB_SETTING_LISTEN] = {
    .key = "listen", .type = PUBSUB_SETTING_TYPE_ADDRESS, .offset = FIELD (listen),
    .default_string = "127.0.0.1:8080",
    .env_alias = "ADDR",
    /* TRANSLATORS: --help text of --listen; the default is added after it */
    .help = N_("Address to listen on; port 0 picks a free port"),
    /* TRANSLATORS: the argument of --listen in --help */
    .arg = N_("HOST:PORT"),
  },
  [PUBSUB_SETTING_API_KEY] = {
    .key = "api-key", .type = PUBSUB_SETTING_TYPE_STRING, .offset = FIELD (api_key),
    .default_string = NULL,
    .env_alias = "API_KEY",
    .help = N_("Require this key in X-API-Key (or ?api_key= on /ws)"),
    .arg = N_("KEY"),
  },
  [PUBSUB_SETTING_QUEUE_SIZE] = {
    .key = "queue-size", .type = PUBSUB_SETTING_TYPE_UINT, .offset = FIELD (queue_size),
    .min = 1, .max = 1000000, .default_uint = 100,
    .help = N_("Frames a client may have waiting before it is cut as a slow consumer"),
    .arg = N_("N"),
  },
  [PUBSUB_SETTING_HISTORY_SIZE] = {
    .key = "history-size", .type = PUBSUB_SETTING_TYPE_UINT, .offset = FIELD (history_size),
    .min = 0, .max = 1000000, .default_uint = 100,
    .help = N_("Messages kept per topic for replay"),
    .arg = N_("N"),
  },
  [PUBSUB_SETTING_HEARTBEAT_INTERVAL] = {
    .key = "heartbeat-interval", .type = PUBSUB_SETTING_TYPE_UINT,
    .offset = FIELD (heartbeat_interval),
    .min = 0, .max = 86400, .default_uint = 30,
    .help = N_("Seconds between heartbeats, 0 for none"),
    .arg = N_("SECONDS"),
  },
  [PUBSUB_SETTING_MAX_MESSAGE_BYTES] = {
    .key = "max-message-bytes", .type = PUBSUB_SETTING_TYPE_UINT,
    .offset = FIELD (max_message_bytes),
    .min = 64, .max = 64 * 1024 * 1024, .default_uint = 1024 * 1024,
    .help = N_("Largest frame or request body accepted"),
    .arg = N_("BYTES"),
  },
  [PUBSUB_SETTING_MAX_CONNECTIONS] = {
    .key = "max-connections", .type = PUBSUB_SETTING_TYPE_UINT,
    .offset = FIELD (max_connections),
    .min = 1, .max = 1000000, .default_uint = 10000,
    .help = N_("Connections open at once, HTTP and WebSocket; more are answered 503"),
    .arg = N_("N"),
  },
  [PUBSUB_SETTING_HEADER_TIMEOUT] = {
    .key = "header-timeout", .type = PUBSUB_SETTING_TYPE_UINT, .offset = FIELD (header_timeout),
    .min = 1, .max = 3600, .default_uint = 10,
    .help = N_("Seconds a client has to send a whole request head"),
    .arg = N_("SECONDS"),
  },
  /* nginx's keepalive_timeout: what people putting a server behind a proxy
   * or a client pool have met. */
  [PUBSUB_SETTING_IDLE_TIMEOUT] = {
    .key = "idle-timeout", .type = PUBSUB_SETTING_TYPE_UINT, .offset = FIELD (idle_timeout),
    .min = 1, .max = 86400, .default_uint = 75,
    .help = N_("Seconds an HTTP connection may stay idle between requests, or stall"),
    .arg = N_("SECONDS"),
  },
  [PUBSUB_SETTING_MAX_TOPICS] = {
    .key = "max-topics", .type = PUBSUB_SETTING_TYPE_UINT, .offset = FIELD (max_topics),
    .min = 1, .max = 10000000, .default_uint = 10000,
    .help = N_("Topics that may exist at once"),
    .arg = N_("N"),
  },
  [PUBSUB_SETTING_SHUTDOWN_GRACE] = {
    .key = "shutdown-grace", .type = PUBSUB_SETTING_TYPE_UINT, .offset = FIELD (shutdown_grace),
    .min = 0, .max = 3600, .default_uint = 10,
    .help = N_("Seconds to flush clients on SIGTERM before closing them"),
    .arg = N_("SECONDS"),
  },
  [PUBSUB_SETTING_BUS] = {
    .key = "bus", .type = PUBSUB_SETTING_TYPE_ENUM, .offset = FIELD (bus),
    .default_uint = PUBSUB_BUS_SESSION, .choices = bus_choices,
    /* TRANSLATORS: --help text of --bus; the choices and the default are added after it */
    .help = N_("D-Bus bus to publish the management API on"),
    .arg = N_("BUS"),
  },
  /* Unset: one process alone, in memory. */
  [PUBSUB_SETTING_CLUSTER] = {
    .key = "cluster", .type = PUBSUB_SETTING_TYPE_CLUSTER, .offset = FIELD (cluster),
    .default_string = NULL,
    /* TRANSLATORS: --help text of --cluster */
    .help = N_("Run as a node of the cluster sharing this Redis (redis://HOST:PORT[/DB] or unix:PATH)"),
    .arg = N_("ADDRESS"),
  },
  [PUBSUB_SETTING_CLUSTER_PREFIX] = {
    .key = "cluster-prefix", .type = PUBSUB_SETTING_TYPE_STRING,
    .offset = FIELD (cluster_prefix),
    .default_string = "pubsub",
    .help = N_("Prefix of the cluster's Redis keys"),
    .arg = N_("PREFIX"),
  },
  /* Unset: the host name and the listen port, unique on one machine. */
  [PUBSUB_SETTING_NODE_ID] = {
    .key = "node-id", .type = PUBSUB_SETTING_TYPE_STRING, .offset = FIELD (node_id),
    .default_string = NULL,
    .help = N_("This node's name in the cluster; unset: the host name and the listen port"),
    .arg = N_("ID"),
  },
};

const PubsubSetting *
pubsub_setting_get (PubsubSettingId id)
{
  g_return_val_if_fail (id < PUBSUB_N_SETTINGS, NULL);

  return &settings[id];
}

/* Returns: (nullable): the row of @key, or NULL for an unknown key */
const PubsubSetting *
pubsub_setting_lookup (const char *key)
{
  for (gsize i = 0; i < G_N_ELEMENTS (settings); i++)
    if (g_str_equal (settings[i].key, key))
      return &settings[i];
  return NULL;
}

/* The default of a uint setting (for an enum, its index). */
guint
pubsub_setting_get_default_uint (PubsubSettingId id)
{
  g_return_val_if_fail (id < PUBSUB_N_SETTINGS, 0);
  g_return_val_if_fail (settings[id].type == PUBSUB_SETTING_TYPE_UINT ||
                        settings[id].type == PUBSUB_SETTING_TYPE_ENUM, 0);

  return settings[id].default_uint;
}

guint
pubsub_setting_get_min (PubsubSettingId id)
{
  g_return_val_if_fail (id < PUBSUB_N_SETTINGS, 0);
  g_return_val_if_fail (settings[id].type == PUBSUB_SETTING_TYPE_UINT, 0);

  return settings[id].min;
}

guint
pubsub_setting_get_max (PubsubSettingId id)
{
  g_return_val_if_fail (id < PUBSUB_N_SETTINGS, G_MAXUINT);
  g_return_val_if_fail (settings[id].type == PUBSUB_SETTING_TYPE_UINT, G_MAXUINT);

  return settings[id].max;
}

/* PUBSUB_QUEUE_SIZE for queue-size, and so on. */
char *
pubsub_setting_dup_env_name (const PubsubSetting *setting)
{
  g_autofree char *upper = g_ascii_strup (setting->key, -1);

  g_strdelimit (upper, "-", '_');
  return g_strconcat ("PUBSUB_", upper, NULL);
}

/* Returns: (nullable): the default as a value would be written, or NULL
 * when the setting is unset by default */
char *
pubsub_setting_dup_default_text (const PubsubSetting *setting)
{
  switch (setting->type)
    {
    case PUBSUB_SETTING_TYPE_UINT:
      return g_strdup_printf ("%u", setting->default_uint);
    case PUBSUB_SETTING_TYPE_STRING:
    case PUBSUB_SETTING_TYPE_ADDRESS:
    case PUBSUB_SETTING_TYPE_CLUSTER:
      return g_strdup (setting->default_string);
    case PUBSUB_SETTING_TYPE_ENUM:
      return g_strdup (setting->choices[setting->default_uint]);
    default:
      g_assert_not_reached ();
    }
}

/* "session, system, none": the values an enum setting accepts. */
char *
pubsub_setting_dup_choices_text (const PubsubSetting *setting)
{
  g_return_val_if_fail (setting->type == PUBSUB_SETTING_TYPE_ENUM, NULL);

  return g_strjoinv (", ", (char **) setting->choices);
}

/* The translated --help text: what the setting does, its choices if it
 * has a fixed set, and its default if it has one. */
char *
pubsub_setting_dup_help (const PubsubSetting *setting)
{
  g_autofree char *help = NULL;
  g_autofree char *default_text = pubsub_setting_dup_default_text (setting);

  if (setting->type == PUBSUB_SETTING_TYPE_ENUM)
    {
      g_autofree char *choices = pubsub_setting_dup_choices_text (setting);

      /* TRANSLATORS: what a setting does, then the values it takes */
      help = g_strdup_printf (C_("setting help", "%s: %s"), _(setting->help), choices);
    }
  else
    help = g_strdup (_(setting->help));

  if (default_text == NULL)
    return g_steal_pointer (&help);
  /* TRANSLATORS: what a setting does, then its default value */
  return g_strdup_printf (C_("setting help", "%s (default %s)"), help, default_text);
}

void
pubsub_cluster_address_clear (PubsubClusterAddress *address)
{
  g_clear_pointer (&address->host, g_free);
  g_clear_pointer (&address->path, g_free);
}

static gboolean
parse_number (const char *text,
              guint       min,
              guint       max,
              guint      *out)
{
  guint64 number;

  if (!g_ascii_string_to_unsigned (text, 10, min, max, &number, NULL))
    return FALSE;
  *out = (guint) number;
  return TRUE;
}

/* HOST[:PORT][/DB], HOST a name, an IPv4 address or [IPv6]. */
static gboolean
parse_tcp (const char           *text,
           PubsubClusterAddress *address)
{
  g_autofree char *copy = g_strdup (text);
  char *slash = strchr (copy, '/');
  char *host = copy;
  char *colon;

  address->port = 6379;
  if (slash != NULL)
    {
      *slash = '\0';
      if (!parse_number (slash + 1, 0, 65535, &address->db))
        return FALSE;
    }
  if (host[0] == '[')
    {
      char *close = strchr (host, ']');

      if (close == NULL || (close[1] != '\0' && close[1] != ':'))
        return FALSE;
      *close = '\0';
      colon = close[1] == ':' ? close + 1 : NULL;
      host++;
    }
  else
    {
      colon = strchr (host, ':');
      if (colon != NULL)
        *colon = '\0';
    }
  if (colon != NULL && !parse_number (colon + 1, 1, 65535, &address->port))
    return FALSE;
  if (*host == '\0')
    return FALSE;
  address->host = g_strdup (host);
  return TRUE;
}

/**
 * pubsub_cluster_address_parse:
 * @text: redis://HOST[:PORT][/DB] (port 6379 and db 0 by default) or
 *   unix:PATH
 * @address: (out caller-allocates): the parts; cleared with
 *   pubsub_cluster_address_clear()
 * @error: %G_OPTION_ERROR_BAD_VALUE
 */
gboolean
pubsub_cluster_address_parse (const char            *text,
                              PubsubClusterAddress  *address,
                              GError               **error)
{
  memset (address, 0, sizeof *address);
  if (g_str_has_prefix (text, "unix:") && text[5] != '\0')
    {
      address->path = g_strdup (text + 5);
      return TRUE;
    }
  if (g_str_has_prefix (text, "redis://") && parse_tcp (text + 8, address))
    return TRUE;
  pubsub_cluster_address_clear (address);
  g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
               /* TRANSLATORS: the cluster address forms are not translated */
               _("expected redis://HOST[:PORT][/DB] or unix:PATH"));
  return FALSE;
}
