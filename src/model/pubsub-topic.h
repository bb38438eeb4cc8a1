/* pubsub-topic.h: a named topic, its history and its fan-out
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <glib-object.h>

#include "pubsub-message.h"

G_BEGIN_DECLS

/* Topic names: 1–128 characters of A–Z a–z 0–9 . _ - : (SPEC §3). */
#define PUBSUB_TOPIC_NAME_MAX 128

gboolean        pubsub_topic_name_is_valid       (const char    *name,
                                                  gsize          len);
gboolean        pubsub_check_topic_name          (const char    *name,
                                                  GError       **error) G_GNUC_WARN_UNUSED_RESULT;
void            pubsub_set_topic_name_error      (GError       **error);
void            pubsub_set_topic_not_found_error (GError       **error,
                                                  const char    *name);
void            pubsub_set_topic_exists_error    (GError       **error,
                                                  const char    *name);
void            pubsub_set_topic_limit_error     (GError       **error,
                                                  const char    *name,
                                                  guint          max_topics);

/* A place in a topic's stream: what a client saw last. */
typedef struct {
  guint64 seq;
  char    epoch[PUBSUB_EPOCH_LEN + 1];
} PubsubPosition;

/**
 * PubsubLeaveReason:
 * @PUBSUB_LEAVE_UNSUBSCRIBED: the client unsubscribed
 * @PUBSUB_LEAVE_CLOSED: the connection ended: closed by the client, broken
 *   by an error, or silent past the heartbeat
 * @PUBSUB_LEAVE_SLOW_CONSUMER: cut for not reading fast enough
 * @PUBSUB_LEAVE_TOPIC_DELETED: the topic was deleted
 * @PUBSUB_LEAVE_SHUTDOWN: the server is shutting down
 *
 * Why a subscription ended. The nicks are the reasons D-Bus shows.
 */
typedef enum {
  PUBSUB_LEAVE_UNSUBSCRIBED,
  PUBSUB_LEAVE_CLOSED,
  PUBSUB_LEAVE_SLOW_CONSUMER,
  PUBSUB_LEAVE_TOPIC_DELETED,
  PUBSUB_LEAVE_SHUTDOWN,
} PubsubLeaveReason;

#define PUBSUB_TYPE_LEAVE_REASON (pubsub_leave_reason_get_type ())

GType           pubsub_leave_reason_get_type     (void) G_GNUC_CONST;
const char     *pubsub_leave_reason_to_string    (PubsubLeaveReason reason);

#define PUBSUB_TYPE_TOPIC (pubsub_topic_get_type ())

G_DECLARE_FINAL_TYPE (PubsubTopic, pubsub_topic, PUBSUB, TOPIC, GObject)

typedef struct _PubsubTopicListener PubsubTopicListener;

/**
 * PubsubTopicListener:
 * @event: called for every message published on the topic, after the
 *   history and the counters are updated; listeners are called in the
 *   order they were added, and one added during a publish hears only the
 *   next ones
 * @deleted: called when the broker removes the topic
 * @lost: (nullable): called when messages were lost and the topic goes on
 *   at a new position (pubsub_topic_apply_reset())
 * @availability: (nullable): called when the cluster goes away or comes
 *   back (pubsub_topic_apply_availability())
 * @user_data: given to all
 *
 * The fan-out: a subscription's link to its topic, embedded in the
 * subscription, so that adding and removing one allocates nothing and
 * calling one is a function call, not a GObject signal emission (about
 * 500 instructions per handler in GLib 2.74). The "event" and "deleted"
 * signals are still emitted for other observers.
 */
struct _PubsubTopicListener {
  void     (*event)   (PubsubTopic   *topic,
                       PubsubMessage *message,
                       gpointer       user_data);
  void     (*deleted) (PubsubTopic   *topic,
                       gpointer       user_data);
  void     (*lost)    (PubsubTopic   *topic,
                       gpointer       user_data);
  void     (*availability) (PubsubTopic *topic,
                            gboolean     available,
                            gpointer     user_data);
  gpointer   user_data;

  /*< private >*/
  PubsubTopicListener *prev;
  PubsubTopicListener *next;
  guint64              serial;
};

PubsubTopic    *pubsub_topic_new                 (const char    *name,
                                                  guint          history_size);
PubsubTopic    *pubsub_topic_new_with_epoch      (const char    *name,
                                                  guint          history_size,
                                                  const char    *epoch);
void            pubsub_epoch_generate            (char          *out);
gboolean        pubsub_epoch_is_valid            (const char    *epoch);
const char     *pubsub_topic_get_name            (PubsubTopic   *self);
guint           pubsub_topic_get_subscribers     (PubsubTopic   *self);
guint64         pubsub_topic_get_messages        (PubsubTopic   *self);
guint           pubsub_topic_get_history_length  (PubsubTopic   *self);
PubsubMessage  *pubsub_topic_get_history_item    (PubsubTopic   *self,
                                                  guint          index);
const char     *pubsub_topic_get_epoch           (PubsubTopic   *self);
guint64         pubsub_topic_get_first_seq       (PubsubTopic   *self);
PubsubMessage  *pubsub_topic_get_message         (PubsubTopic   *self,
                                                  guint64        seq);
guint64         pubsub_topic_replay_start        (PubsubTopic   *self,
                                                  const PubsubPosition *since,
                                                  guint64        last_n,
                                                  gboolean      *out_recovered);
PubsubMessage  *pubsub_topic_publish             (PubsubTopic   *self,
                                                  const char    *id,
                                                  const char    *payload,
                                                  gsize          payload_len,
                                                  PubsubMessageEncoder encode,
                                                  gboolean      *out_duplicate);
gboolean        pubsub_topic_apply_message       (PubsubTopic   *self,
                                                  PubsubMessage *message);
void            pubsub_topic_apply_reset         (PubsubTopic   *self,
                                                  const char    *epoch,
                                                  guint64        last_seq);
void            pubsub_topic_apply_availability  (PubsubTopic   *self,
                                                  gboolean       available);
void            pubsub_topic_add_subscriber      (PubsubTopic   *self,
                                                  const char    *client_id);
void            pubsub_topic_remove_subscriber   (PubsubTopic   *self,
                                                  const char    *client_id,
                                                  PubsubLeaveReason reason);
void            pubsub_topic_mark_deleted        (PubsubTopic   *self);
void            pubsub_topic_add_listener        (PubsubTopic   *self,
                                                  PubsubTopicListener *listener);
void            pubsub_topic_remove_listener     (PubsubTopic   *self,
                                                  PubsubTopicListener *listener);

/**
 * PubsubTopicWatchFunc:
 * @topic: the topic whose subscriber count changed
 * @user_data: as given
 */
typedef void  (*PubsubTopicWatchFunc)            (PubsubTopic   *topic,
                                                  gpointer       user_data);

void            pubsub_topic_set_subscribers_watch (PubsubTopic        *self,
                                                    PubsubTopicWatchFunc func,
                                                    gpointer            user_data);

G_END_DECLS
