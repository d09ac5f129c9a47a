/* probe_confine.c - the host probe's self-confinement layers (see probe.h): the seccomp filter
 * (and the foreign syscall ABIs it must refuse), no_new_privs, dropping every capability, and
 * Landlock, each applied in a child process to prove it takes effect. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/landlock.h>
#include <linux/magic.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/capability.h>

#include "sandbox/probe_int.h"

/* ---------------------------------------------------------------- seccomp, no_new_privs, caps */

#if defined(__x86_64__)
static void on_segv(int sig)
{
    (void)sig;
    _exit(1);
}

/* Child: does the kernel run i386 syscalls (int 0x80) for a 64-bit process? exit 0 yes, 1 no. */
void probe_child_i386(const struct probe_ctx *c, long param, struct child_report *r)
{
    (void)c;
    (void)param;
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_segv;
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
    long ret = 20; /* __NR_getpid in the i386 table */
    __asm__ volatile("int $0x80" : "+a"(ret) : : "memory");
    probe_rep(r, ret == (long)getpid() ? PD_PROBE_AVAILABLE : PD_PROBE_MISSING,
              "int 0x80 returned %ld", ret);
}
#endif

void probe_child_seccomp(const struct probe_ctx *c, long param, struct child_report *r)
{
    (void)c;
    (void)param;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        probe_rep(r, PD_PROBE_MISSING, "prctl(PR_SET_NO_NEW_PRIVS): %s (needed before a filter)",
                  strerror(errno));
        return;
    }
    const char *x32 = "n/a";
#if defined(__x86_64__)
    errno = 0;
    long x = syscall(0x40000000L | SYS_getpid);
    x32 = x == (long)getpid() ? "present" : errno == ENOSYS ? "absent" : "unknown";
#endif
    const struct scmp_version *v = seccomp_version();
    unsigned api = seccomp_api_get();
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx) {
        probe_rep(r, PD_PROBE_MISSING, "seccomp_init failed (libseccomp %u.%u.%u)", v->major,
                  v->minor, v->micro);
        return;
    }
    int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EHWPOISON), SCMP_SYS(getppid), 0);
    if (rc == 0)
        rc = seccomp_load(ctx);
    seccomp_release(ctx);
    if (rc != 0) {
        probe_rep(r, PD_PROBE_MISSING, "loading a libseccomp %u.%u.%u filter: %s", v->major,
                  v->minor, v->micro, strerror(-rc));
        return;
    }
    errno = 0;
    long got = syscall(SYS_getppid);
    if (got != -1 || errno != EHWPOISON) {
        probe_rep(r, PD_PROBE_MISSING,
                  "filter loaded but SECCOMP_RET_ERRNO did not apply (getppid gave %ld)", got);
        return;
    }
    probe_rep(r, PD_PROBE_AVAILABLE,
              "libseccomp %u.%u.%u (API level %u); SECCOMP_RET_ERRNO verified; x32 ABI %s",
              v->major, v->minor, v->micro, api, x32);
}

void probe_child_nnp(const struct probe_ctx *c, long param, struct child_report *r)
{
    (void)c;
    (void)param;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        probe_rep(r, PD_PROBE_MISSING, "prctl(PR_SET_NO_NEW_PRIVS, 1): %s", strerror(errno));
        return;
    }
    int v = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
    if (v != 1) {
        probe_rep(r, PD_PROBE_MISSING,
                  "PR_SET_NO_NEW_PRIVS accepted but PR_GET_NO_NEW_PRIVS gives %d", v);
        return;
    }
    probe_rep(r, PD_PROBE_AVAILABLE, "prctl(PR_SET_NO_NEW_PRIVS) set and read back");
}

void probe_child_caps(const struct probe_ctx *c, long param, struct child_report *r)
{
    (void)param;
    const char *where = "as root";
    if (c->uid != 0) {
        if (unshare(CLONE_NEWUSER) != 0) {
            probe_rep(r, PD_PROBE_MISSING,
                      "not root and unshare(CLONE_NEWUSER): %s: no capability set to drop from",
                      strerror(errno));
            return;
        }
        where = "inside a new user namespace";
    }
    unsigned long dropped = 0;
    for (unsigned long cap = 0; cap <= 63; cap++) {
        if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) < 0)
            break;
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
            probe_rep(r, PD_PROBE_MISSING, "prctl(PR_CAPBSET_DROP, %lu) %s: %s", cap, where,
                      strerror(errno));
            return;
        }
        dropped++;
    }
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) {
        probe_rep(r, PD_PROBE_PARTIAL, "bounding set dropped %s but PR_CAP_AMBIENT_CLEAR_ALL: %s",
                  where, strerror(errno));
        return;
    }
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct d[2];
    memset(d, 0, sizeof d);
    if (syscall(SYS_capset, &h, d) != 0 || syscall(SYS_capget, &h, d) != 0) {
        probe_rep(r, PD_PROBE_PARTIAL, "bounding set dropped %s but capset/capget: %s", where,
                  strerror(errno));
        return;
    }
    if (d[0].effective || d[0].permitted || d[1].effective || d[1].permitted) {
        probe_rep(r, PD_PROBE_PARTIAL, "capabilities remain after capset(empty) %s", where);
        return;
    }
    probe_rep(r, PD_PROBE_AVAILABLE,
              "bounding (%lu caps), ambient, effective and permitted sets cleared %s", dropped,
              where);
}

/* ---------------------------------------------------------------- Landlock */

static void child_landlock(const struct probe_ctx *c, long abi, struct child_report *r)
{
    (void)c;
    struct landlock_ruleset_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.handled_access_fs = LANDLOCK_ACCESS_FS_READ_DIR;
    int fd = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0);
    if (fd < 0) {
        probe_rep(r, PD_PROBE_MISSING, "ABI %ld, but landlock_create_ruleset: %s", abi,
                  strerror(errno));
        return;
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        syscall(SYS_landlock_restrict_self, fd, 0) != 0) {
        int e = errno;
        close(fd);
        probe_rep(r, PD_PROBE_MISSING, "ABI %ld, but landlock_restrict_self: %s", abi, strerror(e));
        return;
    }
    close(fd);
    int d = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d >= 0) {
        close(d);
        probe_rep(r, PD_PROBE_MISSING,
                  "ABI %ld, but a ruleset refusing READ_DIR did not refuse opening /", abi);
        return;
    }
    if (errno != EACCES) {
        probe_rep(r, PD_PROBE_MISSING,
                  "ABI %ld, but opening / under the ruleset gave %s, not EACCES", abi,
                  strerror(errno));
        return;
    }
    probe_rep(r, PD_PROBE_AVAILABLE,
              "ABI %ld; enforcement verified (a ruleset refused reading / with EACCES)", abi);
}

void probe_landlock(const struct probe_ctx *c, struct pd_probe_entry *e)
{
    long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    if (abi < 0) {
        int err = errno;
        char lsm[256];
        bool have_lsm = probe_read_small("/sys/kernel/security/lsm", lsm, sizeof lsm) == 0;
        e->state = PD_PROBE_MISSING;
        if (err == ENOSYS)
            snprintf(
                e->detail, sizeof e->detail,
                "landlock_create_ruleset: ENOSYS: kernel built without CONFIG_SECURITY_LANDLOCK");
        else if (err == EOPNOTSUPP)
            snprintf(
                e->detail, sizeof e->detail,
                "landlock_create_ruleset: EOPNOTSUPP: Landlock is built in but not enabled at boot "
                "(add landlock to the lsm= kernel parameter)");
        else
            snprintf(e->detail, sizeof e->detail, "landlock_create_ruleset(VERSION): %s",
                     strerror(err));
        if (have_lsm)
            pd_appendf(e->detail, sizeof e->detail, "; active LSMs: %s", lsm);
        return;
    }
    struct child_report r;
    probe_run_child(c, child_landlock, abi, &r);
    e->state = (enum pd_probe_state)r.state;
    snprintf(e->detail, sizeof e->detail, "%s", r.detail);
}
