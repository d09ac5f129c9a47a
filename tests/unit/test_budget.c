/* test_budget.c - unit tests for gateway/budget.{h,c}: under/at/over the limit, the sliding window
 * across an hour boundary (no 2x), gradual reset, the optional received limit, persistence round
 * trip and exact file format, atomic writes (a failed flush leaves the old file), state file errors
 * naming the path, missing file = empty, mode 0600, key expiry, the key limit, a clock that moves
 * back, and concurrent charges with flushes. Time is always passed in: no sleeping. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gateway/budget.h"

#define H INT64_C(1699999200) /* 2023-11-14T22:00:00Z, an hour (and minute) boundary */

struct fx {
    char dir[64];
    char path[128];
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/pd-budget-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof f->path, "%s/state.json", f->dir);
    *state = f;
    return 0;
}

/* Remove everything in the fixture directory (files and one level of directories), then it. */
static int teardown(void **state)
{
    struct fx *f = *state;
    chmod(f->dir, 0700);
    DIR *d = opendir(f->dir);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            char p[512];
            snprintf(p, sizeof p, "%s/%s", f->dir, de->d_name);
            if (unlink(p) != 0)
                rmdir(p);
        }
        closedir(d);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

static struct pd_budget *open_ok(const char *path, size_t max_keys)
{
    struct pd_err err = {{0}};
    struct pd_budget *b = pd_budget_open(path, max_keys, &err);
    if (!b)
        fail_msg("pd_budget_open(%s): %s", path ? path : "NULL", err.msg);
    return b;
}

static void flush_ok(struct pd_budget *b)
{
    struct pd_err err = {{0}};
    if (pd_budget_flush(b, &err) != 0)
        fail_msg("pd_budget_flush: %s", err.msg);
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    assert_int_equal(fputs(text, fp) >= 0, 1);
    assert_int_equal(fclose(fp), 0);
}

/* The whole file as a string (caller frees). */
static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fail_msg("cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = calloc(1, 1 << 20);
    assert_non_null(buf);
    size_t n = fread(buf, 1, (1 << 20) - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

static size_t dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static void usage_is(struct pd_budget *b, const char *key, int64_t now, uint64_t sent,
                     uint64_t recv)
{
    uint64_t s = 1, r = 1;
    assert_true(pd_budget_usage(b, key, now, &s, &r));
    if (s != sent || r != recv)
        fail_msg("usage(%s, t=H+%lld): sent %llu received %llu, want %llu and %llu", key,
                 (long long)(now - H), (unsigned long long)s, (unsigned long long)r,
                 (unsigned long long)sent, (unsigned long long)recv);
}

/* Open a file with the given content and expect this exact error. */
static void expect_load_error(const char *path, const char *content, const char *want)
{
    write_file(path, content);
    struct pd_err err = {{0}};
    struct pd_budget *b = pd_budget_open(path, 10, &err);
    if (b) {
        pd_budget_free(b);
        fail_msg("loading %s succeeded, expected: %s", content, want);
    }
    assert_string_equal(err.msg, want);
}

/* ---- limits ---- */

static void test_under_at_over(void **state)
{
    (void)state;
    struct pd_budget *b = open_ok(NULL, 16);
    const struct pd_budget_limits lim = {.sent_per_hour = 1000};
    struct pd_err why = {{0}};
    assert_int_equal(pd_budget_check(b, "api.openai.com", &lim, H, &why), PD_BUDGET_OK);
    assert_int_equal(pd_budget_count(b), 0); /* a check creates nothing */
    assert_int_equal(pd_budget_charge(b, "api.openai.com", 999, 0, &lim, H, &why), PD_BUDGET_OK);
    assert_int_equal(pd_budget_check(b, "api.openai.com", &lim, H + 1, &why), PD_BUDGET_OK);
    usage_is(b, "api.openai.com", H + 1, 999, 0);
    /* At the limit: spent. */
    assert_int_equal(pd_budget_charge(b, "api.openai.com", 1, 0, &lim, H + 2, &why),
                     PD_BUDGET_EXHAUSTED);
    assert_string_equal(why.msg, "byte budget for api.openai.com spent: 1000 of 1000 bytes sent in "
                                 "the last hour; resets gradually over the next hour");
    memset(&why, 0, sizeof why);
    assert_int_equal(pd_budget_check(b, "api.openai.com", &lim, H + 3, &why), PD_BUDGET_EXHAUSTED);
    assert_string_equal(why.msg, "byte budget for api.openai.com spent: 1000 of 1000 bytes sent in "
                                 "the last hour; resets gradually over the next hour");
    /* Over: bytes that flowed are counted all the same. */
    assert_int_equal(pd_budget_charge(b, "api.openai.com", 5, 0, &lim, H + 4, &why),
                     PD_BUDGET_EXHAUSTED);
    assert_string_equal(why.msg, "byte budget for api.openai.com spent: 1005 of 1000 bytes sent in "
                                 "the last hour; resets gradually over the next hour");
    usage_is(b, "api.openai.com", H + 4, 1005, 0);
    /* A single charge that crosses the limit. */
    assert_int_equal(pd_budget_charge(b, "big", 10485761, 0,
                                      &(struct pd_budget_limits){.sent_per_hour = 10485760}, H,
                                      &why),
                     PD_BUDGET_EXHAUSTED);
    assert_string_equal(why.msg, "byte budget for big spent: 10485761 of 10485760 bytes sent in "
                                 "the last hour; resets gradually over the next hour");
    /* why may be NULL. */
    assert_int_equal(
        pd_budget_check(b, "big", &(struct pd_budget_limits){.sent_per_hour = 10485760}, H, NULL),
        PD_BUDGET_EXHAUSTED);
    /* Raising the limit on reload applies to the bytes already counted. */
    assert_int_equal(
        pd_budget_check(b, "big", &(struct pd_budget_limits){.sent_per_hour = 20971520}, H, &why),
        PD_BUDGET_OK);
    pd_budget_free(b);
}

static void test_hour_boundary_no_2x(void **state)
{
    (void)state;
    struct pd_budget *b = open_ok(NULL, 16);
    const struct pd_budget_limits lim = {.sent_per_hour = 1000};
    struct pd_err why = {{0}};
    /* The whole budget in the last second of an hour. */
    assert_int_equal(pd_budget_charge(b, "k", 1000, 0, &lim, H + 3599, &why), PD_BUDGET_EXHAUSTED);
    /* A fixed window would start over at H + 3600; this one does not. */
    assert_int_equal(pd_budget_check(b, "k", &lim, H + 3600, &why), PD_BUDGET_EXHAUSTED);
    /* Nor is the previous hour discounted as if it had been spread evenly: near the end of the next
     * hour the two-counter approximation would allow ~98% of the budget again; here it is still
     * spent, so no real 60-minute span sees more than the limit. */
    assert_int_equal(pd_budget_check(b, "k", &lim, H + 7140, &why), PD_BUDGET_EXHAUSTED);
    usage_is(b, "k", H + 7140, 1000, 0);
    /* The minute H+3540..H+3599 leaves the window 61 minutes after it started. */
    assert_int_equal(pd_budget_check(b, "k", &lim, H + 7199, &why), PD_BUDGET_EXHAUSTED);
    assert_int_equal(pd_budget_check(b, "k", &lim, H + 7200, &why), PD_BUDGET_OK);
    usage_is(b, "k", H + 7200, 0, 0);
    pd_budget_free(b);
}

static void test_gradual_reset(void **state)
{
    (void)state;
    struct pd_budget *b = open_ok(NULL, 16);
    const struct pd_budget_limits lim = {.sent_per_hour = 1000};
    struct pd_err why = {{0}};
    for (int i = 0; i < 10; i++)
        assert_int_equal(pd_budget_charge(b, "k", 100, 0, &lim, H + i * 60 + 30, &why),
                         i < 9 ? PD_BUDGET_OK : PD_BUDGET_EXHAUSTED);
    usage_is(b, "k", H + 600, 1000, 0);
    /* Minute 0 is counted up to the end of minute 60, then its 100 bytes come back. */
    assert_int_equal(pd_budget_check(b, "k", &lim, H + 61 * 60 - 1, &why), PD_BUDGET_EXHAUSTED);
    assert_int_equal(pd_budget_check(b, "k", &lim, H + 61 * 60, &why), PD_BUDGET_OK);
    usage_is(b, "k", H + 61 * 60, 900, 0);
    assert_int_equal(pd_budget_charge(b, "k", 100, 0, &lim, H + 61 * 60, &why),
                     PD_BUDGET_EXHAUSTED);
    /* The next minute brings back the next 100. */
    usage_is(b, "k", H + 62 * 60, 900, 0);
    /* Long after, everything is back. */
    usage_is(b, "k", H + 200 * 60, 0, 0);
    pd_budget_free(b);
}

static void test_received_optional(void **state)
{
    (void)state;
    struct pd_budget *b = open_ok(NULL, 16);
    struct pd_err why = {{0}};
    const struct pd_budget_limits sent_only = {.sent_per_hour = 1000};
    assert_int_equal(pd_budget_charge(b, "dl", 10, 1000000000, &sent_only, H, &why), PD_BUDGET_OK);
    usage_is(b, "dl", H, 10, 1000000000);
    /* Received bytes were counted all along: a received limit added by a reload sees them. */
    const struct pd_budget_limits both = {.sent_per_hour = 1000, .received_per_hour = 500};
    assert_int_equal(pd_budget_check(b, "dl", &both, H, &why), PD_BUDGET_EXHAUSTED);
    assert_string_equal(why.msg, "byte budget for dl spent: 1000000000 of 500 bytes received in "
                                 "the last hour; resets gradually over the next hour");
    const struct pd_budget_limits recv_only = {.received_per_hour = 500};
    assert_int_equal(pd_budget_charge(b, "up", 1000000, 499, &recv_only, H, &why), PD_BUDGET_OK);
    assert_int_equal(pd_budget_charge(b, "up", 0, 1, &recv_only, H, &why), PD_BUDGET_EXHAUSTED);
    assert_string_equal(why.msg, "byte budget for up spent: 500 of 500 bytes received in the last "
                                 "hour; resets gradually over the next hour");
    /* Both spent: the sent direction is reported. */
    const struct pd_budget_limits tight = {.sent_per_hour = 10, .received_per_hour = 10};
    assert_int_equal(pd_budget_check(b, "up", &tight, H, &why), PD_BUDGET_EXHAUSTED);
    assert_string_equal(why.msg, "byte budget for up spent: 1000000 of 10 bytes sent in the last "
                                 "hour; resets gradually over the next hour");
    /* No limits at all: counted, never exhausted. */
    const struct pd_budget_limits none = {0};
    assert_int_equal(pd_budget_charge(b, "free", UINT64_MAX, UINT64_MAX, &none, H, &why),
                     PD_BUDGET_OK);
    usage_is(b, "free", H, (uint64_t)INT64_MAX, (uint64_t)INT64_MAX); /* saturated */
    pd_budget_free(b);
}

static void test_validate_and_invalid(void **state)
{
    (void)state;
    struct pd_err err = {{0}};
    struct pd_budget_limits l = {.sent_per_hour = PD_BUDGET_LIMIT_MAX, .received_per_hour = 0};
    assert_int_equal(pd_budget_validate(&l, &err), 0);
    l.sent_per_hour = PD_BUDGET_LIMIT_MAX + 1;
    assert_int_equal(pd_budget_validate(&l, &err), -1);
    assert_string_equal(err.msg, "bytes_sent_per_hour must be 0 (no limit) or between 1 and "
                                 "1125899906842624, got 1125899906842625");
    l = (struct pd_budget_limits){.sent_per_hour = 1, .received_per_hour = UINT64_MAX};
    assert_int_equal(pd_budget_validate(&l, &err), -1);
    assert_string_equal(err.msg, "bytes_received_per_hour must be 0 (no limit) or between 1 and "
                                 "1125899906842624, got 18446744073709551615");
    assert_int_equal(pd_budget_validate(NULL, &err), -1);
    assert_string_equal(err.msg, "byte budget: no limits");

    struct pd_budget *b = open_ok(NULL, 4);
    const struct pd_budget_limits ok = {.sent_per_hour = 10};
    assert_int_equal(pd_budget_check(b, "bad key", &ok, H, &err), PD_BUDGET_INVALID);
    assert_string_equal(err.msg,
                        "byte budget: invalid key (expected 1..256 bytes of printable ASCII)");
    assert_int_equal(pd_budget_charge(b, "", 1, 1, &ok, H, &err), PD_BUDGET_INVALID);
    assert_string_equal(err.msg,
                        "byte budget: invalid key (expected 1..256 bytes of printable ASCII)");
    assert_int_equal(pd_budget_charge(b, "k", 1, 1, &l, H, &err), PD_BUDGET_INVALID);
    assert_string_equal(err.msg, "bytes_received_per_hour must be 0 (no limit) or between 1 and "
                                 "1125899906842624, got 18446744073709551615");
    assert_int_equal(pd_budget_charge(b, "k", 1, 1, NULL, H, &err), PD_BUDGET_INVALID);
    assert_string_equal(err.msg, "byte budget: no limits");
    assert_int_equal(pd_budget_count(b), 0);
    uint64_t s = 7, r = 7;
    assert_false(pd_budget_usage(b, "bad key", H, &s, &r));
    assert_int_equal(s, 0);
    assert_int_equal(r, 0);
    assert_true(pd_budget_usage(b, "unknown", H, &s, NULL));
    assert_int_equal(s, 0);
    pd_budget_free(b);

    assert_null(pd_budget_open(NULL, 0, &err));
    assert_string_equal(err.msg, "byte budgets: max_keys must be between 1 and 10000, got 0");
    assert_null(pd_budget_open(NULL, 10001, &err));
    assert_string_equal(err.msg, "byte budgets: max_keys must be between 1 and 10000, got 10001");
    assert_null(pd_budget_open("", 10, &err));
    assert_string_equal(err.msg, "byte budgets: the state file path is empty");
    pd_budget_free(NULL);
    assert_int_equal(pd_budget_check(NULL, "k", &ok, H, &err), PD_BUDGET_INVALID);
    assert_string_equal(err.msg, "byte budget: no budget table");

    assert_string_equal(pd_budget_verdict_name(PD_BUDGET_OK), "ok");
    assert_string_equal(pd_budget_verdict_name(PD_BUDGET_EXHAUSTED), "exhausted");
    assert_string_equal(pd_budget_verdict_name(PD_BUDGET_NO_ROOM), "no_room");
    assert_string_equal(pd_budget_verdict_name(PD_BUDGET_INVALID), "invalid");
}

static void test_clock_backwards(void **state)
{
    (void)state;
    struct pd_budget *b = open_ok(NULL, 4);
    const struct pd_budget_limits none = {0};
    /* A small step back keeps charging the newest slot: nothing expires early. */
    assert_int_equal(pd_budget_charge(b, "k", 100, 0, &none, H + 3000, NULL), PD_BUDGET_OK);
    assert_int_equal(pd_budget_charge(b, "k", 50, 0, &none, H + 2000, NULL), PD_BUDGET_OK);
    usage_is(b, "k", H + 2000, 150, 0);
    usage_is(b, "k", H + 3000 + 60 * 60, 150, 0); /* minute 50 is still in at minute 110 */
    usage_is(b, "k", H + 3000 + 61 * 60, 0, 0);
    /* A jump back by more than the window restarts time from there with the counts kept. */
    assert_int_equal(pd_budget_charge(b, "j", 100, 0, &none, H + 100000, NULL), PD_BUDGET_OK);
    assert_int_equal(pd_budget_charge(b, "j", 10, 0, &none, H, NULL), PD_BUDGET_OK);
    usage_is(b, "j", H, 110, 0);
    usage_is(b, "j", H + 61 * 60 - 1, 110, 0);
    usage_is(b, "j", H + 61 * 60, 0, 0);
    pd_budget_free(b);
}

/* ---- keys ---- */

static void test_key_expiry(void **state)
{
    (void)state;
    struct pd_budget *b = open_ok(NULL, 16);
    const struct pd_budget_limits lim = {.sent_per_hour = 1000};
    assert_int_equal(pd_budget_charge(b, "gone.example.com", 10, 0, &lim, H + 30, NULL),
                     PD_BUDGET_OK);
    assert_int_equal(pd_budget_charge(b, "live.example.com", 10, 0, &lim, H + 1800, NULL),
                     PD_BUDGET_OK);
    assert_int_equal(pd_budget_count(b), 2);
    /* Kept while its bytes are in the window (if the rule comes back, its budget is still used). */
    assert_int_equal(pd_budget_expire(b, H + 61 * 60 - 1), 0);
    assert_int_equal(pd_budget_count(b), 2);
    usage_is(b, "gone.example.com", H + 61 * 60 - 1, 10, 0);
    /* Then forgotten. */
    assert_int_equal(pd_budget_expire(b, H + 61 * 60), 1);
    assert_int_equal(pd_budget_count(b), 1);
    usage_is(b, "gone.example.com", H + 61 * 60, 0, 0);
    usage_is(b, "live.example.com", H + 61 * 60, 10, 0);
    assert_int_equal(pd_budget_expire(b, H + 1800 + 61 * 60), 1);
    assert_int_equal(pd_budget_count(b), 0);
    assert_int_equal(pd_budget_expire(NULL, H), 0);
    pd_budget_free(b);
}

static void test_key_limit(void **state)
{
    (void)state;
    struct pd_budget *b = open_ok(NULL, 2);
    const struct pd_budget_limits lim = {.sent_per_hour = 1000};
    struct pd_err why = {{0}};
    assert_int_equal(pd_budget_charge(b, "a", 1, 0, &lim, H, &why), PD_BUDGET_OK);
    assert_int_equal(pd_budget_charge(b, "b", 1, 0, &lim, H + 600, &why), PD_BUDGET_OK);
    /* Full of keys with bytes in their window: a third key cannot be counted. */
    assert_int_equal(pd_budget_check(b, "c", &lim, H + 600, &why), PD_BUDGET_NO_ROOM);
    assert_string_equal(why.msg, "byte budget for c cannot be counted: all 2 budget keys "
                                 "(max_keys) have bytes in the last hour");
    memset(&why, 0, sizeof why);
    assert_int_equal(pd_budget_charge(b, "c", 5, 5, &lim, H + 600, &why), PD_BUDGET_NO_ROOM);
    assert_string_equal(why.msg, "byte budget for c cannot be counted: all 2 budget keys "
                                 "(max_keys) have bytes in the last hour");
    assert_int_equal(pd_budget_count(b), 2);
    usage_is(b, "c", H + 600, 0, 0);
    /* Existing keys are unaffected. */
    assert_int_equal(pd_budget_charge(b, "a", 1, 0, &lim, H + 600, &why), PD_BUDGET_OK);
    /* A key whose window empties makes room: "b" (last charged at H + 600) expires at H + 4260,
     * "a" (charged at H and H + 600) at H + 4260 too; at H + 4259 still no room. */
    assert_int_equal(pd_budget_check(b, "c", &lim, H + 4259, &why), PD_BUDGET_NO_ROOM);
    assert_int_equal(pd_budget_charge(b, "c", 5, 5, &lim, H + 4260, &why), PD_BUDGET_OK);
    assert_int_equal(pd_budget_count(b), 2);
    usage_is(b, "c", H + 4260, 5, 5);
    pd_budget_free(b);
}

static void test_many_keys(void **state)
{
    (void)state;
    struct pd_budget *b = open_ok(NULL, 3000);
    const struct pd_budget_limits lim = {.sent_per_hour = 100};
    char key[32];
    for (int i = 0; i < 3000; i++) {
        snprintf(key, sizeof key, "h%d.example.com", i);
        assert_int_equal(pd_budget_charge(b, key, (uint64_t)i % 150, 1, &lim, H, NULL),
                         i % 150 >= 100 ? PD_BUDGET_EXHAUSTED : PD_BUDGET_OK);
    }
    assert_int_equal(pd_budget_count(b), 3000);
    for (int i = 0; i < 3000; i++) {
        snprintf(key, sizeof key, "h%d.example.com", i);
        usage_is(b, key, H + 59, (uint64_t)i % 150, 1);
    }
    assert_int_equal(pd_budget_charge(b, "one-more", 1, 0, &lim, H, NULL), PD_BUDGET_NO_ROOM);
    pd_budget_free(b);
}

/* ---- persistence ---- */

static void test_missing_file_is_empty(void **state)
{
    struct fx *f = *state;
    struct pd_budget *b = open_ok(f->path, 16);
    assert_int_equal(pd_budget_count(b), 0);
    assert_false(pd_budget_dirty(b));
    flush_ok(b);
    char *text = slurp(f->path);
    assert_string_equal(text, "{\"budgets\":{},\"slot_seconds\":60,\"version\":1}");
    free(text);
    pd_budget_free(b);
    /* What it wrote loads back. */
    b = open_ok(f->path, 16);
    assert_int_equal(pd_budget_count(b), 0);
    pd_budget_free(b);
}

static void test_file_format(void **state)
{
    struct fx *f = *state;
    struct pd_budget *b = open_ok(f->path, 16);
    const struct pd_budget_limits lim = {.sent_per_hour = 10000};
    assert_int_equal(pd_budget_charge(b, "api.openai.com", 512, 0, &lim, 1699999979, NULL),
                     PD_BUDGET_OK); /* slot 1699999920 */
    assert_int_equal(pd_budget_charge(b, "api.openai.com", 1024, 7, &lim, 1700000000, NULL),
                     PD_BUDGET_OK); /* slot 1699999980 */
    assert_int_equal(pd_budget_charge(b, "*.github.com", 0, 0, &lim, 1700000000, NULL),
                     PD_BUDGET_OK); /* no bytes: not written */
    flush_ok(b);
    char *text = slurp(f->path);
    assert_string_equal(text, "{\"budgets\":{\"api.openai.com\":{\"received\":[[1699999980,7]],"
                              "\"sent\":[[1699999920,512],[1699999980,1024]],\"slot\":1699999980}},"
                              "\"slot_seconds\":60,\"version\":1}");
    free(text);
    pd_budget_free(b);
}

static void test_round_trip(void **state)
{
    struct fx *f = *state;
    struct pd_budget *a = open_ok(f->path, 16);
    const struct pd_budget_limits none = {0};
    assert_int_equal(pd_budget_charge(a, "api.openai.com", 100, 5, &none, H, NULL), PD_BUDGET_OK);
    assert_int_equal(pd_budget_charge(a, "api.openai.com", 200, 0, &none, H + 61, NULL),
                     PD_BUDGET_OK);
    assert_int_equal(pd_budget_charge(a, "*.github.com", 0, 1000000000, &none, H + 1800, NULL),
                     PD_BUDGET_OK);
    assert_int_equal(pd_budget_charge(a, "default", 1, 0, &none, H + 10, NULL), PD_BUDGET_OK);
    assert_int_equal(pd_budget_charge(a, "api.openai.com", 300, 7, &none, H + 3599, NULL),
                     PD_BUDGET_OK);
    assert_true(pd_budget_dirty(a));
    flush_ok(a);
    assert_false(pd_budget_dirty(a));

    struct pd_budget *b = open_ok(f->path, 16);
    assert_int_equal(pd_budget_count(b), 3);
    assert_false(pd_budget_dirty(b));
    /* Same answers from both, as the window slides. */
    const int64_t times[] = {H + 3599, H + 3600, H + 3660, H + 3720, H + 5400,
                             H + 5459, H + 5460, H + 7199, H + 7200, H + 9000};
    const uint64_t api_sent[] = {600, 600, 500, 300, 300, 300, 300, 300, 0, 0};
    const uint64_t api_recv[] = {12, 12, 7, 7, 7, 7, 7, 7, 0, 0};
    const uint64_t g = 1000000000;
    const uint64_t gh_recv[] = {g, g, g, g, g, g, 0, 0, 0, 0}; /* minute 30 leaves at H + 5460 */
    const uint64_t def_sent[] = {1, 1, 0, 0, 0, 0, 0, 0, 0, 0};
    for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
        usage_is(a, "api.openai.com", times[i], api_sent[i], api_recv[i]);
        usage_is(b, "api.openai.com", times[i], api_sent[i], api_recv[i]);
        usage_is(a, "*.github.com", times[i], 0, gh_recv[i]);
        usage_is(b, "*.github.com", times[i], 0, gh_recv[i]);
        usage_is(a, "default", times[i], def_sent[i], 0);
        usage_is(b, "default", times[i], def_sent[i], 0);
    }
    pd_budget_free(a);

    /* A reopened table keeps charging and flushing where the old one stopped. */
    const struct pd_budget_limits lim = {.sent_per_hour = 1000};
    struct pd_err why = {{0}};
    assert_int_equal(pd_budget_charge(b, "x", 1000, 0, &lim, H + 9000, &why), PD_BUDGET_EXHAUSTED);
    flush_ok(b);
    pd_budget_free(b);
    b = open_ok(f->path, 16);
    assert_int_equal(pd_budget_count(b), 1); /* only x: the other windows were empty at H+9000 */
    assert_int_equal(pd_budget_check(b, "x", &lim, H + 9001, &why), PD_BUDGET_EXHAUSTED);
    assert_string_equal(why.msg, "byte budget for x spent: 1000 of 1000 bytes sent in the last "
                                 "hour; resets gradually over the next hour");
    pd_budget_free(b);
}

static void test_mode_0600(void **state)
{
    struct fx *f = *state;
    /* A pre-existing, more open file is replaced by a 0600 one, whatever the umask. */
    write_file(f->path, "{\"version\":1,\"slot_seconds\":60,\"budgets\":{}}");
    assert_int_equal(chmod(f->path, 0644), 0);
    mode_t old = umask(0);
    struct pd_budget *b = open_ok(f->path, 16);
    assert_int_equal(pd_budget_charge(b, "k", 1, 0, &(struct pd_budget_limits){0}, H, NULL),
                     PD_BUDGET_OK);
    flush_ok(b);
    umask(old);
    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(dir_entries(f->dir), 1); /* no temp file left behind */
    pd_budget_free(b);
}

/* A failed write (the file size limit stops the temp file half-way) leaves the old file as it was
 * and no temp file behind; works as root too, unlike a read-only directory. */
static void test_atomic_failed_write_keeps_old(void **state)
{
    struct fx *f = *state;
    struct pd_budget *b = open_ok(f->path, 100);
    const struct pd_budget_limits none = {0};
    assert_int_equal(pd_budget_charge(b, "first", 1, 0, &none, H, NULL), PD_BUDGET_OK);
    flush_ok(b);
    char *before = slurp(f->path);
    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);

    char key[32];
    for (int i = 0; i < 50; i++) {
        snprintf(key, sizeof key, "k%d.example.com", i);
        assert_int_equal(pd_budget_charge(b, key, 1000, 1000, &none, H, NULL), PD_BUDGET_OK);
    }
    struct rlimit saved;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
    struct rlimit small = saved;
    small.rlim_cur = (rlim_t)st.st_size;
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    struct pd_err err = {{0}};
    int rc = pd_budget_flush(b, &err);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
    signal(SIGXFSZ, old_handler);

    assert_int_equal(rc, -1);
    char want[512];
    snprintf(want, sizeof want, "%s: cannot write %s.tmp-", f->path, f->path);
    if (strncmp(err.msg, want, strlen(want)) != 0 || !strstr(err.msg, ": File too large"))
        fail_msg("unexpected error: %s", err.msg);
    char *after = slurp(f->path);
    assert_string_equal(after, before);
    free(after);
    assert_int_equal(dir_entries(f->dir), 1);
    assert_true(pd_budget_dirty(b)); /* still to be written */

    /* The next flush succeeds and holds everything. */
    flush_ok(b);
    assert_false(pd_budget_dirty(b));
    pd_budget_free(b);
    b = open_ok(f->path, 100);
    assert_int_equal(pd_budget_count(b), 51);
    usage_is(b, "k49.example.com", H, 1000, 1000);
    pd_budget_free(b);
    free(before);
}

static void test_atomic_readonly_dir(void **state)
{
    struct fx *f = *state;
    if (geteuid() == 0)
        skip(); /* root writes into a 0500 directory anyway; the rlimit test covers this as root */
    struct pd_budget *b = open_ok(f->path, 16);
    const struct pd_budget_limits none = {0};
    assert_int_equal(pd_budget_charge(b, "a", 1, 0, &none, H, NULL), PD_BUDGET_OK);
    flush_ok(b);
    char *before = slurp(f->path);
    assert_int_equal(pd_budget_charge(b, "b", 1, 0, &none, H, NULL), PD_BUDGET_OK);
    assert_int_equal(chmod(f->dir, 0500), 0);
    struct pd_err err = {{0}};
    assert_int_equal(pd_budget_flush(b, &err), -1);
    assert_int_equal(chmod(f->dir, 0700), 0);
    char want[512];
    snprintf(want, sizeof want, "%s: cannot create a temporary file next to it: Permission denied",
             f->path);
    assert_string_equal(err.msg, want);
    char *after = slurp(f->path);
    assert_string_equal(after, before);
    free(after);
    free(before);
    assert_int_equal(dir_entries(f->dir), 1);
    pd_budget_free(b);
}

static void test_flush_into_missing_dir(void **state)
{
    struct fx *f = *state;
    char path[256];
    snprintf(path, sizeof path, "%s/nope/state.json", f->dir);
    struct pd_budget *b = open_ok(path, 16);
    assert_int_equal(pd_budget_charge(b, "a", 1, 0, &(struct pd_budget_limits){0}, H, NULL),
                     PD_BUDGET_OK);
    struct pd_err err = {{0}};
    assert_int_equal(pd_budget_flush(b, &err), -1);
    char want[512];
    snprintf(want, sizeof want,
             "%s: cannot create a temporary file next to it: No such file or directory", path);
    assert_string_equal(err.msg, want);
    assert_true(pd_budget_dirty(b));
    pd_budget_free(b);
    /* In memory only: flush does nothing. */
    b = open_ok(NULL, 16);
    assert_int_equal(pd_budget_charge(b, "a", 1, 0, &(struct pd_budget_limits){0}, H, NULL),
                     PD_BUDGET_OK);
    assert_int_equal(pd_budget_flush(b, &err), 0);
    pd_budget_free(b);
}

static void test_corrupt_files(void **state)
{
    struct fx *f = *state;
    const char *p = f->path;
    char want[1024];
    struct pd_err err = {{0}};

    /* Not JSON: the message names the path, line and column (the rest is jansson's text). */
    write_file(p, "{\"version\":1,");
    assert_null(pd_budget_open(p, 10, &err));
    snprintf(want, sizeof want, "%s:1:", p);
    if (strncmp(err.msg, want, strlen(want)) != 0 ||
        !strstr(err.msg, ": the budget state file is not valid JSON: "))
        fail_msg("unexpected error: %s", err.msg);
    write_file(p, "");
    assert_null(pd_budget_open(p, 10, &err));
    if (strncmp(err.msg, p, strlen(p)) != 0 || !strstr(err.msg, "is not valid JSON"))
        fail_msg("unexpected error: %s", err.msg);
    write_file(p, "{\"version\":1,\"version\":1,\"slot_seconds\":60,\"budgets\":{}}");
    assert_null(pd_budget_open(p, 10, &err));
    if (strncmp(err.msg, p, strlen(p)) != 0 || !strstr(err.msg, "is not valid JSON"))
        fail_msg("unexpected error: %s", err.msg);

    snprintf(want, sizeof want,
             "%s: unsupported budget state version 2 (this gateway reads version 1)", p);
    expect_load_error(p, "{\"version\":2,\"slot_seconds\":60,\"budgets\":{}}", want);
    snprintf(want, sizeof want,
             "%s: invalid budget state: \"version\" is missing or not an integer", p);
    expect_load_error(p, "{\"slot_seconds\":60,\"budgets\":{}}", want);
    snprintf(want, sizeof want, "%s: invalid budget state: expected a JSON object", p);
    expect_load_error(p, "[1]", want);
    snprintf(want, sizeof want,
             "%s: invalid budget state: unknown field \"extra\" (expected version, slot_seconds, "
             "budgets)",
             p);
    expect_load_error(p, "{\"version\":1,\"slot_seconds\":60,\"budgets\":{},\"extra\":0}", want);
    snprintf(want, sizeof want, "%s: invalid budget state: \"slot_seconds\" must be 60", p);
    expect_load_error(p, "{\"version\":1,\"slot_seconds\":30,\"budgets\":{}}", want);
    snprintf(want, sizeof want, "%s: invalid budget state: \"budgets\" is missing or not an object",
             p);
    expect_load_error(p, "{\"version\":1,\"slot_seconds\":60,\"budgets\":[]}", want);
    snprintf(want, sizeof want,
             "%s: invalid budget state: budgets.\"k\".sent[0]: slot 3540 is not a multiple of 60 "
             "within [slot - 3600, slot] (slot is 7200)",
             p);
    expect_load_error(p,
                      "{\"version\":1,\"slot_seconds\":60,\"budgets\":{\"k\":{\"slot\":7200,"
                      "\"sent\":[[3540,5]],\"received\":[]}}}",
                      want);
    snprintf(want, sizeof want,
             "%s: invalid budget state: budgets.\"k\".received[1]: slot 7260 is not a multiple of "
             "60 within [slot - 3600, slot] (slot is 7200)",
             p);
    expect_load_error(p,
                      "{\"version\":1,\"slot_seconds\":60,\"budgets\":{\"k\":{\"slot\":7200,"
                      "\"sent\":[],\"received\":[[7200,1],[7260,1]]}}}",
                      want);
    snprintf(want, sizeof want,
             "%s: invalid budget state: budgets.\"k\".sent[0]: slot 7201 is not a multiple of 60 "
             "within [slot - 3600, slot] (slot is 7200)",
             p);
    expect_load_error(p,
                      "{\"version\":1,\"slot_seconds\":60,\"budgets\":{\"k\":{\"slot\":7200,"
                      "\"sent\":[[7201,5]],\"received\":[]}}}",
                      want);
    snprintf(want, sizeof want,
             "%s: invalid budget state: budgets.\"k\".sent[1]: slot 7200 listed twice", p);
    expect_load_error(p,
                      "{\"version\":1,\"slot_seconds\":60,\"budgets\":{\"k\":{\"slot\":7200,"
                      "\"sent\":[[7200,5],[7200,6]],\"received\":[]}}}",
                      want);
    snprintf(want, sizeof want,
             "%s: invalid budget state: budgets.\"k\".sent[0]: the byte count must be positive", p);
    expect_load_error(p,
                      "{\"version\":1,\"slot_seconds\":60,\"budgets\":{\"k\":{\"slot\":7200,"
                      "\"sent\":[[7200,-5]],\"received\":[]}}}",
                      want);
    snprintf(want, sizeof want,
             "%s: invalid budget state: budgets.\"k\".sent[0]: expected [slot_start, bytes] (two "
             "integers)",
             p);
    expect_load_error(p,
                      "{\"version\":1,\"slot_seconds\":60,\"budgets\":{\"k\":{\"slot\":7200,"
                      "\"sent\":[[7200]],\"received\":[]}}}",
                      want);
    snprintf(want, sizeof want,
             "%s: invalid budget state: budgets.\"k\".slot: expected a non-negative multiple of 60",
             p);
    expect_load_error(p,
                      "{\"version\":1,\"slot_seconds\":60,\"budgets\":{\"k\":{\"slot\":\"7200\","
                      "\"sent\":[],\"received\":[]}}}",
                      want);
    snprintf(want, sizeof want, "%s: invalid budget state: budgets.\"k\": missing \"received\"", p);
    expect_load_error(p,
                      "{\"version\":1,\"slot_seconds\":60,\"budgets\":{\"k\":{\"slot\":7200,"
                      "\"sent\":[]}}}",
                      want);
    snprintf(want, sizeof want,
             "%s: invalid budget state: budgets.\"k\": unknown field \"rpm\" (expected slot, sent, "
             "received)",
             p);
    expect_load_error(p,
                      "{\"version\":1,\"slot_seconds\":60,\"budgets\":{\"k\":{\"slot\":7200,"
                      "\"sent\":[],\"received\":[],\"rpm\":1}}}",
                      want);
    snprintf(want, sizeof want,
             "%s: invalid budget state: budgets: a key is not 1..256 bytes of printable ASCII", p);
    expect_load_error(p,
                      "{\"version\":1,\"slot_seconds\":60,\"budgets\":{\"bad key\":{\"slot\":7200,"
                      "\"sent\":[],\"received\":[]}}}",
                      want);
    snprintf(want, sizeof want, "%s: invalid budget state: budgets.\"k\": expected an object", p);
    expect_load_error(p, "{\"version\":1,\"slot_seconds\":60,\"budgets\":{\"k\":5}}", want);

    /* More keys than max_keys: an error, not a silent truncation. */
    write_file(p, "{\"version\":1,\"slot_seconds\":60,\"budgets\":{"
                  "\"a\":{\"slot\":7200,\"sent\":[[7200,1]],\"received\":[]},"
                  "\"b\":{\"slot\":7200,\"sent\":[[7200,1]],\"received\":[]},"
                  "\"c\":{\"slot\":7200,\"sent\":[],\"received\":[[7200,1]]}}}");
    assert_null(pd_budget_open(p, 2, &err));
    snprintf(want, sizeof want,
             "%s: the budget state holds more than max_keys (2) keys with bytes in their window; "
             "raise max_keys",
             p);
    assert_string_equal(err.msg, want);
    struct pd_budget *b = open_ok(p, 3);
    assert_int_equal(pd_budget_count(b), 3);
    usage_is(b, "c", 7200, 0, 1);
    pd_budget_free(b);

    /* A directory where the file should be. */
    assert_int_equal(unlink(p), 0);
    assert_int_equal(mkdir(p, 0700), 0);
    assert_null(pd_budget_open(p, 10, &err));
    snprintf(want, sizeof want, "%s: the budget state file is not a regular file", p);
    assert_string_equal(err.msg, want);
    assert_int_equal(rmdir(p), 0);
}

static void test_unreadable_file(void **state)
{
    struct fx *f = *state;
    if (geteuid() == 0)
        skip(); /* root reads a 0000 file anyway */
    write_file(f->path, "{\"version\":1,\"slot_seconds\":60,\"budgets\":{}}");
    assert_int_equal(chmod(f->path, 0), 0);
    struct pd_err err = {{0}};
    assert_null(pd_budget_open(f->path, 10, &err));
    char want[512];
    snprintf(want, sizeof want, "%s: cannot open the budget state file: Permission denied",
             f->path);
    assert_string_equal(err.msg, want);
}

static void test_reload_after_expiry(void **state)
{
    struct fx *f = *state;
    struct pd_budget *b = open_ok(f->path, 16);
    const struct pd_budget_limits lim = {.sent_per_hour = 100};
    assert_int_equal(pd_budget_charge(b, "k", 100, 0, &lim, H, NULL), PD_BUDGET_EXHAUSTED);
    flush_ok(b);
    pd_budget_free(b);
    /* Restarted two hours later: the stale slots load and then expire as usual. */
    b = open_ok(f->path, 16);
    assert_int_equal(pd_budget_count(b), 1);
    assert_int_equal(pd_budget_check(b, "k", &lim, H + 60 * 60, NULL), PD_BUDGET_EXHAUSTED);
    assert_int_equal(pd_budget_check(b, "k", &lim, H + 2 * 60 * 60, NULL), PD_BUDGET_OK);
    assert_int_equal(pd_budget_expire(b, H + 2 * 60 * 60), 1);
    pd_budget_free(b);
}

static void test_dirty(void **state)
{
    struct fx *f = *state;
    struct pd_budget *b = open_ok(f->path, 16);
    const struct pd_budget_limits lim = {.sent_per_hour = 100};
    assert_false(pd_budget_dirty(b));
    assert_int_equal(pd_budget_charge(b, "k", 0, 0, &lim, H, NULL), PD_BUDGET_OK);
    assert_false(pd_budget_dirty(b)); /* nothing counted */
    assert_int_equal(pd_budget_check(b, "k", &lim, H, NULL), PD_BUDGET_OK);
    assert_false(pd_budget_dirty(b));
    assert_int_equal(pd_budget_charge(b, "k", 0, 1, &lim, H, NULL), PD_BUDGET_OK);
    assert_true(pd_budget_dirty(b));
    flush_ok(b);
    assert_false(pd_budget_dirty(b));
    assert_false(pd_budget_dirty(NULL));
    pd_budget_free(b);
}

/* ---- concurrency ---- */

#define THREADS 4
#define CHARGES 2000

struct conc_arg {
    struct pd_budget *b;
    int exhausted;
    int bad;
};

static void *charger(void *p)
{
    struct conc_arg *a = p;
    const struct pd_budget_limits lim = {.sent_per_hour = 3 * CHARGES * THREADS};
    for (int i = 0; i < CHARGES; i++) {
        enum pd_budget_verdict v = pd_budget_charge(a->b, (i % 2) ? "a" : "b", 3, 1, &lim, H, NULL);
        if (v == PD_BUDGET_EXHAUSTED)
            a->exhausted++;
        else if (v != PD_BUDGET_OK)
            a->bad++;
    }
    return NULL;
}

static void *flusher(void *p)
{
    struct conc_arg *a = p;
    for (int i = 0; i < 20; i++) {
        struct pd_err err = {{0}};
        if (pd_budget_flush(a->b, &err) != 0)
            a->bad++;
    }
    return NULL;
}

static void test_concurrent_charges_and_flushes(void **state)
{
    struct fx *f = *state;
    struct pd_budget *b = open_ok(f->path, 16);
    pthread_t th[THREADS + 1];
    struct conc_arg args[THREADS + 1];
    for (int i = 0; i <= THREADS; i++) {
        args[i] = (struct conc_arg){.b = b};
        assert_int_equal(pthread_create(&th[i], NULL, i < THREADS ? charger : flusher, &args[i]),
                         0);
    }
    int exhausted = 0;
    for (int i = 0; i <= THREADS; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(args[i].bad, 0);
        exhausted += args[i].exhausted;
    }
    /* Each key got THREADS * CHARGES / 2 charges of 3 sent + 1 received, and the limit (24000) is
     * twice what each key reaches: never exhausted. */
    assert_int_equal(exhausted, 0);
    usage_is(b, "a", H, 3 * THREADS * CHARGES / 2, THREADS * CHARGES / 2);
    usage_is(b, "b", H, 3 * THREADS * CHARGES / 2, THREADS * CHARGES / 2);
    flush_ok(b);
    pd_budget_free(b);
    b = open_ok(f->path, 16);
    usage_is(b, "a", H, 3 * THREADS * CHARGES / 2, THREADS * CHARGES / 2);
    usage_is(b, "b", H, 3 * THREADS * CHARGES / 2, THREADS * CHARGES / 2);
    pd_budget_free(b);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_under_at_over),
        cmocka_unit_test(test_hour_boundary_no_2x),
        cmocka_unit_test(test_gradual_reset),
        cmocka_unit_test(test_received_optional),
        cmocka_unit_test(test_validate_and_invalid),
        cmocka_unit_test(test_clock_backwards),
        cmocka_unit_test(test_key_expiry),
        cmocka_unit_test(test_key_limit),
        cmocka_unit_test(test_many_keys),
        T(test_missing_file_is_empty),
        T(test_file_format),
        T(test_round_trip),
        T(test_mode_0600),
        T(test_atomic_failed_write_keeps_old),
        T(test_atomic_readonly_dir),
        T(test_flush_into_missing_dir),
        T(test_corrupt_files),
        T(test_unreadable_file),
        T(test_reload_after_expiry),
        T(test_dirty),
        T(test_concurrent_charges_and_flushes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
