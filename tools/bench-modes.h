/* bench-modes.h: the runs pubsub-bench makes, one per --mode, each from
 * connecting to the printed result; they return the exit status
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* idle: hold the subscribed connections and report the server's RSS per
 * connection. 0, or 1 when a connection was lost. */
gint bench_mode_idle    (void);

/* fanout and slow: publish for --duration, drain, check what arrived. 0, 1
 * on an integrity failure, 3 when the slow subscriber was never cut. */
gint bench_mode_publish (void);

G_END_DECLS
