/*
 * confine.h - privilege separation for `paddock gateway`: once every socket and file it needs at
 * startup is open, the gateway gives up what it does not need (OpenBSD privsep, bubblewrap style).
 *
 * Who calls it: gateway.c, exactly once, after the proxy and admin listeners are open, the policy is
 * loaded (credential files read, TLS context built) and the budget state file opened, and before
 * pd_loop_run() starts the worker threads. Before: binding a port below 1024 and reading root-only
 * secrets may need root. After: nothing the process does needs more than the target user.
 * Calling it while only the main thread exists matters: setresuid()/setresgid() and the seccomp
 * filter then cover every thread without relying on glibc's setxid broadcast (TSYNC is set anyway).
 *
 * Steps, in this order (each failure is fatal at startup and names its step):
 *   1. resolve --user NAME (getpwnam_r) while /etc/passwd and NSS are still reachable;
 *   2. drop the capability bounding set (PR_CAPBSET_DROP needs CAP_SETPCAP, so while still root)
 *      and clear the ambient set;
 *   3. setgroups(0), setresgid(), setresuid() - groups and gid first, since after setresuid() we
 *      could no longer change them; then verify (getresuid/getresgid all equal the target, no
 *      supplementary group, setuid(0) fails);
 *   4. clear the effective, permitted and inheritable sets with capset() (a no-op after a uid change
 *      from root, which clears them; it matters for root without --user) and verify with capget();
 *   5. chdir("/") so no directory handle of the old identity stays as the working directory
 *      (gateway.c makes the config path absolute first, so reloads still find it);
 *   6. prctl(PR_SET_NO_NEW_PRIVS, 1): required to load a seccomp filter without CAP_SYS_ADMIN,
 *      and no execve could ever grant privileges again;
 *   7. load the seccomp filter (last: the steps above use syscalls the filter refuses).
 * Then one log line "confined": uid, gid, no_new_privs, seccomp mode, syscalls allowed.
 *
 * Running as root without --user: the gateway warns ("running as root: pass --user to drop
 * privileges") and still drops every capability, sets no_new_privs and loads the filter; there is
 * no default user. As non-root, --user naming another user is an error (only root can switch);
 * naming the current user is accepted.
 *
 * Consequence for reloads (SIGHUP): the config file, credentials' value_file, upstream.ca_file and
 * the budget state_file (and its directory: the state is written as a temp file + rename) are
 * read/written as the target user from then on, so they must be readable (state dir writable) by
 * it. A reload that cannot read a file fails like any bad config: a "reload_failed" log line with
 * the error, and the running policy stays.
 *
 * The seccomp filter (see the table in confine.c, one line per syscall group and why):
 *   - Allowlist, native architecture only: x86 and x32 are removed from the filter and any
 *     syscall made through another ABI kills the process (SCMP_FLTATR_ACT_BADARCH).
 *   - Default action for a syscall not in the list: ERRNO(ENOSYS), not EPERM and not a kill.
 *     Not a kill: the gateway is the agents' only way out; a syscall missing from the list (a new
 *     libc or libuv version) must fail one operation visibly (its error reaches the log as
 *     strerror(ENOSYS)) rather than take every sandbox offline with no log at all (a
 *     SIGSYS handler could not log safely). ENOSYS rather than EPERM: glibc and libuv try newer
 *     syscalls first and fall back to older ones only on ENOSYS (clone3 -> clone, faccessat2 ->
 *     faccessat, epoll_pwait2, statx, close_range, openat2), exactly like Docker's and
 *     systemd's filters for syscalls they do not know.
 *   - Explicitly refused with ERRNO(EPERM), whatever the allowlist says (a build-time table
 *     checked at startup: a syscall in both lists is a fatal error): execve/execveat, ptrace,
 *     process_vm_readv/writev, the mount family, unshare/setns, bpf, perf_event_open,
 *     userfaultfd, the keyctl family, io_uring_*, module loading and kexec, open_by_handle_at,
 *     chroot/pivot_root, and more (confine.c). EPERM is what "refused by policy" looks like.
 *   - clone is allowed only for threads (CLONE_THREAD set, no CLONE_NEW* flag), EPERM otherwise
 *     (so no fork and no namespace); clone3 (whose flags live in memory seccomp cannot read) gets
 *     ENOSYS so glibc falls back to clone. prlimit64 only reads our own limits.
 *   - ioctl only with the few requests libuv and the tty check use (FIONBIO, FIOCLEX, FIONCLEX,
 *     FIONREAD, TCGETS): no TIOCSTI into a controlling terminal.
 *   - Sanitizer builds (ASan/LSan): LeakSanitizer stops the world at exit with a tracer thread
 *     that ptrace()s the others; the filter then also allows ptrace, prctl, wait4, getppid and
 *     clone without CLONE_THREAD, and the "regardless" list loses ptrace. Detected at compile
 *     time (__SANITIZE_ADDRESS__ / __has_feature); release builds never do. The sanitizer's
 *     symbolizer cannot be exec'd under the filter: reports stay unsymbolized (addresses only).
 *   --no-seccomp (debugging only) skips step 7 and says so loudly in the log; steps 1-6 still run.
 */
#ifndef PD_GATEWAY_CONFINE_H
#define PD_GATEWAY_CONFINE_H

#include <stdbool.h>

#include "core/err.h"

struct pd_confine_opts {
    const char *user; /* --user NAME, or NULL */
    bool no_seccomp;  /* --no-seccomp: debugging only */
};

/* Confine the calling process as described above. Returns 0, or -1 with err naming the step
 * ("confine: setresuid(65534): Operation not permitted"). Call while the process has one thread. */
int pd_confine(const struct pd_confine_opts *o, struct pd_err *err);

#endif
