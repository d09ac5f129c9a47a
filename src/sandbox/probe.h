/*
 * probe.h - what this host offers the sandbox: one entry per isolation layer, each available,
 * partial or missing, with a human reason. `paddock doctor` prints it; `paddock run` (later)
 * refuses to start with a layer that is not available unless --allow-degraded=LAYER names it. Never
 * silently weaker.
 *
 * Contract:
 *   - pd_probe_run() never changes the calling process: every probe that has to try something
 *     (namespaces, seccomp, no_new_privs, capability dropping, Landlock enforcement, tmpfs, devpts,
 *     cgroup creation, the i386 ABI) runs in a short-lived child (fork; the child unshares, mounts,
 *     loads filters, then reports one fixed-size record through a pipe and _exits). Read-only
 * queries (Landlock ABI version, sysctls, /proc/self, statfs, isatty) run in the caller.
 *   - Every child is waited for (pidfd_open + waitid(P_PIDFD) when the kernel has them, waitpid
 *     otherwise), killed after PD_PROBE_CHILD_TIMEOUT_MS if it has not reported, and every fd
 * opened is closed before return, on every path. No global mutable state: the result is all in
 * *out.
 *   - Cgroup test groups are named "paddock-probe-<pid>" (the caller's pid) and always removed: by
 * the child, and again by the caller after the child is gone (in case it was killed half-way).
 *     cgroup v2 (statfs of /sys/fs/cgroup is CGROUP2_SUPER_MAGIC): the group is made under the
 *     caller's own cgroup (the delegated subtree) and memory, pids and cpu are enabled in its
 *     cgroup.subtree_control. cgroup v1 (per-controller mounts found in /proc/self/mountinfo): a
 * group is made at the root of the memory, pids and cpu hierarchies (v1 has no delegation model).
 *   - Namespaces are tried inside a new user namespace (the sandbox's way, which also works
 *     unprivileged); as root, when user namespaces are unavailable, directly.
 *   - Call it while the process has one thread (fork from a multithreaded process is unsafe for a
 *     child that allocates, as libseccomp does). It takes a few milliseconds.
 *   - Ids (PD_PROBE_ID_*) and their order are stable: scripts and tests key on them.
 */
#ifndef PD_SANDBOX_PROBE_H
#define PD_SANDBOX_PROBE_H

#include <stdbool.h>
#include <stddef.h>

enum pd_probe_state {
    PD_PROBE_AVAILABLE, /* works on this host for this caller */
    PD_PROBE_PARTIAL, /* some of it works (detail says which part does not) */
    PD_PROBE_MISSING, /* does not work (detail says why: errno, sysctl, file) */
};

enum pd_probe_layer {
    PD_PROBE_USERNS,
    PD_PROBE_MOUNTNS,
    PD_PROBE_PIDNS,
    PD_PROBE_NETNS,
    PD_PROBE_UTSNS,
    PD_PROBE_IPCNS,
    PD_PROBE_CGROUPNS,
    PD_PROBE_SECCOMP,
    PD_PROBE_NO_NEW_PRIVS,
    PD_PROBE_CAPS,
    PD_PROBE_LANDLOCK,
    PD_PROBE_PIDFD,
    PD_PROBE_CGROUP,
    PD_PROBE_TMPFS,
    PD_PROBE_DEVPTS,
    PD_PROBE_TTY,
    PD_PROBE_NLAYERS
};

#define PD_PROBE_DETAIL_MAX 384
#define PD_PROBE_CHILD_TIMEOUT_MS 2000

struct pd_probe_entry {
    const char *id; /* stable short name: "userns", "mountns", ..., "tty" (static storage) */
    enum pd_probe_state state;
    bool required; /* the sandbox needs it (false only for "tty": informational) */
    bool in_use; /* already applied to the calling process (seccomp, no_new_privs, userns) */
    char detail[PD_PROBE_DETAIL_MAX]; /* never empty: what was found, or why it is missing */
};

struct pd_probe {
    struct pd_probe_entry layers[PD_PROBE_NLAYERS]; /* indexed by enum pd_probe_layer */
    size_t nlayers; /* PD_PROBE_NLAYERS */
};

/* Probe every layer; fills *out completely. Returns the number of required layers that are not
 * available (0: the sandbox has everything it needs). Never fails as a whole: a probe that cannot
 * run reports its layer missing with the reason. */
int pd_probe_run(struct pd_probe *out);

/* "available", "partial", "missing". */
const char *pd_probe_state_name(enum pd_probe_state s);

/* The entry with this id, or NULL. */
const struct pd_probe_entry *pd_probe_find(const struct pd_probe *p, const char *id);

#endif
