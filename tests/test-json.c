/* test-json.c: the strict RFC 8259 reader (src/pubsub-json.c)
 *
 * Table-driven in the style of json-glib's tests/invalid.c: every valid and
 * every invalid text is one row, registered under its own generated path
 * (/json/valid/…, /json/invalid/…), so a failure names the input. Each text
 * is copied into a heap buffer of exactly its length (no NUL after it) so
 * that valgrind and ASan catch any read past the end.
 *
 * The invalid rows cover what json-glib 1.6 wrongly accepts (STYLE.md §2):
 * single quotes, comments, hex, leading zeros, "1.", ".5", trailing data
 * after an array, empty input. The valid rows pin the spans the broker
 * forwards byte for byte (big integers, 1e400, -0.0, "\u0000", "\u001f").
 *
 * The POST /topics body reader built on it (pubsub-rest.c) is tested here
 * too, below /json/rest-body; over HTTP, tests/test-rest.c tests the rest.
 *
 * SPDX-License-Identifier: MIT
 */
#include "config.h"

#include <string.h>

#include <glib.h>

#include "pubsub-error.h"
#include "pubsub-json.h"
#include "pubsub-rest.h"

#define MAX_MEMBERS 16

/* A copy of @len bytes of @text with nothing after it. */
static char *
exact_copy (const char *text,
            gsize       len)
{
  return g_memdup2 (text, len > 0 ? len : 1);
}

/* ---------------------------------------------------------------------- */
/* Valid texts                                                            */

typedef struct {
  const char     *name;
  const char     *text;
  gssize          len;    /* -1: strlen (text) */
  PubsubJsonKind  kind;
  const char     *span;   /* the value without surrounding whitespace; NULL: text */
} ValidRow;

static const ValidRow valid_rows[] = {
  { "null", "null", -1, PUBSUB_JSON_NULL, NULL },
  { "true", "true", -1, PUBSUB_JSON_TRUE, NULL },
  { "false", "false", -1, PUBSUB_JSON_FALSE, NULL },
  { "zero", "0", -1, PUBSUB_JSON_NUMBER, NULL },
  { "minus-zero", "-0", -1, PUBSUB_JSON_NUMBER, NULL },
  { "minus-zero-point-zero", "-0.0", -1, PUBSUB_JSON_NUMBER, NULL },
  { "one", "1", -1, PUBSUB_JSON_NUMBER, NULL },
  { "negative", "-17", -1, PUBSUB_JSON_NUMBER, NULL },
  { "fraction", "1.5", -1, PUBSUB_JSON_NUMBER, NULL },
  { "zero-fraction", "0.001", -1, PUBSUB_JSON_NUMBER, NULL },
  { "exponent", "1e5", -1, PUBSUB_JSON_NUMBER, NULL },
  { "exponent-upper-plus", "1E+5", -1, PUBSUB_JSON_NUMBER, NULL },
  { "exponent-minus", "1e-5", -1, PUBSUB_JSON_NUMBER, NULL },
  { "exponent-zero-padded", "1e007", -1, PUBSUB_JSON_NUMBER, NULL },
  { "full-number", "-1.25e-10", -1, PUBSUB_JSON_NUMBER, NULL },
  { "big-integer", "12345678901234567890", -1, PUBSUB_JSON_NUMBER, NULL },
  { "int64-overflow", "9223372036854775808", -1, PUBSUB_JSON_NUMBER, NULL },
  { "huge-exponent", "1e400", -1, PUBSUB_JSON_NUMBER, NULL },
  { "empty-string", "\"\"", -1, PUBSUB_JSON_STRING, NULL },
  { "string", "\"abc\"", -1, PUBSUB_JSON_STRING, NULL },
  { "string-nul-escape", "\"a\\u0000b\"", -1, PUBSUB_JSON_STRING, NULL },
  { "string-u001f", "\"\\u001f\"", -1, PUBSUB_JSON_STRING, NULL },
  { "string-all-escapes", "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", -1, PUBSUB_JSON_STRING, NULL },
  { "string-surrogate-pair", "\"\\ud83d\\ude00\"", -1, PUBSUB_JSON_STRING, NULL },
  { "string-surrogate-pair-upper", "\"\\uD834\\uDD1E\"", -1, PUBSUB_JSON_STRING, NULL },
  /* RFC 8259's grammar allows lone surrogates; decoding maps them to U+FFFD. */
  { "string-lone-surrogate", "\"\\ud800\"", -1, PUBSUB_JSON_STRING, NULL },
  { "string-utf8", "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"", -1, PUBSUB_JSON_STRING, NULL },
  { "string-del", "\"\x7f\"", -1, PUBSUB_JSON_STRING, NULL },
  /* Longer than 8 bytes on both sides of special bytes: the word-at-a-time scan. */
  { "string-long", "\"0123456789abcdef\\\"0123456789abcdef\\\\01234567\"", -1,
    PUBSUB_JSON_STRING, NULL },
  { "string-long-utf8", "\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"", -1,
    PUBSUB_JSON_STRING, NULL },
  { "empty-array", "[]", -1, PUBSUB_JSON_ARRAY, NULL },
  { "empty-array-space", "[ ]", -1, PUBSUB_JSON_ARRAY, NULL },
  { "empty-object", "{}", -1, PUBSUB_JSON_OBJECT, NULL },
  { "empty-object-space", "{ \n }", -1, PUBSUB_JSON_OBJECT, NULL },
  { "array-all-kinds", "[1,\"a\",null,true,false,{},[],-0.5e1]", -1, PUBSUB_JSON_ARRAY, NULL },
  { "nested", "{\"a\":{\"b\":[1,{\"c\":null}]},\"d\":[[[]]]}", -1, PUBSUB_JSON_OBJECT, NULL },
  { "empty-key", "{\"\":0}", -1, PUBSUB_JSON_OBJECT, NULL },
  { "duplicate-keys", "{\"a\":1,\"a\":2}", -1, PUBSUB_JSON_OBJECT, NULL },
  { "key-with-escapes", "{\"a\\\"b\\\\\":\"}\"}", -1, PUBSUB_JSON_OBJECT, NULL },
  { "ws-object", " \t\r\n{ \"a\" : 1 , \"b\" : [ 1 , 2 ] }\n\t ", -1, PUBSUB_JSON_OBJECT,
    "{ \"a\" : 1 , \"b\" : [ 1 , 2 ] }" },
  { "ws-string", "  \"x\"  ", -1, PUBSUB_JSON_STRING, "\"x\"" },
  { "ws-number", "\n0\n", -1, PUBSUB_JSON_NUMBER, "0" },
  { "ws-number-exponent", "\t-1.5E-3\r", -1, PUBSUB_JSON_NUMBER, "-1.5E-3" },
  { "ws-literal", " null ", -1, PUBSUB_JSON_NULL, "null" },
  /* Only the first @len bytes count. */
  { "length-cut", "[1]garbage", 3, PUBSUB_JSON_ARRAY, "[1]" },
  { "length-cut-number", "123", 2, PUBSUB_JSON_NUMBER, "12" },
};

static void
check_valid_row (const ValidRow *row,
                 const char     *text,
                 gsize           len,
                 const PubsubJsonValue *value)
{
  const char *span = row->span != NULL ? row->span : row->text;
  gsize span_len = row->span != NULL ? strlen (row->span) : len;
  gsize offset = (gsize) (value->text - text);

  g_assert_cmpint (value->kind, ==, row->kind);
  g_assert_cmpuint (offset, <=, len);
  g_assert_cmpuint (value->len, ==, span_len);
  g_assert_cmpmem (value->text, value->len, span, span_len);
}

static void
test_valid (gconstpointer data)
{
  const ValidRow *row = data;
  gsize len = row->len < 0 ? strlen (row->text) : (gsize) row->len;
  g_autofree char *text = exact_copy (row->text, len);
  g_autoptr(GError) error = NULL;
  PubsubJsonValue value = { 0 };
  PubsubJsonValue value2 = { 0 };
  PubsubJsonMember members[MAX_MEMBERS];
  guint n_members = 12345;

  g_assert_true (pubsub_json_validate (text, len, &value, &error));
  g_assert_no_error (error);
  check_valid_row (row, text, len, &value);

  /* No out value wanted. */
  g_assert_true (pubsub_json_validate (text, len, NULL, NULL));

  /* The single-pass object reader agrees. */
  g_assert_true (pubsub_json_parse_utf8_object (text, len, &value2, members, MAX_MEMBERS,
                                                &n_members, &error));
  g_assert_no_error (error);
  check_valid_row (row, text, len, &value2);
  if (value.kind != PUBSUB_JSON_OBJECT)
    g_assert_cmpuint (n_members, ==, 0);
}

/* ---------------------------------------------------------------------- */
/* Invalid texts                                                          */

typedef struct {
  const char *name;
  const char *text;
  gssize      len;          /* -1: strlen (text) */
  const char *reason;       /* substring of the error message */
  gssize      byte;         /* the byte the message names; -1: do not check */
  const char *object_reason; /* for pubsub_json_parse_utf8_object (valid UTF-8
                              * only); NULL: same as reason; "": skip */
} InvalidRow;

static const InvalidRow invalid_rows[] = {
  /* json-glib 1.6 accepts these */
  { "single-quoted-key", "{'a':1}", -1, "object keys must be double-quoted strings", 1, NULL },
  { "single-quoted-string", "'a'", -1, "invalid number", 0, NULL },
  { "block-comment", "/* c */ 1", -1, "invalid number", 0, NULL },
  { "comment-in-array", "[1 /* c */]", -1, "expected ',' or ']' in array", 3, NULL },
  { "line-comment", "1 // c", -1, "unexpected data after the JSON value", 2, NULL },
  { "hex", "0x10", -1, "unexpected data after the JSON value", 1, NULL },
  { "leading-zero", "01", -1, "leading zeros", 1, NULL },
  { "leading-zero-negative", "-01", -1, "leading zeros", 2, NULL },
  { "double-zero", "00", -1, "leading zeros", 1, NULL },
  { "leading-zero-in-array", "[1,007]", -1, "leading zeros", 4, NULL },
  { "trailing-point", "1.", -1, "decimal point must be followed by digits", 2, NULL },
  { "trailing-point-exponent", "1.e5", -1, "decimal point must be followed by digits", 2, NULL },
  { "leading-point", ".5", -1, "invalid number", 0, NULL },
  { "plus", "+1", -1, "invalid number", 0, NULL },
  { "minus-alone", "-", -1, "invalid number", 1, NULL },
  { "minus-space", "- 1", -1, "invalid number", 1, NULL },
  { "exponent-no-digits", "1e", -1, "exponent must have digits", 2, NULL },
  { "exponent-sign-no-digits", "1e+", -1, "exponent must have digits", 3, NULL },
  { "exponent-in-object", "{\"a\":1E}", -1, "exponent must have digits", 7, NULL },
  { "nan", "NaN", -1, "invalid number", 0, NULL },
  { "infinity", "Infinity", -1, "invalid number", 0, NULL },
  { "minus-infinity", "-Infinity", -1, "invalid number", 1, NULL },
  { "trailing-comma-array", "[1,]", -1, "invalid number", 3, NULL },
  { "trailing-comma-object", "{\"a\":1,}", -1, "object keys must be double-quoted strings", 7, NULL },
  { "leading-comma-array", "[,1]", -1, "invalid number", 1, NULL },
  { "comma-only-object", "{,}", -1, "object keys must be double-quoted strings", 1, NULL },
  { "two-arrays", "[1] [2]", -1, "unexpected data after the JSON value", 4, NULL },
  { "object-then-word", "{} x", -1, "unexpected data after the JSON value", 3, NULL },
  { "two-numbers", "1 2", -1, "unexpected data after the JSON value", 2, NULL },
  { "two-strings", "\"a\"\"b\"", -1, "unexpected data after the JSON value", 3, NULL },
  /* unterminated */
  { "unterminated-string", "\"abc", -1, "unterminated string", 4, NULL },
  { "unterminated-string-long", "\"0123456789abcdef", -1, "unterminated string", 17, NULL },
  { "unterminated-string-escape", "\"abc\\", -1, "unterminated string", 5, NULL },
  { "unterminated-array", "[1,2", -1, "unterminated array", 4, NULL },
  { "unterminated-array-empty", "[", -1, "unexpected end of input", 1, NULL },
  { "unterminated-array-comma", "[1,", -1, "unexpected end of input", 3, NULL },
  { "unterminated-object", "{\"a\":1", -1, "unterminated object", 6, NULL },
  { "unterminated-object-empty", "{", -1, "object keys must be double-quoted strings", 1, NULL },
  { "unterminated-object-key", "{\"a\"", -1, "expected ':' after an object key", 4, NULL },
  { "unterminated-object-colon", "{\"a\":", -1, "unexpected end of input", 5, NULL },
  { "unterminated-nested", "{\"a\":[{}", -1, "unterminated array", 8, NULL },
  /* structure */
  { "missing-colon", "{\"a\" 1}", -1, "expected ':' after an object key", 5, NULL },
  { "number-key", "{1:2}", -1, "object keys must be double-quoted strings", 1, NULL },
  { "bare-key", "{a:2}", -1, "object keys must be double-quoted strings", 1, NULL },
  { "missing-comma-object", "{\"a\":1 \"b\":2}", -1, "expected ',' or '}' in object", 7, NULL },
  { "missing-comma-array", "[1 2]", -1, "expected ',' or ']' in array", 3, NULL },
  { "colon-in-array", "[1:2]", -1, "expected ',' or ']' in array", 2, NULL },
  { "close-mismatch", "[1}", -1, "expected ',' or ']' in array", 2, NULL },
  { "close-only", "]", -1, "invalid number", 0, NULL },
  /* literals */
  { "short-true", "tru", -1, "unexpected character", 0, NULL },
  { "short-null", "nul", -1, "unexpected character", 0, NULL },
  { "misspelt-false", "fals3", -1, "unexpected character", 0, NULL },
  { "capital-true", "True", -1, "invalid number", 0, NULL },
  { "literal-tail", "nulll", -1, "unexpected data after the JSON value", 4, NULL },
  { "undefined", "undefined", -1, "invalid number", 0, NULL },
  /* control characters in strings */
  { "raw-tab", "\"a\tb\"", -1, "control characters must be escaped", 2, NULL },
  { "raw-newline", "\"\n\"", -1, "control characters must be escaped", 1, NULL },
  { "raw-0x1f", "\"\x1f\"", -1, "control characters must be escaped", 1, NULL },
  { "raw-control-after-8", "\"0123456789\x01\"", -1, "control characters must be escaped", 11, NULL },
  { "raw-0x1f-after-8", "\"0123456789\x1f" "0123456789\"", -1, "control characters must be escaped", 11, NULL },
  { "raw-0x10-after-8", "\"01234567\x10" "89abcdef01234567\"", -1, "control characters must be escaped", 9, NULL },
  { "raw-nul", "\"a\0b\"", 5, "invalid UTF-8", 2, "control characters must be escaped" },
  { "nul-after-value", "1\0", 2, "invalid UTF-8", 1, "unexpected data after the JSON value" },
  /* escapes */
  { "escape-x", "\"\\x41\"", -1, "invalid escape sequence", 2, NULL },
  { "escape-quote", "\"\\'\"", -1, "invalid escape sequence", 2, NULL },
  { "escape-upper-u", "\"\\U0041\"", -1, "invalid escape sequence", 2, NULL },
  { "escape-zero", "\"\\0\"", -1, "invalid escape sequence", 2, NULL },
  { "escape-u-short", "\"\\u12\"", -1, "four hex digits", 2, NULL },
  { "escape-u-at-end", "\"\\u12", -1, "four hex digits", 2, NULL },
  { "escape-u-bad-hex", "\"\\u12g4\"", -1, "four hex digits", 2, NULL },
  { "escape-u-empty", "\"\\u\"", -1, "four hex digits", 2, NULL },
  { "escape-raw-newline", "\"\\\n\"", -1, "invalid escape sequence", 2, NULL },
  /* invalid UTF-8 (a WebSocket text frame never carries it: no object check) */
  { "utf8-ff", "\"\xff\"", -1, "invalid UTF-8", 1, "" },
  { "utf8-overlong", "\"\xc0\x80\"", -1, "invalid UTF-8", 1, "" },
  { "utf8-surrogate", "\"\xed\xa0\x80\"", -1, "invalid UTF-8", 1, "" },
  { "utf8-truncated", "\"\xe2\x82\"", -1, "invalid UTF-8", 1, "" },
  { "utf8-truncated-at-end", "\"\xe2\x82", -1, "invalid UTF-8", 1, "" },
  { "utf8-beyond-10ffff", "\"\xf4\x90\x80\x80\"", -1, "invalid UTF-8", 1, "" },
  { "utf8-continuation", "[\x80]", -1, "invalid UTF-8", 1, "" },
  { "utf8-latin1-outside", "\xe9", -1, "invalid UTF-8", 0, "" },
  /* empty and whitespace-only (json-glib: TRUE with a NULL root) */
  { "empty", "", -1, "unexpected end of input", 0, NULL },
  { "whitespace-only", " \t\r\n ", -1, "unexpected end of input", 5, NULL },
  { "form-feed", "\f1", -1, "invalid number", 0, NULL },
  { "vertical-tab", "1\v", -1, "unexpected data after the JSON value", 1, NULL },
  { "nbsp", "\xc2\xa0" "1", -1, "invalid number", 0, NULL },
  { "bom", "\xef\xbb\xbf" "1", -1, "invalid number", 0, NULL },
};

static void
check_invalid_error (const InvalidRow *row,
                     const GError     *error,
                     const char       *reason)
{
  g_assert_error (error, PUBSUB_ERROR, PUBSUB_ERROR_BAD_REQUEST);
  g_assert_true (g_str_has_prefix (error->message, "not valid JSON: "));
  if (strstr (error->message, reason) == NULL)
    g_error ("'%s': expected an error containing \"%s\", got \"%s\"",
             row->name, reason, error->message);
  if (row->byte >= 0)
    {
      g_autofree char *where = g_strdup_printf (" at byte %" G_GSSIZE_FORMAT, row->byte);

      if (!g_str_has_suffix (error->message, where))
        g_error ("'%s': expected \"…%s\", got \"%s\"", row->name, where, error->message);
    }
}

static void
test_invalid (gconstpointer data)
{
  const InvalidRow *row = data;
  gsize len = row->len < 0 ? strlen (row->text) : (gsize) row->len;
  g_autofree char *text = exact_copy (row->text, len);
  g_autoptr(GError) error = NULL;
  PubsubJsonValue value = { PUBSUB_JSON_NULL, "untouched", 9 };
  PubsubJsonMember members[MAX_MEMBERS];
  guint n_members = 12345;

  g_assert_false (pubsub_json_validate (text, len, &value, &error));
  check_invalid_error (row, error, row->reason);
  /* The out value is left alone on failure. */
  g_assert_cmpstr (value.text, ==, "untouched");
  g_clear_error (&error);

  /* Without a GError. */
  g_assert_false (pubsub_json_validate (text, len, NULL, NULL));

  if (row->object_reason != NULL && row->object_reason[0] == '\0')
    return;

  g_assert_false (pubsub_json_parse_utf8_object (text, len, &value, members, MAX_MEMBERS,
                                                 &n_members, &error));
  g_assert_cmpuint (n_members, ==, 0);
  check_invalid_error (row, error, row->object_reason != NULL ? row->object_reason : row->reason);
}

/* ---------------------------------------------------------------------- */
/* Nesting depth                                                          */

/* @depth containers, arrays or objects ({"a":…}), around a 0. */
static GString *
nested_text (guint    depth,
             gboolean objects,
             gboolean closed)
{
  GString *text = g_string_new (NULL);

  for (guint i = 0; i < depth; i++)
    g_string_append (text, objects ? "{\"a\":" : (i % 2 ? "[ " : "["));
  g_string_append_c (text, '0');
  if (closed)
    for (guint i = 0; i < depth; i++)
      g_string_append_c (text, objects ? '}' : ']');
  return text;
}

static void
check_depth (gboolean objects)
{
  g_autoptr(GError) error = NULL;
  PubsubJsonValue value;
  PubsubJsonMember members[MAX_MEMBERS];
  guint n_members;

  /* Exactly at the limit: fine, and the span is the whole text. */
  {
    g_autoptr(GString) text = nested_text (PUBSUB_JSON_MAX_DEPTH, objects, TRUE);
    g_autofree char *copy = exact_copy (text->str, text->len);

    g_assert_true (pubsub_json_validate (copy, text->len, &value, &error));
    g_assert_no_error (error);
    g_assert_cmpuint (value.len, ==, text->len);
    g_assert_true (pubsub_json_parse_utf8_object (copy, text->len, &value, members,
                                                  MAX_MEMBERS, &n_members, &error));
    g_assert_no_error (error);
    g_assert_cmpuint (n_members, ==, objects ? 1 : 0);
  }

  /* One more: refused, pointing at the container that is one too many. */
  for (guint closed = 0; closed < 2; closed++)
    {
      g_autoptr(GString) text = nested_text (PUBSUB_JSON_MAX_DEPTH + 1, objects, closed);
      g_autofree char *copy = exact_copy (text->str, text->len);
      const char *last_open = strrchr (text->str, objects ? '{' : '[');
      g_autofree char *where = g_strdup_printf ("nesting is too deep at byte %" G_GSIZE_FORMAT,
                                                (gsize) (last_open - text->str));

      g_assert_false (pubsub_json_validate (copy, text->len, &value, &error));
      g_assert_error (error, PUBSUB_ERROR, PUBSUB_ERROR_BAD_REQUEST);
      g_assert_nonnull (strstr (error->message, where));
      g_clear_error (&error);

      g_assert_false (pubsub_json_parse_utf8_object (copy, text->len, &value, members,
                                                     MAX_MEMBERS, &n_members, &error));
      g_assert_error (error, PUBSUB_ERROR, PUBSUB_ERROR_BAD_REQUEST);
      g_assert_nonnull (strstr (error->message, "nesting is too deep"));
      g_clear_error (&error);
    }

  /* Far deeper (a stack-smashing attempt) is refused just the same. */
  {
    g_autoptr(GString) text = nested_text (100000, objects, FALSE);

    g_assert_false (pubsub_json_validate (text->str, text->len, NULL, &error));
    g_assert_nonnull (strstr (error->message, "nesting is too deep"));
  }
}

static void
test_depth_arrays (void)
{
  check_depth (FALSE);
}

static void
test_depth_objects (void)
{
  check_depth (TRUE);
}

/* Depth is per path, not cumulative: many siblings at the limit are fine. */
static void
test_depth_siblings (void)
{
  g_autoptr(GString) text = g_string_new ("[");
  g_autoptr(GError) error = NULL;

  for (guint i = 0; i < 4; i++)
    {
      g_autoptr(GString) inner = nested_text (PUBSUB_JSON_MAX_DEPTH - 1, i % 2, TRUE);

      if (i > 0)
        g_string_append_c (text, ',');
      g_string_append_len (text, inner->str, (gssize) inner->len);
    }
  g_string_append_c (text, ']');
  g_assert_true (pubsub_json_validate (text->str, text->len, NULL, &error));
  g_assert_no_error (error);
}

/* ---------------------------------------------------------------------- */
/* Object members                                                         */

typedef struct {
  const char     *key;     /* raw, with quotes */
  const char     *value;   /* raw */
  PubsubJsonKind  kind;
} ExpectedMember;

static void
check_members (const PubsubJsonMember *members,
               guint                   n_members,
               const ExpectedMember   *expected,
               guint                   n_expected)
{
  g_assert_cmpuint (n_members, ==, n_expected);
  for (guint i = 0; i < n_expected; i++)
    {
      g_assert_cmpint (members[i].key.kind, ==, PUBSUB_JSON_STRING);
      g_assert_cmpmem (members[i].key.text, members[i].key.len,
                       expected[i].key, strlen (expected[i].key));
      g_assert_cmpmem (members[i].value.text, members[i].value.len,
                       expected[i].value, strlen (expected[i].value));
      g_assert_cmpint (members[i].value.kind, ==, expected[i].kind);
    }
}

static void
test_object_members (void)
{
  static const char json[] =
    " { \"a\" : 1 ,\n\t\"b\\\"c\" : [1, {\"x\": \"}\"}, \"]\"] , \"\\u0074ype\":\"ev\\\"\\\\\" ,"
    "\"n\":-1.5e+3,\"t\":true,\"f\" :false,\"z\": null,\"o\":{\"k\":{}},\"\":\"\","
    "\"e\":[]}\r\n";
  static const ExpectedMember expected[] = {
    { "\"a\"", "1", PUBSUB_JSON_NUMBER },
    { "\"b\\\"c\"", "[1, {\"x\": \"}\"}, \"]\"]", PUBSUB_JSON_ARRAY },
    { "\"\\u0074ype\"", "\"ev\\\"\\\\\"", PUBSUB_JSON_STRING },
    { "\"n\"", "-1.5e+3", PUBSUB_JSON_NUMBER },
    { "\"t\"", "true", PUBSUB_JSON_TRUE },
    { "\"f\"", "false", PUBSUB_JSON_FALSE },
    { "\"z\"", "null", PUBSUB_JSON_NULL },
    { "\"o\"", "{\"k\":{}}", PUBSUB_JSON_OBJECT },
    { "\"\"", "\"\"", PUBSUB_JSON_STRING },
    { "\"e\"", "[]", PUBSUB_JSON_ARRAY },
  };
  gsize len = sizeof json - 1;
  g_autofree char *text = exact_copy (json, len);
  g_autoptr(GError) error = NULL;
  PubsubJsonValue object;
  PubsubJsonMember members[MAX_MEMBERS];
  PubsubJsonMember members2[MAX_MEMBERS];
  guint n_members = 0;
  guint n_members2 = 0;

  /* Gathered in the validating pass… */
  g_assert_true (pubsub_json_parse_utf8_object (text, len, &object, members, MAX_MEMBERS,
                                                &n_members, &error));
  g_assert_no_error (error);
  g_assert_cmpint (object.kind, ==, PUBSUB_JSON_OBJECT);
  check_members (members, n_members, expected, G_N_ELEMENTS (expected));

  /* … and listed afterwards from the span alone: the same. */
  g_assert_true (pubsub_json_object_members (&object, members2, MAX_MEMBERS, &n_members2));
  check_members (members2, n_members2, expected, G_N_ELEMENTS (expected));

  /* The inner object's members, listed from its span. */
  g_assert_true (pubsub_json_object_members (&members[7].value, members2, MAX_MEMBERS,
                                             &n_members2));
  g_assert_cmpuint (n_members2, ==, 1);
  g_assert_cmpmem (members2[0].key.text, members2[0].key.len, "\"k\"", 3);
  g_assert_cmpmem (members2[0].value.text, members2[0].value.len, "{}", 2);
  g_assert_cmpint (members2[0].value.kind, ==, PUBSUB_JSON_OBJECT);
}

static void
test_object_members_nested_not_collected (void)
{
  static const char json[] = "{\"a\":{\"b\":1,\"c\":2},\"d\":[{\"e\":3}],\"f\":4}";
  static const ExpectedMember expected[] = {
    { "\"a\"", "{\"b\":1,\"c\":2}", PUBSUB_JSON_OBJECT },
    { "\"d\"", "[{\"e\":3}]", PUBSUB_JSON_ARRAY },
    { "\"f\"", "4", PUBSUB_JSON_NUMBER },
  };
  g_autofree char *text = exact_copy (json, sizeof json - 1);
  PubsubJsonValue object;
  PubsubJsonMember members[MAX_MEMBERS];
  guint n_members;

  g_assert_true (pubsub_json_parse_utf8_object (text, sizeof json - 1, &object, members,
                                                MAX_MEMBERS, &n_members, NULL));
  check_members (members, n_members, expected, G_N_ELEMENTS (expected));
}

static void
test_object_members_empty (void)
{
  static const char *const texts[] = { "{}", "{ }", " {\n\t} " };

  for (gsize i = 0; i < G_N_ELEMENTS (texts); i++)
    {
      gsize len = strlen (texts[i]);
      g_autofree char *text = exact_copy (texts[i], len);
      PubsubJsonValue object;
      PubsubJsonMember members[1];
      guint n_members = 99;

      g_assert_true (pubsub_json_parse_utf8_object (text, len, &object, members, 1,
                                                    &n_members, NULL));
      g_assert_cmpuint (n_members, ==, 0);
      n_members = 99;
      g_assert_true (pubsub_json_object_members (&object, members, 1, &n_members));
      g_assert_cmpuint (n_members, ==, 0);
    }
}

static void
test_object_members_limit (void)
{
  static const char json[] = "{\"a\":1,\"b\":{\"x\":1,\"y\":2,\"z\":3},\"c\":3}";
  gsize len = sizeof json - 1;
  g_autofree char *text = exact_copy (json, len);
  PubsubJsonValue object;
  PubsubJsonMember members[4];
  guint n_members;

  /* Exactly enough room. */
  g_assert_true (pubsub_json_parse_utf8_object (text, len, &object, members, 3,
                                                &n_members, NULL));
  g_assert_cmpuint (n_members, ==, 3);
  g_assert_true (pubsub_json_object_members (&object, members, 3, &n_members));
  g_assert_cmpuint (n_members, ==, 3);

  /* One short: refused; the validating reader reports max + 1. The inner
   * object's three members do not count against the outer limit. */
  g_assert_false (pubsub_json_parse_utf8_object (text, len, &object, members, 2,
                                                 &n_members, NULL));
  g_assert_cmpuint (n_members, ==, 3);
  g_assert_true (pubsub_json_parse_utf8_object (text, len, &object, members, 3,
                                                &n_members, NULL));
  g_assert_false (pubsub_json_object_members (&object, members, 2, &n_members));
  g_assert_false (pubsub_json_object_members (&object, members, 0, &n_members));
}

/* ---------------------------------------------------------------------- */
/* Key comparison                                                         */

typedef struct {
  const char *key;    /* raw JSON string */
  const char *name;
  gboolean    equal;
} KeyRow;

static const KeyRow key_rows[] = {
  { "\"type\"", "type", TRUE },
  { "\"\\u0074ype\"", "type", TRUE },
  { "\"typ\\u0065\"", "type", TRUE },
  { "\"\\u0074\\u0079\\u0070\\u0065\"", "type", TRUE },
  { "\"\\u0054ype\"", "type", FALSE },
  { "\"Type\"", "type", FALSE },
  { "\"types\"", "type", FALSE },
  { "\"typ\"", "type", FALSE },
  { "\"\\u0074yp\"", "type", FALSE },
  { "\"\\u0074ypes\"", "type", FALSE },
  { "\"type\\u0000\"", "type", FALSE },
  { "\"\\u0000type\"", "type", FALSE },
  { "\"ty\\/pe\"", "type", FALSE },
  { "\"a\\/b\"", "a/b", TRUE },
  { "\"\"", "", TRUE },
  { "\"\"", "a", FALSE },
  { "\"a\"", "", FALSE },
  { "\"request_id\"", "request_id", TRUE },
  { "\"request\\u005fid\"", "request_id", TRUE },
  { "\"request_i\"", "request_id", FALSE },
};

static void
test_key_equal (void)
{
  for (gsize i = 0; i < G_N_ELEMENTS (key_rows); i++)
    {
      const KeyRow *row = &key_rows[i];
      gsize len = strlen (row->key);
      g_autofree char *text = exact_copy (row->key, len);
      PubsubJsonValue key;

      g_assert_true (pubsub_json_validate (text, len, &key, NULL));
      g_assert_cmpint (key.kind, ==, PUBSUB_JSON_STRING);
      if (pubsub_json_key_equal (&key, row->name) != row->equal)
        g_error ("key %s vs \"%s\": expected %s", row->key, row->name,
                 row->equal ? "equal" : "different");
    }
}

/* A key taken from an object span (not NUL-terminated, followed by more). */
static void
test_key_equal_in_object (void)
{
  static const char json[] = "{\"\\u0074ype\":\"ping\",\"type2\":1,\"typ\":2}";
  gsize len = sizeof json - 1;
  g_autofree char *text = exact_copy (json, len);
  PubsubJsonValue object;
  PubsubJsonMember members[4];
  guint n_members;

  g_assert_true (pubsub_json_parse_utf8_object (text, len, &object, members, 4,
                                                &n_members, NULL));
  g_assert_cmpuint (n_members, ==, 3);
  g_assert_true (pubsub_json_key_equal (&members[0].key, "type"));
  g_assert_false (pubsub_json_key_equal (&members[1].key, "type"));
  g_assert_true (pubsub_json_key_equal (&members[1].key, "type2"));
  g_assert_false (pubsub_json_key_equal (&members[2].key, "type"));
  /* Values are strings too. */
  g_assert_true (pubsub_json_key_equal (&members[0].value, "ping"));
}

/* ---------------------------------------------------------------------- */
/* String decoding                                                        */

typedef struct {
  const char *name;
  const char *raw;       /* JSON string token */
  const char *decoded;
  gsize       decoded_len;
} DecodeRow;

static const DecodeRow decode_rows[] = {
  { "empty", "\"\"", "", 0 },
  { "plain", "\"abc\"", "abc", 3 },
  { "escapes", "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\/\b\f\n\r\t", 8 },
  { "u-escapes", "\"\\u0041\\u00e9\\u20AC\"", "A\xc3\xa9\xe2\x82\xac", 6 },
  { "u-ffff", "\"\\uffff\"", "\xef\xbf\xbf", 3 },
  { "surrogate-pair", "\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80", 4 },
  { "surrogate-pair-upper", "\"\\uD834\\uDD1E\"", "\xf0\x9d\x84\x9e", 4 },
  { "surrogate-pair-max", "\"\\udbff\\udfff\"", "\xf4\x8f\xbf\xbf", 4 },
  { "surrogate-pair-min", "\"\\ud800\\udc00\"", "\xf0\x90\x80\x80", 4 },
  { "lone-high", "\"\\ud800\"", "\xef\xbf\xbd", 3 },
  { "lone-low", "\"\\udc00\"", "\xef\xbf\xbd", 3 },
  { "lone-high-then-char", "\"\\ud800x\"", "\xef\xbf\xbdx", 4 },
  { "lone-high-then-escape", "\"\\ud800\\u0041\"", "\xef\xbf\xbd" "A", 4 },
  { "lone-high-then-newline", "\"\\ud800\\n\"", "\xef\xbf\xbd\n", 4 },
  { "lone-high-then-quote", "\"\\ud800\\\"\"", "\xef\xbf\xbd\"", 4 },
  { "high-high-low", "\"\\ud800\\ud800\\udc00\"", "\xef\xbf\xbd\xf0\x90\x80\x80", 7 },
  { "low-high", "\"\\udc00\\ud800\"", "\xef\xbf\xbd\xef\xbf\xbd", 6 },
  { "nul", "\"a\\u0000b\"", "a\0b", 3 },
  { "nul-only", "\"\\u0000\"", "\0", 1 },
  { "u001f", "\"\\u001f\"", "\x1f", 1 },
  { "raw-utf8", "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"", "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9 },
  { "long", "\"0123456789abcdef\\n0123456789abcdef\"",
    "0123456789abcdef\n0123456789abcdef", 33 },
};

static void
test_decode (gconstpointer data)
{
  const DecodeRow *row = data;
  gsize len = strlen (row->raw);
  g_autofree char *text = exact_copy (row->raw, len);
  g_autofree char *decoded = NULL;
  g_autofree char *decoded2 = NULL;
  PubsubJsonValue value;
  gsize decoded_len = 12345;

  g_assert_true (pubsub_json_validate (text, len, &value, NULL));
  g_assert_cmpint (value.kind, ==, PUBSUB_JSON_STRING);

  decoded = pubsub_json_string_decode (&value, &decoded_len);
  g_assert_cmpmem (decoded, decoded_len, row->decoded, row->decoded_len);
  g_assert_cmpint (decoded[decoded_len], ==, '\0');
  g_assert_true (g_utf8_validate_len (decoded, decoded_len, NULL) ||
                 memchr (decoded, '\0', decoded_len) != NULL);

  /* The length is optional. */
  decoded2 = pubsub_json_string_decode (&value, NULL);
  g_assert_cmpmem (decoded2, row->decoded_len, row->decoded, row->decoded_len);
}

/* A string taken from inside an object (its span is followed by more text). */
static void
test_decode_in_object (void)
{
  static const char json[] = "{\"k\":\"a\\u00e9\\ud83d\\ude00\",\"l\":\"\\\\\"}";
  gsize len = sizeof json - 1;
  g_autofree char *text = exact_copy (json, len);
  g_autofree char *first = NULL;
  g_autofree char *second = NULL;
  PubsubJsonValue object;
  PubsubJsonMember members[2];
  guint n_members;
  gsize n;

  g_assert_true (pubsub_json_parse_utf8_object (text, len, &object, members, 2,
                                                &n_members, NULL));
  first = pubsub_json_string_decode (&members[0].value, &n);
  g_assert_cmpmem (first, n, "a\xc3\xa9\xf0\x9f\x98\x80", 7);
  second = pubsub_json_string_decode (&members[1].value, &n);
  g_assert_cmpmem (second, n, "\\", 1);
}

/* ---------------------------------------------------------------------- */
/* POST /topics bodies                                                     */

typedef struct {
  const char *name;
  const char *body;
  gssize      len;        /* -1: strlen (body) */
  const char *topic;      /* NULL: refused with BAD_REQUEST */
  const char *message;    /* part of the error message */
} RestBodyRow;

static const RestBodyRow rest_body_rows[] = {
  { "plain", "{\"name\":\"orders\"}", -1, "orders", NULL },
  { "escaped", " {\"name\" : \"\\u0065sc\"} \n", -1, "esc", NULL },
  { "extra-fields", "{\"a\":[1,{\"name\":\"no\"}],\"name\":\"x:y.z_-1\"}", -1, "x:y.z_-1", NULL },
  { "last-of-duplicates", "{\"name\":\"first\",\"name\":\"last\"}", -1, "last", NULL },
  { "empty", "", 0, NULL, "request body is not valid JSON" },
  { "whitespace", " \t", -1, NULL, "request body is not valid JSON" },
  { "not-object", "[\"orders\"]", -1, NULL, "must be a JSON object" },
  { "no-name", "{\"topic\":\"orders\"}", -1, NULL, "missing field 'name'" },
  { "name-null", "{\"name\":null}", -1, NULL, "missing field 'name'" },
  { "name-number", "{\"name\":1}", -1, NULL, "must be a string" },
  { "name-invalid", "{\"name\":\"a b\"}", -1, NULL, "invalid topic name" },
  { "name-nul", "{\"name\":\"a\\u0000b\"}", -1, NULL, "invalid topic name" },
  { "invalid-utf8", "{\"name\":\"a\xff\"}", -1, NULL, "invalid UTF-8" },
};

static void
test_rest_body (gconstpointer data)
{
  const RestBodyRow *row = data;
  gsize len = row->len >= 0 ? (gsize) row->len : strlen (row->body);
  g_autofree char *text = exact_copy (row->body, len);
  g_autoptr(GError) error = NULL;
  g_autofree char *topic = pubsub_rest_parse_topic_body (text, len, &error);

  if (row->topic != NULL)
    {
      g_assert_no_error (error);
      g_assert_cmpstr (topic, ==, row->topic);
      return;
    }
  g_assert_null (topic);
  g_assert_error (error, PUBSUB_ERROR, PUBSUB_ERROR_BAD_REQUEST);
  g_assert_nonnull (strstr (error->message, row->message));
}

/* The server hands over an empty body as the data of an empty GByteArray:
 * NULL. NULL + 0 is undefined in C (found by tests/fuzz/fuzz-rest under
 * UBSan); the body is refused like any other empty one. */
static void
test_rest_body_null (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *topic = pubsub_rest_parse_topic_body (NULL, 0, &error);

  g_assert_null (topic);
  g_assert_error (error, PUBSUB_ERROR, PUBSUB_ERROR_BAD_REQUEST);
  g_assert_nonnull (strstr (error->message, "request body is not valid JSON"));
}

/* The same for POST /topics/{name}/messages. */
static void
test_rest_publish_body_null (void)
{
  g_autoptr(GError) error = NULL;
  PubsubRestPublish publish;

  g_assert_false (pubsub_rest_parse_publish_body (NULL, 0, &publish, &error));
  g_assert_error (error, PUBSUB_ERROR, PUBSUB_ERROR_BAD_REQUEST);
  g_assert_nonnull (strstr (error->message, "request body is not valid JSON"));
}

/* More fields than the reader keeps: refused, not cut short. */
static void
test_rest_body_too_many_fields (void)
{
  g_autoptr(GString) body = g_string_new ("{");
  g_autoptr(GError) error = NULL;
  g_autofree char *topic = NULL;

  for (guint i = 0; i < PUBSUB_REST_MAX_FIELDS; i++)
    g_string_append_printf (body, "\"f%u\":%u,", i, i);
  g_string_append (body, "\"name\":\"orders\"}");
  topic = pubsub_rest_parse_topic_body (body->str, body->len, &error);
  g_assert_null (topic);
  g_assert_error (error, PUBSUB_ERROR, PUBSUB_ERROR_BAD_REQUEST);
}

/* ---------------------------------------------------------------------- */

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  for (gsize i = 0; i < G_N_ELEMENTS (valid_rows); i++)
    {
      g_autofree char *path = g_strdup_printf ("/json/valid/%s", valid_rows[i].name);

      g_test_add_data_func (path, &valid_rows[i], test_valid);
    }
  for (gsize i = 0; i < G_N_ELEMENTS (invalid_rows); i++)
    {
      g_autofree char *path = g_strdup_printf ("/json/invalid/%s", invalid_rows[i].name);

      g_test_add_data_func (path, &invalid_rows[i], test_invalid);
    }
  g_test_add_func ("/json/depth/arrays", test_depth_arrays);
  g_test_add_func ("/json/depth/objects", test_depth_objects);
  g_test_add_func ("/json/depth/siblings", test_depth_siblings);
  g_test_add_func ("/json/members/listing", test_object_members);
  g_test_add_func ("/json/members/nested-not-collected", test_object_members_nested_not_collected);
  g_test_add_func ("/json/members/empty", test_object_members_empty);
  g_test_add_func ("/json/members/limit", test_object_members_limit);
  g_test_add_func ("/json/key-equal/table", test_key_equal);
  g_test_add_func ("/json/key-equal/in-object", test_key_equal_in_object);
  for (gsize i = 0; i < G_N_ELEMENTS (decode_rows); i++)
    {
      g_autofree char *path = g_strdup_printf ("/json/decode/%s", decode_rows[i].name);

      g_test_add_data_func (path, &decode_rows[i], test_decode);
    }
  g_test_add_func ("/json/decode/in-object", test_decode_in_object);
  for (gsize i = 0; i < G_N_ELEMENTS (rest_body_rows); i++)
    {
      g_autofree char *path = g_strdup_printf ("/json/rest-body/%s", rest_body_rows[i].name);

      g_test_add_data_func (path, &rest_body_rows[i], test_rest_body);
    }
  g_test_add_func ("/json/rest-body/null", test_rest_body_null);
  g_test_add_func ("/json/rest-body/publish-null", test_rest_publish_body_null);
  g_test_add_func ("/json/rest-body/too-many-fields", test_rest_body_too_many_fields);

  return g_test_run ();
}
