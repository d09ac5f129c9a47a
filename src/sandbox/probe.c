/*
 * probe.c - the host probe behind `paddock doctor` (see probe.h for the contract).
 *
 * Layout: helpers (text, files), the child runner (fork, pipe, pidfd wait, timeout), one child
 * function per layer that must be tried, read-only probes in the caller, then pd_probe_run() in
 * layer order. Child functions run after fork(): they report through `struct child_report` and
 * never return to the caller's code (run_child _exits), never flush stdio, never touch the caller's
 * state.
 */
#include "sandbox/probe_int.h"

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

#define PATH_MAX_PROBE 512

/* ---------------------------------------------------------------- text and files */

/* Read a small file into buf (NUL-terminated, trailing newlines removed). Returns 0 or -1 (errno).
 */
int probe_read_small(const char *path, char *buf, size_t size)
{
    buf[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t got = 0;
    while (got + 1 < size) {
        ssize_t n = read(fd, buf + got, size - 1 - got);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    close(fd);
    while (got > 0 && buf[got - 1] == '\n')
        buf[--got] = '\0';
    return 0;
}

/* Write a whole string to a file (for uid_map, cgroup control files). Returns 0 or -1 (errno). */
int probe_write_str(const char *path, const char *s)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t len = strlen(s);
    ssize_t n;
    do
        n = write(fd, s, len);
    while (n < 0 && errno == EINTR);
    int e = errno;
    if (close(fd) != 0 && n >= 0) {
        return -1;
    }
    if (n < 0) {
        errno = e;
        return -1;
    }
    if ((size_t)n != len) {
        errno = EIO;
        return -1;
    }
    return 0;
}

/* The value of "Key:" in /proc/self/status, or -1. */
static long status_field(const char *key)
{
    char buf[4096];
    if (probe_read_small("/proc/self/status", buf, sizeof buf) != 0)
        return -1;
    size_t klen = strlen(key);
    for (char *line = buf; line && *line;) {
        char *nl = strchr(line, '\n');
        if (strncmp(line, key, klen) == 0 && line[klen] == ':')
            return strtol(line + klen + 1, NULL, 10);
        line = nl ? nl + 1 : NULL;
    }
    return -1;
}

/* ---------------------------------------------------------------- the child runner */

void probe_rep(struct child_report *r, enum pd_probe_state st, const char *fmt, ...)
{
    r->state = (int)st;
    r->detail[0] = '\0';
    va_list ap;
    va_start(ap, fmt);
    pd_vappendf(r->detail, sizeof r->detail, fmt, ap);
    va_end(ap);
}

static long ms_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)(t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Wait for child pid (through pidfd when >= 0). Returns the wait status as waitpid() gives it, or
 * -1 when it could not be collected (e.g. SIGCHLD ignored by the caller: the kernel reaped it). */
static int reap(pid_t pid, int pidfd)
{
    if (pidfd >= 0) {
        siginfo_t si;
        memset(&si, 0, sizeof si);
        int rc;
        do
            rc = waitid((idtype_t)P_PIDFD, (id_t)pidfd, &si, WEXITED);
        while (rc < 0 && errno == EINTR);
        if (rc == 0) {
            if (si.si_code == CLD_EXITED)
                return (si.si_status & 0xff) << 8;
            return si.si_status & 0x7f; /* killed or dumped: the signal, as WTERMSIG reads it */
        }
        if (errno != EINVAL)
            return -1;
        /* P_PIDFD unknown to this kernel: fall through to waitpid */
    }
    int st = 0;
    pid_t w;
    do
        w = waitpid(pid, &st, 0);
    while (w < 0 && errno == EINTR);
    return w == pid ? st : -1;
}

static void kill_child(pid_t pid, int pidfd)
{
    if (pidfd >= 0 && syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0) == 0)
        return;
    if (pidfd < 0)
        kill(pid, SIGKILL); /* not reaped yet, so the pid is still ours */
}

/* Run fn in a child; fill *r from its report. Returns the child's wait status (or -1). When the
 * child sent no complete report, r says why (exit status or signal). */
int probe_run_child(const struct probe_ctx *c, probe_child_fn fn, long param,
                    struct child_report *r)
{
    memset(r, 0, sizeof *r);
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
        probe_rep(r, PD_PROBE_MISSING, "cannot run the probe: pipe2: %s", strerror(errno));
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(p[0]);
        close(p[1]);
        probe_rep(r, PD_PROBE_MISSING, "cannot run the probe: fork: %s", strerror(e));
        return -1;
    }
    if (pid == 0) {
        close(p[0]);
        struct child_report out;
        memset(&out, 0, sizeof out);
        out.state = PD_PROBE_MISSING;
        fn(c, param, &out);
        const char *b = (const char *)&out;
        size_t left = sizeof out;
        while (left > 0) {
            ssize_t n = write(p[1], b, left);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                _exit(3);
            b += n;
            left -= (size_t)n;
        }
        _exit(0);
    }
    close(p[1]);
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char *b = (char *)r;
    size_t got = 0;
    bool timed_out = false;
    while (got < sizeof *r) {
        long left = PD_PROBE_CHILD_TIMEOUT_MS - ms_since(&t0);
        if (left <= 0) {
            timed_out = true;
            break;
        }
        struct pollfd pf = {.fd = p[0], .events = POLLIN};
        int pr = poll(&pf, 1, (int)left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0) {
            timed_out = pr == 0;
            break;
        }
        ssize_t n = read(p[0], b + got, sizeof *r - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(p[0]);
    if (timed_out)
        kill_child(pid, pidfd);
    int st = reap(pid, pidfd);
    if (pidfd >= 0)
        close(pidfd);
    if (got < sizeof *r) {
        memset(r, 0, sizeof *r);
        if (timed_out)
            probe_rep(r, PD_PROBE_MISSING, "probe child gave no answer within %d ms (killed)",
                      PD_PROBE_CHILD_TIMEOUT_MS);
        else if (st >= 0 && WIFSIGNALED(st))
            probe_rep(r, PD_PROBE_MISSING, "probe child killed by signal %d (%s)", WTERMSIG(st),
                      strsignal(WTERMSIG(st)));
        else if (st >= 0 && WIFEXITED(st))
            probe_rep(r, PD_PROBE_MISSING, "probe child exited with status %d without a report",
                      WEXITSTATUS(st));
        else
            probe_rep(r, PD_PROBE_MISSING, "probe child vanished without a report");
    } else {
        r->detail[sizeof r->detail - 1] = '\0';
        if (r->state < PD_PROBE_AVAILABLE || r->state > PD_PROBE_MISSING)
            r->state = PD_PROBE_MISSING;
    }
    return st;
}

/* ---------------------------------------------------------------- namespaces (in children) */

static const char *ns_flag_name(long flag)
{
    switch (flag) {
    case CLONE_NEWNS:
        return "CLONE_NEWNS";
    case CLONE_NEWPID:
        return "CLONE_NEWPID";
    case CLONE_NEWNET:
        return "CLONE_NEWNET";
    case CLONE_NEWUTS:
        return "CLONE_NEWUTS";
    case CLONE_NEWIPC:
        return "CLONE_NEWIPC";
    case CLONE_NEWCGROUP:
        return "CLONE_NEWCGROUP";
    default:
        return "CLONE_NEWUSER";
    }
}

/* A word on what an errno from unshare(CLONE_NEWUSER) usually means. */
static const char *userns_errno_hint(int e)
{
    switch (e) {
    case ENOSPC:
        return " (a user namespace count limit is reached: /proc/sys/user/max_user_namespaces, or "
               "nesting deeper than 32)";
    case EPERM:
        return " (refused by policy: a sysctl, an LSM, or a seccomp filter on this process)";
    case EINVAL:
        return " (kernel without CONFIG_USER_NS, or a multithreaded caller)";
    default:
        return "";
    }
}

/* Map the caller's uid/gid to 0 in the user namespace just created. Returns 0, or -1 with errno and
 * *what naming the file. */
static int write_maps(const struct probe_ctx *c, const char **what)
{
    char m[64];
    *what = "/proc/self/setgroups";
    if (probe_write_str(*what, "deny") != 0)
        return -1;
    snprintf(m, sizeof m, "0 %u 1", (unsigned)c->uid);
    *what = "/proc/self/uid_map";
    if (probe_write_str(*what, m) != 0)
        return -1;
    snprintf(m, sizeof m, "0 %u 1", (unsigned)c->gid);
    *what = "/proc/self/gid_map";
    if (probe_write_str(*what, m) != 0)
        return -1;
    return 0;
}

/* In a child: unshare(CLONE_NEWUSER | flags) and map ourselves to root inside; as root when that is
 * refused, unshare(flags) alone. Returns 1 (user namespace), 0 (root, none), or -1 with r filled.
 */
static int enter_ns(const struct probe_ctx *c, long flags, struct child_report *r)
{
    if (unshare(CLONE_NEWUSER | (int)flags) == 0) {
        const char *what;
        if (write_maps(c, &what) != 0) {
            probe_rep(r, PD_PROBE_MISSING, "write %s in a new user namespace: %s", what,
                      strerror(errno));
            return -1;
        }
        return 1;
    }
    int e = errno;
    if (c->uid == 0 && unshare((int)flags) == 0)
        return 0;
    probe_rep(r, PD_PROBE_MISSING, "unshare(CLONE_NEWUSER|%s): %s%s%s%s", ns_flag_name(flags),
              strerror(e), userns_errno_hint(e), c->userns_hint[0] ? "; " : "", c->userns_hint);
    if (c->uid == 0)
        pd_appendf(r->detail, sizeof r->detail, "; unshare(%s) as root: %s", ns_flag_name(flags),
                   strerror(errno));
    return -1;
}

static const char *via(int how)
{
    return how == 1 ? "in a new user namespace" : "as root, without a user namespace";
}

/* Grandchild of the userns probe (root only): can an unprivileged uid create a user namespace? */
static int unprivileged_userns(void)
{
    pid_t pid = fork();
    if (pid < 0)
        return errno;
    if (pid == 0) {
        if (setgroups(0, NULL) != 0 || setresgid(65534, 65534, 65534) != 0 ||
            setresuid(65534, 65534, 65534) != 0)
            _exit(255);
        _exit(unshare(CLONE_NEWUSER) == 0 ? 0 : (errno & 0xff));
    }
    int st = 0;
    pid_t w;
    do
        w = waitpid(pid, &st, 0);
    while (w < 0 && errno == EINTR);
    if (w != pid || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

static void child_userns(const struct probe_ctx *c, long param, struct child_report *r)
{
    (void)param;
    int unpriv = c->uid == 0 ? unprivileged_userns() : 0;
    if (unshare(CLONE_NEWUSER) != 0) {
        int e = errno;
        probe_rep(r, PD_PROBE_MISSING, "unshare(CLONE_NEWUSER) as uid %u: %s%s%s%s",
                  (unsigned)c->uid, strerror(e), userns_errno_hint(e),
                  c->userns_hint[0] ? "; " : "", c->userns_hint);
        return;
    }
    const char *what;
    if (write_maps(c, &what) != 0) {
        probe_rep(r, PD_PROBE_MISSING, "unshare(CLONE_NEWUSER) works but writing %s fails: %s",
                  what, strerror(errno));
        return;
    }
    probe_rep(r, PD_PROBE_AVAILABLE, "unshare(CLONE_NEWUSER) and uid/gid maps work as uid %u",
              (unsigned)c->uid);
    if (c->uid == 0) {
        if (unpriv == 0)
            pd_appendf(r->detail, sizeof r->detail, "; unprivileged too (tried as uid 65534)");
        else if (unpriv > 0 && unpriv < 255)
            pd_appendf(r->detail, sizeof r->detail,
                       "; NOT for unprivileged users (uid 65534: %s%s%s%s)", strerror(unpriv),
                       userns_errno_hint(unpriv), c->userns_hint[0] ? "; " : "", c->userns_hint);
        else
            pd_appendf(r->detail, sizeof r->detail, "; unprivileged use could not be tried");
    }
}

/* Bring up "lo" in a fresh network namespace: the sandbox's only interface. */
static int loopback_up(void)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -1;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
    int rc = ioctl(s, SIOCGIFFLAGS, &ifr);
    if (rc == 0) {
        ifr.ifr_flags = (short)(ifr.ifr_flags | IFF_UP);
        rc = ioctl(s, SIOCSIFFLAGS, &ifr);
    }
    int e = errno;
    close(s);
    errno = e;
    return rc;
}

static void child_ns(const struct probe_ctx *c, long flag, struct child_report *r)
{
    int how = enter_ns(c, flag, r);
    if (how < 0)
        return;
    switch (flag) {
    case CLONE_NEWNS:
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
            probe_rep(r, PD_PROBE_PARTIAL,
                      "unshare(CLONE_NEWNS) works %s but making / private fails: %s", via(how),
                      strerror(errno));
            return;
        }
        probe_rep(r, PD_PROBE_AVAILABLE,
                  "unshare(CLONE_NEWNS) %s; / made private (MS_REC|MS_PRIVATE)", via(how));
        return;
    case CLONE_NEWPID: {
        pid_t pid = fork();
        if (pid < 0) {
            probe_rep(r, PD_PROBE_MISSING, "unshare(CLONE_NEWPID) works %s but fork after it: %s",
                      via(how), strerror(errno));
            return;
        }
        if (pid == 0)
            _exit(getpid() == 1 ? 0 : 1);
        int st = 0;
        pid_t w;
        do
            w = waitpid(pid, &st, 0);
        while (w < 0 && errno == EINTR);
        if (w == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0)
            probe_rep(r, PD_PROBE_AVAILABLE, "unshare(CLONE_NEWPID) %s; the first child is PID 1",
                      via(how));
        else
            probe_rep(r, PD_PROBE_MISSING,
                      "unshare(CLONE_NEWPID) %s, but the first child is not PID 1", via(how));
        return;
    }
    case CLONE_NEWNET:
        if (loopback_up() != 0) {
            probe_rep(r, PD_PROBE_PARTIAL,
                      "unshare(CLONE_NEWNET) works %s but bringing up lo fails: %s", via(how),
                      strerror(errno));
            return;
        }
        probe_rep(r, PD_PROBE_AVAILABLE,
                  "unshare(CLONE_NEWNET) %s; lo brought up (the only interface)", via(how));
        return;
    case CLONE_NEWUTS:
        if (sethostname("paddock-probe", 13) != 0) {
            probe_rep(r, PD_PROBE_PARTIAL,
                      "unshare(CLONE_NEWUTS) works %s but sethostname fails: %s", via(how),
                      strerror(errno));
            return;
        }
        probe_rep(r, PD_PROBE_AVAILABLE, "unshare(CLONE_NEWUTS) %s; sethostname works inside",
                  via(how));
        return;
    default:
        probe_rep(r, PD_PROBE_AVAILABLE, "unshare(%s) %s", ns_flag_name(flag), via(how));
        return;
    }
}

/* ---------------------------------------------------------------- tmpfs and devpts (in children)
 */

/* New mount namespace (in a user namespace when possible), / private, a tmpfs on /tmp (or /).
 * Returns the tmpfs mount point, or NULL with r filled. */
static const char *private_tmpfs(const struct probe_ctx *c, struct child_report *r, int *how)
{
    *how = enter_ns(c, CLONE_NEWNS, r);
    if (*how < 0)
        return NULL;
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
        probe_rep(r, PD_PROBE_MISSING, "mount --make-rprivate / in a new mount namespace: %s",
                  strerror(errno));
        return NULL;
    }
    struct stat sb;
    const char *target = stat("/tmp", &sb) == 0 && S_ISDIR(sb.st_mode) ? "/tmp" : "/";
    if (mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755") != 0) {
        probe_rep(r, PD_PROBE_MISSING, "mount tmpfs on %s %s: %s", target, via(*how),
                  strerror(errno));
        return NULL;
    }
    return target;
}

static void child_tmpfs(const struct probe_ctx *c, long param, struct child_report *r)
{
    (void)param;
    int how;
    const char *t = private_tmpfs(c, r, &how);
    if (!t)
        return;
    char path[PATH_MAX_PROBE];
    snprintf(path, sizeof path, "%s/paddock-probe", strcmp(t, "/") == 0 ? "" : t);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        probe_rep(r, PD_PROBE_PARTIAL, "tmpfs mounted on %s %s but creating a file fails: %s", t,
                  via(how), strerror(errno));
        return;
    }
    ssize_t n = write(fd, "x", 1);
    int e = errno;
    close(fd);
    if (n != 1) {
        probe_rep(r, PD_PROBE_PARTIAL, "tmpfs mounted on %s %s but writing fails: %s", t, via(how),
                  strerror(e));
        return;
    }
    probe_rep(r, PD_PROBE_AVAILABLE, "tmpfs (size=1m, nosuid, nodev) mounted and written %s",
              via(how));
}

static void child_devpts(const struct probe_ctx *c, long param, struct child_report *r)
{
    (void)param;
    int how;
    const char *t = private_tmpfs(c, r, &how);
    if (!t)
        return;
    char dir[PATH_MAX_PROBE], path[PATH_MAX_PROBE + 32];
    snprintf(dir, sizeof dir, "%s/pts", strcmp(t, "/") == 0 ? "" : t);
    if (mkdir(dir, 0755) != 0) {
        probe_rep(r, PD_PROBE_MISSING, "mkdir %s on a fresh tmpfs: %s", dir, strerror(errno));
        return;
    }
    if (mount("devpts", dir, "devpts", MS_NOSUID | MS_NOEXEC,
              "newinstance,ptmxmode=0666,mode=0620") != 0) {
        probe_rep(r, PD_PROBE_MISSING, "mount devpts (newinstance) %s: %s", via(how),
                  strerror(errno));
        return;
    }
    snprintf(path, sizeof path, "%s/ptmx", dir);
    int m = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (m < 0) {
        probe_rep(r, PD_PROBE_PARTIAL,
                  "devpts newinstance mounted %s but opening its ptmx fails: %s", via(how),
                  strerror(errno));
        return;
    }
    int unlock = 0;
    unsigned int n = 0;
    if (ioctl(m, TIOCSPTLCK, &unlock) != 0 || ioctl(m, TIOCGPTN, &n) != 0) {
        probe_rep(r, PD_PROBE_PARTIAL,
                  "devpts newinstance mounted %s but unlocking a pty fails: %s", via(how),
                  strerror(errno));
        close(m);
        return;
    }
    snprintf(path, sizeof path, "%s/%u", dir, n);
    int s = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (s < 0) {
        probe_rep(r, PD_PROBE_PARTIAL, "devpts newinstance mounted %s but opening pty %u fails: %s",
                  via(how), n, strerror(errno));
        close(m);
        return;
    }
    close(s);
    close(m);
    probe_rep(r, PD_PROBE_AVAILABLE,
              "devpts (newinstance) mounted %s; a pty pair opened through its ptmx", via(how));
}

/* ---------------------------------------------------------------- pidfd */

static void probe_pidfd(struct pd_probe_entry *e)
{
    e->state = PD_PROBE_MISSING;
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(e->detail, sizeof e->detail, "cannot run the probe: fork: %s", strerror(errno));
        return;
    }
    if (pid == 0) {
        for (;;)
            pause();
    }
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (fd < 0) {
        int err = errno;
        kill(pid, SIGKILL);
        reap(pid, -1);
        snprintf(e->detail, sizeof e->detail, "pidfd_open: %s%s", strerror(err),
                 err == ENOSYS ? " (kernel older than 5.3)" : "");
        return;
    }
    if (syscall(SYS_pidfd_send_signal, fd, SIGKILL, NULL, 0) != 0) {
        int err = errno;
        kill(pid, SIGKILL);
        reap(pid, -1);
        close(fd);
        snprintf(e->detail, sizeof e->detail, "pidfd_open works; pidfd_send_signal: %s",
                 strerror(err));
        return;
    }
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int rc;
    do
        rc = waitid((idtype_t)P_PIDFD, (id_t)fd, &si, WEXITED);
    while (rc < 0 && errno == EINTR);
    int err = errno;
    if (rc != 0)
        reap(pid, -1);
    close(fd);
    if (rc != 0) {
        snprintf(e->detail, sizeof e->detail,
                 "pidfd_open and pidfd_send_signal work; waitid(P_PIDFD): %s%s", strerror(err),
                 err == EINVAL ? " (kernel older than 5.4)" : "");
        return;
    }
    if (si.si_code != CLD_KILLED || si.si_status != SIGKILL) {
        snprintf(e->detail, sizeof e->detail,
                 "waitid(P_PIDFD) reported code %d status %d, not killed by SIGKILL", si.si_code,
                 si.si_status);
        return;
    }
    e->state = PD_PROBE_AVAILABLE;
    snprintf(e->detail, sizeof e->detail,
             "pidfd_open, pidfd_send_signal (SIGKILL) and waitid(P_PIDFD) verified on a child");
}

/* ---------------------------------------------------------------- read-only context */

static void userns_hint(char *out, size_t size)
{
    char v[64];
    out[0] = '\0';
    if (probe_read_small("/proc/sys/kernel/unprivileged_userns_clone", v, sizeof v) == 0 &&
        strcmp(v, "0") == 0)
        pd_appendf(out, size, "kernel.unprivileged_userns_clone=0");
    if (probe_read_small("/proc/sys/user/max_user_namespaces", v, sizeof v) == 0 &&
        strcmp(v, "0") == 0)
        pd_appendf(out, size, "%s/proc/sys/user/max_user_namespaces is 0", out[0] ? ", " : "");
    if (probe_read_small("/proc/sys/kernel/apparmor_restrict_unprivileged_userns", v, sizeof v) ==
            0 &&
        strcmp(v, "1") == 0)
        pd_appendf(out, size, "%skernel.apparmor_restrict_unprivileged_userns=1",
                   out[0] ? ", " : "");
}

/* Is the caller already inside a user namespace (uid_map other than the full identity map)? */
static bool in_userns(void)
{
    char m[256];
    if (probe_read_small("/proc/self/uid_map", m, sizeof m) != 0)
        return false;
    unsigned long a = 0, b = 0, n = 0;
    if (sscanf(m, "%lu %lu %lu", &a, &b, &n) != 3)
        return true;
    return !(a == 0 && b == 0 && n == 4294967295UL);
}

static void probe_tty(struct pd_probe_entry *e)
{
    if (isatty(STDIN_FILENO)) {
        char name[128];
        e->state = PD_PROBE_AVAILABLE;
        if (ttyname_r(STDIN_FILENO, name, sizeof name) == 0)
            snprintf(e->detail, sizeof e->detail, "stdin is a terminal (%s)", name);
        else
            snprintf(e->detail, sizeof e->detail, "stdin is a terminal");
        return;
    }
    int err = errno;
    e->state = PD_PROBE_MISSING;
    snprintf(e->detail, sizeof e->detail,
             "stdin is not a terminal (%s): fine for a non-interactive run, no pty is needed",
             strerror(err));
}

/* ---------------------------------------------------------------- entry */

static const char *const layer_ids[PD_PROBE_NLAYERS] = {
    [PD_PROBE_USERNS] = "userns",
    [PD_PROBE_MOUNTNS] = "mountns",
    [PD_PROBE_PIDNS] = "pidns",
    [PD_PROBE_NETNS] = "netns",
    [PD_PROBE_UTSNS] = "utsns",
    [PD_PROBE_IPCNS] = "ipcns",
    [PD_PROBE_CGROUPNS] = "cgroupns",
    [PD_PROBE_SECCOMP] = "seccomp",
    [PD_PROBE_NO_NEW_PRIVS] = "no_new_privs",
    [PD_PROBE_CAPS] = "caps",
    [PD_PROBE_LANDLOCK] = "landlock",
    [PD_PROBE_PIDFD] = "pidfd",
    [PD_PROBE_CGROUP] = "cgroup",
    [PD_PROBE_TMPFS] = "tmpfs",
    [PD_PROBE_DEVPTS] = "devpts",
    [PD_PROBE_TTY] = "tty",
};

const char *pd_probe_state_name(enum pd_probe_state s)
{
    switch (s) {
    case PD_PROBE_AVAILABLE:
        return "available";
    case PD_PROBE_PARTIAL:
        return "partial";
    case PD_PROBE_MISSING:
        return "missing";
    }
    return "missing";
}

const struct pd_probe_entry *pd_probe_find(const struct pd_probe *p, const char *id)
{
    for (size_t i = 0; i < p->nlayers; i++)
        if (strcmp(p->layers[i].id, id) == 0)
            return &p->layers[i];
    return NULL;
}

static void from_child(const struct probe_ctx *c, probe_child_fn fn, long param,
                       struct pd_probe_entry *e)
{
    struct child_report r;
    probe_run_child(c, fn, param, &r);
    e->state = (enum pd_probe_state)r.state;
    snprintf(e->detail, sizeof e->detail, "%s", r.detail);
}

static void probe_seccomp(const struct probe_ctx *c, struct pd_probe_entry *e)
{
    from_child(c, probe_child_seccomp, 0, e);
    char actions[256];
    if (probe_read_small("/proc/sys/kernel/seccomp/actions_avail", actions, sizeof actions) == 0)
        pd_appendf(e->detail, sizeof e->detail, "; kernel actions: %s", actions);
#if defined(__x86_64__)
    struct child_report r;
    probe_run_child(c, probe_child_i386, 0, &r);
    bool i386 = r.state == PD_PROBE_AVAILABLE;
    pd_appendf(e->detail, sizeof e->detail, "; native arch x86_64, i386 ABI %s%s",
               i386 ? "present" : "absent",
               e->state == PD_PROBE_AVAILABLE
                   ? " (a filter must refuse other ABIs: native arch only)"
                   : "");
#endif
    long mode = status_field("Seccomp");
    e->in_use = mode > 0;
    if (e->in_use)
        pd_appendf(e->detail, sizeof e->detail,
                   "; this process already runs under seccomp mode %ld", mode);
}

int pd_probe_run(struct pd_probe *out)
{
    memset(out, 0, sizeof *out);
    out->nlayers = PD_PROBE_NLAYERS;
    for (size_t i = 0; i < PD_PROBE_NLAYERS; i++) {
        out->layers[i].id = layer_ids[i];
        out->layers[i].required = i != PD_PROBE_TTY;
        out->layers[i].state = PD_PROBE_MISSING;
    }
    struct probe_ctx c;
    memset(&c, 0, sizeof c);
    c.uid = geteuid();
    c.gid = getegid();
    c.self = getpid();
    userns_hint(c.userns_hint, sizeof c.userns_hint);

    struct pd_probe_entry *L = out->layers;
    from_child(&c, child_userns, 0, &L[PD_PROBE_USERNS]);
    L[PD_PROBE_USERNS].in_use = in_userns();
    if (L[PD_PROBE_USERNS].in_use)
        pd_appendf(L[PD_PROBE_USERNS].detail, sizeof L[0].detail,
                   "; this process already runs in a user namespace");
    static const struct {
        enum pd_probe_layer layer;
        long flag;
    } ns[] = {
        {PD_PROBE_MOUNTNS, CLONE_NEWNS}, {PD_PROBE_PIDNS, CLONE_NEWPID},
        {PD_PROBE_NETNS, CLONE_NEWNET},  {PD_PROBE_UTSNS, CLONE_NEWUTS},
        {PD_PROBE_IPCNS, CLONE_NEWIPC},  {PD_PROBE_CGROUPNS, CLONE_NEWCGROUP},
    };
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++)
        from_child(&c, child_ns, ns[i].flag, &L[ns[i].layer]);

    probe_seccomp(&c, &L[PD_PROBE_SECCOMP]);
    from_child(&c, probe_child_nnp, 0, &L[PD_PROBE_NO_NEW_PRIVS]);
    L[PD_PROBE_NO_NEW_PRIVS].in_use = status_field("NoNewPrivs") == 1;
    if (L[PD_PROBE_NO_NEW_PRIVS].in_use)
        pd_appendf(L[PD_PROBE_NO_NEW_PRIVS].detail, sizeof L[0].detail,
                   "; already set on this process");
    from_child(&c, probe_child_caps, 0, &L[PD_PROBE_CAPS]);
    probe_landlock(&c, &L[PD_PROBE_LANDLOCK]);
    probe_pidfd(&L[PD_PROBE_PIDFD]);
    probe_cgroup(&c, &L[PD_PROBE_CGROUP]);
    from_child(&c, child_tmpfs, 0, &L[PD_PROBE_TMPFS]);
    from_child(&c, child_devpts, 0, &L[PD_PROBE_DEVPTS]);
    probe_tty(&L[PD_PROBE_TTY]);

    int missing = 0;
    for (size_t i = 0; i < PD_PROBE_NLAYERS; i++) {
        if (!L[i].detail[0])
            snprintf(L[i].detail, sizeof L[i].detail, "no detail (probe error)");
        if (L[i].required && L[i].state != PD_PROBE_AVAILABLE)
            missing++;
    }
    return missing;
}
