/* pubsub-json.c: a strict, single-pass RFC 8259 reader
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "pubsub-error.h"
#include "pubsub-json.h"

typedef struct {
  const char *start;
  const char *p;
  const char *end;
  guint       depth;
  const char *problem;   /* static English text; set on the first failure */

  /* Optional: the members of the outermost object, gathered on the way. */
  PubsubJsonMember *members;
  guint             max_members;
  guint             n_members;
  gboolean          too_many_members;

  /* Optional: the members of objects that are its members' values. */
  PubsubJsonMember *children;
  guint             max_children;
  guint             n_children;
  gboolean          children_lost;   /* of the outer member being read */
} Reader;

static gboolean read_value (Reader *r, PubsubJsonValue *out);

static PubsubJsonKind
kind_of (char first)
{
  switch (first)
    {
    case '{': return PUBSUB_JSON_OBJECT;
    case '[': return PUBSUB_JSON_ARRAY;
    case '"': return PUBSUB_JSON_STRING;
    case 't': return PUBSUB_JSON_TRUE;
    case 'f': return PUBSUB_JSON_FALSE;
    case 'n': return PUBSUB_JSON_NULL;
    default: return PUBSUB_JSON_NUMBER;
    }
}

static gboolean
fail (Reader     *r,
      const char *problem)
{
  if (r->problem == NULL)
    r->problem = problem;
  return FALSE;
}

/* The first byte at or after @p that is not whitespace. */
G_ALWAYS_INLINE static inline const char *
skip_ws (const char *p,
         const char *end)
{
  /* Machine-written JSON has none: one test for the usual case. */
  if (G_LIKELY (p < end && (guchar) *p > ' '))
    return p;
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
    p++;
  return p;
}

G_ALWAYS_INLINE static inline void
skip_whitespace (Reader *r)
{
  r->p = skip_ws (r->p, r->end);
}

static gboolean
is_digit (char c)
{
  return c >= '0' && c <= '9';
}

static gboolean
is_hex (char c)
{
  return is_digit (c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static gboolean
read_literal (Reader     *r,
              const char *word,
              gsize       len)
{
  if ((gsize) (r->end - r->p) < len || memcmp (r->p, word, len) != 0)
    return fail (r, "unexpected character");
  r->p += len;
  return TRUE;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static gboolean
read_number (Reader *r)
{
  if (r->p < r->end && *r->p == '-')
    r->p++;
  if (r->p >= r->end || !is_digit (*r->p))
    return fail (r, "invalid number");
  if (*r->p == '0')
    {
      r->p++;
      if (r->p < r->end && is_digit (*r->p))
        return fail (r, "numbers must not have leading zeros");
    }
  else
    {
      while (r->p < r->end && is_digit (*r->p))
        r->p++;
    }
  if (r->p < r->end && *r->p == '.')
    {
      r->p++;
      if (r->p >= r->end || !is_digit (*r->p))
        return fail (r, "a decimal point must be followed by digits");
      while (r->p < r->end && is_digit (*r->p))
        r->p++;
    }
  if (r->p < r->end && (*r->p == 'e' || *r->p == 'E'))
    {
      r->p++;
      if (r->p < r->end && (*r->p == '+' || *r->p == '-'))
        r->p++;
      if (r->p >= r->end || !is_digit (*r->p))
        return fail (r, "an exponent must have digits");
      while (r->p < r->end && is_digit (*r->p))
        r->p++;
    }
  return TRUE;
}

/* The input has been checked to be UTF-8 already; only JSON's own rules
 * remain: no raw control characters, only the escapes RFC 8259 lists. */
/* Eight bytes at a time: does any byte need a closer look (a quote, a
 * backslash or a control character)? Payload strings are most of a frame. */
#define ONES  G_GUINT64_CONSTANT (0x0101010101010101)
#define HIGHS G_GUINT64_CONSTANT (0x8080808080808080)
#define HAS_BYTE_BELOW(v, n) (((v) - ONES * (n)) & ~(v) & HIGHS)
#define HAS_ZERO_BYTE(v) HAS_BYTE_BELOW (v, 1)

/* Index of the first byte (in memory order) whose flag bit is set.
 * g_bit_nth_lsf() is a loop in GLib 2.74; the compiler builtin is one
 * instruction. */
static inline guint
first_flagged_byte (guint64 flags)
{
#if defined(__GNUC__) && G_BYTE_ORDER == G_LITTLE_ENDIAN
  return (guint) __builtin_ctzll (flags) / 8;
#elif defined(__GNUC__)
  return (guint) __builtin_clzll (flags) / 8;
#else
  for (guint i = 0; i < 8; i++)
    if (flags & (G_GUINT64_CONSTANT (0x80) << (G_BYTE_ORDER == G_LITTLE_ENDIAN ? 8 * i : 56 - 8 * i)))
      return i;
  return 8;
#endif
}

/* Advances to the first byte that needs a closer look, 16 bytes at a time
 * with SSE2 (every x86-64 has it) while 16 remain, then a whole word at a
 * time while 8 remain. The lowest flag of the word tests is exact (false
 * flags only appear above a true one), so it says where to stop. */
G_ALWAYS_INLINE static inline const char *
skip_plain_string_bytes (const char *p,
                         const char *end)
{
#ifdef __SSE2__
  const __m128i quote = _mm_set1_epi8 ('"');
  const __m128i backslash = _mm_set1_epi8 ('\\');
  const __m128i below_space = _mm_set1_epi8 (0x1f);

  while (end - p >= 16)
    {
      __m128i bytes = _mm_loadu_si128 ((const __m128i *) p);
      /* x <= 0x1f (unsigned) exactly when max (x, 0x1f) == 0x1f */
      __m128i special = _mm_or_si128 (_mm_or_si128 (_mm_cmpeq_epi8 (bytes, quote),
                                                    _mm_cmpeq_epi8 (bytes, backslash)),
                                      _mm_cmpeq_epi8 (_mm_max_epu8 (bytes, below_space),
                                                      below_space));
      int mask = _mm_movemask_epi8 (special);

      if (mask != 0)
        return p + __builtin_ctz ((unsigned) mask);
      p += 16;
    }
#endif
  while (end - p >= 8)
    {
      guint64 word;
      guint64 special;

      memcpy (&word, p, sizeof word);
      special = HAS_ZERO_BYTE (word ^ (ONES * '"')) | HAS_ZERO_BYTE (word ^ (ONES * '\\')) |
                HAS_BYTE_BELOW (word, 0x20);
      if (special != 0)
        return p + first_flagged_byte (special);
      p += 8;
    }
  return p;
}

static gboolean
read_escape (Reader *r)
{
  r->p++;   /* backslash */
  if (r->p >= r->end)
    return fail (r, "unterminated string");
  switch (*r->p)
    {
    case '"': case '\\': case '/': case 'b':
    case 'f': case 'n': case 'r': case 't':
      r->p++;
      return TRUE;
    case 'u':
      if (r->end - r->p < 5 || !is_hex (r->p[1]) || !is_hex (r->p[2]) ||
          !is_hex (r->p[3]) || !is_hex (r->p[4]))
        return fail (r, "\\u must be followed by four hex digits");
      r->p += 5;
      return TRUE;
    default:
      return fail (r, "invalid escape sequence in string");
    }
}

/* The input has been checked to be UTF-8 already; only JSON's own rules
 * remain: no raw control characters, only the escapes RFC 8259 lists.
 * Inlined: most tokens of a frame are short strings, and a call costs as
 * much as reading one. @p is the opening quote; returns the byte after the
 * closing one, or NULL once failed (with r->p where the problem is). It
 * works on a local pointer, not on r->p: the members written between two
 * strings could alias r->p, so the compiler kept storing and reloading
 * it. */
G_ALWAYS_INLINE static inline const char *
scan_string (Reader     *r,
             const char *p)
{
  const char *end = r->end;

  p++;   /* opening quote */
  for (;;)
    {
      guchar c;

      p = skip_plain_string_bytes (p, end);
      if (G_UNLIKELY (p >= end))
        {
          r->p = p;
          fail (r, "unterminated string");
          return NULL;
        }
      c = (guchar) *p;
      if (G_LIKELY (c == '"'))
        return p + 1;
      if (c < 0x20)
        {
          r->p = p;
          fail (r, "control characters must be escaped in strings");
          return NULL;
        }
      if (c == '\\')
        {
          r->p = p;
          if (!read_escape (r))
            return NULL;
          p = r->p;
        }
      else
        p++;   /* an ordinary byte among the last seven */
    }
}

G_ALWAYS_INLINE static inline gboolean
read_string (Reader *r)
{
  const char *after = scan_string (r, r->p);

  if (after == NULL)
    return FALSE;
  r->p = after;
  return TRUE;
}

static gboolean
read_array (Reader *r)
{
  r->p++;   /* [ */
  skip_whitespace (r);
  if (r->p < r->end && *r->p == ']')
    {
      r->p++;
      return TRUE;
    }
  for (;;)
    {
      PubsubJsonValue item;

      if (!read_value (r, &item))
        return FALSE;
      skip_whitespace (r);
      if (r->p >= r->end)
        return fail (r, "unterminated array");
      if (*r->p == ']')
        {
          r->p++;
          return TRUE;
        }
      if (*r->p != ',')
        return fail (r, "expected ',' or ']' in array");
      r->p++;
    }
}

/* A member of the outer object; its value's own members, if it is an
 * object and they were all gathered, are children[first_child ..]. */
static void
collect_member (Reader                *r,
                const char            *key,
                gsize                  key_len,
                const PubsubJsonValue *value,
                guint                  first_child)
{
  PubsubJsonMember *member;

  if (r->n_members == r->max_members)
    {
      r->too_many_members = TRUE;
      return;
    }
  member = &r->members[r->n_members++];
  member->key = (PubsubJsonValue) { PUBSUB_JSON_STRING, key, key_len };
  member->value = *value;
  member->first_child = first_child;
  member->n_children = PUBSUB_JSON_CHILDREN_UNKNOWN;
  if (value->kind == PUBSUB_JSON_OBJECT && r->children != NULL && !r->children_lost)
    member->n_children = r->n_children - first_child;
}

/* A member of an object that is the value of an outer member. */
static void
collect_child (Reader                *r,
               const char            *key,
               gsize                  key_len,
               const PubsubJsonValue *value)
{
  PubsubJsonMember *child;

  if (r->n_children == r->max_children)
    {
      r->children_lost = TRUE;
      return;
    }
  child = &r->children[r->n_children++];
  child->key = (PubsubJsonValue) { PUBSUB_JSON_STRING, key, key_len };
  child->value = *value;
  child->first_child = 0;
  child->n_children = PUBSUB_JSON_CHILDREN_UNKNOWN;
}

/* Between tokens, machine-written JSON has no whitespace: each place
 * tests for the byte it expects first and skips whitespace only when it is
 * not there. */
static gboolean
read_object (Reader *r)
{
  const char *end = r->end;
  const char *p = skip_ws (r->p + 1, end);   /* after the { */

  if (p < end && *p == '}')
    {
      r->p = p + 1;
      return TRUE;
    }
  for (;;)
    {
      PubsubJsonValue member;
      const char *key_start;
      gsize key_len;
      guint first_child = r->n_children;

      if (G_UNLIKELY (p >= end || *p != '"'))
        {
          p = skip_ws (p, end);
          if (p >= end || *p != '"')
            {
              r->p = p;
              return fail (r, "object keys must be double-quoted strings");
            }
        }
      key_start = p;
      p = scan_string (r, p);
      if (p == NULL)
        return FALSE;
      key_len = (gsize) (p - key_start);
      if (G_UNLIKELY (p >= end || *p != ':'))
        {
          p = skip_ws (p, end);
          if (p >= end || *p != ':')
            {
              r->p = p;
              return fail (r, "expected ':' after an object key");
            }
        }
      p++;
      if (r->depth == 1)
        r->children_lost = FALSE;
      /* Most values are strings: read in place, without read_value()'s
       * call and dispatch. */
      p = skip_ws (p, end);
      if (G_LIKELY (p < end && *p == '"'))
        {
          member.kind = PUBSUB_JSON_STRING;
          member.text = p;
          p = scan_string (r, p);
          if (p == NULL)
            return FALSE;
          member.len = (gsize) (p - member.text);
        }
      else
        {
          r->p = p;
          if (!read_value (r, &member))
            return FALSE;
          p = r->p;
        }
      if (r->depth == 1 && r->members != NULL)
        collect_member (r, key_start, key_len, &member, first_child);
      else if (r->depth == 2 && r->children != NULL)
        collect_child (r, key_start, key_len, &member);
      if (G_LIKELY (p < end && *p == ','))
        {
          p++;
          continue;
        }
      p = skip_ws (p, end);
      if (p >= end)
        {
          r->p = p;
          return fail (r, "unterminated object");
        }
      if (*p == '}')
        {
          r->p = p + 1;
          return TRUE;
        }
      if (*p != ',')
        {
          r->p = p;
          return fail (r, "expected ',' or '}' in object");
        }
      p++;
    }
}

static gboolean
read_nested (Reader   *r,
             gboolean  is_object)
{
  gboolean ok;

  if (++r->depth > PUBSUB_JSON_MAX_DEPTH)
    return fail (r, "nesting is too deep");
  ok = is_object ? read_object (r) : read_array (r);
  r->depth--;
  return ok;
}

static gboolean
read_value (Reader          *r,
            PubsubJsonValue *out)
{
  gboolean ok;

  skip_whitespace (r);
  if (r->p >= r->end)
    return fail (r, "unexpected end of input");

  out->text = r->p;
  switch (*r->p)
    {
    case '{':
      out->kind = PUBSUB_JSON_OBJECT;
      ok = read_nested (r, TRUE);
      break;
    case '[':
      out->kind = PUBSUB_JSON_ARRAY;
      ok = read_nested (r, FALSE);
      break;
    case '"':
      out->kind = PUBSUB_JSON_STRING;
      ok = read_string (r);
      break;
    case 't':
      out->kind = PUBSUB_JSON_TRUE;
      ok = read_literal (r, "true", 4);
      break;
    case 'f':
      out->kind = PUBSUB_JSON_FALSE;
      ok = read_literal (r, "false", 5);
      break;
    case 'n':
      out->kind = PUBSUB_JSON_NULL;
      ok = read_literal (r, "null", 4);
      break;
    default:
      out->kind = PUBSUB_JSON_NUMBER;
      ok = read_number (r);
      break;
    }
  out->len = (gsize) (r->p - out->text);
  return ok;
}

static gboolean
run_reader (Reader           *r,
            PubsubJsonValue  *out_value,
            GError          **error)
{
  PubsubJsonValue value;

  if (read_value (r, &value))
    {
      skip_whitespace (r);
      if (r->p == r->end)
        {
          if (out_value != NULL)
            *out_value = value;
          return TRUE;
        }
      fail (r, "unexpected data after the JSON value");
    }

  g_set_error (error, PUBSUB_ERROR, PUBSUB_ERROR_BAD_REQUEST,
               "not valid JSON: %s at byte %" G_GSIZE_FORMAT,
               r->problem, (gsize) (r->p - r->start));
  return FALSE;
}

/**
 * pubsub_json_validate:
 * @text: text, not necessarily NUL-terminated
 * @len: its length in bytes
 * @out_value: (out) (optional): the span of the one value in @text
 * @error: a %PUBSUB_ERROR_BAD_REQUEST saying what is wrong and where
 *
 * Checks that @text is valid UTF-8 and exactly one JSON value, optionally
 * surrounded by whitespace, under the strict grammar of RFC 8259.
 */
gboolean
pubsub_json_validate (const char       *text,
                      gsize             len,
                      PubsubJsonValue  *out_value,
                      GError          **error)
{
  Reader r = { .start = text, .p = text, .end = text + len };
  const char *invalid_utf8;

  if (!g_utf8_validate_len (text, len, &invalid_utf8))
    {
      g_set_error (error, PUBSUB_ERROR, PUBSUB_ERROR_BAD_REQUEST,
                   "not valid JSON: invalid UTF-8 at byte %" G_GSIZE_FORMAT,
                   (gsize) (invalid_utf8 - text));
      return FALSE;
    }
  return run_reader (&r, out_value, error);
}

/**
 * pubsub_json_parse_utf8_object:
 * @text: text already known to be valid UTF-8 (a WebSocket text message,
 *   which the frame parser checks, closing with 1007 otherwise, before
 *   delivering it)
 * @len: its length in bytes
 * @out_value: (out): the span of the one value in @text
 * @members: (out caller-allocates): room for @max_members members
 * @max_members: size of @members
 * @n_members: (out): members of the outer object found (0 if not an object)
 * @error: a %PUBSUB_ERROR_BAD_REQUEST saying what is wrong and where
 *
 * Validates like pubsub_json_validate() and, in the same single pass, lists
 * the members of the outer value if it is an object.
 *
 * Returns: %FALSE on invalid JSON, or if the object has more than
 *   @max_members members (then with @n_members == @max_members + 1)
 */
gboolean
pubsub_json_parse_utf8_object (const char        *text,
                               gsize              len,
                               PubsubJsonValue   *out_value,
                               PubsubJsonMember  *members,
                               guint              max_members,
                               guint             *n_members,
                               GError           **error)
{
  Reader r = { .start = text, .p = text, .end = text + len,
               .members = members, .max_members = max_members };

  *n_members = 0;
  if (!run_reader (&r, out_value, error))
    return FALSE;
  *n_members = r.n_members;
  if (r.too_many_members)
    {
      *n_members = max_members + 1;
      return FALSE;
    }
  return TRUE;
}

/**
 * pubsub_json_parse_utf8_members:
 * @children: (out caller-allocates): room for @max_children members
 * @max_children: size of @children
 *
 * Like pubsub_json_parse_utf8_object(), and in the same single pass also
 * gathers the members of the objects that are the outer object's member
 * values: for such a member, children[first_child .. first_child +
 * n_children) are its value's members, in order; when they did not all fit,
 * its n_children is %PUBSUB_JSON_CHILDREN_UNKNOWN (ask
 * pubsub_json_object_members()). Other members have
 * %PUBSUB_JSON_CHILDREN_UNKNOWN too.
 */
gboolean
pubsub_json_parse_utf8_members (const char        *text,
                                gsize              len,
                                PubsubJsonValue   *out_value,
                                PubsubJsonMember  *members,
                                guint              max_members,
                                guint             *n_members,
                                PubsubJsonMember  *children,
                                guint              max_children,
                                GError           **error)
{
  Reader r = { .start = text, .p = text, .end = text + len,
               .members = members, .max_members = max_members,
               .children = children, .max_children = max_children };

  *n_members = 0;
  if (!run_reader (&r, out_value, error))
    return FALSE;
  *n_members = r.n_members;
  if (r.too_many_members)
    {
      *n_members = max_members + 1;
      return FALSE;
    }
  return TRUE;
}

/* Skips one value of text already validated: no checks, just its end. */
static const char *
skip_valid_value (const char *p)
{
  guint depth = 0;

  do
    {
      switch (*p)
        {
        case '"':
          /* Validated strings hold no raw NUL, so strcspn() stays inside. */
          for (p++; *(p += strcspn (p, "\"\\")) != '"'; p += 2)
            ;
          p++;
          break;
        case '{': case '[':
          depth++;
          p++;
          break;
        case '}': case ']':
          depth--;
          p++;
          break;
        case ',': case ':': case ' ': case '\t': case '\n': case '\r':
          p++;
          break;
        default:   /* numbers and literals */
          do
            p++;
          while (g_ascii_isalnum (*p) || *p == '.' || *p == '-' || *p == '+');
          break;
        }
    }
  while (depth > 0);
  return p;
}

/**
 * pubsub_json_object_members:
 * @object: a %PUBSUB_JSON_OBJECT from an already validated text
 * @members: (out caller-allocates): room for @max_members members
 * @max_members: size of @members
 * @n_members: (out): members found
 *
 * Lists the members of @object in order, without validating again.
 *
 * Returns: %FALSE if @object has more than @max_members members
 */
gboolean
pubsub_json_object_members (const PubsubJsonValue *object,
                            PubsubJsonMember      *members,
                            guint                  max_members,
                            guint                 *n_members)
{
  const char *p = object->text + 1;
  const char *end = object->text + object->len - 1;   /* the closing brace */

  g_return_val_if_fail (object->kind == PUBSUB_JSON_OBJECT, FALSE);

  *n_members = 0;
  for (;;)
    {
      PubsubJsonMember member;

      while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ','))
        p++;
      if (p >= end)
        return TRUE;
      if (*n_members == max_members)
        return FALSE;

      member.key.kind = PUBSUB_JSON_STRING;
      member.key.text = p;
      p = skip_valid_value (p);
      member.key.len = (gsize) (p - member.key.text);
      while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ':')
        p++;
      member.value.text = p;
      member.value.kind = kind_of (*p);
      p = skip_valid_value (p);
      member.value.len = (gsize) (p - member.value.text);
      member.first_child = 0;
      member.n_children = PUBSUB_JSON_CHILDREN_UNKNOWN;
      members[(*n_members)++] = member;
    }
}

/* @name is plain text of @name_len bytes. A key with escapes is longer
 * than the text it stands for, so only a longer key needs decoding. */
static gboolean
key_equal_len (const PubsubJsonValue *key,
               const char            *name,
               gsize                  name_len)
{
  g_autofree char *decoded = NULL;
  gsize decoded_len;

  if (key->len == name_len + 2)
    return memcmp (key->text + 1, name, name_len) == 0;
  if (key->len < name_len + 2 || memchr (key->text, '\\', key->len) == NULL)
    return FALSE;
  decoded = pubsub_json_string_decode (key, &decoded_len);
  return decoded_len == name_len && memcmp (decoded, name, name_len) == 0;
}

/**
 * pubsub_json_key_equal:
 * @key: a string value
 * @name: a plain ASCII name
 *
 * Compares the string @key (quotes and escapes included) with @name.
 */
gboolean
pubsub_json_key_equal (const PubsubJsonValue *key,
                       const char            *name)
{
  return key_equal_len (key, name, strlen (name));
}

/**
 * pubsub_json_find_member:
 * @members: members from pubsub_json_object_members() or the like
 * @n_members: how many
 * @name: a plain name
 * @name_len: its length in bytes
 *
 * Returns: (nullable): the value of the last member called @name, as with
 *   JSON.parse()
 */
const PubsubJsonValue *
pubsub_json_find_member (const PubsubJsonMember *members,
                         guint                   n_members,
                         const char             *name,
                         gsize                   name_len)
{
  for (guint i = n_members; i > 0; i--)
    if (key_equal_len (&members[i - 1].key, name, name_len))
      return &members[i - 1].value;
  return NULL;
}

static guint
hex4 (const char *p)
{
  guint value = 0;

  for (guint i = 0; i < 4; i++)
    value = (value << 4) | (guint) g_ascii_xdigit_value (p[i]);
  return value;
}

/**
 * pubsub_json_string_decode:
 * @string: a validated %PUBSUB_JSON_STRING
 * @out_len: (out) (optional): decoded length in bytes; the text may hold NULs
 *
 * Resolves escapes. Lone surrogates become U+FFFD.
 *
 * Returns: (transfer full): the NUL-terminated UTF-8 text
 */
char *
pubsub_json_string_decode (const PubsubJsonValue *string,
                           gsize                 *out_len)
{
  const char *p = string->text + 1;
  const char *end = string->text + string->len - 1;
  GString *out = g_string_sized_new (string->len);

  g_return_val_if_fail (string->kind == PUBSUB_JSON_STRING, NULL);

  while (p < end)
    {
      gunichar u;

      if (*p != '\\')
        {
          g_string_append_c (out, *p++);
          continue;
        }
      p++;
      switch (*p)
        {
        case 'b': g_string_append_c (out, '\b'); p++; continue;
        case 'f': g_string_append_c (out, '\f'); p++; continue;
        case 'n': g_string_append_c (out, '\n'); p++; continue;
        case 'r': g_string_append_c (out, '\r'); p++; continue;
        case 't': g_string_append_c (out, '\t'); p++; continue;
        case 'u': break;
        default: g_string_append_c (out, *p++); continue;
        }
      u = hex4 (p + 1);
      p += 5;
      if (u >= 0xD800 && u < 0xDC00 && end - p >= 6 && p[0] == '\\' && p[1] == 'u')
        {
          gunichar low = hex4 (p + 2);

          if (low >= 0xDC00 && low < 0xE000)
            {
              u = 0x10000 + ((u - 0xD800) << 10) + (low - 0xDC00);
              p += 6;
            }
        }
      if (u >= 0xD800 && u < 0xE000)
        u = 0xFFFD;
      g_string_append_unichar (out, u);
    }

  if (out_len != NULL)
    *out_len = out->len;
  return g_string_free (out, FALSE);
}

/**
 * pubsub_json_append_string:
 * @text: UTF-8 text
 *
 * Appends @text to @out as a JSON string, escaping what must be.
 */
void
pubsub_json_append_string (GString    *out,
                           const char *text)
{
  g_string_append_c (out, '"');
  for (const char *p = text; *p != '\0'; p++)
    {
      guchar c = (guchar) *p;

      if (c == '"' || c == '\\')
        {
          g_string_append_c (out, '\\');
          g_string_append_c (out, (char) c);
        }
      else if (c < 0x20)
        g_string_append_printf (out, "\\u%04x", c);
      else
        g_string_append_c (out, (char) c);
    }
  g_string_append_c (out, '"');
}
