/*
 * confine.c - privilege drop, capabilities, no_new_privs and the seccomp filter of the gateway
 * (see confine.h for the order of the steps and why).
 */
#include "gateway/confine.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sched.h>
#include <seccomp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include "core/caps.h"
#include "core/log.h"

#define COMPONENT "gateway"

#if defined(__SANITIZE_ADDRESS__)
#define PD_CONFINE_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(leak_sanitizer)
#define PD_CONFINE_SANITIZER 1
#endif
#endif
#ifndef PD_CONFINE_SANITIZER
#define PD_CONFINE_SANITIZER 0
#endif

/*
 * The allowlist: what the gateway really calls (measured with `strace -f` over the whole gateway
 * test suite, release and ASan builds), one line per group. Names unknown on the build's
 * architecture (e.g. `open` on aarch64) are skipped, not errors.
 */
static const char *const allowed[] = {
    /* memory: malloc, OpenSSL, thread stacks, glibc's arenas */
    "brk", "mmap", "munmap", "mremap", "mprotect", "madvise",
    /* fd I/O: sockets, pipes, eventfds and files */
    "read", "write", "readv", "writev", "pread64", "pwrite64", "lseek", "close", "dup", "dup2",
    "dup3", "fcntl", "splice", /* zero-copy tunnels (splice.c) */
    /* files: config / value_file / ca_file / /etc/hosts / resolv.conf / nsswitch / certs on reload,
     * and the budget state (temp file, fchmod, fsync, rename, unlink on failure, dir fsync);
     * getdents (the legacy number) is what the sanitizer runtime lists /proc/self/task with */
    "open", "openat", "stat", "fstat", "lstat", "newfstatat", "statx", "access", "faccessat",
    "faccessat2", "readlink", "readlinkat", "getdents", "getdents64", "fsync", "fdatasync", "fchmod",
    "rename", "renameat", "renameat2", "unlink", "unlinkat", "getcwd", "umask", "sysinfo",
    /* libuv event loops: epoll, eventfd wakeups (uv_async), the signal pipe */
    "epoll_create", "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2",
    "eventfd2", "pipe", "pipe2", "poll", "ppoll", "select", "pselect6",
    /* sockets: accept on the listeners, dial upstreams, DNS through getaddrinfo on the uv thread
     * pool (UDP/TCP to the resolver, NETLINK for AI_ADDRCONFIG) */
    "socket", "socketpair", "bind", "listen", "accept", "accept4", "connect", "getsockname",
    "getpeername", "setsockopt", "getsockopt", "sendto", "recvfrom", "sendmsg", "recvmsg",
    "sendmmsg", "recvmmsg", "shutdown",
    /* threads (clone itself is added with an argument filter below) */
    "futex", "set_robust_list", "get_robust_list", "rseq", "set_tid_address", "sched_yield",
    "sched_getaffinity", "gettid", "getpid", "tgkill", "membarrier",
    /* signals: libuv's handlers, SIGPIPE ignored, abort() */
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack", "restart_syscall",
    /* time and sleeping */
    "clock_gettime", "clock_getres", "gettimeofday", "time", "nanosleep", "clock_nanosleep",
    /* randomness: OpenSSL's DRBG seeding, hash seeds */
    "getrandom",
    /* identity and limits, read-only (the "confined" line, libuv, glibc; prlimit64 is added below,
     * read-only) */
    "getuid", "geteuid", "getgid", "getegid", "getresuid", "getresgid", "uname", "getrlimit",
    "getrusage",
    /* the end */
    "exit", "exit_group",
#if PD_CONFINE_SANITIZER
    /* ASan/LSan only: LeakSanitizer's stop-the-world tracer at exit (see confine.h) */
    "ptrace", "wait4", "waitpid", "prctl", "getppid",
#endif
};

/* Refused with EPERM whatever the list above says (a name in both is a fatal startup error). */
static const char *const refused[] = {
    "execve", "execveat", "fork", "vfork",
#if !PD_CONFINE_SANITIZER
    "ptrace",
#endif
    "process_vm_readv", "process_vm_writev", "process_madvise", "pidfd_getfd",
    "mount", "umount", "umount2", "fsopen", "fsconfig", "fsmount", "fspick", "move_mount",
    "open_tree", "mount_setattr", "unshare", "setns", "bpf", "perf_event_open", "userfaultfd",
    "add_key", "request_key", "keyctl", "io_uring_setup", "io_uring_enter", "io_uring_register",
    "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
    "open_by_handle_at", "name_to_handle_at", "chroot", "pivot_root", "swapon", "swapoff",
    "reboot", "acct", "settimeofday", "clock_settime", "adjtimex", "clock_adjtime", "setuid",
    "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setgroups", "capset",
    "personality", "quotactl", "lookup_dcookie", "vhangup", "kcmp", "seccomp",
};

/* clone(2) flags that create namespaces: a thread never needs them. */
#define NS_FLAGS                                                                                  \
    ((uint64_t)(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID |        \
                CLONE_NEWNET | CLONE_NEWCGROUP))

/* ---------------------------------------------------------------- identity */

static int switch_user(uid_t uid, gid_t gid, struct pd_err *err)
{
    if (setgroups(0, NULL) != 0) {
        pd_err_set(err, "confine: setgroups(0): %s", strerror(errno));
        return -1;
    }
    if (setresgid(gid, gid, gid) != 0) {
        pd_err_set(err, "confine: setresgid(%u): %s", (unsigned)gid, strerror(errno));
        return -1;
    }
    if (setresuid(uid, uid, uid) != 0) {
        pd_err_set(err, "confine: setresuid(%u): %s", (unsigned)uid, strerror(errno));
        return -1;
    }
    uid_t r, e, s;
    gid_t rg, eg, sg;
    if (getresuid(&r, &e, &s) != 0 || getresgid(&rg, &eg, &sg) != 0 || r != uid || e != uid ||
        s != uid || rg != gid || eg != gid || sg != gid) {
        pd_err_set(err, "confine: verify: uids/gids are not all %u/%u after the switch",
                   (unsigned)uid, (unsigned)gid);
        return -1;
    }
    if (getgroups(0, NULL) != 0) {
        pd_err_set(err, "confine: verify: supplementary groups remain after setgroups(0)");
        return -1;
    }
    if (uid != 0 && setuid(0) == 0) {
        pd_err_set(err, "confine: verify: setuid(0) succeeded after dropping to uid %u",
                   (unsigned)uid);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- seccomp */

static int add_named(scmp_filter_ctx ctx, uint32_t action, const char *name, unsigned *count,
                     struct pd_err *err)
{
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR || nr < 0)
        return 0; /* not a syscall of this architecture */
    int rc = seccomp_rule_add(ctx, action, nr, 0);
    if (rc != 0) {
        pd_err_set(err, "confine: seccomp rule for %s: %s", name, strerror(-rc));
        return -1;
    }
    (*count)++;
    return 0;
}

static int load_filter(unsigned *nallowed, struct pd_err *err)
{
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
        for (size_t j = 0; j < sizeof refused / sizeof refused[0]; j++)
            if (strcmp(allowed[i], refused[j]) == 0) {
                pd_err_set(err, "confine: seccomp table: %s is both allowed and refused",
                           allowed[i]);
                return -1;
            }
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(ENOSYS));
    if (!ctx) {
        pd_err_set(err, "confine: seccomp_init failed");
        return -1;
    }
    int rc;
    unsigned n = 0, nref = 0;
    /* Native ABI only: a 32-bit (int 0x80) or x32 syscall must not reach an unfiltered table. */
    if ((rc = seccomp_arch_remove(ctx, SCMP_ARCH_X86)) != 0 && rc != -EEXIST)
        goto fail_rc;
    if ((rc = seccomp_arch_remove(ctx, SCMP_ARCH_X32)) != 0 && rc != -EEXIST)
        goto fail_rc;
    if ((rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS)) != 0 ||
        (rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0)) != 0 || /* set by us, checked */
        (rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1)) != 0)
        goto fail_rc;
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
        if (add_named(ctx, SCMP_ACT_ALLOW, allowed[i], &n, err) != 0)
            goto fail;
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        if (add_named(ctx, SCMP_ACT_ERRNO(EPERM), refused[i], &nref, err) != 0)
            goto fail;
    /* clone: threads only - CLONE_THREAD set, no namespace flag - and EPERM otherwise. Release
     * builds never fork (nothing could be exec'd anyway); sanitizer builds also let LSan's tracer
     * (a clone without CLONE_THREAD) through. Seccomp compares, it cannot test "any bit of a
     * mask": one refusing rule per flag. */
    const uint64_t thread_bit = PD_CONFINE_SANITIZER ? 0 : (uint64_t)CLONE_THREAD;
    if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                               SCMP_A0(SCMP_CMP_MASKED_EQ, NS_FLAGS | thread_bit, thread_bit))) != 0)
        goto fail_rc;
    static const uint64_t ns_flags[] = {CLONE_NEWNS,  CLONE_NEWUTS, CLONE_NEWIPC,   CLONE_NEWUSER,
                                        CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP};
    for (size_t i = 0; i < sizeof ns_flags / sizeof ns_flags[0]; i++)
        if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                                   SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]))) != 0)
            goto fail_rc;
    if (thread_bit &&
        (rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                               SCMP_A0(SCMP_CMP_MASKED_EQ, thread_bit, 0))) != 0)
        goto fail_rc;
    n++;
    /* prlimit64: reading our own limits only (glibc's getrlimit), never setting any. */
    if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prlimit64), 2,
                               SCMP_A0(SCMP_CMP_EQ, 0, 0), SCMP_A2(SCMP_CMP_EQ, 0, 0))) != 0)
        goto fail_rc;
    n++;
    /* clone3's flags are behind a pointer: ENOSYS (the default) makes glibc fall back to clone.
     * ioctl: only requests libuv (FIONBIO/FIOCLEX/FIONCLEX), FIONREAD and isatty (TCGETS) use. */
    static const unsigned long ioctls[] = {FIONBIO, FIOCLEX, FIONCLEX, FIONREAD, TCGETS};
    for (size_t i = 0; i < sizeof ioctls / sizeof ioctls[0]; i++)
        if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
                                   SCMP_A1(SCMP_CMP_EQ, ioctls[i], 0))) != 0)
            goto fail_rc;
    n++;
    if ((rc = seccomp_load(ctx)) != 0)
        goto fail_rc;
    seccomp_release(ctx);
    *nallowed = n;
    return 0;
fail_rc:
    pd_err_set(err, "confine: seccomp filter: %s", strerror(-rc));
fail:
    seccomp_release(ctx);
    return -1;
}

/* ---------------------------------------------------------------- entry */

int pd_confine(const struct pd_confine_opts *o, struct pd_err *err)
{
    uid_t uid = geteuid();
    gid_t gid = getegid();
    bool root = uid == 0;
    bool switching = false;

    /* 1. Resolve the user while NSS (files, maybe a socket to nscd) is still reachable. */
    if (o->user) {
        struct passwd pw, *res = NULL;
        char buf[4096];
        int rc = getpwnam_r(o->user, &pw, buf, sizeof buf, &res);
        if (rc != 0 || !res) {
            pd_err_set(err, "confine: --user %s: %s", o->user,
                       rc ? strerror(rc) : "no such user");
            return -1;
        }
        if (pw.pw_uid == 0) {
            pd_err_set(err, "confine: --user %s: uid 0 is not an unprivileged user", o->user);
            return -1;
        }
        if (!root && pw.pw_uid != uid) {
            pd_err_set(err,
                       "confine: --user %s: running as uid %u, not root: only root can switch "
                       "to another user (start as root, or drop --user)",
                       o->user, (unsigned)uid);
            return -1;
        }
        switching = root;
        uid = pw.pw_uid;
        gid = pw.pw_gid;
    } else if (root) {
        pd_log(PD_LOG_WARN, COMPONENT, "running_as_root",
               PD_LSTR("reason", "running as root: pass --user to drop privileges"));
    }

    /* 2. Bounding and ambient sets, while CAP_SETPCAP is still ours. */
    if (pd_caps_drop_bounding("confine", root, err) != 0)
        return -1;
    /* 3. Groups, gid, uid: in this order, since each step needs the privilege the next removes. */
    if (switching && switch_user(uid, gid, err) != 0)
        return -1;
    /* 4. Whatever capabilities are left (root without --user keeps uid 0 but no capability). */
    if (pd_caps_clear("confine", err) != 0)
        return -1;
    /* 5. Out of whatever directory we were started in. */
    if (chdir("/") != 0) {
        pd_err_set(err, "confine: chdir(/): %s", strerror(errno));
        return -1;
    }
    /* 6. no_new_privs: the precondition of an unprivileged seccomp filter. */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) {
        pd_err_set(err, "confine: prctl(PR_SET_NO_NEW_PRIVS): %s", strerror(errno));
        return -1;
    }
    /* 7. The filter, last: the steps above are syscalls it refuses. */
    unsigned nallowed = 0;
    if (o->no_seccomp) {
        pd_log(PD_LOG_WARN, COMPONENT, "seccomp_disabled",
               PD_LSTR("reason", "--no-seccomp given: the gateway runs WITHOUT its syscall filter "
                                 "(debugging only, never in production)"));
    } else if (load_filter(&nallowed, err) != 0) {
        return -1;
    }
    pd_log(PD_LOG_INFO, COMPONENT, "confined", PD_LUINT("uid", (unsigned)getuid()),
           PD_LUINT("gid", (unsigned)getgid()), PD_LBOOL("no_new_privs", true),
           PD_LSTR("seccomp", o->no_seccomp ? "disabled" : "filter"),
           PD_LUINT("syscalls_allowed", nallowed), PD_LBOOL("sanitizer_build", PD_CONFINE_SANITIZER));
    return 0;
}
