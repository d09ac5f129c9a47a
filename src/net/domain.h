/*
 * domain.h - domain patterns for allow/deny rules: "api.example.com" (exact) and "*.example.com"
 * (any name strictly below example.com), plus a set of patterns with most-specific-match lookup.
 *
 * Who calls it: the config loader (compiles every domain rule and refuses bad ones with the
 * reason), the egress gateway and the DNS filter (which rule matches this canonical host?).
 *
 * Owns: struct pd_domain is a plain value (no pointers). struct pd_domain_set owns its entries and
 * a copy of each pattern's source text; the `data` pointers stored in it belong to the caller and
 * are never dereferenced or freed. A set is not internally locked: build it once, then any number
 * of threads may look up concurrently as long as nobody adds.
 * Must never: let "*.example.com" match example.com itself, evilexample.com or
 * example.com.evil.com; accept a pattern whose meaning is unclear ("*", "*.com", "a.*.com",
 * "exa*mple.com", IP literals in any spelling); print pattern bytes raw in errors.
 *
 * Decisions:
 * - Patterns are canonicalised with the host rules (host.h): case folded, one trailing dot
 *   removed, every host-rule refusal applies (to the suffix of a wildcard).
 * - '*' is only allowed as the whole leftmost label, followed by a suffix of at least two labels.
 *   "*.co.uk" is accepted: there is no public-suffix list. A wildcard suffix longer than 251
 *   characters is refused because no valid host could match it.
 * - A wildcard matches any host with at least one more label in front of the suffix, at any
 *   depth ("*.example.com" matches a.b.example.com).
 * - IP literals (as host.h defines them) are refused: IP rules are CIDR rules (cidr.h).
 * - Matching expects a canonical host (pd_host_canon); it tolerates ASCII case and one trailing
 *   dot but does not validate the host.
 * - Specificity: an exact pattern is PD_DOMAIN_SPEC_EXACT; a wildcard is the number of labels in
 *   its suffix (2..126), so among wildcards matching the same host the longer suffix wins and any
 *   exact pattern beats every wildcard.
 */
#ifndef PD_NET_DOMAIN_H
#define PD_NET_DOMAIN_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"
#include "net/host.h"

enum pd_domain_kind {
    PD_DOMAIN_EXACT = 1,
    PD_DOMAIN_WILDCARD = 2,
};

struct pd_domain {
    enum pd_domain_kind kind;
    size_t len;                   /* length of name */
    char name[PD_HOST_MAX + 1];   /* exact: the host; wildcard: the suffix without "*." */
};

#define PD_DOMAIN_SPEC_EXACT 1000u
/* Longest wildcard suffix that can still match a host of PD_HOST_MAX characters. */
#define PD_DOMAIN_SUFFIX_MAX (PD_HOST_MAX - 2)

/* Compile a pattern from text; true on success. */
bool pd_domain_compile(const char *text, size_t len, struct pd_domain *out, struct pd_err *err);
/* Does the canonical host match? */
bool pd_domain_match(const struct pd_domain *p, const char *host, size_t len);
/* Larger is more specific (see above). */
unsigned pd_domain_specificity(const struct pd_domain *p);
/* Canonical pattern text ("*.example.com"), NUL-terminated; returns the length, 0 if cap is too
 * small. PD_HOST_MAX + 1 bytes always suffice. */
size_t pd_domain_format(const struct pd_domain *p, char *buf, size_t cap);
bool pd_domain_equal(const struct pd_domain *a, const struct pd_domain *b);

/* ---- Sets (domain_set.c) ---- */
struct pd_domain_set;

/* NULL on allocation failure (*err says so). */
struct pd_domain_set *pd_domain_set_new(struct pd_err *err);
void pd_domain_set_free(struct pd_domain_set *s);
/* Compile `text` and add it with the caller's `data`. Refuses (false, *err) invalid patterns,
 * duplicates (the error names both source texts) and allocation failure; the set is unchanged
 * on failure. */
bool pd_domain_set_add(struct pd_domain_set *s, const char *text, size_t len, void *data, struct pd_err *err);
/* Most specific pattern matching the canonical host: the exact pattern if any, else the wildcard
 * with the longest suffix; NULL if none. *data (may be NULL) receives its data. The returned
 * pointer stays valid until the set is freed. O(labels) hash probes. */
const struct pd_domain *pd_domain_set_lookup(const struct pd_domain_set *s, const char *host, size_t len,
                                             void **data);
size_t pd_domain_set_count(const struct pd_domain_set *s);

#endif
