/* pubsub-config.c: settings from options, environment, file and defaults
 *
 * Every setting has one row in the key table below: its config-file key, its
 * --long-option of the same name, its environment variable and its range.
 * Precedence is option > environment > file > default, and a bad value from
 * any source is an error naming the key and the source — never a silent
 * default.
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <errno.h>
#include <glib/gi18n.h>
#include <stdlib.h>
#include <string.h>

#include "pubsub-config.h"

#define CONFIG_GROUP "pubsub"

typedef enum {
  KIND_UINT,
  KIND_STRING,
  KIND_LISTEN,
  KIND_BUS,
} KeyKind;

typedef struct {
  const char *name;
  KeyKind     kind;
  gsize       offset;
  guint       min;
  guint       max;
  const char *env;        /* extra, historical variable name, or NULL */
  const char *help;
  const char *arg;
} ConfigKey;

#define FIELD(f) G_STRUCT_OFFSET (PubsubConfig, f)

static const ConfigKey keys[] = {
  { "listen", KIND_LISTEN, FIELD (listen), 0, 0, "ADDR",
    /* TRANSLATORS: --help text; HOST:PORT is the option's argument */
    N_("Address to listen on (default 127.0.0.1:8080; port 0 picks a free port)"), N_("HOST:PORT") },
  { "api-key", KIND_STRING, FIELD (api_key), 0, 0, "API_KEY",
    N_("Require this key in X-API-Key (or ?api_key= on /ws)"), N_("KEY") },
  { "queue-size", KIND_UINT, FIELD (queue_size), 1, 1000000, NULL,
    N_("Frames a client may have waiting before it is cut as a slow consumer (default 100)"), N_("N") },
  { "history-size", KIND_UINT, FIELD (history_size), 0, 1000000, NULL,
    N_("Messages kept per topic for replay (default 100)"), N_("N") },
  { "heartbeat-interval", KIND_UINT, FIELD (heartbeat_interval), 0, 86400, NULL,
    N_("Seconds between heartbeats, 0 for none (default 30)"), N_("SECONDS") },
  { "max-message-bytes", KIND_UINT, FIELD (max_message_bytes), 64, 64 * 1024 * 1024, NULL,
    N_("Largest frame or request body accepted (default 1048576)"), N_("BYTES") },
  { "max-connections", KIND_UINT, FIELD (max_connections), 1, 1000000, NULL,
    N_("WebSocket connections accepted at once (default 10000)"), N_("N") },
  { "max-topics", KIND_UINT, FIELD (max_topics), 1, 10000000, NULL,
    N_("Topics that may exist at once (default 10000)"), N_("N") },
  { "shutdown-grace", KIND_UINT, FIELD (shutdown_grace), 0, 3600, NULL,
    N_("Seconds to flush clients on SIGTERM before closing them (default 10)"), N_("SECONDS") },
  { "bus", KIND_BUS, FIELD (bus), 0, 0, NULL,
    N_("D-Bus bus to publish the management API on: session, system or none (default session)"),
    N_("BUS") },
};

#define N_KEYS G_N_ELEMENTS (keys)

PubsubConfig *
pubsub_config_new (void)
{
  PubsubConfig *config = g_new0 (PubsubConfig, 1);

  config->listen = g_strdup ("127.0.0.1:8080");
  config->queue_size = 100;
  config->history_size = 100;
  config->heartbeat_interval = 30;
  config->max_message_bytes = 1048576;
  config->max_connections = 10000;
  config->max_topics = 10000;
  config->shutdown_grace = 10;
  config->bus = PUBSUB_BUS_SESSION;
  return config;
}

void
pubsub_config_free (PubsubConfig *config)
{
  if (config == NULL)
    return;
  g_free (config->listen);
  g_free (config->api_key);
  g_free (config->config_file);
  g_free (config);
}

/**
 * pubsub_config_split_listen:
 * @listen: "HOST:PORT", "[V6]:PORT" or ":PORT" (all interfaces)
 * @out_host: (out) (optional): the host, "" for all interfaces
 * @out_port: (out) (optional): the port
 */
gboolean
pubsub_config_split_listen (const char  *listen,
                            char       **out_host,
                            guint16     *out_port,
                            GError     **error)
{
  g_autofree char *host = NULL;
  const char *colon;
  guint64 port;

  if (listen[0] == '[')
    {
      const char *close = strchr (listen, ']');

      if (close == NULL || close[1] != ':')
        goto invalid;
      host = g_strndup (listen + 1, (gsize) (close - listen - 1));
      colon = close + 1;
    }
  else
    {
      colon = strrchr (listen, ':');
      if (colon == NULL)
        goto invalid;
      host = g_strndup (listen, (gsize) (colon - listen));
    }

  if (!g_ascii_string_to_unsigned (colon + 1, 10, 0, 65535, &port, NULL))
    goto invalid;
  if (host[0] != '\0' && g_strcmp0 (host, "localhost") != 0 &&
      !g_hostname_is_ip_address (host))
    goto invalid;

  if (out_host != NULL)
    *out_host = g_steal_pointer (&host);
  if (out_port != NULL)
    *out_port = (guint16) port;
  return TRUE;

invalid:
  g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
               _("expected HOST:PORT with an IP address (or localhost) and a port from 0 to 65535, e.g. 127.0.0.1:8080 or :8080"));
  return FALSE;
}

/* Stores @text into the field of @key, or explains why it cannot. */
static gboolean
apply_value (PubsubConfig     *config,
             const ConfigKey  *key,
             const char       *text,
             const char       *source,
             GError          **error)
{
  gpointer field = G_STRUCT_MEMBER_P (config, key->offset);
  g_autoptr(GError) local_error = NULL;
  guint64 number;

  switch (key->kind)
    {
    case KIND_UINT:
      if (!g_ascii_string_to_unsigned (text, 10, key->min, key->max, &number, NULL))
        {
          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                       _("invalid value “%s” for %s (from %s): expected a whole number from %u to %u"),
                       text, key->name, source, key->min, key->max);
          return FALSE;
        }
      *(guint *) field = (guint) number;
      return TRUE;

    case KIND_STRING:
      if (*text == '\0')
        {
          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                       _("invalid value for %s (from %s): must not be empty"),
                       key->name, source);
          return FALSE;
        }
      g_free (*(char **) field);
      *(char **) field = g_strdup (text);
      return TRUE;

    case KIND_LISTEN:
      if (!pubsub_config_split_listen (text, NULL, NULL, &local_error))
        {
          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                       _("invalid value “%s” for %s (from %s): %s"),
                       text, key->name, source, local_error->message);
          return FALSE;
        }
      g_free (*(char **) field);
      *(char **) field = g_strdup (text);
      return TRUE;

    case KIND_BUS:
      if (g_str_equal (text, "session"))
        *(PubsubBus *) field = PUBSUB_BUS_SESSION;
      else if (g_str_equal (text, "system"))
        *(PubsubBus *) field = PUBSUB_BUS_SYSTEM;
      else if (g_str_equal (text, "none"))
        *(PubsubBus *) field = PUBSUB_BUS_NONE;
      else
        {
          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                       _("invalid value “%s” for %s (from %s): expected session, system or none"),
                       text, key->name, source);
          return FALSE;
        }
      return TRUE;

    default:
      g_assert_not_reached ();
    }
}

static const ConfigKey *
find_key (const char *name)
{
  for (gsize i = 0; i < N_KEYS; i++)
    if (g_str_equal (keys[i].name, name))
      return &keys[i];
  return NULL;
}

static gboolean
apply_file (PubsubConfig  *config,
            const char    *path,
            GError       **error)
{
  g_autoptr(GKeyFile) file = g_key_file_new ();
  g_auto(GStrv) groups = NULL;
  g_auto(GStrv) names = NULL;
  g_autofree char *source = NULL;

  if (!g_key_file_load_from_file (file, path, G_KEY_FILE_NONE, error))
    {
      g_prefix_error (error, _("cannot read config file %s: "), path);
      return FALSE;
    }

  groups = g_key_file_get_groups (file, NULL);
  for (gsize i = 0; groups[i] != NULL; i++)
    {
      if (!g_str_equal (groups[i], CONFIG_GROUP))
        {
          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                       _("config file %s: unknown group [%s] (only [%s] is read)"),
                       path, groups[i], CONFIG_GROUP);
          return FALSE;
        }
    }
  if (!g_key_file_has_group (file, CONFIG_GROUP))
    return TRUE;

  source = g_strdup_printf (_("config file %s"), path);
  names = g_key_file_get_keys (file, CONFIG_GROUP, NULL, NULL);
  for (gsize i = 0; names[i] != NULL; i++)
    {
      const ConfigKey *key = find_key (names[i]);
      g_autofree char *value = NULL;

      if (key == NULL)
        {
          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                       _("config file %s: unknown key “%s”"), path, names[i]);
          return FALSE;
        }
      value = g_key_file_get_string (file, CONFIG_GROUP, names[i], error);
      if (value == NULL)
        {
          g_prefix_error (error, _("config file %s: key %s: "), path, names[i]);
          return FALSE;
        }
      if (!apply_value (config, key, g_strstrip (value), source, error))
        return FALSE;
    }
  return TRUE;
}

/* PUBSUB_QUEUE_SIZE for queue-size, and so on. */
static char *
env_name_for (const ConfigKey *key)
{
  g_autofree char *upper = g_ascii_strup (key->name, -1);

  g_strdelimit (upper, "-", '_');
  return g_strconcat ("PUBSUB_", upper, NULL);
}

static gboolean
apply_environment (PubsubConfig  *config,
                   GError       **error)
{
  /* Later entries win: the historical names (ADDR, API_KEY) come first. */
  for (gsize i = 0; i < N_KEYS; i++)
    {
      g_autofree char *name = env_name_for (&keys[i]);
      const char *names[] = { keys[i].env, name };

      for (gsize j = 0; j < G_N_ELEMENTS (names); j++)
        {
          const char *value = names[j] != NULL ? g_getenv (names[j]) : NULL;
          g_autofree char *source = NULL;

          /* An empty variable is an unset one, as shells treat it. */
          if (value == NULL || *value == '\0')
            continue;
          source = g_strdup_printf (_("environment variable %s"), names[j]);
          if (!apply_value (config, &keys[i], value, source, error))
            return FALSE;
        }
    }
  return TRUE;
}

/* What the options said, before layering; freed however parsing ends. */
typedef struct {
  char *values[N_KEYS];
} OptionValues;

static void
option_values_free (OptionValues *options)
{
  for (gsize i = 0; i < N_KEYS; i++)
    g_free (options->values[i]);
  g_free (options);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (OptionValues, option_values_free)

static char *
default_config_file (void)
{
  g_autofree char *path = g_build_filename (g_get_user_config_dir (), "pubsub",
                                            "pubsub.conf", NULL);

  return g_file_test (path, G_FILE_TEST_EXISTS) ? g_steal_pointer (&path) : NULL;
}

/**
 * pubsub_config_load:
 * @config: defaults on entry, the result on success
 * @argc: (inout): the arguments
 * @argv: (inout): the arguments
 * @out_version: (out): whether --version was given
 * @error: a message naming the bad key and where its value came from
 *
 * Parses options (--help exits here, as GLib programs do), then layers
 * option > environment > file > default.
 */
gboolean
pubsub_config_load (PubsubConfig   *config,
                    int            *argc,
                    char         ***argv,
                    gboolean       *out_version,
                    GError        **error)
{
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(OptionValues) options = g_new0 (OptionValues, 1);
  g_autofree GOptionEntry *entries = g_new0 (GOptionEntry, N_KEYS + 3);
  g_autofree char *config_file = NULL;
  gboolean version = FALSE;
  gsize n = 0;

  for (gsize i = 0; i < N_KEYS; i++)
    entries[n++] = (GOptionEntry) { keys[i].name, 0, 0, G_OPTION_ARG_STRING,
                                    &options->values[i], keys[i].help, keys[i].arg };
  entries[n++] = (GOptionEntry) { "config", 'c', 0, G_OPTION_ARG_FILENAME, &config_file,
                                  N_("Read settings from FILE (default $XDG_CONFIG_HOME/pubsub/pubsub.conf)"),
                                  N_("FILE") };
  entries[n++] = (GOptionEntry) { "version", 0, 0, G_OPTION_ARG_NONE, &version,
                                  N_("Print the version and exit"), NULL };

  /* TRANSLATORS: the summary line of --help */
  context = g_option_context_new (_("— a publish/subscribe broker over WebSocket and REST"));
  g_option_context_set_translation_domain (context, GETTEXT_PACKAGE);
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  g_option_context_set_description (context,
    _("Every option can also be set in the config file ([pubsub] group, same key names)\n"
      "or in the environment as PUBSUB_<KEY> (e.g. PUBSUB_QUEUE_SIZE); ADDR and API_KEY\n"
      "are accepted for listen and api-key. Precedence: option > environment > file > default."));

  if (!g_option_context_parse (context, argc, argv, error))
    return FALSE;
  *out_version = version;
  if (version)
    return TRUE;
  if (*argc > 1)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
                   _("unexpected argument “%s”"), (*argv)[1]);
      return FALSE;
    }

  if (config_file == NULL)
    config_file = default_config_file ();
  if (config_file != NULL && !apply_file (config, config_file, error))
    return FALSE;
  config->config_file = g_steal_pointer (&config_file);

  if (!apply_environment (config, error))
    return FALSE;

  for (gsize i = 0; i < N_KEYS; i++)
    {
      g_autofree char *source = NULL;

      if (options->values[i] == NULL)
        continue;
      source = g_strdup_printf ("--%s", keys[i].name);
      if (!apply_value (config, &keys[i], options->values[i], source, error))
        return FALSE;
    }
  return TRUE;
}
