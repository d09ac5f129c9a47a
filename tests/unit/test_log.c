/* test_log.c - unit tests for core/log.{h,c}: record shape and JSON validity (checked with
 * jansson), level filtering, secret redaction and scrubbing, escaping, truncation, file output, and
 * whole lines under concurrent writers. Output is captured with pd_log_set_fd on a temp file or a
 * pipe. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"

#define TS 1700000000123456LL /* 2023-11-14T22:13:20.123456Z */
#define HEAD                                                                                       \
    "{\"ts\":\"2023-11-14T22:13:20.123456Z\",\"level\":\"info\",\"component\":\"test\",\"event\":" \
    "\"ev\""

static int setup(void **state)
{
    (void)state;
    pd_log_secret_clear();
    pd_log_set_level(PD_LOG_DEBUG);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    pd_log_secret_clear();
    pd_log_set_fd(2);
    pd_log_set_level(PD_LOG_INFO);
    return 0;
}

/* ---- helpers
 * ------------------------------------------------------------------------------------- */

static json_t *parse_line(const char *line)
{
    json_error_t jerr;
    json_t *j = json_loads(line, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &jerr);
    if (!j)
        fail_msg("invalid JSON (%s at %d): %s", jerr.text, jerr.position, line);
    assert_true(json_is_object(j));
    return j;
}

/* Validity only: numbers beyond json_int_t (e.g. a UINT64_MAX field) are valid JSON too. */
static void assert_valid_json(const char *line)
{
    json_error_t jerr;
    json_t *j =
        json_loads(line, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &jerr);
    if (!j)
        fail_msg("invalid JSON (%s at %d): %s", jerr.text, jerr.position, line);
    assert_true(json_is_object(j));
    json_decref(j);
}

/* Format with a fixed timestamp and compare with HEAD + tail + "}\n"; the line must also parse. */
static void check_fmt(const char *tail, const struct pd_log_field *f, size_t n)
{
    static char buf[16384];
    static char want[16384];
    size_t len = pd_log_format(buf, sizeof buf, TS, PD_LOG_INFO, "test", "ev", f, n);
    snprintf(want, sizeof want, "%s%s}\n", HEAD, tail);
    assert_string_equal(buf, want);
    assert_int_equal(len, strlen(want));
    assert_valid_json(buf);
}

#define CHECK(tail, ...)                                 \
    do {                                                 \
        const struct pd_log_field f_[] = {__VA_ARGS__};  \
        check_fmt((tail), f_, sizeof f_ / sizeof f_[0]); \
    } while (0)

struct capture {
    char path[64];
    int fd;
};

static void capture_start(struct capture *c)
{
    snprintf(c->path, sizeof c->path, "/tmp/pd_test_log_XXXXXX");
    c->fd = mkstemp(c->path);
    assert_true(c->fd >= 0);
    pd_log_set_fd(c->fd);
}

static char *read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n + 1);
    assert_non_null(buf);
    size_t off = 0;
    while (off < n) {
        ssize_t r = pread(fd, buf + off, n - off, (off_t)off);
        assert_true(r > 0);
        off += (size_t)r;
    }
    buf[n] = '\0';
    close(fd);
    if (len)
        *len = n;
    return buf;
}

/* Stop capturing; returns the captured text (caller frees). */
static char *capture_end(struct capture *c)
{
    pd_log_set_fd(2);
    char *text = read_file(c->path, NULL);
    close(c->fd);
    unlink(c->path);
    return text;
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* ---- record shape
 * -------------------------------------------------------------------------------- */

static void test_exact_record(void **state)
{
    (void)state;
    CHECK(",\"addr\":\"0.0.0.0\",\"port\":8080", PD_LSTR("addr", "0.0.0.0"), PD_LINT("port", 8080));
    CHECK(",\"i\":-9223372036854775808,\"u\":18446744073709551615,\"d\":0.5,\"inf\":null,\"nan\":"
          "null,"
          "\"t\":true,\"f\":false,\"null\":null,\"sn\":\"abc\",\"snnull\":null",
          PD_LINT("i", INT64_MIN), PD_LUINT("u", UINT64_MAX), PD_LDBL("d", 0.5),
          PD_LDBL("inf", INFINITY), PD_LDBL("nan", NAN), PD_LBOOL("t", true), PD_LBOOL("f", false),
          PD_LSTR("null", NULL), PD_LSTRN("sn", "abcdef", 3), PD_LSTRN("snnull", NULL, 5));
    check_fmt("", NULL, 0);

    char buf[512];
    pd_log_format(buf, sizeof buf, -1, PD_LOG_ERROR, NULL, NULL, NULL, 0);
    assert_string_equal(buf, "{\"ts\":\"1969-12-31T23:59:59.999999Z\",\"level\":\"error\","
                             "\"component\":\"\",\"event\":\"\"}\n");
    pd_log_format(buf, sizeof buf, 0, PD_LOG_DEBUG, "c", "e", NULL, 0);
    assert_string_equal(buf, "{\"ts\":\"1970-01-01T00:00:00.000000Z\",\"level\":\"debug\","
                             "\"component\":\"c\",\"event\":\"e\"}\n");
}

static void test_emitted_record_order_and_validity(void **state)
{
    (void)state;
    struct capture c;
    capture_start(&c);
    pd_log(PD_LOG_WARN, "http", "listening", PD_LSTR("addr", "127.0.0.1"), PD_LINT("port", 8080),
           PD_LBOOL("tls", false), PD_LDBL("ratio", 0.25), PD_LUINT("conns", 3u));
    pd_log(PD_LOG_INFO, "core", "no_fields");
    char *text = capture_end(&c);
    assert_int_equal(count_lines(text), 2);

    char *nl = strchr(text, '\n');
    *nl = '\0';
    json_t *j = parse_line(text);
    static const char *const keys[] = {"ts",   "level", "component", "event", "addr",
                                       "port", "tls",   "ratio",     "conns"};
    size_t i = 0;
    for (void *it = json_object_iter(j); it; it = json_object_iter_next(j, it), i++) {
        assert_true(i < sizeof keys / sizeof keys[0]);
        assert_string_equal(json_object_iter_key(it), keys[i]);
    }
    assert_int_equal(i, sizeof keys / sizeof keys[0]);
    const char *ts = json_string_value(json_object_get(j, "ts"));
    assert_non_null(ts);
    assert_int_equal(strlen(ts), 27);
    assert_int_equal(ts[10], 'T');
    assert_int_equal(ts[26], 'Z');
    assert_string_equal(json_string_value(json_object_get(j, "level")), "warn");
    assert_string_equal(json_string_value(json_object_get(j, "component")), "http");
    assert_string_equal(json_string_value(json_object_get(j, "event")), "listening");
    assert_string_equal(json_string_value(json_object_get(j, "addr")), "127.0.0.1");
    assert_int_equal(json_integer_value(json_object_get(j, "port")), 8080);
    assert_true(json_is_false(json_object_get(j, "tls")));
    assert_true(json_real_value(json_object_get(j, "ratio")) == 0.25);
    assert_int_equal(json_integer_value(json_object_get(j, "conns")), 3);
    json_decref(j);

    j = parse_line(nl + 1);
    assert_int_equal(json_object_size(j), 4);
    assert_string_equal(json_string_value(json_object_get(j, "event")), "no_fields");
    json_decref(j);
    free(text);
}

/* ---- levels
 * -------------------------------------------------------------------------------------- */

static void test_level_filtering(void **state)
{
    (void)state;
    struct capture c;
    capture_start(&c);
    pd_log_set_level(PD_LOG_WARN);
    assert_int_equal(pd_log_get_level(), PD_LOG_WARN);
    assert_false(pd_log_enabled(PD_LOG_INFO));
    assert_true(pd_log_enabled(PD_LOG_ERROR));
    pd_log(PD_LOG_DEBUG, "t", "d");
    pd_log(PD_LOG_INFO, "t", "i");
    pd_log(PD_LOG_WARN, "t", "w");
    pd_log(PD_LOG_ERROR, "t", "e");
    pd_log_emit(PD_LOG_INFO, "t", "emit_i", NULL, 0); /* pd_log_emit filters too */
    pd_log_emit(PD_LOG_OFF, "t", "emit_off", NULL, 0);
    pd_log_set_level(PD_LOG_OFF);
    assert_false(pd_log_enabled(PD_LOG_ERROR));
    assert_false(pd_log_enabled(PD_LOG_OFF));
    pd_log(PD_LOG_ERROR, "t", "silenced");
    pd_log_set_level(PD_LOG_DEBUG);
    assert_false(pd_log_enabled(PD_LOG_OFF)); /* "off" is never a record level */
    pd_log(PD_LOG_DEBUG, "t", "d2");
    char *text = capture_end(&c);
    assert_int_equal(count_lines(text), 3);
    assert_non_null(strstr(text, "\"level\":\"warn\",\"component\":\"t\",\"event\":\"w\"}\n"));
    assert_non_null(strstr(text, "\"level\":\"error\",\"component\":\"t\",\"event\":\"e\"}\n"));
    assert_non_null(strstr(text, "\"level\":\"debug\",\"component\":\"t\",\"event\":\"d2\"}\n"));
    assert_null(strstr(text, "\"i\""));
    assert_null(strstr(text, "emit_"));
    assert_null(strstr(text, "silenced"));
    free(text);
}

static void test_level_parse(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        enum pd_log_level want;
    } ok[] = {{"debug", PD_LOG_DEBUG},  {"DEBUG", PD_LOG_DEBUG}, {"info", PD_LOG_INFO},
              {"Info", PD_LOG_INFO},    {"warn", PD_LOG_WARN},   {"warning", PD_LOG_WARN},
              {"WARNING", PD_LOG_WARN}, {"error", PD_LOG_ERROR}, {"ErRoR", PD_LOG_ERROR},
              {"off", PD_LOG_OFF},      {"OFF", PD_LOG_OFF}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        enum pd_log_level l = PD_LOG_OFF;
        if (ok[i].want == PD_LOG_OFF)
            l = PD_LOG_DEBUG;
        assert_true(pd_log_level_parse(ok[i].s, &l));
        assert_int_equal(l, ok[i].want);
    }
    static const char *const bad[] = {"",      "verbose", "inf", "debugx", " info",
                                      "info ", "warnin",  "2",   "fatal"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        enum pd_log_level l = PD_LOG_ERROR;
        assert_false(pd_log_level_parse(bad[i], &l));
        assert_int_equal(l, PD_LOG_ERROR); /* untouched on failure */
    }
    enum pd_log_level l = PD_LOG_ERROR;
    assert_false(pd_log_level_parse(NULL, &l));
    assert_false(pd_log_level_parse("info", NULL));
    assert_string_equal(pd_log_level_name(PD_LOG_DEBUG), "debug");
    assert_string_equal(pd_log_level_name(PD_LOG_INFO), "info");
    assert_string_equal(pd_log_level_name(PD_LOG_WARN), "warn");
    assert_string_equal(pd_log_level_name(PD_LOG_ERROR), "error");
    assert_string_equal(pd_log_level_name(PD_LOG_OFF), "off");
    assert_string_equal(pd_log_level_name((enum pd_log_level)42), "unknown");
}

/* ---- secrets
 * ------------------------------------------------------------------------------------- */

static void test_secret_field_redacted(void **state)
{
    (void)state;
    CHECK(",\"user\":\"bob\",\"token\":\"[redacted]\"", PD_LSTR("user", "bob"),
          PD_LSECRET("token"));
}

static void test_registered_secret_scrubbed(void **state)
{
    (void)state;
    struct pd_err err = {{0}};
    const char *s = "hunter2-secret";
    assert_int_equal(pd_log_secret_add(s, strlen(s), &err), 0);
    assert_int_equal(pd_log_secret_add(s, strlen(s), &err), 0); /* a second registration is counted */
    CHECK(",\"msg\":\"auth failed for [redacted] at upstream\"",
          PD_LSTR("msg", "auth failed for hunter2-secret at upstream"));
    CHECK(",\"whole\":\"[redacted]\",\"twice\":\"[redacted]/[redacted]\"", PD_LSTR("whole", s),
          PD_LSTR("twice", "hunter2-secret/hunter2-secret"));
    /* STRN fields: the slice is scrubbed; bytes beyond it are not read. */
    const char *raw = "Bearer hunter2-secret; more";
    CHECK(",\"hdr\":\"Bearer [redacted]\"", PD_LSTRN("hdr", raw, 21));
    CHECK(",\"hdr\":\"Bearer hunter2-se\"",
          PD_LSTRN("hdr", raw, 17)); /* the slice holds no whole secret */
    /* Keys and numbers are not strings to scrub; secret-like text in other fields is untouched. */
    CHECK(",\"hunter2-secret\":1,\"other\":\"hunter2\"", PD_LINT("hunter2-secret", 1),
          PD_LSTR("other", "hunter2"));

    /* Emitted records are scrubbed too. */
    struct capture c;
    capture_start(&c);
    pd_log(PD_LOG_ERROR, "proxy", "upstream_error",
           PD_LSTR("body", "{\"key\":\"hunter2-secret\"}"));
    char *text = capture_end(&c);
    assert_null(strstr(text, "hunter2"));
    assert_non_null(strstr(text, "\"body\":\"{\\\"key\\\":\\\"[redacted]\\\"}\"}\n"));
    assert_valid_json(text);
    free(text);

    /* Removal stops scrubbing once every registration is removed. */
    pd_log_secret_remove(s, strlen(s));
    CHECK(",\"msg\":\"[redacted]\"", PD_LSTR("msg", "hunter2-secret"));
    pd_log_secret_remove(s, strlen(s));
    CHECK(",\"msg\":\"hunter2-secret\"", PD_LSTR("msg", "hunter2-secret"));
    pd_log_secret_remove(s, strlen(s)); /* removing an unknown secret is harmless */
    pd_log_secret_remove(NULL, 14);

    /* Registrations are counted: a value two owners registered (the old and the new policy during a
     * reload) stays scrubbed until both have removed it. */
    assert_int_equal(pd_log_secret_add(s, strlen(s), &err), 0);
    assert_int_equal(pd_log_secret_add(s, strlen(s), &err), 0);
    pd_log_secret_remove(s, strlen(s));
    CHECK(",\"msg\":\"[redacted]\"", PD_LSTR("msg", "hunter2-secret"));
    pd_log_secret_remove(s, strlen(s));
    CHECK(",\"msg\":\"hunter2-secret\"", PD_LSTR("msg", "hunter2-secret"));
}

static void test_several_and_overlapping_secrets(void **state)
{
    (void)state;
    struct pd_err err = {{0}};
    static const char *const secrets[] = {"alpha-key",        "beta-key", "abab",   "tok1",
                                          "tok1-long-secret", "abcdef",   "defghi", "pa\"ss\\wd"};
    for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++)
        assert_int_equal(pd_log_secret_add(secrets[i], strlen(secrets[i]), &err), 0);

    CHECK(",\"m\":\"a=[redacted] b=[redacted]\"", PD_LSTR("m", "a=alpha-key b=beta-key"));
    /* Overlapping occurrences of one secret are hidden as one run: no fragment is left behind. */
    CHECK(",\"m\":\"x[redacted]y\"", PD_LSTR("m", "xabababy"));
    CHECK(",\"m\":\"[redacted]\"", PD_LSTR("m", "ababab"));
    /* Adjacent, non-overlapping occurrences each print a marker. */
    CHECK(",\"m\":\"[redacted][redacted]\"", PD_LSTR("m", "alpha-keyalpha-key"));
    /* A secret that is a prefix of a longer one does not expose the rest of the longer one. */
    CHECK(",\"m\":\"[redacted]!\"", PD_LSTR("m", "tok1-long-secret!"));
    CHECK(",\"m\":\"[redacted]-short\"", PD_LSTR("m", "tok1-short"));
    /* Two different secrets overlapping each other. */
    CHECK(",\"m\":\"<[redacted]>\"", PD_LSTR("m", "<abcdefghi>"));
    /* Matching happens on the raw bytes, before JSON escaping. */
    CHECK(",\"m\":\"p=[redacted]\"", PD_LSTR("m", "p=pa\"ss\\wd"));

    pd_log_secret_remove("abab", 4);
    CHECK(",\"m\":\"xabababy\"", PD_LSTR("m", "xabababy"));
    CHECK(",\"m\":\"[redacted]\"", PD_LSTR("m", "beta-key"));
    pd_log_secret_clear();
    CHECK(",\"m\":\"beta-key\"", PD_LSTR("m", "beta-key"));
}

static void test_secret_starting_inside_a_character(void **state)
{
    (void)state;
    struct pd_err err = {{0}};
    /* The secret begins with the second byte of "é" (C3 A9): the character cannot be printed whole
     * without printing part of the secret, so it becomes U+FFFD. */
    assert_int_equal(pd_log_secret_add("\xa9xyz1", 5, &err), 0);
    CHECK(",\"m\":\"caf\\ufffd[redacted]\"", PD_LSTR("m", "caf\xc3\xa9xyz1"));
    CHECK(",\"m\":\"café\"", PD_LSTR("m", "caf\xc3\xa9"));
}

static void test_secret_limits(void **state)
{
    (void)state;
    struct pd_err err = {{0}};
    assert_int_equal(pd_log_secret_add("abc", 3, &err), -1);
    assert_string_equal(err.msg, "a secret to redact must be at least 4 bytes long");
    pd_err_clear(&err);
    assert_int_equal(pd_log_secret_add(NULL, 8, &err), -1);
    assert_string_equal(err.msg, "a secret to redact must be at least 4 bytes long");
    assert_int_equal(pd_log_secret_add("abcdef", 0, NULL), -1);
    CHECK(",\"m\":\"abc\"", PD_LSTR("m", "abc"));
    assert_int_equal(pd_log_secret_add("abcd", 4, &err), 0);
    CHECK(",\"m\":\"[redacted]\"", PD_LSTR("m", "abcd"));
    pd_log_secret_clear();

    char v[32];
    for (int i = 0; i < PD_LOG_SECRETS_MAX; i++) {
        int n = snprintf(v, sizeof v, "secret-%04d", i);
        assert_int_equal(pd_log_secret_add(v, (size_t)n, &err), 0);
    }
    assert_int_equal(pd_log_secret_add("one-too-many", 12, &err), -1);
    assert_string_equal(err.msg, "too many secrets registered for redaction (at most 256)");
    CHECK(",\"m\":\"[redacted] [redacted]\"", PD_LSTR("m", "secret-0000 secret-0255"));
}

/* ---- escaping
 * ------------------------------------------------------------------------------------ */

static void test_control_and_invalid_utf8_escaped(void **state)
{
    (void)state;
    /* controls, quote, backslash; invalid byte; truncated 3-byte sequence; overlong; surrogate;
     * valid; NUL inside a STRN field */
    static const char raw[] = "\x01\x1f\x7f\t\r\n\"\\"
                              "\xff"
                              "\xe2\x82"
                              "\xc0\xaf"
                              "\xed\xa0\x80"
                              "\xe2\x82\xac"
                              "\x00"
                              "\xf0\x9f\x98\x80";
    CHECK(",\"v\":"
          "\"\\u0001\\u001f\\u007f\\t\\r\\n\\\"\\\\\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufff"
          "d\\ufffd"
          "\xe2\x82\xac\\u0000\xf0\x9f\x98\x80\"",
          PD_LSTRN("v", raw, sizeof raw - 1));
    /* Keys, component and event are escaped too. */
    char buf[512];
    pd_log_format(buf, sizeof buf, TS, PD_LOG_INFO, "co\"mp", "ev\n\xff", &PD_LSTR("k\"ey", "v"),
                  1);
    assert_string_equal(
        buf,
        "{\"ts\":\"2023-11-14T22:13:20.123456Z\",\"level\":\"info\",\"component\":\"co\\\"mp\","
        "\"event\":\"ev\\n\\ufffd\",\"k\\\"ey\":\"v\"}\n");
    assert_valid_json(buf);
    /* A multi-byte character cut by the end of a STRN slice is invalid, not read past. */
    CHECK(",\"v\":\"\\ufffd\\ufffd\"", PD_LSTRN("v", "\xe2\x82\xac", 2));
}

/* ---- truncation
 * ---------------------------------------------------------------------------------- */

static void test_huge_field_truncated(void **state)
{
    (void)state;
    enum { HUGE = 40000 };
    char *big = malloc(HUGE + 1);
    assert_non_null(big);
    memset(big, 'x', HUGE);
    big[HUGE] = '\0';
    struct capture c;
    capture_start(&c);
    pd_log(PD_LOG_INFO, "t", "big", PD_LSTR("before", "kept"), PD_LSTR("body", big),
           PD_LINT("after", 1));
    char *text = capture_end(&c);
    assert_int_equal(count_lines(text), 1);
    assert_true(strlen(text) < 16384);
    json_t *j = parse_line(text);
    assert_string_equal(json_string_value(json_object_get(j, "before")), "kept");
    assert_null(json_object_get(j, "body"));
    assert_null(json_object_get(j, "after"));
    assert_true(json_is_true(json_object_get(j, "truncated")));
    json_decref(j);
    free(text);

    /* A field that needs escaping (6 bytes per input byte) is dropped the same way. */
    memset(big, '\x01', 5000);
    big[5000] = '\0';
    char buf[16384];
    pd_log_format(buf, sizeof buf, TS, PD_LOG_INFO, "test", "ev", &PD_LSTR("ctl", big), 1);
    assert_string_equal(buf, HEAD ",\"truncated\":true}\n");

    /* A huge event name is cut, not dropped: the mandatory keys stay. */
    memset(big, 'e', HUGE);
    big[HUGE] = '\0';
    size_t n = pd_log_format(buf, sizeof buf, TS, PD_LOG_INFO, "test", big, &PD_LINT("n", 1), 1);
    assert_int_equal(n, strlen(buf));
    assert_true(n < sizeof buf);
    j = parse_line(buf);
    assert_true(strlen(json_string_value(json_object_get(j, "event"))) > 16000);
    assert_true(json_is_true(json_object_get(j, "truncated")));
    assert_null(json_object_get(j, "n"));
    json_decref(j);
    n = pd_log_format(buf, sizeof buf, TS, PD_LOG_INFO, big, "ev", NULL, 0);
    j = parse_line(buf);
    assert_string_equal(json_string_value(json_object_get(j, "event")), "ev");
    assert_true(json_is_true(json_object_get(j, "truncated")));
    json_decref(j);
    free(big);
}

/* Every buffer size and every split point: the line is valid JSON and says when something was
 * dropped. */
static void test_truncation_at_every_boundary(void **state)
{
    (void)state;
    char first[300];
    memset(first, 'a', sizeof first - 1);
    first[sizeof first - 1] = '\0';
    char buf[400];
    for (size_t cap = 0; cap <= sizeof buf; cap++) {
        for (size_t fl = 0; fl < sizeof first; fl += 7) {
            const struct pd_log_field f[] = {PD_LSTRN("first", first, fl),
                                             PD_LSTR("second", "0123456789"), PD_LSECRET("third")};
            memset(buf, 0x55, sizeof buf);
            size_t n = pd_log_format(buf, cap, TS, PD_LOG_INFO, "test", "ev", f, 3);
            if (cap == 0)
                continue;
            assert_true(n < cap);
            assert_int_equal(strlen(buf), n);
            if (n == 0)
                continue; /* too small for any record */
            assert_int_equal(buf[n - 1], '\n');
            json_t *j = parse_line(buf);
            bool all = json_object_get(j, "third") != NULL;
            assert_true(all || json_is_true(json_object_get(j, "truncated")));
            assert_true(!all || json_object_get(j, "truncated") == NULL);
            json_decref(j);
        }
    }
    /* The smallest buffer that formats a record. */
    assert_int_equal(pd_log_format(buf, 127, TS, PD_LOG_INFO, "", "", NULL, 0), 0);
    assert_string_equal(buf, "");
    assert_true(pd_log_format(buf, 128, TS, PD_LOG_INFO, "", "", NULL, 0) > 0);
}

/* ---- files
 * --------------------------------------------------------------------------------------- */

static void test_open_file_appends(void **state)
{
    (void)state;
    char path[64];
    snprintf(path, sizeof path, "/tmp/pd_test_logfile_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "existing\n", 9), 9);
    close(fd);

    struct pd_err err = {{0}};
    assert_int_equal(pd_log_open_file(path, &err), 0);
    pd_log(PD_LOG_INFO, "t", "one");
    pd_log(PD_LOG_INFO, "t", "two");
    assert_int_equal(pd_log_open_file(path, &err), 0); /* reopening (log rotation) appends too */
    pd_log(PD_LOG_INFO, "t", "three");

    const char *bad = "/nonexistent-pd-dir/sub/paddock.log";
    assert_int_equal(pd_log_open_file(bad, &err), -1);
    assert_string_equal(
        err.msg,
        "cannot open log file '/nonexistent-pd-dir/sub/paddock.log': No such file or directory");
    pd_log(PD_LOG_INFO, "t", "four"); /* still goes to the file opened before */
    assert_int_equal(pd_log_open_file(NULL, &err), -1);
    assert_string_equal(err.msg, "cannot open log file: no path given");
    pd_log_set_fd(2); /* closes the owned file */

    char *text = read_file(path, NULL);
    assert_int_equal(count_lines(text), 5);
    assert_memory_equal(text, "existing\n", 9);
    const char *p = text + 9;
    static const char *const events[] = {"one", "two", "three", "four"};
    for (size_t i = 0; i < 4; i++) {
        const char *nl = strchr(p, '\n');
        assert_non_null(nl);
        char line[512];
        memcpy(line, p, (size_t)(nl - p));
        line[nl - p] = '\0';
        json_t *j = parse_line(line);
        assert_string_equal(json_string_value(json_object_get(j, "event")), events[i]);
        json_decref(j);
        p = nl + 1;
    }
    free(text);

    /* A new file is created with mode 0640 (less the umask). */
    unlink(path);
    assert_int_equal(pd_log_open_file(path, &err), 0);
    pd_log_set_fd(2);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0137, 0);
    unlink(path);
}

static void test_errno_preserved(void **state)
{
    (void)state;
    pd_log_set_fd(-1); /* every write fails with EBADF */
    errno = EINVAL;
    pd_log(PD_LOG_ERROR, "t", "lost");
    assert_int_equal(errno, EINVAL);
}

static void test_shutdown_forgets_secrets(void **state)
{
    (void)state;
    struct pd_err err = {{0}};
    assert_int_equal(pd_log_secret_add("shutdown-secret", 15, &err), 0);
    CHECK(",\"m\":\"[redacted]\"", PD_LSTR("m", "shutdown-secret"));
    pd_log_shutdown();
    CHECK(",\"m\":\"shutdown-secret\"", PD_LSTR("m", "shutdown-secret"));
}

/* ---- concurrency
 * --------------------------------------------------------------------------------- */

enum { WRITERS = 8, PER_WRITER = 400 };

struct writer {
    int id;
    size_t max_pad;
    int batch; /* > 0: this thread batches and flushes every `batch` records */
};

static const char *pad_bytes(void)
{
    static char pad[12000];
    if (!pad[0])
        memset(pad, 'p', sizeof pad);
    return pad;
}

static size_t pad_len(int id, int seq, size_t max_pad)
{
    return ((size_t)seq * 977u + (size_t)id * 131u) % max_pad;
}

static void *writer_main(void *arg)
{
    const struct writer *w = arg;
    const char *pad = pad_bytes();
    if (w->batch > 0 && !pd_log_batch_begin())
        return NULL; /* the line count check then fails */
    for (int i = 0; i < PER_WRITER; i++) {
        pd_log(PD_LOG_INFO, "t", "line", PD_LINT("thread", w->id), PD_LINT("seq", i),
               PD_LSTRN("pad", pad, pad_len(w->id, i, w->max_pad)));
        if (w->batch > 0 && i % w->batch == w->batch - 1)
            pd_log_batch_flush();
    }
    if (w->batch > 0)
        pd_log_batch_end();
    return NULL;
}

/* Every line parses, carries a pad of the length its writer chose, and each (thread, seq) appears
 * once. */
static void check_whole_lines(char *text, size_t max_pad)
{
    static bool seen[WRITERS][PER_WRITER];
    memset(seen, 0, sizeof seen);
    size_t lines = 0;
    for (char *line = text, *nl; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
        *nl = '\0';
        json_t *j = parse_line(line);
        json_int_t id = json_integer_value(json_object_get(j, "thread"));
        json_int_t seq = json_integer_value(json_object_get(j, "seq"));
        assert_in_range(id, 0, WRITERS - 1);
        assert_in_range(seq, 0, PER_WRITER - 1);
        assert_false(seen[id][seq]);
        seen[id][seq] = true;
        assert_int_equal(json_string_length(json_object_get(j, "pad")),
                         pad_len((int)id, (int)seq, max_pad));
        json_decref(j);
        lines++;
    }
    assert_int_equal(lines, WRITERS * PER_WRITER);
}

static void run_writers_batched(size_t max_pad, int batch)
{
    pthread_t t[WRITERS];
    struct writer w[WRITERS];
    (void)pad_bytes(); /* fill the shared padding before the writers read it */
    for (int i = 0; i < WRITERS; i++) {
        w[i] = (struct writer){.id = i, .max_pad = max_pad, .batch = batch};
        assert_int_equal(pthread_create(&t[i], NULL, writer_main, &w[i]), 0);
    }
    for (int i = 0; i < WRITERS; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
}

static void run_writers(size_t max_pad)
{
    run_writers_batched(max_pad, 0);
}

static void test_threads_to_one_file(void **state)
{
    (void)state;
    char path[64];
    snprintf(path, sizeof path, "/tmp/pd_test_logmt_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    struct pd_err err = {{0}};
    assert_int_equal(pd_log_open_file(path, &err),
                     0); /* O_APPEND: records up to the line size stay whole */
    run_writers(12000);
    pd_log_set_fd(2);
    char *text = read_file(path, NULL);
    check_whole_lines(text, 12000);
    free(text);
    unlink(path);
}

struct drain {
    int fd;
    char *buf;
    size_t len, cap;
};

static void *drain_main(void *arg)
{
    struct drain *d = arg;
    for (;;) {
        if (d->cap - d->len < 65536) {
            d->cap = d->cap * 2 + 65536;
            d->buf = realloc(d->buf, d->cap + 1);
            if (!d->buf)
                return NULL;
        }
        ssize_t r = read(d->fd, d->buf + d->len, d->cap - d->len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        d->len += (size_t)r;
    }
    if (d->buf)
        d->buf[d->len] = '\0';
    return NULL;
}

static void test_threads_to_one_pipe(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    struct drain d = {.fd = p[0]};
    pthread_t reader;
    assert_int_equal(pthread_create(&reader, NULL, drain_main, &d), 0);
    pd_log_set_fd(p[1]);
    /* Pipes keep a write whole only up to PIPE_BUF bytes; keep records below it. */
    size_t max_pad = PIPE_BUF - 200;
    run_writers(max_pad);
    pd_log_set_fd(2);
    close(p[1]);
    assert_int_equal(pthread_join(reader, NULL), 0);
    close(p[0]);
    assert_non_null(d.buf);
    check_whole_lines(d.buf, max_pad);
    free(d.buf);
}

struct spinner {
    int lines;
};

static void *spinner_main(void *arg)
{
    struct spinner *s = arg;
    for (int i = 0; i < s->lines; i++)
        pd_log(PD_LOG_INFO, "t", "spin", PD_LINT("i", i));
    return NULL;
}

/* Batching threads: records of several threads, flushed every 7 (a flush also happens when the
 * 64 KiB batch would overflow with 12 KB records), all arrive whole, each once. */
static void test_batched_threads_to_one_file(void **state)
{
    (void)state;
    char path[64];
    snprintf(path, sizeof path, "/tmp/pd_test_logbt_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    struct pd_err err = {{0}};
    assert_int_equal(pd_log_open_file(path, &err), 0);
    run_writers_batched(12000, 7);
    pd_log_set_fd(2);
    char *text = read_file(path, NULL);
    check_whole_lines(text, 12000);
    free(text);
    unlink(path);
}

/* To a pipe a batch is cut into whole-line writes of at most PIPE_BUF bytes, so lines of batching
 * writers never interleave. */
static void test_batched_threads_to_one_pipe(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    struct drain d = {.fd = p[0]};
    pthread_t reader;
    assert_int_equal(pthread_create(&reader, NULL, drain_main, &d), 0);
    pd_log_set_fd(p[1]);
    size_t max_pad = PIPE_BUF - 200;
    run_writers_batched(max_pad, 5);
    pd_log_set_fd(2);
    close(p[1]);
    assert_int_equal(pthread_join(reader, NULL), 0);
    close(p[0]);
    assert_non_null(d.buf);
    check_whole_lines(d.buf, max_pad);
    free(d.buf);
}

/* Nothing reaches the fd before the flush; flush writes everything in order; end flushes; a thread
 * that never began is unaffected by flush/end. */
static void test_batch_holds_until_flush(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
    pd_log_batch_flush(); /* not batching: no-op */
    pd_log_batch_end();
    pd_log_set_fd(p[1]);
    assert_true(pd_log_batch_begin());
    assert_true(pd_log_batch_begin()); /* idempotent */
    pd_log(PD_LOG_INFO, "t", "a");
    pd_log(PD_LOG_INFO, "t", "b");
    char buf[4096];
    errno = 0;
    assert_int_equal(read(p[0], buf, sizeof buf), -1);
    assert_int_equal(errno, EAGAIN);
    pd_log_batch_flush();
    ssize_t n = read(p[0], buf, sizeof buf - 1);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_int_equal(count_lines(buf), 2);
    const char *b = strstr(buf, "\"event\":\"b\"");
    const char *a = strstr(buf, "\"event\":\"a\"");
    assert_non_null(a);
    assert_non_null(b);
    assert_true(a < b);
    pd_log(PD_LOG_INFO, "t", "c");
    pd_log_batch_end();
    n = read(p[0], buf, sizeof buf - 1);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_non_null(strstr(buf, "\"event\":\"c\""));
    pd_log(PD_LOG_INFO, "t", "d"); /* no longer batching: written at once */
    n = read(p[0], buf, sizeof buf - 1);
    assert_true(n > 0);
    pd_log_set_fd(2);
    close(p[0]);
    close(p[1]);
}

/* Switching files while another thread logs: every record lands whole in one of the files, none is
 * lost to a descriptor closed under it. */
static void test_reopen_while_logging(void **state)
{
    (void)state;
    char a[64], b[64];
    snprintf(a, sizeof a, "/tmp/pd_test_loga_XXXXXX");
    snprintf(b, sizeof b, "/tmp/pd_test_logb_XXXXXX");
    int fa = mkstemp(a), fb = mkstemp(b);
    assert_true(fa >= 0 && fb >= 0);
    close(fa);
    close(fb);
    struct pd_err err = {{0}};
    assert_int_equal(pd_log_open_file(a, &err), 0);
    struct spinner s = {.lines = 20000};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, spinner_main, &s), 0);
    for (int i = 0; i < 200; i++)
        assert_int_equal(pd_log_open_file(i % 2 ? a : b, &err), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    pd_log_set_fd(2);
    char *ta = read_file(a, NULL);
    char *tb = read_file(b, NULL);
    assert_int_equal(count_lines(ta) + count_lines(tb), 20000);
    free(ta);
    free(tb);
    unlink(a);
    unlink(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_exact_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_emitted_record_order_and_validity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_level_filtering, setup, teardown),
        cmocka_unit_test_setup_teardown(test_level_parse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_field_redacted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_registered_secret_scrubbed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_several_and_overlapping_secrets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_starting_inside_a_character, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_control_and_invalid_utf8_escaped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_huge_field_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncation_at_every_boundary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_file_appends, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errno_preserved, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_forgets_secrets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads_to_one_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads_to_one_pipe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_while_logging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batched_threads_to_one_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batched_threads_to_one_pipe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_holds_until_flush, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
