/*
 * fuzz_host.c - libFuzzer target for pd_host_canon.
 * Invariants: no crash or over-read (the input is copied to an exact-size heap block); errors are
 * printable; a NAME is canonical (allowed characters only, idempotent, <= 253 bytes) and is never
 * something glibc would read as an address; an ADDR re-canonicalises to the same address, and agrees
 * with inet_aton when both accept the input.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/host.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_err(const struct pd_err *err)
{
    if (err->msg[0] == '\0')
        abort();
    for (const char *p = err->msg; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = malloc(size ? size : 1);
    if (!in)
        return 0;
    if (size)
        memcpy(in, data, size);
    char out[PD_HOST_MAX + 1];
    char again[PD_HOST_MAX + 1];
    size_t n = 0, n2 = 0;
    struct pd_addr a, b;
    struct pd_err err = {{0}};
    enum pd_host_kind k = pd_host_canon(in, size, out, &n, &a, &err);
    if (k == PD_HOST_INVALID) {
        check_err(&err);
        if (out[0] != '\0' || n != 0)
            abort();
    } else if (k == PD_HOST_NAME) {
        if (n == 0 || n > PD_HOST_MAX || strlen(out) != n || a.family != 0)
            abort();
        for (size_t i = 0; i < n; i++) {
            char c = out[i];
            if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
                abort();
        }
        if (out[0] == '.' || out[n - 1] == '.' || strstr(out, ".."))
            abort();
        if (pd_host_canon(out, n, again, &n2, &b, NULL) != PD_HOST_NAME || n2 != n || memcmp(out, again, n))
            abort();
        /* A name must never be an address to the C library or to our own parser. */
        struct in_addr ia;
        unsigned char i6[16];
        if (inet_aton(out, &ia) != 0 || inet_pton(AF_INET6, out, i6) == 1)
            abort();
        if (pd_ip_parse(out, n, &b, NULL))
            abort();
    } else if (k == PD_HOST_ADDR) {
        if (a.family != AF_INET && a.family != AF_INET6)
            abort();
        if (strlen(out) != n || n == 0)
            abort();
        if (pd_host_canon(out, n, again, &n2, &b, NULL) != PD_HOST_ADDR || !pd_addr_equal(&a, &b) ||
            n2 != n || memcmp(out, again, n))
            abort();
        if (a.family == AF_INET && size > 0 && size < 300 && !memchr(in, '\0', size) && in[size - 1] != '.') {
            char z[300];
            memcpy(z, in, size);
            z[size] = '\0';
            struct in_addr ia;
            if (inet_aton(z, &ia) != 0 && memcmp(&ia.s_addr, a.bytes, 4) != 0)
                abort();
        }
        (void)pd_addr_classify(&a);
    } else {
        abort();
    }
    free(in);
    return 0;
}
