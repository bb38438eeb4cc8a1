/* fuzz-common.h: what every fuzz harness shares: the libFuzzer entry point
 * (also called by the replay driver, replay.c) and a one-time setup
 *
 * SPDX-License-Identifier: MIT
 */
#pragma once

#include <glib.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

G_BEGIN_DECLS

/* Called by libFuzzer for every input, and by replay.c for every file of a
 * corpus. Returns 0; a broken invariant aborts (g_assert). */
int LLVMFuzzerTestOneInput (const uint8_t *data,
                            size_t         size);

/* A critical or a warning from GLib or from the code under test is a bug the
 * fuzzer must report, as G_DEBUG=fatal-criticals does in the test suite.
 * GLib's own fatal messages end in a breakpoint (SIGTRAP), which libFuzzer
 * does not catch: abort() instead, so that the input is saved. */
static inline GLogWriterOutput
fuzz_log_writer (GLogLevelFlags   log_level,
                 const GLogField *fields,
                 gsize            n_fields,
                 gpointer         user_data)
{
  GLogWriterOutput written = g_log_writer_default (log_level, fields, n_fields, user_data);

  if (log_level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING))
    abort ();
  return written;
}

static inline void
fuzz_setup_once (void)
{
  static gboolean done;

  if (G_LIKELY (done))
    return;
  g_log_set_writer_func (fuzz_log_writer, NULL, NULL);
  done = TRUE;
}

/* Valid UTF-8 as RFC 3629 has it, NUL bytes included (U+0000), which
 * g_utf8_validate() refuses. One character at a time: a check independent
 * of the code under test. */
static inline gboolean
fuzz_utf8_is_valid (const void *data,
                    gsize       len)
{
  const char *p = data;
  const char *end = p + len;

  while (p < end)
    {
      gunichar c;

      if (*p == '\0')   /* which g_utf8_get_char_validated() refuses too */
        {
          p++;
          continue;
        }
      c = g_utf8_get_char_validated (p, end - p);
      if (c == (gunichar) -1 || c == (gunichar) -2)
        return FALSE;
      p += g_unichar_to_utf8 (c, NULL);
    }
  return TRUE;
}

G_END_DECLS
