/*
 * fuzz_hosts_file.c - libFuzzer target for pd_hosts_parse.
 * Invariants: no crash, over-read or leak (the input is copied to an exact-size heap block);
 * errors are non-empty, printable and start with "FILE:"; input holding a NUL byte is refused; on
 * success every reported name is canonical (pd_host_canon_name gives it back unchanged), is found
 * by lookup, has at least one address, its per-family arrays hold only that family, agree with the
 * family-0 array (IPv4 first), hold no duplicate, and the per-name counts add up to
 * pd_hosts_address_count.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/host.h"
#include "net/hosts_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = malloc(size ? size : 1);
    if (!in)
        return 0;
    if (size)
        memcpy(in, data, size);
    struct pd_err err = {{0}};
    struct pd_hosts *h = pd_hosts_parse(in, size, "fuzz", &err);
    if (!h) {
        if (strncmp(err.msg, "fuzz:", 5) != 0)
            abort();
        for (const char *p = err.msg; *p; p++)
            if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
                abort();
        free(in);
        return 0;
    }
    if (size && memchr(in, '\0', size))
        abort();
    size_t count = pd_hosts_count(h);
    size_t total = 0;
    for (size_t i = 0; i < count; i++) {
        size_t len = 0;
        const char *name = pd_hosts_name(h, i, &len);
        if (!name || len == 0 || len > PD_HOST_MAX || strlen(name) != len)
            abort();
        char canon[PD_HOST_MAX + 1];
        size_t cl = 0;
        if (!pd_host_canon_name(name, len, canon, &cl, NULL) || cl != len ||
            memcmp(canon, name, len))
            abort();
        const struct pd_addr *all = NULL, *v4 = NULL, *v6 = NULL;
        size_t n = pd_hosts_lookup(h, name, len, 0, &all);
        size_t n4 = pd_hosts_lookup(h, name, len, AF_INET, &v4);
        size_t n6 = pd_hosts_lookup(h, name, len, AF_INET6, &v6);
        if (n == 0 || !all || n != n4 + n6 || (n4 && v4 != all) || (n6 && v6 != all + n4))
            abort();
        for (size_t j = 0; j < n; j++) {
            if (all[j].family != (j < n4 ? AF_INET : AF_INET6))
                abort();
            for (size_t k = 0; k < j && k < 64; k++)
                if (pd_addr_equal(&all[j], &all[k]))
                    abort();
        }
        total += n;
    }
    if (pd_hosts_name(h, count, NULL) || total != pd_hosts_address_count(h))
        abort();
    pd_hosts_free(h);
    free(in);
    return 0;
}
