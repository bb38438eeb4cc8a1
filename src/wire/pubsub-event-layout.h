/* pubsub-event-layout.h: the literal pieces of an event's JSON text
 *
 * {"type":"event","topic":"T","message":{"id":"ID","payload":P},"seq":N,
 *  "epoch":"E","ts":"TS"}
 *
 * One home for the layout that three places write or read: the event frame
 * built once per publish (pubsub-protocol.c), the text cluster nodes build
 * around a gap for seq and epoch and read back (pubsub-event-text.c), and
 * the Redis publish script that fills the gap (pubsub-redis-scripts.c).
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#define PUBSUB_EVENT_START   "{\"type\":\"event\",\"topic\":\""
#define PUBSUB_EVENT_ID      "\",\"message\":{\"id\":\""
#define PUBSUB_EVENT_PAYLOAD "\",\"payload\":"
#define PUBSUB_EVENT_SEQ     "},\"seq\":"
#define PUBSUB_EVENT_EPOCH   ",\"epoch\":\""
#define PUBSUB_EVENT_TS      "\",\"ts\":\""
#define PUBSUB_EVENT_END     "\"}"
