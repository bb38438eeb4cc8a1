/* pubsub-config.h: settings from options, environment, file and defaults
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef enum {
  PUBSUB_BUS_SESSION,
  PUBSUB_BUS_SYSTEM,
  PUBSUB_BUS_NONE,
} PubsubBus;

typedef struct {
  char      *listen;               /* HOST:PORT */
  char      *api_key;              /* NULL: authentication off */
  guint      queue_size;
  guint      history_size;
  guint      heartbeat_interval;   /* seconds, 0 = off */
  guint      max_message_bytes;
  guint      max_connections;
  guint      max_topics;
  guint      shutdown_grace;       /* seconds */
  PubsubBus  bus;
  char      *config_file;          /* the file read, if any */
} PubsubConfig;

/* Exit status for a bad option, environment variable or config value. */
#define PUBSUB_CONFIG_EXIT_USAGE 2

PubsubConfig *pubsub_config_new        (void);
void          pubsub_config_free       (PubsubConfig  *config);
gboolean      pubsub_config_load       (PubsubConfig  *config,
                                        int           *argc,
                                        char        ***argv,
                                        gboolean      *out_version,
                                        GError       **error) G_GNUC_WARN_UNUSED_RESULT;
gboolean      pubsub_config_split_listen (const char  *listen,
                                          char       **out_host,
                                          guint16     *out_port,
                                          GError     **error) G_GNUC_WARN_UNUSED_RESULT;

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PubsubConfig, pubsub_config_free)

G_END_DECLS
