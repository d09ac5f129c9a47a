/*
 * filter.h - the sandbox's syscall filter (libseccomp). docs/sandbox-seccomp.md lists every entry
 * and why it is there; a unit test keeps the two in step.
 *
 * Who calls it: the sandbox launcher, in the sandbox's first process, after no_new_privs and the
 * capability drop and just before exec of init/the agent (the filter is inherited by every
 * descendant and cannot be removed). Tests load it in forked children.
 *
 * Model: everything is allowed except the listed operations, which fail with EPERM (ENOSYS for
 * clone3, so libc falls back to clone, whose flags the filter can see). An agent runs arbitrary
 * programs: an allowlist would break them in ways nobody can predict, while the listed operations
 * are exactly those that attack the kernel or the isolation itself. Syscalls of another ABI (i386
 * through int 0x80, x32) get EPERM whatever they are, because a deny list written for one table of
 * syscall numbers means nothing for another.
 *
 * Never: loads anything in the caller's own process except through pd_sandbox_filter_load (which
 * the caller runs in the process it means to confine), or allows what the table refuses.
 */
#ifndef PD_SANDBOX_FILTER_H
#define PD_SANDBOX_FILTER_H

#include <linux/filter.h>
#include <stddef.h>

#include "core/err.h"

/* One line of the documented table: a syscall (or "syscall(condition)") and why it is refused. */
struct pd_filter_entry {
    const char *name;
    const char *why;
};

/* The table, in documentation order. */
const struct pd_filter_entry *pd_sandbox_filter_table(size_t *n);

/* The filter compiled to a classic BPF program (libseccomp's export), so a launcher can build it
 * once, off the critical path, and the sandbox's processes only install it. */
struct pd_filter_prog {
    struct sock_filter *insns; /* malloc'ed */
    unsigned short len; /* instructions */
};
int pd_sandbox_filter_build(struct pd_filter_prog *out, struct pd_err *err);
/* Install a built program in the calling process (no_new_privs must be set, or the caller must
 * hold CAP_SYS_ADMIN). 0, or -1 with err. */
int pd_sandbox_filter_install(const struct pd_filter_prog *p, struct pd_err *err);
void pd_sandbox_filter_prog_free(struct pd_filter_prog *p);

/* Build and install in one step. 0, or -1 with err naming the step that failed. */
int pd_sandbox_filter_load(struct pd_err *err);

#endif
