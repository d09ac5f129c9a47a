/* rule_key.c - see rule_key.h. */
#include "gateway/rule_key.h"

#include <string.h>

bool pd_gw_rule_key_valid(const char *key, size_t *len)
{
    if (!key)
        return false;
    size_t n = strnlen(key, PD_GW_RULE_KEY_MAX + 1);
    if (n == 0 || n > PD_GW_RULE_KEY_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)key[i];
        if (c < 0x21 || c > 0x7e)
            return false;
    }
    *len = n;
    return true;
}

uint64_t pd_gw_rule_key_hash(const char *s, size_t n)
{
    uint64_t h = UINT64_C(14695981039346656037);
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= UINT64_C(1099511628211);
    }
    return h;
}
