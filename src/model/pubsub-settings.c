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
