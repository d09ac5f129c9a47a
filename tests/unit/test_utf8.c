/* test_utf8.c - the shared UTF-8 validator: every boundary RFC 3629 draws. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "core/utf8.h"

#define SEQ(s) ((const unsigned char *)(s)), (sizeof(s) - 1)

static void test_valid_sequences(void **state)
{
    (void)state;
    assert_int_equal(pd_utf8_seq_len(SEQ("A")), 1);
    assert_int_equal(pd_utf8_seq_len(SEQ("\xC2\x80")), 2);         /* U+0080, smallest 2-byte */
    assert_int_equal(pd_utf8_seq_len(SEQ("\xDF\xBF")), 2);         /* U+07FF */
    assert_int_equal(pd_utf8_seq_len(SEQ("\xE0\xA0\x80")), 3);     /* U+0800 */
    assert_int_equal(pd_utf8_seq_len(SEQ("\xED\x9F\xBF")), 3);     /* U+D7FF, below surrogates */
    assert_int_equal(pd_utf8_seq_len(SEQ("\xEE\x80\x80")), 3);     /* U+E000, above surrogates */
    assert_int_equal(pd_utf8_seq_len(SEQ("\xF0\x90\x80\x80")), 4); /* U+10000 */
    assert_int_equal(pd_utf8_seq_len(SEQ("\xF4\x8F\xBF\xBF")), 4); /* U+10FFFF, the last */
    assert_true(pd_utf8_valid("", 0));
    assert_true(pd_utf8_valid("h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80", 15));
}

static void test_invalid_sequences(void **state)
{
    (void)state;
    assert_int_equal(pd_utf8_seq_len(SEQ("\x80")), 0);             /* lone continuation */
    assert_int_equal(pd_utf8_seq_len(SEQ("\xC0\x80")), 0);         /* overlong NUL */
    assert_int_equal(pd_utf8_seq_len(SEQ("\xC1\xBF")), 0);         /* overlong */
    assert_int_equal(pd_utf8_seq_len(SEQ("\xE0\x9F\xBF")), 0);     /* overlong 3-byte */
    assert_int_equal(pd_utf8_seq_len(SEQ("\xF0\x8F\xBF\xBF")), 0); /* overlong 4-byte */
    assert_int_equal(pd_utf8_seq_len(SEQ("\xED\xA0\x80")), 0);     /* U+D800 surrogate */
    assert_int_equal(pd_utf8_seq_len(SEQ("\xED\xBF\xBF")), 0);     /* U+DFFF surrogate */
    assert_int_equal(pd_utf8_seq_len(SEQ("\xF4\x90\x80\x80")), 0); /* U+110000 */
    assert_int_equal(pd_utf8_seq_len(SEQ("\xF5\x80\x80\x80")), 0);
    assert_int_equal(pd_utf8_seq_len(SEQ("\xFF")), 0);
    assert_int_equal(pd_utf8_seq_len(SEQ("\xC3" "A")), 0);            /* bad continuation */
    assert_int_equal(pd_utf8_seq_len((const unsigned char *)"\xE2\x82\xAC", 2), 0); /* truncated */
    assert_int_equal(pd_utf8_seq_len((const unsigned char *)"A", 0), 0);
    assert_false(pd_utf8_valid("ok\xC3", 3));
    assert_false(pd_utf8_valid("\xE2\x82", 2));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_sequences),
        cmocka_unit_test(test_invalid_sequences),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
