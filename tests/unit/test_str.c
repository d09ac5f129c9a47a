/* test_str.c - core/str.h: bounded appends for messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/str.h"

static void appends_in_order(void **state)
{
    (void)state;
    char buf[32] = "";
    pd_appendf(buf, sizeof buf, "%s", "one");
    pd_appendf(buf, sizeof buf, ", %d", 2);
    pd_appendf(buf, sizeof buf, "%s", "");
    assert_string_equal(buf, "one, 2");
}

static void cuts_what_does_not_fit_and_stays_terminated(void **state)
{
    (void)state;
    char buf[8] = "abc";
    pd_appendf(buf, sizeof buf, "%s", "defghijk");
    assert_string_equal(buf, "abcdefg");
    pd_appendf(buf, sizeof buf, "%s", "more"); /* full: unchanged */
    assert_string_equal(buf, "abcdefg");
}

static void null_or_empty_buffers_are_left_alone(void **state)
{
    (void)state;
    pd_appendf(NULL, 10, "%s", "x");
    char one[1] = {'\0'};
    pd_appendf(one, sizeof one, "%s", "x");
    assert_int_equal(one[0], '\0');
    char canary[4] = {'z', 'z', 'z', 'z'};
    pd_appendf(canary, 0, "%s", "x");
    assert_int_equal(canary[0], 'z');
    /* An unterminated buffer of cap bytes counts as full. */
    pd_appendf(canary, sizeof canary, "%s", "x");
    assert_memory_equal(canary, "zzzz", 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(appends_in_order),
        cmocka_unit_test(cuts_what_does_not_fit_and_stays_terminated),
        cmocka_unit_test(null_or_empty_buffers_are_left_alone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
