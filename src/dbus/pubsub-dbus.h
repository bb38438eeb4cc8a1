/* pubsub-dbus.h: the broker on D-Bus (dev.pubsub.Broker1, dev.pubsub.Topic1)
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <gio/gio.h>

#include "pubsub-broker.h"

G_BEGIN_DECLS

#define PUBSUB_DBUS_NAME        "dev.pubsub.Broker"
#define PUBSUB_DBUS_PATH        "/dev/pubsub/Broker"
#define PUBSUB_DBUS_TOPICS_PATH PUBSUB_DBUS_PATH "/topics"

#define PUBSUB_DBUS_ERROR (pubsub_dbus_error_quark ())

/**
 * PubsubDBusError:
 * @PUBSUB_DBUS_ERROR_INVALID_ARGUMENT: dev.pubsub.Error.InvalidArgument
 * @PUBSUB_DBUS_ERROR_TOPIC_NOT_FOUND: dev.pubsub.Error.TopicNotFound
 * @PUBSUB_DBUS_ERROR_TOPIC_EXISTS: dev.pubsub.Error.TopicExists
 * @PUBSUB_DBUS_ERROR_LIMIT_EXCEEDED: dev.pubsub.Error.LimitExceeded
 * @PUBSUB_DBUS_ERROR_INTERNAL: dev.pubsub.Error.Internal
 *
 * The errors a D-Bus caller sees. A separate domain rather than PUBSUB_ERROR
 * itself, because several PubsubError codes (INTERNAL, SLOW_CONSUMER,
 * UNAUTHORIZED) can never come out of a D-Bus call or all mean "Internal",
 * and GDBus needs a one-to-one code ↔ name registration.
 */
typedef enum {
  PUBSUB_DBUS_ERROR_INVALID_ARGUMENT,
  PUBSUB_DBUS_ERROR_TOPIC_NOT_FOUND,
  PUBSUB_DBUS_ERROR_TOPIC_EXISTS,
  PUBSUB_DBUS_ERROR_LIMIT_EXCEEDED,
  PUBSUB_DBUS_ERROR_INTERNAL,
} PubsubDBusError;

GQuark pubsub_dbus_error_quark (void);

#define PUBSUB_TYPE_DBUS_SERVICE (pubsub_dbus_service_get_type ())

G_DECLARE_FINAL_TYPE (PubsubDBusService, pubsub_dbus_service, PUBSUB, DBUS_SERVICE, GObject)

PubsubDBusService *pubsub_dbus_service_new   (PubsubBroker      *broker,
                                              const char        *listen_address);
void               pubsub_dbus_service_start (PubsubDBusService *self,
                                              GBusType           bus_type);
void               pubsub_dbus_service_stop  (PubsubDBusService *self);

G_END_DECLS
