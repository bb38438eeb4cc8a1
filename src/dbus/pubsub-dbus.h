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

void pubsub_dbus_error_register (void);

#define PUBSUB_TYPE_DBUS_SERVICE (pubsub_dbus_service_get_type ())

G_DECLARE_FINAL_TYPE (PubsubDBusService, pubsub_dbus_service, PUBSUB, DBUS_SERVICE, GObject)

PubsubDBusService *pubsub_dbus_service_new   (PubsubBroker      *broker,
                                              const char        *listen_address);
void               pubsub_dbus_service_start (PubsubDBusService *self,
                                              GBusType           bus_type);
void               pubsub_dbus_service_stop  (PubsubDBusService *self);

G_END_DECLS
