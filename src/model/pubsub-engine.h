/* pubsub-engine.h: where topics, seq and history are decided
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <glib-object.h>

#include "pubsub-message.h"

G_BEGIN_DECLS

typedef struct _PubsubBroker PubsubBroker;

/**
 * PubsubEngineReply:
 * @error: (nullable): why the call failed, in %PUBSUB_ERROR; %NULL when it
 *   succeeded
 * @epoch: create_topic: the new topic's epoch ("" otherwise)
 * @seq: publish: the message's seq (of the earlier message for a duplicate)
 * @duplicate: publish: an earlier message still in the history had this id
 *
 * What an engine answers. A reply answered at once belongs to the caller,
 * who clears it (g_auto); one given to a #PubsubEngineCallback belongs to
 * the engine.
 */
typedef struct {
  GError   *error;
  char      epoch[PUBSUB_EPOCH_LEN + 1];
  guint64   seq;
  gboolean  duplicate;
} PubsubEngineReply;

void pubsub_engine_reply_clear (PubsubEngineReply *reply);

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (PubsubEngineReply, pubsub_engine_reply_clear)

#define PUBSUB_TYPE_ENGINE (pubsub_engine_get_type ())

G_DECLARE_INTERFACE (PubsubEngine, pubsub_engine, PUBSUB, ENGINE, GObject)

/**
 * PubsubEngineCallback:
 * @engine: the engine
 * @reply: its answer
 * @owner: the object the call was made for
 *
 * How a call that could not be answered at once is answered later. Calls
 * made for one @owner are answered in the order they were made, so an owner
 * can keep what it needs to finish them in a queue of its own; that queue
 * exists only in cluster mode, which is why a call answered at once does not
 * go through the callback at all.
 */
typedef void (*PubsubEngineCallback) (PubsubEngine            *engine,
                                      const PubsubEngineReply *reply,
                                      GObject                 *owner);

/**
 * PubsubEngineInterface:
 * @start: begin serving @broker, the node's replica of the topics: the
 *   engine keeps it up to date through the broker's and topics' `apply`
 *   functions (pubsub_broker_apply_created(), pubsub_topic_apply_message()…)
 * @stop: stop; pending calls are answered with %PUBSUB_ERROR_UNAVAILABLE
 * @is_available: whether calls can succeed now
 * @create_topic: register a topic under @name with a new epoch; the topic
 *   is in the broker when the reply comes
 * @delete_topic: remove the topic everywhere; gone from the broker when the
 *   reply comes
 * @publish: assign the next seq to a message (or find it a duplicate) and
 *   store it; the message reaches the topic's listeners through
 *   pubsub_topic_apply_message() (memory engine: before the reply)
 * @sync: answers once every change stored before the call is in the broker
 *   (read-your-writes across nodes before a read of the replica)
 * @get_remote_subscribers: subscriptions to @topic on the other live nodes
 * @get_nodes: live nodes, this one included
 * @get_node_id: this node's id
 * @get_cluster: the cluster's address, or "" for the memory engine
 *
 * Every call that takes a @reply and a @callback either answers at once —
 * fills @reply and returns %TRUE — or returns %FALSE and answers later
 * through @callback, holding a reference on @owner until then.
 */
struct _PubsubEngineInterface {
  GTypeInterface parent_iface;

  void        (*start)                  (PubsubEngine         *self,
                                         PubsubBroker         *broker);
  void        (*stop)                   (PubsubEngine         *self);
  gboolean    (*is_available)           (PubsubEngine         *self);
  gboolean    (*create_topic)           (PubsubEngine         *self,
                                         const char           *name,
                                         PubsubEngineReply    *reply,
                                         GObject              *owner,
                                         PubsubEngineCallback  callback);
  gboolean    (*delete_topic)           (PubsubEngine         *self,
                                         const char           *name,
                                         PubsubEngineReply    *reply,
                                         GObject              *owner,
                                         PubsubEngineCallback  callback);
  gboolean    (*publish)                (PubsubEngine         *self,
                                         const char           *topic,
                                         const char           *id,
                                         const char           *payload,
                                         gsize                 payload_len,
                                         PubsubEngineReply    *reply,
                                         GObject              *owner,
                                         PubsubEngineCallback  callback);
  gboolean    (*sync)                   (PubsubEngine         *self,
                                         PubsubEngineReply    *reply,
                                         GObject              *owner,
                                         PubsubEngineCallback  callback);
  guint       (*get_remote_subscribers) (PubsubEngine         *self,
                                         const char           *topic);
  guint       (*get_nodes)              (PubsubEngine         *self);
  const char *(*get_node_id)            (PubsubEngine         *self);
  const char *(*get_cluster)            (PubsubEngine         *self);
};

void        pubsub_engine_start                  (PubsubEngine         *self,
                                                  PubsubBroker         *broker);
void        pubsub_engine_stop                   (PubsubEngine         *self);
gboolean    pubsub_engine_is_available           (PubsubEngine         *self);
gboolean    pubsub_engine_create_topic           (PubsubEngine         *self,
                                                  const char           *name,
                                                  PubsubEngineReply    *reply,
                                                  GObject              *owner,
                                                  PubsubEngineCallback  callback);
gboolean    pubsub_engine_delete_topic           (PubsubEngine         *self,
                                                  const char           *name,
                                                  PubsubEngineReply    *reply,
                                                  GObject              *owner,
                                                  PubsubEngineCallback  callback);
gboolean    pubsub_engine_publish                (PubsubEngine         *self,
                                                  const char           *topic,
                                                  const char           *id,
                                                  const char           *payload,
                                                  gsize                 payload_len,
                                                  PubsubEngineReply    *reply,
                                                  GObject              *owner,
                                                  PubsubEngineCallback  callback);
gboolean    pubsub_engine_sync                   (PubsubEngine         *self,
                                                  PubsubEngineReply    *reply,
                                                  GObject              *owner,
                                                  PubsubEngineCallback  callback);
guint       pubsub_engine_get_remote_subscribers (PubsubEngine         *self,
                                                  const char           *topic);
guint       pubsub_engine_get_nodes              (PubsubEngine         *self);
const char *pubsub_engine_get_node_id            (PubsubEngine         *self);
const char *pubsub_engine_get_cluster            (PubsubEngine         *self);

G_END_DECLS
