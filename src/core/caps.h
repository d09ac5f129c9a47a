/*
 * caps.h - dropping Linux capabilities, for every process that confines itself (the gateway,
 * the sandbox's init and agent).
 *
 * Contract: each function changes only the calling thread's process credentials and says what
 * failed in err (prefixed with the caller's `who`). The checks read the sets back: a function that
 * returns 0 left nothing behind.
 */
#ifndef PD_CORE_CAPS_H
#define PD_CORE_CAPS_H

#include <stdbool.h>

#include "core/err.h"

/* Drop every capability from the bounding set and clear the ambient set. With must == false an
 * EPERM on the bounding set (no CAP_SETPCAP, e.g. an unprivileged caller) is accepted. */
int pd_caps_drop_bounding(const char *who, bool must, struct pd_err *err);
/* Set the effective, permitted and inheritable sets to empty and check they are. */
int pd_caps_clear(const char *who, struct pd_err *err);
/* Lock the securebits so uid 0 gains nothing on exec and the rules cannot be undone
 * (SECBIT_NOROOT, SECBIT_NO_SETUID_FIXUP, SECBIT_KEEP_CAPS_LOCKED, ... all locked). Needs
 * CAP_SETPCAP: call before pd_caps_clear. */
int pd_caps_lock_securebits(const char *who, struct pd_err *err);

#endif
