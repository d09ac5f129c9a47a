/*
 * cgroup.h - the sandbox's resource limits: memory, number of processes and CPU, enforced by a
 * cgroup made for the sandbox (v2 unified hierarchy, else v1 per-controller hierarchies), or by
 * rlimits in the sandbox's first process when the host offers no usable cgroup.
 *
 * Contract:
 *   - Where: the sandbox's group is always made UNDER THE CALLER'S OWN GROUP (the "0::/path"
 *     line of /proc/self/cgroup on v2, "N:memory:/path" and friends on v1), resolved through the
 *     mount's root field in /proc/self/mountinfo. v2 when /sys/fs/cgroup is a cgroup2 mount (the
 *     caller's group must be a delegated subtree: writable by the caller), else v1 in the memory,
 *     pids and cpu hierarchies (and freezer, when mounted, used only to kill reliably). A
 *     cgroup2 mount elsewhere (hybrid hosts: /sys/fs/cgroup/unified) is not used: v1 holds the
 *     controllers.
 *   - Never follows a symlink under the hierarchy root (every directory is opened component by
 *     component with O_NOFOLLOW), never writes or removes anything outside the sandbox's group
 *     (removal is unlinkat(AT_REMOVEDIR) relative to the caller's group fd kept since creation),
 *     never moves the caller itself, never kills a process outside the group (nor the caller).
 *   - Every fd is owned by the pd_cgroup object and closed by pd_cgroup_destroy; every failure
 *     path of pd_cgroup_create removes what it made. No global mutable state: the test hooks are
 *     parameters (struct pd_cg_env), not globals.
 *   - Killing (pd_cgroup_kill/destroy): v2 cgroup.kill when the kernel has it (5.14+, no race);
 *     else freeze (v2 cgroup.freeze, v1 freezer when mounted), list cgroup.procs of the group and
 *     every sub-group, SIGKILL each, thaw, repeat until every list is empty, within
 *     PD_CG_KILL_TIMEOUT_MS. Without a freezer (v1 host without it) a pid read from cgroup.procs
 *     could in theory exit and be reused before the kill; the freezer closes that window.
 *   - The sandbox must not reach the host's cgroupfs with write access: its files are owned by the
 *     caller's uid, so a sandbox running as the same host uid could raise its own limits. The
 *     launcher hides it (own mount namespace; on v2 a cgroup namespace entered after joining the
 *     group, where the group's own limit files are not visible).
 *   - rlimits (pd_limits_apply_rlimits) are the documented fallback, weaker in every dimension:
 *     see the comment at that function for what the launcher must tell the user.
 */
#ifndef PD_SANDBOX_CGROUP_H
#define PD_SANDBOX_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/err.h"

struct pd_limits {
    uint64_t memory_bytes; /* 0 = no limit. v2 memory.max (and memory.swap.max = 0), v1
                              memory.limit_in_bytes (and memory.memsw.limit_in_bytes = same when the
                              file exists: no escape into swap) */
    uint64_t pids; /* 0 = no limit; at most PD_LIMITS_PIDS_MAX. v2/v1 pids.max */
    uint32_t cpu_millis; /* 0 = no limit; 1500 = 1.5 CPUs; else PD_LIMITS_CPU_MIN..MAX. v2 cpu.max
                            "150000 100000"; v1 cpu.cfs_quota_us = millis * 100 with
                            cpu.cfs_period_us = 100000 */
};

#define PD_LIMITS_PIDS_MAX 4194304u /* the kernel's PID_MAX_LIMIT: pids.max refuses more */
#define PD_LIMITS_CPU_MIN 10u /* 10m: the kernel's smallest CFS quota is 1 ms per 100 ms period */
#define PD_LIMITS_CPU_MAX 4000000u /* 4000 CPUs */
#define PD_CG_NAME_MAX 64
#define PD_CG_PATH_MAX 1024
#define PD_CG_KILL_TIMEOUT_MS 3000 /* killing a group: freeze/kill rounds stop after this */
#define PD_CG_RMDIR_TIMEOUT_MS 1000 /* rmdir retried while the kernel still counts dying tasks */

enum pd_cg_kind { PD_CG_NONE, PD_CG_V2, PD_CG_V1 };

/* The controllers the module uses; on v1 each is a hierarchy of its own (or shares a mount). */
enum pd_cg_ctl { PD_CG_MEMORY, PD_CG_PIDS, PD_CG_CPU, PD_CG_FREEZER, PD_CG_NCTL };

/* "memory", "pids", "cpu", "freezer". */
const char *pd_cg_ctl_name(enum pd_cg_ctl c);

/*
 * Where the files are. Production passes NULL for the env (every default). TEST ONLY: the fields
 * point the module at a fake tree (a temp directory with cgroup.controllers, cgroup.subtree_control
 * and cgroup.procs as regular files) or at a privately mounted cgroup2 hierarchy.
 */
struct pd_cg_env {
    const char *v2_root; /* NULL: "/sys/fs/cgroup" */
    const char *proc_cgroup; /* NULL: "/proc/self/cgroup" */
    const char *mountinfo; /* NULL: "/proc/self/mountinfo" */
    bool force_v2; /* test only: treat v2_root as cgroup2 without checking statfs */
    bool fake_files; /* test only: create interface files that do not exist (O_CREAT|O_TRUNC) */
    bool no_kill_file; /* test only: act as if cgroup.kill did not exist (tests the freeze path) */
    /* Do not use a v1 freezer hierarchy (tests the plain kill loop; the sandbox launcher sets it
     * too: killing the sandbox's PID-namespace init ends every process in it, so the freezer
     * would only cost a mkdir, a migration and an rmdir per sandbox). The only field that is not
     * test-only. */
    bool no_freezer;
};

/* The host's cgroup layout as the caller sees it (shared with the probe behind `paddock doctor`).
 */
struct pd_cg_layout {
    enum pd_cg_kind
        kind; /* V2 if v2_root is cgroup2, else V1 if any of memory/pids/cpu is mounted */
    char v2_root[PD_CG_PATH_MAX]; /* the v2 mount point */
    char v2_own[PD_CG_PATH_MAX]; /* v2: the caller's group directory (absolute), "" if unknown */
    char v1_mnt[PD_CG_NCTL][PD_CG_PATH_MAX]; /* v1 mount point per controller, "" if none */
    char v1_own[PD_CG_NCTL]
               [PD_CG_PATH_MAX]; /* v1: the caller's group directory in it, "" if none */
    char note[256]; /* v1 only: "cgroup2 also mounted at M (controllers: ...)", or "" */
};

/* Read the layout (mountinfo, /proc/self/cgroup, statfs). Never fails: what cannot be found stays
 * "" (and kind NONE when nothing is usable); paths that do not fit PD_CG_PATH_MAX are left "". */
void pd_cg_layout_read(const struct pd_cg_env *env, struct pd_cg_layout *out);

struct pd_cgroup; /* opaque */

/*
 * Create the sandbox's group `name` ([A-Za-z0-9_.-], starting with a letter or digit, at most
 * PD_CG_NAME_MAX bytes, e.g. "paddock-<id>") with the limits, under the caller's own group.
 * v2: the controllers the limits need must be offered in the parent's cgroup.controllers; they are
 * enabled in its cgroup.subtree_control (memory cannot be while the caller's group holds processes,
 * the "no internal processes" rule: the error says so and what to do). v1: a group in every
 * mounted memory/pids/cpu hierarchy (each must work; one a nonzero limit needs must be mounted)
 * and in freezer when mounted (skipped if that fails: it only tightens killing). A stale group of
 * the same name (a crash) is removed first if it and its sub-groups hold no process; else the error
 * names it. Returns NULL with err when the host offers no usable cgroup for the caller (the caller
 * falls back to rlimits and tells the user why) or a value is refused by the kernel.
 */
struct pd_cgroup *pd_cgroup_create(const char *name, const struct pd_limits *lim,
                                   struct pd_err *err);
/* The same with explicit paths: env == NULL is pd_cgroup_create. Non-NULL env is for tests. */
struct pd_cgroup *pd_cgroup_create_env(const struct pd_cg_env *env, const char *name,
                                       const struct pd_limits *lim, struct pd_err *err);

enum pd_cg_kind pd_cgroup_kind(const struct pd_cgroup *cg);

/* v2 only: the group's directory fd, opened O_RDONLY|O_DIRECTORY|O_CLOEXEC, for
 * clone3(CLONE_INTO_CGROUP); -1 on v1. Owned by the cgroup object. */
int pd_cgroup_dirfd(const struct pd_cgroup *cg);

/* The group's directory (v2) or its directory in the given v1 hierarchy; "" when not used. */
const char *pd_cgroup_path(const struct pd_cgroup *cg, enum pd_cg_ctl ctl);

/* Move pid (a child of the caller that has not yet exec'd anything) into the group: every
 * hierarchy on v1. 0, or -1 with err naming the file. */
int pd_cgroup_add(struct pd_cgroup *cg, pid_t pid, struct pd_err *err);

/* cgroup v1 only: O_WRONLY fds of the group's `tasks` file in each hierarchy (fills fds[0..n),
 * returns n, or -1 with err). A single-threaded process that writes "0" to each joins the group
 * itself: moving one thread (the writer) skips the global threadgroup lock that moving a process
 * through cgroup.procs takes, and with it the RCU grace period that lock's writer waits for
 * (milliseconds). The write is checked with the opener's credentials, so the fds may be handed
 * to the process that joins. The caller closes them. */
int pd_cgroup_v1_join_fds(const struct pd_cgroup *cg, int *fds, size_t max, struct pd_err *err);

/* Remove the groups a killed launcher left behind: under the caller's own group in each hierarchy,
 * every directory named "<prefix>...-<pid>" whose pid no longer exists and that is more than a
 * minute old (a launcher in another PID namespace). rmdir refuses a group that
 * holds a process, so nothing in use is touched. env: NULL, or test paths. Returns how many were
 * removed. Best effort: no error is reported. */
size_t pd_cgroup_sweep(const struct pd_cg_env *env, const char *prefix);

/* Facts for the exit report. */
struct pd_cg_events {
    uint64_t oom_kills; /* v2 memory.events oom_kill, v1 memory.oom_control oom_kill */
    uint64_t memory_max_hits; /* the limit was reached: v2 memory.events max, v1 the larger of
                                 memory.failcnt and memory.memsw.failcnt (some v1 kernels leave
                                 both 0: oom_kills is the reliable fact) */
    uint64_t pids_max_hits; /* fork refused by pids.max: pids.events max */
    uint64_t memory_peak; /* bytes: v2 memory.peak (5.19+), v1 memory.max_usage_in_bytes; 0 if
                             the kernel does not say */
};
/* Fields whose controller is not in use stay 0. 0, or -1 with err. */
int pd_cgroup_events(const struct pd_cgroup *cg, struct pd_cg_events *out, struct pd_err *err);

/* Kill every process in the group and its sub-groups and wait (bounded, PD_CG_KILL_TIMEOUT_MS)
 * until none is left. The group stays (its events can still be read). 0, or -1 with err when
 * processes remain. */
int pd_cgroup_kill(struct pd_cgroup *cg, struct pd_err *err);

/* pd_cgroup_kill, then remove the group directories bottom-up (rmdir retried while the kernel
 * still counts dying tasks, PD_CG_RMDIR_TIMEOUT_MS), close every fd and free cg. Safe with NULL.
 * Never follows symlinks or removes anything outside the group. */
void pd_cgroup_destroy(struct pd_cgroup *cg);

/*
 * The rlimit fallback, applied in the sandbox's first process before exec when no cgroup is
 * available (it only calls setrlimit/getrlimit: safe after fork). Each limit is set soft = hard, so
 * the sandbox cannot raise it again; a current hard limit lower than the request is kept.
 *   - memory_bytes -> RLIMIT_AS. Why AS: RLIMIT_RSS is ignored by Linux; RLIMIT_DATA leaves out
 *     shared and stack mappings (a balloon made with MAP_SHARED|MAP_ANONYMOUS or memfd escapes it).
 *     AS counts every mapping, so nothing escapes; its costs: it counts reserved, never-touched
 *     address space too (the JVM, Go, V8, sanitizers reserve large ranges and may fail to start
 *     under a small limit), and it is per process, not per sandbox (N processes may use N times
 *     the limit).
 *   - pids -> RLIMIT_NPROC. Weakness: the kernel counts every process of the real uid, not those of
 *     the sandbox; in a user namespace with the identity map the sandbox's uid IS the host user's
 *     uid, so the user's other processes (shell, editor, other sandboxes) count too, a fork may
 *     fail early, and root (uid 0 of the initial namespace) is not limited at all. The launcher
 *     should say: "process limit: RLIMIT_NPROC=N counts all processes of uid U on this host, not
 *     only the sandbox's".
 *   - cpu_millis is NOT applied: RLIMIT_CPU is a total CPU-seconds budget that kills the process,
 *     not a rate. The launcher should say "CPU: unlimited (no cgroup)".
 *   - always RLIMIT_CORE = 0 (no core dump of the agent's memory, which may hold secrets).
 * 0, or -1 with err naming the limit.
 */
int pd_limits_apply_rlimits(const struct pd_limits *lim, struct pd_err *err);

/* What the rlimit fallback enforces and does not, one human line for the launcher to print,
 * e.g. "rlimits only (no usable cgroup): memory: RLIMIT_AS 512 MiB per process (...); ...". */
void pd_limits_describe_rlimits(const struct pd_limits *lim, char *buf, size_t size);

/* Memory: "512M", "2G", "1048576", "1.5G": a decimal number (a fraction of at most 9 digits needs a
 * unit; the result is cut to whole bytes) with an optional K/M/G/T binary multiple, optionally
 * followed by "i" and/or "B" ("512MiB", "512MB" and "512M" are all 512 * 2^20). "0" = no limit.
 * No sign, space, hex or other unit. 0, or -1 with err saying what is expected. */
int pd_limits_parse_bytes(const char *text, uint64_t *out, struct pd_err *err);

/* CPU: "1.5" CPUs (at most 3 decimals) or "1500m" millicpus; "0" = no limit; otherwise between
 * PD_LIMITS_CPU_MIN and PD_LIMITS_CPU_MAX millicpus. 0, or -1 with err. */
int pd_limits_parse_cpu(const char *text, uint32_t *out_millis, struct pd_err *err);

#endif
