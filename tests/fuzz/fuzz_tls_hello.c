/*
 * fuzz_tls_hello.c - libFuzzer target for pd_tls_hello_parse (src/gateway/tls_hello.h).
 * Every parse sees an exact-size heap copy, so reading past `len` is an ASan report.
 * Invariants:
 * - the status is one of the four; NOT_TLS exactly when the first byte is not 22, and
 *   pd_tls_hello_sniff agrees; an INVALID error is non-empty printable ASCII and *out is zeroed;
 * - OK: consumed/records/hello_len within their bounds; has_sni consistent with sni/sni_len; the
 *   SNI is a canonical name (canonicalising it again gives the same bytes, and it is never an IP
 *   literal); ALPN and ECH fields consistent;
 * - prefixes: for an OK input, every prefix shorter than `consumed` is NEED_MORE and the first
 *   `consumed` bytes alone give the same result, as does the input with a byte appended; for any
 *   input, no prefix is OK unless the input is, and once a prefix is INVALID every longer one is
 *   (so "OK input => no prefix INVALID"). Inputs longer than FULL_PREFIXES have a sample of
 * prefixes checked to keep the target fast.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/tls_hello.h"

#define FULL_PREFIXES 512
#define SAMPLED_PREFIXES 128

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static enum pd_tls_hello_status parse_copy(const uint8_t *data, size_t n, size_t extra,
                                           uint8_t extra_byte, struct pd_tls_hello *out,
                                           struct pd_err *err)
{
    uint8_t *p = malloc(n + extra ? n + extra : 1);
    if (!p)
        abort();
    if (n)
        memcpy(p, data, n);
    if (extra)
        p[n] = extra_byte;
    enum pd_tls_hello_status st = pd_tls_hello_parse(n + extra ? p : NULL, n + extra, out, err);
    free(p);
    return st;
}

static void check_err(const struct pd_err *err)
{
    if (err->msg[0] == '\0' || !strstr(err->msg, "TLS ClientHello"))
        abort();
    for (const char *p = err->msg; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            abort();
}

static bool is_zero(const struct pd_tls_hello *h)
{
    static const struct pd_tls_hello zero;
    return memcmp(h, &zero, sizeof zero) == 0;
}

static bool same(const struct pd_tls_hello *a, const struct pd_tls_hello *b)
{
    return a->consumed == b->consumed && a->records == b->records &&
           a->record_version == b->record_version && a->legacy_version == b->legacy_version &&
           a->hello_len == b->hello_len && a->ext_count == b->ext_count &&
           a->has_sni == b->has_sni && a->sni_len == b->sni_len &&
           memcmp(a->sni, b->sni, sizeof a->sni) == 0 && a->has_ech == b->has_ech &&
           a->ech_type == b->ech_type && a->has_alpn == b->has_alpn &&
           a->alpn_count == b->alpn_count && a->alpn_first_len == b->alpn_first_len &&
           memcmp(a->alpn_first, b->alpn_first, a->alpn_first_len) == 0 &&
           a->has_supported_versions == b->has_supported_versions &&
           a->offers_tls13 == b->offers_tls13;
}

static void check_ok(const struct pd_tls_hello *h, size_t size)
{
    if (h->consumed == 0 || h->consumed > size || h->consumed > PD_TLS_HELLO_WIRE_MAX)
        abort();
    if (h->records < 1 || h->records > PD_TLS_HELLO_MAX_RECORDS)
        abort();
    if (h->hello_len < 41 || h->hello_len > PD_TLS_HELLO_MAX ||
        h->consumed != h->hello_len + 4 + 5 * h->records)
        abort();
    if (h->record_version < 0x0301 || h->record_version > 0x0303 || h->legacy_version < 0x0301 ||
        h->legacy_version > 0x0303)
        abort();
    if (h->has_sni != (h->sni_len > 0) || h->sni_len != strnlen(h->sni, sizeof h->sni) ||
        h->sni_len > PD_HOST_MAX)
        abort();
    if (h->has_sni) {
        char again[PD_HOST_MAX + 1];
        size_t n = 0;
        if (pd_host_canon(h->sni, h->sni_len, again, &n, NULL, NULL) != PD_HOST_NAME ||
            n != h->sni_len || memcmp(again, h->sni, n) != 0)
            abort();
    }
    if (h->has_alpn != (h->alpn_count > 0) || h->has_alpn != (h->alpn_first_len > 0) ||
        h->alpn_first_len > PD_TLS_ALPN_MAX)
        abort();
    if (h->has_ech != (h->ech_type != 0) || (h->offers_tls13 && !h->has_supported_versions))
        abort();
    if (h->ext_count > (h->hello_len - 41) / 4)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pd_tls_hello h, p;
    struct pd_err err = {{0}};
    enum pd_tls_hello_status st = parse_copy(data, size, 0, 0, &h, &err);
    switch (st) {
    case PD_TLS_HELLO_OK:
        check_ok(&h, size);
        break;
    case PD_TLS_HELLO_INVALID:
        check_err(&err);
        if (!is_zero(&h))
            abort();
        break;
    case PD_TLS_HELLO_NEED_MORE:
    case PD_TLS_HELLO_NOT_TLS:
        if (!is_zero(&h))
            abort();
        break;
    default:
        abort();
    }
    if ((st == PD_TLS_HELLO_NOT_TLS) != (size > 0 && data[0] != 22))
        abort();
    enum pd_tls_hello_status sn = pd_tls_hello_sniff(size ? data : NULL, size);
    if (sn != (size == 0       ? PD_TLS_HELLO_NEED_MORE
               : data[0] == 22 ? PD_TLS_HELLO_OK
                               : PD_TLS_HELLO_NOT_TLS))
        abort();

    if (st == PD_TLS_HELLO_OK) {
        /* exactly the ClientHello, and the ClientHello followed by anything */
        if (parse_copy(data, h.consumed, 0, 0, &p, &err) != PD_TLS_HELLO_OK || !same(&h, &p))
            abort();
        if (parse_copy(data, size, 1, size ? data[0] : 0, &p, &err) != PD_TLS_HELLO_OK ||
            !same(&h, &p))
            abort();
    }
    if (st == PD_TLS_HELLO_NOT_TLS)
        return 0;

    /* Prefixes: monotone NEED_MORE -> INVALID, never OK before `consumed`. */
    size_t limit = st == PD_TLS_HELLO_OK ? h.consumed : size;
    size_t step = limit <= FULL_PREFIXES ? 1 : limit / SAMPLED_PREFIXES + 1;
    bool invalid_seen = false;
    for (size_t n = 0; n < limit; n += step) {
        /* also the last few prefixes before the boundary, when sampling */
        for (size_t k = 0; k < (step > 1 && n + step >= limit ? 2u : 1u); k++) {
            size_t m = k == 0 ? n : limit - 1;
            struct pd_err e2 = {{0}};
            enum pd_tls_hello_status ps = parse_copy(data, m, 0, 0, &p, &e2);
            if (ps == PD_TLS_HELLO_OK || ps == PD_TLS_HELLO_NOT_TLS)
                abort();
            if (st == PD_TLS_HELLO_OK && ps != PD_TLS_HELLO_NEED_MORE)
                abort();
            if (st == PD_TLS_HELLO_NEED_MORE && ps != PD_TLS_HELLO_NEED_MORE)
                abort();
            if (ps == PD_TLS_HELLO_INVALID) {
                check_err(&e2);
                invalid_seen = true;
            } else if (invalid_seen) {
                abort();
            }
        }
    }
    return 0;
}
