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

#include "pubsub-message.h"

G_BEGIN_DECLS

/* The id of the messages made here, and of those the tests publish. */
#define PUBSUB_TEST_UUID "123e4567-e89b-12d3-a456-426614174000"

/* A message on @topic with payload {"n":@n} and id PUBSUB_TEST_UUID. */
PubsubMessage *pubsub_test_message_new_numbered (const char *topic,
                                                 guint       n);

/**
 * pubsub_test_event_fields:
 * @out_payload: (out) (optional): the JSON text of message.payload
 * @out_id: (out) (optional): message.id, decoded
 * @out_topic: (out) (optional): topic, decoded
 *
 * Reads the event frame of @message with the project's strict JSON reader,
 * asserting its shape: four members, the first three "type" (= "event"),
 * "topic" and "message", and message's two "id" then "payload".
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

G_END_DECLS
