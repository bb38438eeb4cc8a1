/* pubsub-dashboard.h: the live dashboard: GET / and its files under
 * /dashboard/, served from the GResource compiled into pubsubd
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <libsoup/soup.h>

G_BEGIN_DECLS

gboolean pubsub_dashboard_handle (SoupServerMessage *msg,
                                  const char        *path);

G_END_DECLS
