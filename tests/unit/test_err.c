/* test_err.c - unit tests for core/err.{h,c}: set, prefix, clear, truncation at PD_ERR_MAX, NULL
 * safety. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "core/err.h"

static void fill(char *buf, size_t n, char c)
{
    memset(buf, c, n);
    buf[n] = '\0';
}

static void test_set_formats_message(void **state)
{
    (void)state;
    struct pd_err e;
    pd_err_set(&e, "port %d out of range: expected %s", 70000, "1..65535");
    assert_string_equal(e.msg, "port 70000 out of range: expected 1..65535");
    pd_err_set(&e, "second");
    assert_string_equal(e.msg, "second");
}

static void vset_helper(struct pd_err *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void vset_helper(struct pd_err *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pd_err_vset(e, fmt, ap);
    va_end(ap);
}

static void test_vset(void **state)
{
    (void)state;
    struct pd_err e;
    vset_helper(&e, "%s=%u", "limit", 7u);
    assert_string_equal(e.msg, "limit=7");
}

static void test_set_truncates(void **state)
{
    (void)state;
    struct pd_err e;
    char big[PD_ERR_MAX * 2 + 1];
    fill(big, sizeof big - 1, 'a');
    pd_err_set(&e, "%s", big);
    assert_int_equal(strlen(e.msg), PD_ERR_MAX - 1);
    char want[PD_ERR_MAX];
    fill(want, PD_ERR_MAX - 1, 'a');
    assert_string_equal(e.msg, want);
}

static void test_set_with_own_message_as_argument(void **state)
{
    (void)state;
    struct pd_err e;
    pd_err_set(&e, "inner problem");
    pd_err_set(&e, "outer: %s", e.msg);
    assert_string_equal(e.msg, "outer: inner problem");
}

static void test_prefix(void **state)
{
    (void)state;
    struct pd_err e;
    pd_err_set(&e, "expected a number");
    pd_err_prefix(&e, "key '%s'", "port");
    assert_string_equal(e.msg, "key 'port': expected a number");
    pd_err_prefix(&e, "%s line %d", "config.yaml", 12);
    assert_string_equal(e.msg, "config.yaml line 12: key 'port': expected a number");
}

static void test_prefix_with_own_message_as_argument(void **state)
{
    (void)state;
    struct pd_err e;
    pd_err_set(&e, "abc");
    pd_err_prefix(&e, "%s", e.msg);
    assert_string_equal(e.msg, "abc: abc");
}

static void test_prefix_truncates_old_text(void **state)
{
    (void)state;
    struct pd_err e;
    char old[PD_ERR_MAX];
    fill(old, PD_ERR_MAX - 1, 'o');
    pd_err_set(&e, "%s", old);
    pd_err_prefix(&e, "ctx");
    assert_int_equal(strlen(e.msg), PD_ERR_MAX - 1);
    assert_memory_equal(e.msg, "ctx: ooo", 8);
    assert_int_equal(e.msg[PD_ERR_MAX - 2], 'o');
}

static void test_prefix_longer_than_buffer(void **state)
{
    (void)state;
    struct pd_err e;
    pd_err_set(&e, "old");
    char big[PD_ERR_MAX + 100];
    fill(big, sizeof big - 1, 'p');
    pd_err_prefix(&e, "%s", big);
    char want[PD_ERR_MAX];
    fill(want, PD_ERR_MAX - 1, 'p');
    assert_string_equal(e.msg, want);
}

static void test_prefix_without_room_for_separator(void **state)
{
    (void)state;
    /* A prefix of PD_ERR_MAX - 2 bytes leaves one byte: no ": " fits, so the old text is not glued
     * on. */
    struct pd_err e;
    pd_err_set(&e, "old");
    char p[PD_ERR_MAX - 1];
    fill(p, sizeof p - 1, 'p');
    pd_err_prefix(&e, "%s", p);
    assert_string_equal(e.msg, p);
    /* Exactly room for ": " and nothing else. */
    pd_err_set(&e, "old");
    char q[PD_ERR_MAX - 2];
    fill(q, sizeof q - 1, 'q');
    pd_err_prefix(&e, "%s", q);
    assert_int_equal(strlen(e.msg), PD_ERR_MAX - 1);
    assert_memory_equal(e.msg + sizeof q - 1, ": ", 2);
}

static void test_clear(void **state)
{
    (void)state;
    struct pd_err e;
    pd_err_set(&e, "something");
    pd_err_clear(&e);
    assert_string_equal(e.msg, "");
}

static void test_null_safety(void **state)
{
    (void)state;
    pd_err_set(NULL, "ignored %d", 1);
    vset_helper(NULL, "ignored %d", 2);
    pd_err_prefix(NULL, "ignored %d", 3);
    pd_err_clear(NULL);
    struct pd_err e;
    pd_err_set(&e, "%s", "");
    assert_string_equal(e.msg, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_formats_message),
        cmocka_unit_test(test_vset),
        cmocka_unit_test(test_set_truncates),
        cmocka_unit_test(test_set_with_own_message_as_argument),
        cmocka_unit_test(test_prefix),
        cmocka_unit_test(test_prefix_with_own_message_as_argument),
        cmocka_unit_test(test_prefix_truncates_old_text),
        cmocka_unit_test(test_prefix_longer_than_buffer),
        cmocka_unit_test(test_prefix_without_room_for_separator),
        cmocka_unit_test(test_clear),
        cmocka_unit_test(test_null_safety),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
