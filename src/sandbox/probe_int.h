/*
 * probe_int.h - private to src/sandbox/probe*.c: the child runner every tried layer goes through
 * and the small text/file helpers the probes share. probe.h is the module's contract.
 */
#ifndef PD_SANDBOX_PROBE_INT_H
#define PD_SANDBOX_PROBE_INT_H

#include <stdarg.h>
#include <stddef.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "core/sys_compat.h" /* syscall numbers older headers may lack */
#include "sandbox/probe.h"
#include "core/str.h"

struct child_report {
    int state; /* enum pd_probe_state */
    char detail[PD_PROBE_DETAIL_MAX];
};

/* What every child may read: computed by the caller before forking (no globals). */
struct probe_ctx {
    uid_t uid;
    gid_t gid;
    pid_t self;
    char userns_hint[160]; /* the sysctls that explain a refused user namespace, or "" */
};

typedef void (*probe_child_fn)(const struct probe_ctx *c, long param, struct child_report *r);

/* Set a child's report: state and formatted detail. */
void probe_rep(struct child_report *r, enum pd_probe_state st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Read a small file into buf (NUL-terminated); 0 or -errno. */
int probe_read_small(const char *path, char *buf, size_t size);
/* Write a string to a file (one write); 0 or -errno. */
int probe_write_str(const char *path, const char *s);
/* Run fn(c, param, r) in a forked child, wait for it (pidfd when available, bounded by
 * PD_PROBE_CHILD_TIMEOUT_MS) and copy its report into *r. 0, or -1 with r filled with why. */
int probe_run_child(const struct probe_ctx *c, probe_child_fn fn, long param,
                    struct child_report *r);

/* probe_confine.c: children that apply seccomp (and try the i386 ABI), no_new_privs, a full
 * capability drop; the Landlock layer. */
void probe_child_seccomp(const struct probe_ctx *c, long param, struct child_report *r);
void probe_child_i386(const struct probe_ctx *c, long param, struct child_report *r);
void probe_child_nnp(const struct probe_ctx *c, long param, struct child_report *r);
void probe_child_caps(const struct probe_ctx *c, long param, struct child_report *r);
void probe_landlock(const struct probe_ctx *c, struct pd_probe_entry *e);

/* probe_cgroup.c: the cgroup layer (v2 delegation, else v1 hierarchies, else rlimits only). */
void probe_cgroup(const struct probe_ctx *c, struct pd_probe_entry *e);

#endif
