/* test-settings.c: the table of settings (src/model/pubsub-settings.c) and
 * what is built from it
 *
 * - every row is well formed: a key per id, unique, a default inside its
 *   range, a field of its own in PubsubConfig;
 * - the defaults and variables are those of SPEC §1 (and no others);
 * - pubsub_config_new () and the GObject properties of the broker, topic and
 *   subscriber take their defaults and ranges from the table;
 * - the --help text of a setting states its default;
 * - a config file's text, applied from memory, gives what the file gives
 *   when pubsubd reads it (the fuzzing harness relies on that).
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <string.h>

#include <glib-object.h>
#include <glib/gstdio.h>

#include "pubsub-broker.h"
#include "pubsub-config.h"
#include "pubsub-settings.h"
#include "pubsub-subscriber.h"
#include "pubsub-topic.h"

static gboolean
is_key_syntax (const char *key)
{
  if (!g_ascii_islower (key[0]))
    return FALSE;
  for (const char *p = key; *p != '\0'; p++)
    if (!g_ascii_islower (*p) && !g_ascii_isdigit (*p) && *p != '-')
      return FALSE;
  return !g_str_has_suffix (key, "-") && strstr (key, "--") == NULL;
}

static void
test_table (void)
{
  g_autoptr(GHashTable) offsets = g_hash_table_new (NULL, NULL);

  for (guint id = 0; id < PUBSUB_N_SETTINGS; id++)
    {
      const PubsubSetting *setting = pubsub_setting_get (id);

      g_test_message ("setting %u: %s", id, setting->key);
      /* A missing row of the designated initialiser is all zeros. */
      g_assert_nonnull (setting->key);
      g_assert_true (is_key_syntax (setting->key));
      g_assert_true (pubsub_setting_lookup (setting->key) == setting);
      g_assert_nonnull (setting->help);
      g_assert_nonnull (setting->arg);

      g_assert_cmpuint (setting->offset, <, sizeof (PubsubConfig));
      g_assert_false (g_hash_table_contains (offsets, GSIZE_TO_POINTER (setting->offset)));
      g_hash_table_add (offsets, GSIZE_TO_POINTER (setting->offset));

      switch (setting->type)
        {
        case PUBSUB_SETTING_TYPE_UINT:
          g_assert_cmpuint (setting->min, <=, setting->default_uint);
          g_assert_cmpuint (setting->default_uint, <=, setting->max);
          g_assert_null (setting->default_string);
          g_assert_null (setting->choices);
          break;
        case PUBSUB_SETTING_TYPE_STRING:
          g_assert_true (setting->default_string == NULL || *setting->default_string != '\0');
          g_assert_null (setting->choices);
          break;
        case PUBSUB_SETTING_TYPE_ADDRESS:
          g_assert_true (setting->default_string == NULL ||
                         pubsub_config_split_listen (setting->default_string, NULL, NULL, NULL));
          g_assert_null (setting->choices);
          break;
        case PUBSUB_SETTING_TYPE_CLUSTER:
          g_assert_null (setting->default_string);
          g_assert_null (setting->choices);
          break;
        case PUBSUB_SETTING_TYPE_ENUM:
          g_assert_nonnull (setting->choices);
          g_assert_cmpuint (setting->default_uint, <, g_strv_length ((char **) setting->choices));
          g_assert_null (setting->default_string);
          break;
        default:
          g_assert_not_reached ();
        }
    }
  g_assert_null (pubsub_setting_lookup ("queue_size"));
  g_assert_null (pubsub_setting_lookup ("config"));
  g_assert_null (pubsub_setting_lookup (""));
}

/* SPEC §1, written out: the table must say the same. */
static const struct {
  PubsubSettingId  id;
  const char      *key;
  const char      *default_text;   /* NULL: unset */
  const char      *env;
  const char      *env_alias;
} spec_rows[] = {
  { PUBSUB_SETTING_LISTEN, "listen", "127.0.0.1:8080", "PUBSUB_LISTEN", "ADDR" },
  { PUBSUB_SETTING_API_KEY, "api-key", NULL, "PUBSUB_API_KEY", "API_KEY" },
  { PUBSUB_SETTING_QUEUE_SIZE, "queue-size", "100", "PUBSUB_QUEUE_SIZE", NULL },
  { PUBSUB_SETTING_HISTORY_SIZE, "history-size", "100", "PUBSUB_HISTORY_SIZE", NULL },
  { PUBSUB_SETTING_HEARTBEAT_INTERVAL, "heartbeat-interval", "30",
    "PUBSUB_HEARTBEAT_INTERVAL", NULL },
  { PUBSUB_SETTING_MAX_MESSAGE_BYTES, "max-message-bytes", "1048576",
    "PUBSUB_MAX_MESSAGE_BYTES", NULL },
  { PUBSUB_SETTING_MAX_CONNECTIONS, "max-connections", "10000", "PUBSUB_MAX_CONNECTIONS", NULL },
  /* Not in §1: the HTTP front's (README, "HTTP limits and keep-alive"). */
  { PUBSUB_SETTING_HEADER_TIMEOUT, "header-timeout", "10", "PUBSUB_HEADER_TIMEOUT", NULL },
  { PUBSUB_SETTING_IDLE_TIMEOUT, "idle-timeout", "75", "PUBSUB_IDLE_TIMEOUT", NULL },
  { PUBSUB_SETTING_MAX_TOPICS, "max-topics", "10000", "PUBSUB_MAX_TOPICS", NULL },
  { PUBSUB_SETTING_SHUTDOWN_GRACE, "shutdown-grace", "10", "PUBSUB_SHUTDOWN_GRACE", NULL },
  { PUBSUB_SETTING_BUS, "bus", "session", "PUBSUB_BUS", NULL },
  /* §9 */
  { PUBSUB_SETTING_CLUSTER, "cluster", NULL, "PUBSUB_CLUSTER", NULL },
  { PUBSUB_SETTING_CLUSTER_PREFIX, "cluster-prefix", "pubsub", "PUBSUB_CLUSTER_PREFIX", NULL },
  { PUBSUB_SETTING_NODE_ID, "node-id", NULL, "PUBSUB_NODE_ID", NULL },
};

static void
test_spec_defaults (void)
{
  const char * const bus_choices[] = { "session", "system", "none", NULL };

  g_assert_cmpuint (G_N_ELEMENTS (spec_rows), ==, PUBSUB_N_SETTINGS);
  for (gsize i = 0; i < G_N_ELEMENTS (spec_rows); i++)
    {
      const PubsubSetting *setting = pubsub_setting_get (spec_rows[i].id);
      g_autofree char *default_text = pubsub_setting_dup_default_text (setting);
      g_autofree char *env = pubsub_setting_dup_env_name (setting);

      g_assert_cmpstr (setting->key, ==, spec_rows[i].key);
      g_assert_cmpstr (default_text, ==, spec_rows[i].default_text);
      g_assert_cmpstr (env, ==, spec_rows[i].env);
      g_assert_cmpstr (setting->env_alias, ==, spec_rows[i].env_alias);
    }
  /* The enum's order is PubsubBus's. */
  g_assert_true (g_strv_equal (pubsub_setting_get (PUBSUB_SETTING_BUS)->choices, bus_choices));
}

static void
test_config_defaults (void)
{
  g_autoptr(PubsubConfig) config = pubsub_config_new ();

  g_assert_cmpstr (config->listen, ==, "127.0.0.1:8080");
  g_assert_null (config->api_key);
  g_assert_cmpint (config->bus, ==, PUBSUB_BUS_SESSION);
  g_assert_null (config->config_file);
  for (guint id = 0; id < PUBSUB_N_SETTINGS; id++)
    {
      const PubsubSetting *setting = pubsub_setting_get (id);

      if (setting->type == PUBSUB_SETTING_TYPE_UINT)
        g_assert_cmpuint (G_STRUCT_MEMBER (guint, config, setting->offset), ==,
                          setting->default_uint);
    }
  g_assert_cmpuint (config->queue_size, ==, 100);
  g_assert_cmpuint (config->history_size, ==, 100);
  g_assert_cmpuint (config->heartbeat_interval, ==, 30);
  g_assert_cmpuint (config->max_message_bytes, ==, 1048576);
  g_assert_cmpuint (config->max_connections, ==, 10000);
  g_assert_cmpuint (config->max_topics, ==, 10000);
  g_assert_cmpuint (config->shutdown_grace, ==, 10);
}

static void
assert_property_from_table (GType            type,
                            const char      *property,
                            PubsubSettingId  id)
{
  g_autoptr(GTypeClass) klass = g_type_class_ref (type);
  GParamSpec *pspec = g_object_class_find_property (G_OBJECT_CLASS (klass), property);
  GParamSpecUInt *uint_spec;

  g_assert_nonnull (pspec);
  g_assert_true (G_IS_PARAM_SPEC_UINT (pspec));
  uint_spec = G_PARAM_SPEC_UINT (pspec);
  g_assert_cmpuint (uint_spec->default_value, ==, pubsub_setting_get_default_uint (id));
  g_assert_cmpuint (uint_spec->minimum, ==, pubsub_setting_get_min (id));
  g_assert_cmpuint (uint_spec->maximum, ==, pubsub_setting_get_max (id));
}

static void
test_property_defaults (void)
{
  assert_property_from_table (PUBSUB_TYPE_BROKER, "history-size", PUBSUB_SETTING_HISTORY_SIZE);
  assert_property_from_table (PUBSUB_TYPE_BROKER, "max-topics", PUBSUB_SETTING_MAX_TOPICS);
  assert_property_from_table (PUBSUB_TYPE_TOPIC, "history-size", PUBSUB_SETTING_HISTORY_SIZE);
  assert_property_from_table (PUBSUB_TYPE_SUBSCRIBER, "queue-size", PUBSUB_SETTING_QUEUE_SIZE);
}

/* The test program binds no text domain: these are the English texts. */
static void
test_help (void)
{
  static const struct {
    PubsubSettingId  id;
    const char      *help;
  } rows[] = {
    { PUBSUB_SETTING_LISTEN,
      "Address to listen on; port 0 picks a free port (default 127.0.0.1:8080)" },
    { PUBSUB_SETTING_API_KEY, "Require this key in X-API-Key (or ?api_key= on /ws)" },
    { PUBSUB_SETTING_HISTORY_SIZE, "Messages kept per topic for replay (default 100)" },
    { PUBSUB_SETTING_BUS,
      "D-Bus bus to publish the management API on: session, system, none (default session)" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (rows); i++)
    {
      g_autofree char *help = pubsub_setting_dup_help (pubsub_setting_get (rows[i].id));

      g_assert_cmpstr (help, ==, rows[i].help);
    }

  /* Every setting with a default shows it, last. */
  for (guint id = 0; id < PUBSUB_N_SETTINGS; id++)
    {
      const PubsubSetting *setting = pubsub_setting_get (id);
      g_autofree char *help = pubsub_setting_dup_help (setting);
      g_autofree char *default_text = pubsub_setting_dup_default_text (setting);
      g_autofree char *suffix = g_strdup_printf (" (default %s)", default_text);

      if (default_text != NULL)
        g_assert_true (g_str_has_suffix (help, suffix));
      else
        g_assert_null (strstr (help, "default"));
    }
}

/* ---- config files from memory ------------------------------------------ */

typedef struct {
  const char *name;
  const char *text;
  gsize       len;   /* 0: strlen */
} FileCase;

static const FileCase file_cases[] = {
  { "empty", "", 0 },
  { "all", "[pubsub]\nlisten=[::1]:0\napi-key=k\\sey\nqueue-size=7\nhistory-size=0\n"
           "heartbeat-interval=1\nmax-message-bytes=64\nmax-connections=3\nmax-topics=4\n"
           "shutdown-grace=5\nbus=none\n", 0 },
  { "comments", "# c\n[pubsub]\n; c\nqueue-size = 9 \n", 0 },
  { "bad-value", "[pubsub]\nqueue-size=0\n", 0 },
  { "bad-escape", "[pubsub]\napi-key=a\\qb\n", 0 },
  { "bad-escape-then-backslash", "[pubsub]\napi-key=a\\q\\\n", 0 },
  { "unknown-key", "[pubsub]\nfrobnicate=1\n", 0 },
  { "unknown-group", "[other]\n", 0 },
  { "not-utf8-group", "[p\xff\x06u]\n", 0 },
  { "syntax", "not a key file\n", 0 },
  { "nul-byte", "[pubsub]\nqueue-size=3\0\n", 17 },
};

static void
assert_same_config (const PubsubConfig *a,
                    const PubsubConfig *b)
{
  g_assert_cmpstr (a->listen, ==, b->listen);
  g_assert_cmpstr (a->api_key, ==, b->api_key);
  g_assert_cmpuint (a->queue_size, ==, b->queue_size);
  g_assert_cmpuint (a->history_size, ==, b->history_size);
  g_assert_cmpuint (a->heartbeat_interval, ==, b->heartbeat_interval);
  g_assert_cmpuint (a->max_message_bytes, ==, b->max_message_bytes);
  g_assert_cmpuint (a->max_connections, ==, b->max_connections);
  g_assert_cmpuint (a->max_topics, ==, b->max_topics);
  g_assert_cmpuint (a->shutdown_grace, ==, b->shutdown_grace);
  g_assert_cmpint (a->bus, ==, b->bus);
}

static void
test_file_data (gconstpointer data)
{
  const FileCase *row = data;
  gsize len = row->len > 0 ? row->len : strlen (row->text);
  g_autofree char *path = g_build_filename (g_get_user_config_dir (), "from-data.conf", NULL);
  g_autoptr(PubsubConfig) from_file = pubsub_config_new ();
  g_autoptr(PubsubConfig) from_data = pubsub_config_new ();
  g_autoptr(GError) file_error = NULL;
  g_autoptr(GError) data_error = NULL;
  g_auto(GStrv) args = NULL;
  g_autofree char **argv = NULL;
  int argc = 3;
  gboolean version;
  gboolean file_ok;
  gboolean data_ok;

  /* The environment would be layered over the file. */
  for (gsize i = 0; i < PUBSUB_N_SETTINGS; i++)
    {
      const PubsubSetting *setting = pubsub_setting_get (i);
      g_autofree char *variable = pubsub_setting_dup_env_name (setting);

      g_unsetenv (variable);
      if (setting->env_alias != NULL)
        g_unsetenv (setting->env_alias);
    }
  g_assert_cmpint (g_mkdir_with_parents (g_get_user_config_dir (), 0700), ==, 0);
  g_assert_true (g_file_set_contents (path, row->text, (gssize) len, NULL));
  args = g_strdupv ((char *[]) { (char *) "pubsubd", (char *) "--config", path, NULL });
  argv = g_memdup2 (args, sizeof args[0] * 4);
  file_ok = pubsub_config_load (from_file, &argc, &argv, &version, &file_error);
  data_ok = pubsub_config_apply_file_data (from_data, row->text, len, path, &data_error);

  g_assert_cmpint (data_ok, ==, file_ok);
  if (!file_ok)
    {
      g_assert_nonnull (data_error);
      g_assert_cmpstr (data_error->message, ==, file_error->message);
      g_assert_true (g_utf8_validate (data_error->message, -1, NULL));
    }
  assert_same_config (from_data, from_file);
  g_unlink (path);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/settings/table", test_table);
  g_test_add_func ("/settings/spec-defaults", test_spec_defaults);
  g_test_add_func ("/settings/config-defaults", test_config_defaults);
  g_test_add_func ("/settings/property-defaults", test_property_defaults);
  g_test_add_func ("/settings/help", test_help);
  for (gsize i = 0; i < G_N_ELEMENTS (file_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/settings/file-data/%s", file_cases[i].name);

      g_test_add_data_func (path, &file_cases[i], test_file_data);
    }

  return g_test_run ();
}
