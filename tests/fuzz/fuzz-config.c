/* fuzz-config.c: the config file reader (src/config/pubsub-config.c)
 *
 * Input: the text of a config file. The loader only reads files, so each
 * input is written to one temporary file (set TMPDIR=/dev/shm for speed)
 * and read by pubsub_config_load() as `pubsubd --config FILE` would, with
 * no PUBSUB_* variable in the environment. Checked:
 *
 *  - a file that loads gives settings within the ranges the daemon
 *    accepts, a listen address that splits, and an API key that is absent
 *    or not empty;
 *  - a file that does not load gives an error whose message (printed to
 *    the user) is valid UTF-8, and the defaults are not half-overwritten
 *    into something out of range.
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-common.h"
#include "pubsub-config.h"

static char *config_path;

static void
remove_config_file (void)
{
  g_autofree char *dir = g_path_get_dirname (config_path);

  g_unlink (config_path);
  g_rmdir (dir);
}

/* The environment must not decide what a file gives; one file, reused. */
static void
config_setup_once (void)
{
  static const char *variables[] = {
    "ADDR", "API_KEY", "PUBSUB_LISTEN", "PUBSUB_API_KEY", "PUBSUB_QUEUE_SIZE",
    "PUBSUB_HISTORY_SIZE", "PUBSUB_HEARTBEAT_INTERVAL", "PUBSUB_MAX_MESSAGE_BYTES",
    "PUBSUB_MAX_CONNECTIONS", "PUBSUB_MAX_TOPICS", "PUBSUB_SHUTDOWN_GRACE", "PUBSUB_BUS",
  };
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = NULL;

  if (config_path != NULL)
    return;
  for (gsize i = 0; i < G_N_ELEMENTS (variables); i++)
    g_unsetenv (variables[i]);
  dir = g_dir_make_tmp ("fuzz-config-XXXXXX", &error);
  g_assert_no_error (error);
  config_path = g_build_filename (dir, "pubsub.conf", NULL);
  atexit (remove_config_file);
}

static void
write_config_file (const uint8_t *data,
                   size_t         size)
{
  FILE *file = fopen (config_path, "wb");

  g_assert_nonnull (file);
  g_assert_cmpuint (fwrite (data, 1, size, file), ==, size);
  g_assert_cmpint (fclose (file), ==, 0);
}

static void
check_config (const PubsubConfig *config)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *host = NULL;
  guint16 port;

  g_assert_true (pubsub_config_split_listen (config->listen, &host, &port, &error));
  g_assert_no_error (error);
  g_assert_true (config->api_key == NULL || config->api_key[0] != '\0');
  g_assert_cmpuint (config->queue_size, >=, 1);
  g_assert_cmpuint (config->queue_size, <=, 1000000);
  g_assert_cmpuint (config->history_size, <=, 1000000);
  g_assert_cmpuint (config->heartbeat_interval, <=, 86400);
  g_assert_cmpuint (config->max_message_bytes, >=, 64);
  g_assert_cmpuint (config->max_message_bytes, <=, 64 * 1024 * 1024);
  g_assert_cmpuint (config->max_connections, >=, 1);
  g_assert_cmpuint (config->max_connections, <=, 1000000);
  g_assert_cmpuint (config->max_topics, >=, 1);
  g_assert_cmpuint (config->max_topics, <=, 10000000);
  g_assert_cmpuint (config->shutdown_grace, <=, 3600);
  g_assert_true (config->bus == PUBSUB_BUS_SESSION || config->bus == PUBSUB_BUS_SYSTEM ||
                 config->bus == PUBSUB_BUS_NONE);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autoptr(PubsubConfig) config = pubsub_config_new ();
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) args = NULL;
  char **argv;
  int argc = 3;
  gboolean version = FALSE;

  fuzz_setup_once ();
  config_setup_once ();
  write_config_file (data, size);

  /* g_option_context_parse() takes arguments out of argv: keep the
   * strings in args to free them. */
  args = g_strdupv ((char *[]) { (char *) "pubsubd", (char *) "--config", config_path, NULL });
  argv = g_memdup2 (args, sizeof (char *) * 4);
  if (pubsub_config_load (config, &argc, &argv, &version, &error))
    {
      g_assert_no_error (error);
      g_assert_false (version);
      g_assert_cmpstr (config->config_file, ==, config_path);
    }
  else
    {
      g_assert_nonnull (error);
      g_assert_true (g_utf8_validate (error->message, -1, NULL));
    }
  /* Whatever failed, nothing out of range was stored. */
  check_config (config);
  g_free (argv);
  return 0;
}
