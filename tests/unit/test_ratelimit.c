/* test_ratelimit.c - unit tests for gateway/ratelimit.{h,c}: burst and refusal, refill to the exact
 * millisecond, Retry-After rounding, independent keys, reloads that change the numbers, prune, the
 * key limit, a clock that moves back, and concurrent takes. Time is always passed in: no sleeping.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "gateway/ratelimit.h"

static struct pd_ratelimit *mk(size_t max_keys)
{
    struct pd_err err = {{0}};
    struct pd_ratelimit *rl = pd_ratelimit_new(max_keys, &err);
    if (!rl)
        fail_msg("pd_ratelimit_new: %s", err.msg);
    return rl;
}

/* take and check both the verdict and Retry-After. */
static void expect(struct pd_ratelimit *rl, const char *key, uint32_t rpm, uint32_t burst,
                   int64_t now, enum pd_rl_verdict want, uint32_t want_retry)
{
    uint32_t retry = 12345;
    enum pd_rl_verdict v = pd_ratelimit_take(rl, key, rpm, burst, now, &retry);
    if (v != want || retry != want_retry)
        fail_msg("take(%s, %u/min, burst %u, t=%lld): got %s retry %u, want %s retry %u", key, rpm,
                 burst, (long long)now, pd_rl_verdict_name(v), retry, pd_rl_verdict_name(want),
                 want_retry);
}

static void test_burst_then_refusal(void **state)
{
    (void)state;
    struct pd_ratelimit *rl = mk(16);
    for (int i = 0; i < 5; i++)
        expect(rl, "api.openai.com", 60, 5, 1000, PD_RL_ALLOW, 0);
    expect(rl, "api.openai.com", 60, 5, 1000, PD_RL_LIMITED, 1);
    expect(rl, "api.openai.com", 60, 5, 1000, PD_RL_LIMITED, 1); /* a refusal takes nothing */
    assert_int_equal(pd_ratelimit_count(rl), 1);
    /* NULL retry pointer is accepted. */
    assert_int_equal(pd_ratelimit_take(rl, "api.openai.com", 60, 5, 1000, NULL), PD_RL_LIMITED);
    pd_ratelimit_free(rl);
}

static void test_refill_exact_ms(void **state)
{
    (void)state;
    struct pd_ratelimit *rl = mk(16);
    /* 60/min = one token per 1000 ms exactly. */
    expect(rl, "a", 60, 1, 0, PD_RL_ALLOW, 0);
    expect(rl, "a", 60, 1, 999, PD_RL_LIMITED, 1);
    expect(rl, "a", 60, 1, 1000, PD_RL_ALLOW, 0);
    expect(rl, "a", 60, 1, 1000, PD_RL_LIMITED, 1);
    /* 7/min: a token every 60000/7 = 8571.43 ms, so the first one is back at 8572 ms, not 8571. */
    expect(rl, "b", 7, 1, 0, PD_RL_ALLOW, 0);
    expect(rl, "b", 7, 1, 0, PD_RL_LIMITED, 9); /* 8572 ms -> 9 s */
    expect(rl, "b", 7, 1, 8571, PD_RL_LIMITED, 1);
    expect(rl, "b", 7, 1, 8572, PD_RL_ALLOW, 0);
    pd_ratelimit_free(rl);
}

static void test_no_drift(void **state)
{
    (void)state;
    struct pd_ratelimit *rl = mk(16);
    /* Drain a 7/min bucket, then ask every millisecond for a minute: exactly 7 grants, at the
     * exact instants ceil(k * 60000 / 7), however small the steps. */
    for (int i = 0; i < 100; i++)
        expect(rl, "k", 7, 100, 0, PD_RL_ALLOW, 0);
    int64_t grants[16];
    int n = 0;
    for (int64_t t = 1; t <= 60000; t++) {
        if (pd_ratelimit_take(rl, "k", 7, 100, t, NULL) == PD_RL_ALLOW) {
            assert_true(n < 16);
            grants[n++] = t;
        }
    }
    assert_int_equal(n, 7);
    const int64_t want[7] = {8572, 17143, 25715, 34286, 42858, 51429, 60000};
    for (int i = 0; i < 7; i++)
        assert_int_equal(grants[i], want[i]);
    pd_ratelimit_free(rl);
}

static void test_retry_after_rounding(void **state)
{
    (void)state;
    struct pd_ratelimit *rl = mk(16);
    /* 1/min: a token takes 60 s. */
    expect(rl, "slow", 1, 1, 0, PD_RL_ALLOW, 0);
    expect(rl, "slow", 1, 1, 0, PD_RL_LIMITED, 60);
    expect(rl, "slow", 1, 1, 1, PD_RL_LIMITED, 60); /* 59999 ms -> 60 s */
    expect(rl, "slow", 1, 1, 58999, PD_RL_LIMITED, 2); /* 1001 ms -> 2 s */
    expect(rl, "slow", 1, 1, 59000, PD_RL_LIMITED, 1); /* 1000 ms -> 1 s */
    expect(rl, "slow", 1, 1, 59999, PD_RL_LIMITED, 1); /* 1 ms -> 1 s (at least 1) */
    expect(rl, "slow", 1, 1, 60000, PD_RL_ALLOW, 0);
    /* 1000000/min: a token comes back within a millisecond, still Retry-After: 1. */
    expect(rl, "fast", 1000000, 1, 0, PD_RL_ALLOW, 0);
    expect(rl, "fast", 1000000, 1, 0, PD_RL_LIMITED, 1);
    expect(rl, "fast", 1000000, 1, 1, PD_RL_ALLOW, 0);
    /* 90/min: 666.67 ms per token. */
    expect(rl, "mid", 90, 1, 0, PD_RL_ALLOW, 0);
    expect(rl, "mid", 90, 1, 0, PD_RL_LIMITED, 1);
    expect(rl, "mid", 90, 1, 666, PD_RL_LIMITED, 1);
    expect(rl, "mid", 90, 1, 667, PD_RL_ALLOW, 0);
    pd_ratelimit_free(rl);
}

static void test_keys_independent(void **state)
{
    (void)state;
    struct pd_ratelimit *rl = mk(16);
    expect(rl, "*.github.com", 60, 2, 0, PD_RL_ALLOW, 0);
    expect(rl, "*.github.com", 60, 2, 0, PD_RL_ALLOW, 0);
    expect(rl, "*.github.com", 60, 2, 0, PD_RL_LIMITED, 1);
    expect(rl, "api.github.com", 60, 2, 0, PD_RL_ALLOW, 0);
    expect(rl, "api.github.com", 60, 2, 0, PD_RL_ALLOW, 0);
    expect(rl, "api.github.com", 60, 2, 0, PD_RL_LIMITED, 1);
    expect(rl, "default", 1, 1, 0, PD_RL_ALLOW, 0);
    expect(rl, "default", 1, 1, 0, PD_RL_LIMITED, 60);
    assert_int_equal(pd_ratelimit_count(rl), 3);
    pd_ratelimit_free(rl);
}

static void test_reload_smaller_burst(void **state)
{
    (void)state;
    struct pd_ratelimit *rl = mk(16);
    for (int i = 0; i < 3; i++)
        expect(rl, "r", 60, 10, 0, PD_RL_ALLOW, 0); /* 7 left */
    /* The rule now says burst 5: the level is capped at 5. */
    for (int i = 0; i < 5; i++)
        expect(rl, "r", 60, 5, 0, PD_RL_ALLOW, 0);
    expect(rl, "r", 60, 5, 0, PD_RL_LIMITED, 1);
    /* Refill stops at the new burst: after 60 s at 1/s, still only 5. */
    for (int i = 0; i < 5; i++)
        expect(rl, "r", 60, 5, 60000, PD_RL_ALLOW, 0);
    expect(rl, "r", 60, 5, 60000, PD_RL_LIMITED, 1);
    pd_ratelimit_free(rl);
}

static void test_reload_larger_burst_and_rate(void **state)
{
    (void)state;
    struct pd_ratelimit *rl = mk(16);
    for (int i = 0; i < 10; i++)
        expect(rl, "r", 60, 10, 0, PD_RL_ALLOW, 0); /* empty */
    /* 120/min, burst 20: not granted at once; a token every 500 ms at the new rate. */
    expect(rl, "r", 120, 20, 0, PD_RL_LIMITED, 1);
    expect(rl, "r", 120, 20, 499, PD_RL_LIMITED, 1);
    expect(rl, "r", 120, 20, 500, PD_RL_ALLOW, 0);
    /* It fills toward 20: 10 s at 2/s. */
    for (int i = 0; i < 20; i++)
        expect(rl, "r", 120, 20, 10500, PD_RL_ALLOW, 0);
    expect(rl, "r", 120, 20, 10500, PD_RL_LIMITED, 1);
    /* Time before the change is refilled under the old numbers: drained under 60/min at 10500,
     * asked at 12500 under 6000/min: the 2000 ms count at 1/s (2 tokens), not 100/s. */
    for (int i = 0; i < 20; i++) /* bucket is empty; burst 10 now */
        expect(rl, "s", 60, 10, 10500, i < 10 ? PD_RL_ALLOW : PD_RL_LIMITED, i < 10 ? 0 : 1);
    expect(rl, "s", 6000, 10, 12500, PD_RL_ALLOW, 0);
    expect(rl, "s", 6000, 10, 12500, PD_RL_ALLOW, 0);
    expect(rl, "s", 6000, 10, 12500, PD_RL_LIMITED, 1);
    expect(rl, "s", 6000, 10, 12510, PD_RL_ALLOW, 0); /* 100/s from now on: 10 ms per token */
    pd_ratelimit_free(rl);
}

static void test_prune(void **state)
{
    (void)state;
    struct pd_ratelimit *rl = mk(16);
    expect(rl, "a", 60, 1, 0, PD_RL_ALLOW, 0);
    expect(rl, "b", 60, 1, 0, PD_RL_ALLOW, 0);
    expect(rl, "c", 60, 1, 0, PD_RL_ALLOW, 0);
    assert_int_equal(pd_ratelimit_count(rl), 3);
    const char *live[] = {"a", NULL, "c", "not-a-bucket", "bad key"};
    assert_int_equal(pd_ratelimit_prune(rl, live, 5), 1);
    assert_int_equal(pd_ratelimit_count(rl), 2);
    /* Kept buckets keep their level; the dropped one comes back full. */
    expect(rl, "a", 60, 1, 0, PD_RL_LIMITED, 1);
    expect(rl, "c", 60, 1, 0, PD_RL_LIMITED, 1);
    expect(rl, "b", 60, 1, 0, PD_RL_ALLOW, 0);
    assert_int_equal(pd_ratelimit_count(rl), 3);
    /* A second prune with the same list drops b again; an empty list drops everything. */
    assert_int_equal(pd_ratelimit_prune(rl, live, 5), 1);
    assert_int_equal(pd_ratelimit_prune(rl, NULL, 0), 2);
    assert_int_equal(pd_ratelimit_count(rl), 0);
    pd_ratelimit_free(rl);
}

static void test_key_limit(void **state)
{
    (void)state;
    struct pd_ratelimit *rl = mk(2);
    expect(rl, "a", 60, 1, 0, PD_RL_ALLOW, 0); /* full again at 1000 ms */
    expect(rl, "b", 30, 2, 0, PD_RL_ALLOW, 0); /* one token short: full again at 2000 ms */
    /* Table full, no bucket full: the new key is refused until a bucket is full (a at 1000 ms). */
    expect(rl, "c", 60, 1, 0, PD_RL_TOO_MANY_KEYS, 1);
    expect(rl, "c", 60, 1, 999, PD_RL_TOO_MANY_KEYS, 1);
    assert_int_equal(pd_ratelimit_count(rl), 2);
    /* The existing keys still work. */
    expect(rl, "b", 30, 2, 999, PD_RL_ALLOW, 0); /* b now at 0.4995 tokens: full at 4000 ms */
    /* At 1000 ms a is full again, so it holds nothing and makes room for c. */
    expect(rl, "c", 60, 1, 1000, PD_RL_ALLOW, 0);
    assert_int_equal(pd_ratelimit_count(rl), 2);
    /* a is new again and must wait: c is full at 2000 ms, b at 4000 ms. */
    expect(rl, "a", 60, 1, 1000, PD_RL_TOO_MANY_KEYS, 1);
    expect(rl, "a", 60, 1, 1001, PD_RL_TOO_MANY_KEYS, 1);
    pd_ratelimit_free(rl);

    /* Retry-After for a full table rounds up like the rest: 1/min buckets need 60 s. */
    rl = mk(1);
    expect(rl, "x", 1, 1, 0, PD_RL_ALLOW, 0);
    expect(rl, "y", 1, 1, 0, PD_RL_TOO_MANY_KEYS, 60);
    expect(rl, "y", 1, 1, 58999, PD_RL_TOO_MANY_KEYS, 2);
    expect(rl, "y", 1, 1, 60000, PD_RL_ALLOW, 0);
    pd_ratelimit_free(rl);
}

static void test_clock_backwards(void **state)
{
    (void)state;
    struct pd_ratelimit *rl = mk(4);
    expect(rl, "k", 60, 1, 1000, PD_RL_ALLOW, 0);
    expect(rl, "k", 60, 1, 500, PD_RL_LIMITED, 1); /* earlier time: no refill, no rewind */
    expect(rl, "k", 60, 1, 1999, PD_RL_LIMITED, 1);
    expect(rl, "k", 60, 1, 2000, PD_RL_ALLOW, 0); /* counted from 1000, not from 500 */
    pd_ratelimit_free(rl);
}

static void test_long_idle_no_overflow(void **state)
{
    (void)state;
    struct pd_ratelimit *rl = mk(4);
    for (int i = 0; i < 3; i++)
        expect(rl, "k", 1000000, 1000000, 0, PD_RL_ALLOW, 0);
    /* Idle for ~146 million years of milliseconds: the bucket is simply full. */
    int64_t later = INT64_MAX / 2;
    for (int i = 0; i < 1000000; i++)
        if (pd_ratelimit_take(rl, "k", 1000000, 1000000, later, NULL) != PD_RL_ALLOW)
            fail_msg("take %d refused", i);
    expect(rl, "k", 1000000, 1000000, later, PD_RL_LIMITED, 1);
    pd_ratelimit_free(rl);
}

static void test_invalid_arguments(void **state)
{
    (void)state;
    struct pd_ratelimit *rl = mk(4);
    expect(rl, "", 60, 1, 0, PD_RL_INVALID, 1);
    expect(rl, "has space", 60, 1, 0, PD_RL_INVALID, 1);
    expect(rl, "tab\t", 60, 1, 0, PD_RL_INVALID, 1);
    expect(rl, "caf\xc3\xa9", 60, 1, 0, PD_RL_INVALID, 1);
    expect(rl, "k", 0, 1, 0, PD_RL_INVALID, 1);
    expect(rl, "k", 60, 0, 0, PD_RL_INVALID, 1);
    expect(rl, "k", 1000001, 1, 0, PD_RL_INVALID, 1);
    expect(rl, "k", 60, 1000001, 0, PD_RL_INVALID, 1);
    assert_int_equal(pd_ratelimit_take(rl, NULL, 60, 1, 0, NULL), PD_RL_INVALID);
    assert_int_equal(pd_ratelimit_take(NULL, "k", 60, 1, 0, NULL), PD_RL_INVALID);
    char longkey[PD_RATELIMIT_KEY_MAX + 2];
    memset(longkey, 'a', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = '\0';
    expect(rl, longkey, 60, 1, 0, PD_RL_INVALID, 1);
    longkey[PD_RATELIMIT_KEY_MAX] = '\0'; /* exactly the maximum is fine */
    expect(rl, longkey, 60, 1, 0, PD_RL_ALLOW, 0);
    assert_int_equal(pd_ratelimit_count(rl), 1);
    pd_ratelimit_free(rl);
}

static void test_validate(void **state)
{
    (void)state;
    struct pd_err err = {{0}};
    assert_int_equal(pd_ratelimit_validate(1, 1, &err), 0);
    assert_int_equal(pd_ratelimit_validate(1000000, 1000000, &err), 0);
    assert_int_equal(pd_ratelimit_validate(0, 10, &err), -1);
    assert_string_equal(err.msg, "requests_per_minute must be between 1 and 1000000, got 0");
    assert_int_equal(pd_ratelimit_validate(1000001, 10, &err), -1);
    assert_string_equal(err.msg, "requests_per_minute must be between 1 and 1000000, got 1000001");
    assert_int_equal(pd_ratelimit_validate(-5, 10, &err), -1);
    assert_string_equal(err.msg, "requests_per_minute must be between 1 and 1000000, got -5");
    assert_int_equal(pd_ratelimit_validate(60, 0, &err), -1);
    assert_string_equal(err.msg, "burst_size must be between 1 and 1000000, got 0");
    assert_int_equal(pd_ratelimit_validate(60, 1000001, &err), -1);
    assert_string_equal(err.msg, "burst_size must be between 1 and 1000000, got 1000001");
    assert_int_equal(pd_ratelimit_validate(60, 0, NULL), -1); /* NULL err is fine */

    assert_null(pd_ratelimit_new(0, &err));
    assert_string_equal(err.msg, "rate limiter: max_keys must be between 1 and 1000000, got 0");
    assert_null(pd_ratelimit_new(1000001, &err));
    assert_string_equal(err.msg,
                        "rate limiter: max_keys must be between 1 and 1000000, got 1000001");
    pd_ratelimit_free(NULL);
    assert_int_equal(pd_ratelimit_count(NULL), 0);
    assert_int_equal(pd_ratelimit_prune(NULL, NULL, 0), 0);

    assert_string_equal(pd_rl_verdict_name(PD_RL_ALLOW), "allow");
    assert_string_equal(pd_rl_verdict_name(PD_RL_LIMITED), "limited");
    assert_string_equal(pd_rl_verdict_name(PD_RL_TOO_MANY_KEYS), "too_many_keys");
    assert_string_equal(pd_rl_verdict_name(PD_RL_NOMEM), "nomem");
    assert_string_equal(pd_rl_verdict_name(PD_RL_INVALID), "invalid");
}

static void test_many_keys_grow(void **state)
{
    (void)state;
    /* Enough keys to grow the hash table several times; each stays independent. */
    struct pd_ratelimit *rl = mk(5000);
    char key[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "h%d.example.com", i);
        expect(rl, key, 60, 1, 0, PD_RL_ALLOW, 0);
    }
    assert_int_equal(pd_ratelimit_count(rl), 5000);
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "h%d.example.com", i);
        expect(rl, key, 60, 1, 0, PD_RL_LIMITED, 1);
    }
    expect(rl, "one-too-many", 60, 1, 0, PD_RL_TOO_MANY_KEYS, 1);
    pd_ratelimit_free(rl);
}

/* ---- concurrency ---- */

#define THREADS 4
#define TAKES_PER_THREAD 2000
#define CONC_BURST 1000

struct conc_arg {
    struct pd_ratelimit *rl;
    int allowed;
    int limited;
    int other;
};

static void *conc_worker(void *p)
{
    struct conc_arg *a = p;
    for (int i = 0; i < TAKES_PER_THREAD; i++) {
        /* Two keys, interleaved, at a fixed time: no refill. */
        const char *key = (i % 2) ? "*.github.com" : "api.openai.com";
        switch (pd_ratelimit_take(a->rl, key, 60, CONC_BURST, 5000, NULL)) {
        case PD_RL_ALLOW:
            a->allowed++;
            break;
        case PD_RL_LIMITED:
            a->limited++;
            break;
        default:
            a->other++;
            break;
        }
    }
    return NULL;
}

static void test_concurrent_takes(void **state)
{
    (void)state;
    struct pd_ratelimit *rl = mk(16);
    pthread_t th[THREADS];
    struct conc_arg args[THREADS];
    for (int i = 0; i < THREADS; i++) {
        args[i] = (struct conc_arg){.rl = rl};
        assert_int_equal(pthread_create(&th[i], NULL, conc_worker, &args[i]), 0);
    }
    int allowed = 0, limited = 0, other = 0;
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        allowed += args[i].allowed;
        limited += args[i].limited;
        other += args[i].other;
    }
    /* 8000 takes on two keys of burst 1000: exactly 1000 granted per key. */
    assert_int_equal(allowed, 2 * CONC_BURST);
    assert_int_equal(limited, THREADS * TAKES_PER_THREAD - 2 * CONC_BURST);
    assert_int_equal(other, 0);
    assert_int_equal(pd_ratelimit_count(rl), 2);
    pd_ratelimit_free(rl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_refusal),
        cmocka_unit_test(test_refill_exact_ms),
        cmocka_unit_test(test_no_drift),
        cmocka_unit_test(test_retry_after_rounding),
        cmocka_unit_test(test_keys_independent),
        cmocka_unit_test(test_reload_smaller_burst),
        cmocka_unit_test(test_reload_larger_burst_and_rate),
        cmocka_unit_test(test_prune),
        cmocka_unit_test(test_key_limit),
        cmocka_unit_test(test_clock_backwards),
        cmocka_unit_test(test_long_idle_no_overflow),
        cmocka_unit_test(test_invalid_arguments),
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_many_keys_grow),
        cmocka_unit_test(test_concurrent_takes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
