/*
 * fuzz_domain.c - libFuzzer target for domain patterns.
 * The first half of the input is a pattern, the second half a host. Invariants: a compiled
 * pattern's text re-compiles to the same pattern; matching a canonical host agrees with a direct
 * statement of the rule (exact: equal; wildcard: ends with "." + suffix and is longer); a one-entry
 * pd_domain_set gives the same answer; matching raw, non-canonical hosts never crashes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/domain.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t plen = size / 2, hlen = size - plen;
    char *pt = malloc(plen ? plen : 1);
    char *ht = malloc(hlen ? hlen : 1);
    if (!pt || !ht) {
        free(pt);
        free(ht);
        return 0;
    }
    if (plen)
        memcpy(pt, data, plen);
    if (hlen)
        memcpy(ht, data + plen, hlen);

    struct pd_domain p, q;
    struct pd_err err = {{0}};
    if (pd_domain_compile(pt, plen, &p, &err)) {
        char txt[PD_HOST_MAX + 1];
        size_t n = pd_domain_format(&p, txt, sizeof txt);
        if (n == 0 || !pd_domain_compile(txt, n, &q, NULL) || !pd_domain_equal(&p, &q))
            abort();
        if (p.len != strlen(p.name) || (p.kind == PD_DOMAIN_WILDCARD && p.len > PD_DOMAIN_SUFFIX_MAX))
            abort();

        (void)pd_domain_match(&p, ht, hlen); /* raw host: must not crash */

        char canon[PD_HOST_MAX + 1];
        size_t cl = 0;
        if (pd_host_canon_name(ht, hlen, canon, &cl, NULL)) {
            bool m = pd_domain_match(&p, canon, cl);
            bool want;
            if (p.kind == PD_DOMAIN_EXACT)
                want = cl == p.len && memcmp(canon, p.name, cl) == 0;
            else
                want = cl > p.len + 1 && canon[cl - p.len - 1] == '.' &&
                       memcmp(canon + cl - p.len, p.name, p.len) == 0;
            if (m != want)
                abort();
            struct pd_domain_set *s = pd_domain_set_new(NULL);
            if (s) {
                int tag = 7;
                if (pd_domain_set_add(s, pt, plen, &tag, NULL)) {
                    void *d = NULL;
                    const struct pd_domain *r = pd_domain_set_lookup(s, canon, cl, &d);
                    if ((r != NULL) != m || (r && d != &tag))
                        abort();
                    if (pd_domain_set_add(s, txt, n, NULL, NULL)) /* duplicate must be refused */
                        abort();
                }
                pd_domain_set_free(s);
            }
        }
    } else {
        if (err.msg[0] == '\0')
            abort();
        for (const char *c = err.msg; *c; c++)
            if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
                abort();
    }
    free(pt);
    free(ht);
    return 0;
}
