/* pubsub-config.c: settings from options, environment, file and defaults
 *
 * Every setting is a row of the table in pubsub-settings.c: its config-file
 * key, its --long-option of the same name, its environment variables, its
 * default, range and --help text. This file walks that table and knows how
 * to read and check each type of value.
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

#define N_SETTINGS ((gsize) PUBSUB_N_SETTINGS)

static gpointer
field_of (PubsubConfig        *config,
          const PubsubSetting *setting)
{
  return G_STRUCT_MEMBER_P (config, setting->offset);
}

static gboolean
is_string_type (PubsubSettingType type)
{
  return type == PUBSUB_SETTING_TYPE_STRING || type == PUBSUB_SETTING_TYPE_ADDRESS ||
         type == PUBSUB_SETTING_TYPE_CLUSTER;
}

/* Every field at its default, from the table. */
PubsubConfig *
pubsub_config_new (void)
{
  PubsubConfig *config = g_new0 (PubsubConfig, 1);

  for (gsize i = 0; i < N_SETTINGS; i++)
    {
      const PubsubSetting *setting = pubsub_setting_get (i);
      gpointer field = field_of (config, setting);

      switch (setting->type)
        {
        case PUBSUB_SETTING_TYPE_UINT:
          *(guint *) field = setting->default_uint;
          break;
        case PUBSUB_SETTING_TYPE_STRING:
        case PUBSUB_SETTING_TYPE_ADDRESS:
        case PUBSUB_SETTING_TYPE_CLUSTER:
          *(char **) field = g_strdup (setting->default_string);
          break;
        case PUBSUB_SETTING_TYPE_ENUM:
          *(int *) field = (int) setting->default_uint;
          break;
        default:
          g_assert_not_reached ();
        }
    }
  return config;
}

void
pubsub_config_free (PubsubConfig *config)
{
  if (config == NULL)
    return;
  for (gsize i = 0; i < N_SETTINGS; i++)
    {
      const PubsubSetting *setting = pubsub_setting_get (i);

      if (is_string_type (setting->type))
        g_free (*(char **) field_of (config, setting));
    }
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

/* The index of @text among the choices of an enum setting, or -1. */
static int
find_choice (const PubsubSetting *setting,
             const char          *text)
{
  for (int i = 0; setting->choices[i] != NULL; i++)
    if (g_str_equal (setting->choices[i], text))
      return i;
  return -1;
}

/* A cluster address, or "" to run alone (overriding a config file). */
static gboolean
set_cluster (const PubsubSetting  *setting,
             const char           *text,
             const char           *source,
             gpointer              field,
             GError              **error)
{
  PubsubClusterAddress address;
  g_autoptr(GError) local_error = NULL;

  if (*text != '\0' && !pubsub_cluster_address_parse (text, &address, &local_error))
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   _("invalid value “%s” for %s (from %s): %s"),
                   text, setting->key, source, local_error->message);
      return FALSE;
    }
  if (*text != '\0')
    pubsub_cluster_address_clear (&address);
  g_free (*(char **) field);
  *(char **) field = *text != '\0' ? g_strdup (text) : NULL;
  return TRUE;
}

/* Stores @text into the field of @setting, or explains why it cannot. */
static gboolean
apply_value (PubsubConfig         *config,
             const PubsubSetting  *setting,
             const char           *text,
             const char           *source,
             GError              **error)
{
  gpointer field = field_of (config, setting);
  g_autoptr(GError) local_error = NULL;
  guint64 number;
  int choice;

  switch (setting->type)
    {
    case PUBSUB_SETTING_TYPE_UINT:
      if (!g_ascii_string_to_unsigned (text, 10, setting->min, setting->max, &number, NULL))
        {
          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                       _("invalid value “%s” for %s (from %s): expected a whole number from %u to %u"),
                       text, setting->key, source, setting->min, setting->max);
          return FALSE;
        }
      *(guint *) field = (guint) number;
      return TRUE;

    case PUBSUB_SETTING_TYPE_STRING:
      if (*text == '\0')
        {
          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                       _("invalid value for %s (from %s): must not be empty"),
                       setting->key, source);
          return FALSE;
        }
      g_free (*(char **) field);
      *(char **) field = g_strdup (text);
      return TRUE;

    case PUBSUB_SETTING_TYPE_ADDRESS:
      if (!pubsub_config_split_listen (text, NULL, NULL, &local_error))
        {
          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                       _("invalid value “%s” for %s (from %s): %s"),
                       text, setting->key, source, local_error->message);
          return FALSE;
        }
      g_free (*(char **) field);
      *(char **) field = g_strdup (text);
      return TRUE;

    case PUBSUB_SETTING_TYPE_CLUSTER:
      return set_cluster (setting, text, source, field, error);

    case PUBSUB_SETTING_TYPE_ENUM:
      choice = find_choice (setting, text);
      if (choice < 0)
        {
          g_autofree char *choices = pubsub_setting_dup_choices_text (setting);

          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                       /* TRANSLATORS: the last %s lists the accepted values */
                       _("invalid value “%s” for %s (from %s): expected one of %s"),
                       text, setting->key, source, choices);
          return FALSE;
        }
      *(int *) field = choice;
      return TRUE;

    default:
      g_assert_not_reached ();
    }
}

/* GKeyFile's messages may quote the file's bytes as they are (a bad group
 * name, say), but a GError's message is UTF-8: @key_file_error's message,
 * made valid, after @prefix. Takes @key_file_error. */
static void
propagate_key_file_error (GError     **error,
                          GError      *key_file_error,
                          const char  *prefix)
{
  g_autofree char *message = g_utf8_make_valid (key_file_error->message, -1);

  g_set_error (error, key_file_error->domain, key_file_error->code, "%s%s", prefix, message);
  g_error_free (key_file_error);
}

/* Whether a raw key-file value ends in an escape character with nothing to
 * escape: an odd run of backslashes at its end. */
static gboolean
ends_in_lone_backslash (const char *raw)
{
  const char *end = raw + strlen (raw);
  const char *p = end;

  while (p > raw && p[-1] == '\\')
    p--;
  return (end - p) % 2 == 1;
}

/* After loading the config file @path, from the file or as text: FALSE,
 * with the message of a file that cannot be read, if @load_error (taken)
 * is set. */
static gboolean
check_loaded (GError     **error,
              GError      *load_error,
              const char  *path)
{
  g_autofree char *prefix = NULL;

  if (load_error == NULL)
    return TRUE;
  prefix = g_strdup_printf (_("cannot read config file %s: "), path);
  propagate_key_file_error (error, load_error, prefix);
  return FALSE;
}

/* The [pubsub] group of a config file (@path, for messages) into @config. */
static gboolean
apply_key_file (PubsubConfig  *config,
                GKeyFile      *file,
                const char    *path,
                GError       **error)
{
  g_auto(GStrv) groups = NULL;
  g_auto(GStrv) names = NULL;
  g_autofree char *source = NULL;

  groups = g_key_file_get_groups (file, NULL);
  for (gsize i = 0; groups[i] != NULL; i++)
    {
      if (!g_str_equal (groups[i], CONFIG_GROUP))
        {
          /* GKeyFile takes names that are not UTF-8; messages must be. */
          g_autofree char *shown = g_utf8_make_valid (groups[i], -1);

          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                       _("config file %s: unknown group [%s] (only [%s] is read)"),
                       path, shown, CONFIG_GROUP);
          return FALSE;
        }
    }
  if (!g_key_file_has_group (file, CONFIG_GROUP))
    return TRUE;

  source = g_strdup_printf (_("config file %s"), path);
  names = g_key_file_get_keys (file, CONFIG_GROUP, NULL, NULL);
  for (gsize i = 0; names[i] != NULL; i++)
    {
      const PubsubSetting *setting = pubsub_setting_lookup (names[i]);
      g_autoptr(GError) local_error = NULL;
      g_autofree char *value = NULL;

      if (setting == NULL)
        {
          g_autofree char *shown = g_utf8_make_valid (names[i], -1);

          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                       _("config file %s: unknown key “%s”"), path, shown);
          return FALSE;
        }
      /* GLib 2.74 sets its error twice, with a warning about our code,
       * when a value has both a bad escape and a lone backslash at its end:
       * refuse the second before it looks. */
      value = g_key_file_get_value (file, CONFIG_GROUP, names[i], NULL);
      if (value != NULL && ends_in_lone_backslash (value))
        {
          g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                       _("config file %s: key %s: the value ends with an escape "
                         "character (\\)"), path, names[i]);
          return FALSE;
        }
      g_clear_pointer (&value, g_free);
      /* A bad escape (\q) gives a value AND an error: the error is what
       * counts. */
      value = g_key_file_get_string (file, CONFIG_GROUP, names[i], &local_error);
      if (local_error != NULL)
        {
          g_autofree char *prefix = g_strdup_printf (_("config file %s: key %s: "),
                                                     path, names[i]);

          propagate_key_file_error (error, g_steal_pointer (&local_error), prefix);
          return FALSE;
        }
      if (!apply_value (config, setting, g_strstrip (value), source, error))
        return FALSE;
    }
  return TRUE;
}

static gboolean
apply_file (PubsubConfig  *config,
            const char    *path,
            GError       **error)
{
  g_autoptr(GKeyFile) file = g_key_file_new ();
  GError *load_error = NULL;

  g_key_file_load_from_file (file, path, G_KEY_FILE_NONE, &load_error);
  return check_loaded (error, load_error, path) && apply_key_file (config, file, path, error);
}

/**
 * pubsub_config_apply_file_data:
 * @config: the settings so far
 * @data: the text of a config file, not necessarily NUL-terminated
 * @len: its length in bytes
 * @path: the file's name, for messages
 * @error: a message naming the bad key, as for a file
 *
 * Applies a config file's text as pubsub_config_load() applies the file it
 * reads: the same syntax, checks and messages, without a file (for tests
 * and fuzzing).
 */
gboolean
pubsub_config_apply_file_data (PubsubConfig  *config,
                               const char    *data,
                               gsize          len,
                               const char    *path,
                               GError       **error)
{
  g_autoptr(GKeyFile) file = g_key_file_new ();
  GError *load_error = NULL;

  g_return_val_if_fail (data != NULL || len == 0, FALSE);

  g_key_file_load_from_data (file, data != NULL ? data : "", len, G_KEY_FILE_NONE, &load_error);
  return check_loaded (error, load_error, path) && apply_key_file (config, file, path, error);
}

static gboolean
apply_environment (PubsubConfig  *config,
                   GError       **error)
{
  /* Later entries win: a historical name (ADDR, API_KEY) comes first. */
  for (gsize i = 0; i < N_SETTINGS; i++)
    {
      const PubsubSetting *setting = pubsub_setting_get (i);
      g_autofree char *name = pubsub_setting_dup_env_name (setting);
      const char *names[] = { setting->env_alias, name };

      for (gsize j = 0; j < G_N_ELEMENTS (names); j++)
        {
          const char *value = names[j] != NULL ? g_getenv (names[j]) : NULL;
          g_autofree char *source = NULL;

          /* An empty variable is an unset one, as shells treat it. */
          if (value == NULL || *value == '\0')
            continue;
          source = g_strdup_printf (_("environment variable %s"), names[j]);
          if (!apply_value (config, setting, value, source, error))
            return FALSE;
        }
    }
  return TRUE;
}

/* What the options said, before layering, and the --help texts of the
 * settings; freed however parsing ends. */
typedef struct {
  char *values[N_SETTINGS];
  char *help[N_SETTINGS];
} OptionValues;

static void
option_values_free (OptionValues *options)
{
  for (gsize i = 0; i < N_SETTINGS; i++)
    {
      g_free (options->values[i]);
      g_free (options->help[i]);
    }
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
  g_autofree GOptionEntry *entries = g_new0 (GOptionEntry, N_SETTINGS + 3);
  g_autofree char *config_file = NULL;
  gboolean version = FALSE;
  gsize n = 0;

  /* A setting's --help text is put together from translated parts (its
   * text, its default), so every text is translated here and the context
   * is given no translation domain: it translates nothing twice. */
  for (gsize i = 0; i < N_SETTINGS; i++)
    {
      const PubsubSetting *setting = pubsub_setting_get (i);

      options->help[i] = pubsub_setting_dup_help (setting);
      entries[n++] = (GOptionEntry) { setting->key, 0, 0, G_OPTION_ARG_STRING,
                                      &options->values[i], options->help[i], _(setting->arg) };
    }
  entries[n++] = (GOptionEntry) { "config", 'c', 0, G_OPTION_ARG_FILENAME, &config_file,
                                  _("Read settings from FILE (default $XDG_CONFIG_HOME/pubsub/pubsub.conf)"),
                                  _("FILE") };
  entries[n++] = (GOptionEntry) { "version", 0, 0, G_OPTION_ARG_NONE, &version,
                                  _("Print the version and exit"), NULL };

  /* TRANSLATORS: the summary line of --help */
  context = g_option_context_new (_("— a publish/subscribe broker over WebSocket and REST"));
  g_option_context_add_main_entries (context, entries, NULL);
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

  for (gsize i = 0; i < N_SETTINGS; i++)
    {
      const PubsubSetting *setting = pubsub_setting_get (i);
      g_autofree char *source = NULL;

      if (options->values[i] == NULL)
        continue;
      source = g_strdup_printf ("--%s", setting->key);
      if (!apply_value (config, setting, options->values[i], source, error))
        return FALSE;
    }
  return TRUE;
}
