/* pubsub-test-model.h: helpers for the in-process tests of the domain model
 * (topics, messages, the broker)
 *
 * Kept apart from pubsub-test-util, which the integration tests link: they
 * drive the real pubsubd from outside and must not need the core library.
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <glib-object.h>

#include "pubsub-broker.h"
#include "pubsub-message.h"
#include "pubsub-topic.h"

G_BEGIN_DECLS

/* The id of the messages made here, and of those the tests publish. */
#define PUBSUB_TEST_UUID "123e4567-e89b-12d3-a456-426614174000"

/* A message encoded as the daemon encodes it (a WebSocket event frame),
 * seq 1 of the epoch PUBSUB_TEST_EPOCH, stamped now. */
#define PUBSUB_TEST_EPOCH "0123456789abcdef"
PubsubMessage *pubsub_test_message_new          (const char *topic,
                                                 const char *id,
                                                 const char *payload,
                                                 gsize       payload_len);
/* A UUID of its own for message @n. */
char          *pubsub_test_numbered_uuid        (guint       n);
/* Publishes {"n":@n} with the id pubsub_test_numbered_uuid (@n), asserting
 * it is not a duplicate. Returns: (transfer full) */
PubsubMessage *pubsub_test_publish_numbered     (PubsubTopic *topic,
                                                 guint        n);

/**
 * pubsub_test_event_fields:
 * @out_payload: (out) (optional): the JSON text of message.payload
 * @out_id: (out) (optional): message.id, decoded
 * @out_topic: (out) (optional): topic, decoded
 *
 * Reads the event frame of @message with the project's strict JSON reader,
 * asserting its shape: six members, "type" (= "event"), "topic",
 * "message", "seq", "epoch", "ts", and message's two "id" then "payload".
 */
void           pubsub_test_event_fields         (PubsubMessage  *message,
                                                 char          **out_payload,
                                                 char          **out_id,
                                                 char          **out_topic);
/* The JSON text of the event frame's message.payload. */
char          *pubsub_test_event_payload        (PubsubMessage  *message);

/* A "notify" handler that counts, in the guint @counter points to. */
void           pubsub_test_count_notify         (GObject        *object,
                                                 GParamSpec     *pspec,
                                                 gpointer        counter);

/* The broker's calls, answered at once by the memory engine. */
PubsubTopic   *pubsub_test_broker_create        (PubsubBroker   *broker,
                                                 const char     *name,
                                                 GError        **error);
gboolean       pubsub_test_broker_delete        (PubsubBroker   *broker,
                                                 const char     *name,
                                                 GError        **error);
PubsubMessage *pubsub_test_broker_publish      (PubsubBroker   *broker,
                                                 const char     *topic,
                                                 const char     *id,
                                                 const char     *payload,
                                                 gsize           payload_len,
                                                 gboolean       *out_duplicate,
                                                 GError        **error);
PubsubMessage *pubsub_test_broker_publish_json (PubsubBroker   *broker,
                                                 const char     *topic,
                                                 const char     *id,
                                                 const char     *payload_json,
                                                 gboolean       *out_duplicate,
                                                 GError        **error);

G_END_DECLS
