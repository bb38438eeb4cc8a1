/* fuzz-config.c: the config file reader (src/config/pubsub-config.c)
 *
 * Input: the text of a config file, applied over the defaults with
 * pubsub_config_apply_file_data(): the key-file part of what pubsubd does
 * with `--config FILE`, the same syntax, checks and messages, without a
 * file (tests/test-settings.c checks that the two agree). Checked:
 *
 *  - a file that applies gives settings within the table's ranges, a listen
 *    address that splits, an API key that is absent or not empty, a bus
 *    that is one of the choices;
 *  - a file that does not apply gives a G_OPTION_ERROR or GKeyFile error
 *    whose message (printed to the user) is valid UTF-8 and names the file,
 *    and nothing out of range was stored on the way.
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <string.h>

#include "fuzz-common.h"
#include "pubsub-config.h"
#include "pubsub-settings.h"

#define FILE_NAME "fuzz.conf"

/* Every field within what the table allows. */
static void
check_config (const PubsubConfig *config)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *host = NULL;
  guint16 port;

  for (gsize i = 0; i < PUBSUB_N_SETTINGS; i++)
    {
      const PubsubSetting *setting = pubsub_setting_get (i);
      gconstpointer field = G_STRUCT_MEMBER_P (config, setting->offset);

      switch (setting->type)
        {
        case PUBSUB_SETTING_TYPE_UINT:
          g_assert_cmpuint (*(const guint *) field, >=, setting->min);
          g_assert_cmpuint (*(const guint *) field, <=, setting->max);
          break;
        case PUBSUB_SETTING_TYPE_STRING:
          g_assert_true (*(char * const *) field == NULL || **(char * const *) field != '\0');
          break;
        case PUBSUB_SETTING_TYPE_ADDRESS:
          g_assert_nonnull (*(char * const *) field);
          break;
        case PUBSUB_SETTING_TYPE_CLUSTER:
          if (*(char * const *) field != NULL)
            {
              PubsubClusterAddress address;

              g_assert_true (pubsub_cluster_address_parse (*(char * const *) field, &address, NULL));
              pubsub_cluster_address_clear (&address);
            }
          break;
        case PUBSUB_SETTING_TYPE_ENUM:
          g_assert_cmpint (*(const int *) field, >=, 0);
          g_assert_cmpint (*(const int *) field, <, (int) g_strv_length ((char **) setting->choices));
          break;
        default:
          g_assert_not_reached ();
        }
    }
  g_assert_true (pubsub_config_split_listen (config->listen, &host, &port, &error));
  g_assert_no_error (error);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autoptr(PubsubConfig) config = pubsub_config_new ();
  g_autoptr(GError) error = NULL;

  fuzz_setup_once ();
  if (pubsub_config_apply_file_data (config, (const char *) data, size, FILE_NAME, &error))
    g_assert_no_error (error);
  else
    {
      g_assert_nonnull (error);
      g_assert_true (error->domain == G_OPTION_ERROR || error->domain == G_KEY_FILE_ERROR);
      g_assert_true (g_utf8_validate (error->message, -1, NULL));
      g_assert_nonnull (strstr (error->message, FILE_NAME));
    }
  /* Whatever failed, nothing out of range was stored. */
  check_config (config);
  return 0;
}
