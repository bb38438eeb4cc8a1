/* pubsub-config.h: settings from options, environment, file and defaults
 *
 * PubsubConfig and the table of settings it is filled from are in
 * pubsub-settings.h.
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <gio/gio.h>

#include "pubsub-settings.h"

G_BEGIN_DECLS

/* Exit status for a bad option, environment variable or config value. */
#define PUBSUB_CONFIG_EXIT_USAGE 2

PubsubConfig *pubsub_config_new        (void);
void          pubsub_config_free       (PubsubConfig  *config);
gboolean      pubsub_config_load       (PubsubConfig  *config,
                                        int           *argc,
                                        char        ***argv,
                                        gboolean      *out_version,
                                        GError       **error) G_GNUC_WARN_UNUSED_RESULT;
gboolean      pubsub_config_apply_file_data (PubsubConfig  *config,
                                             const char    *data,
                                             gsize          len,
                                             const char    *path,
                                             GError       **error) G_GNUC_WARN_UNUSED_RESULT;
gboolean      pubsub_config_split_listen (const char  *listen,
                                          char       **out_host,
                                          guint16     *out_port,
                                          GError     **error) G_GNUC_WARN_UNUSED_RESULT;

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PubsubConfig, pubsub_config_free)

G_END_DECLS
