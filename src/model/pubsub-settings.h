/* pubsub-settings.h: the one table of pubsubd's settings and the struct of
 * their values
 *
 * Each setting is one row: its key (config-file key, --key option and
 * PUBSUB_<KEY> variable), its type, default and range, a historical variable
 * name if it has one, and its --help text. The loader (pubsub-config.c), the
 * --help output and the defaults of the model's properties all read it, so a
 * default is written once. GLib only: the model's classes include it.
 *
 * Adding a setting: a PubsubSettingId, a row in pubsub-settings.c and a
 * field in PubsubConfig.
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The values of the "bus" setting, in the order of its choices. */
typedef enum {
  PUBSUB_BUS_SESSION,
  PUBSUB_BUS_SYSTEM,
  PUBSUB_BUS_NONE,
} PubsubBus;

/* The resolved settings, one field per row of the table. */
typedef struct {
  char      *listen;               /* HOST:PORT */
  char      *api_key;              /* NULL: authentication off */
  guint      queue_size;
  guint      history_size;
  guint      heartbeat_interval;   /* seconds, 0 = off */
  guint      max_message_bytes;
  guint      max_connections;      /* HTTP and WebSocket */
  guint      header_timeout;       /* seconds */
  guint      idle_timeout;         /* seconds */
  guint      max_topics;
  guint      shutdown_grace;       /* seconds */
  PubsubBus  bus;
  char      *cluster;              /* NULL: the in-memory engine */
  char      *cluster_prefix;       /* Redis key prefix */
  char      *node_id;              /* NULL: host name ":" listen port */
  char      *config_file;          /* the file read, if any (not a setting) */
} PubsubConfig;

/* Rows of the table, in --help order. */
typedef enum {
  PUBSUB_SETTING_LISTEN,
  PUBSUB_SETTING_API_KEY,
  PUBSUB_SETTING_QUEUE_SIZE,
  PUBSUB_SETTING_HISTORY_SIZE,
  PUBSUB_SETTING_HEARTBEAT_INTERVAL,
  PUBSUB_SETTING_MAX_MESSAGE_BYTES,
  PUBSUB_SETTING_MAX_CONNECTIONS,
  PUBSUB_SETTING_HEADER_TIMEOUT,
  PUBSUB_SETTING_IDLE_TIMEOUT,
  PUBSUB_SETTING_MAX_TOPICS,
  PUBSUB_SETTING_SHUTDOWN_GRACE,
  PUBSUB_SETTING_BUS,
  PUBSUB_SETTING_CLUSTER,
  PUBSUB_SETTING_CLUSTER_PREFIX,
  PUBSUB_SETTING_NODE_ID,
  PUBSUB_N_SETTINGS,
} PubsubSettingId;

typedef enum {
  PUBSUB_SETTING_TYPE_UINT,      /* guint field: a decimal number in [min, max] */
  PUBSUB_SETTING_TYPE_STRING,    /* char * field: any non-empty text */
  PUBSUB_SETTING_TYPE_ADDRESS,   /* char * field: HOST:PORT (pubsub_config_split_listen) */
  PUBSUB_SETTING_TYPE_ENUM,      /* enum field (int-sized): the index of one of choices */
  PUBSUB_SETTING_TYPE_CLUSTER,   /* char * field: a cluster address
                                  * (pubsub_cluster_address_parse), or ""
                                  * for none (stored as NULL) */
} PubsubSettingType;

typedef struct {
  const char          *key;             /* lower-case words joined by '-' */
  PubsubSettingType    type;
  gsize                offset;          /* of its field in PubsubConfig */
  guint                min;             /* uint only */
  guint                max;             /* uint only */
  guint                default_uint;    /* uint: the value; enum: an index into choices */
  const char          *default_string;  /* string, address: the value, or NULL for unset */
  const char * const  *choices;         /* enum only: NULL-terminated, in the enum's order */
  const char          *env_alias;       /* historical variable, read before PUBSUB_<KEY> */
  const char          *help;            /* N_(): what it does, without the default */
  const char          *arg;             /* N_(): the argument in --help, e.g. "N" */
} PubsubSetting;

/* A cluster's Redis: redis://HOST[:PORT][/DB] or unix:PATH. */
typedef struct {
  char  *host;    /* NULL for a Unix socket */
  guint  port;
  char  *path;    /* NULL for TCP */
  guint  db;
} PubsubClusterAddress;

gboolean             pubsub_cluster_address_parse    (const char           *text,
                                                      PubsubClusterAddress *address,
                                                      GError              **error);
void                 pubsub_cluster_address_clear    (PubsubClusterAddress *address);

const PubsubSetting *pubsub_setting_get              (PubsubSettingId      id);
const PubsubSetting *pubsub_setting_lookup           (const char          *key);
guint                pubsub_setting_get_default_uint (PubsubSettingId      id);
guint                pubsub_setting_get_min          (PubsubSettingId      id);
guint                pubsub_setting_get_max          (PubsubSettingId      id);
char                *pubsub_setting_dup_env_name     (const PubsubSetting *setting);
char                *pubsub_setting_dup_default_text (const PubsubSetting *setting);
char                *pubsub_setting_dup_help         (const PubsubSetting *setting);
char                *pubsub_setting_dup_choices_text (const PubsubSetting *setting);

G_END_DECLS
