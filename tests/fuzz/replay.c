/* replay.c: runs every file of a fuzz corpus through one harness's
 * LLVMFuzzerTestOneInput, without libFuzzer, so that the normal build (gcc,
 * valgrind, ASan) replays the corpus as an ordinary test
 *
 *   replay-ws-frame tests/fuzz/corpus/ws-frame [more dirs or files…]
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-common.h"

/* Each input in a buffer of exactly its size, as libFuzzer gives it: a read
 * one byte past the end is then an error for valgrind and ASan. */
static void
replay_file (const char *path)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *contents = NULL;
  g_autofree guint8 *exact = NULL;
  gsize len;

  if (!g_file_get_contents (path, &contents, &len, &error))
    {
      fprintf (stderr, "replay: %s\n", error->message);
      exit (EXIT_FAILURE);
    }
  /* Never NULL, even when empty, as with libFuzzer. */
  exact = g_malloc (MAX (len, 1));
  memcpy (exact, contents, len);
  LLVMFuzzerTestOneInput (exact, len);
}

static int
compare_names (gconstpointer a,
               gconstpointer b)
{
  return strcmp (*(char * const *) a, *(char * const *) b);
}

/* Returns: how many files were replayed, in name order (reproducible). */
static guint
replay_path (const char *path)
{
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GError) error = NULL;
  g_autoptr(GDir) dir = NULL;
  const char *name;

  if (!g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      replay_file (path);
      return 1;
    }
  dir = g_dir_open (path, 0, &error);
  if (dir == NULL)
    {
      fprintf (stderr, "replay: %s\n", error->message);
      exit (EXIT_FAILURE);
    }
  while ((name = g_dir_read_name (dir)) != NULL)
    g_ptr_array_add (names, g_build_filename (path, name, NULL));
  g_ptr_array_sort (names, compare_names);
  for (guint i = 0; i < names->len; i++)
    replay_file (g_ptr_array_index (names, i));
  return names->len;
}

int
main (int   argc,
      char *argv[])
{
  guint replayed = 0;

  if (argc < 2)
    {
      fprintf (stderr, "usage: %s CORPUS-DIR-OR-FILE…\n", argv[0]);
      return EXIT_FAILURE;
    }
  for (int i = 1; i < argc; i++)
    replayed += replay_path (argv[i]);
  /* An empty or missing corpus would make the test pass for nothing. */
  if (replayed == 0)
    {
      fprintf (stderr, "replay: no inputs found\n");
      return EXIT_FAILURE;
    }
  printf ("replayed %u inputs\n", replayed);
  return EXIT_SUCCESS;
}
