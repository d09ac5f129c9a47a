/*
 * utf8.h - UTF-8 validation shared by everything that turns untrusted bytes into JSON or text output
 * (log lines, config strings, metric labels, HTTP error details).
 *
 * Strict RFC 3629: no overlong forms, no surrogates (U+D800..U+DFFF), nothing above U+10FFFF.
 * Pure functions, no state; never read past n.
 */
#ifndef PD_CORE_UTF8_H
#define PD_CORE_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Length (1..4) of the valid sequence at s[0..n), or 0 if it is invalid or truncated (n >= 1). */
size_t pd_utf8_seq_len(const unsigned char *s, size_t n);
/* Whether s[0..n) is entirely valid UTF-8. */
bool pd_utf8_valid(const char *s, size_t n);

#endif
