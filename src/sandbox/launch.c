/*
 * launch.c - the launcher's side of a sandbox (sandbox.h): clone3 into the new namespaces, write
 * the id maps, join the cgroup, wait for the sandbox's first process to report, hand out its fds.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/str.h"
#include "sandbox/filter.h"
#include "sandbox/probe.h"
#include "core/sys_compat.h"
#include "sandbox/sandbox_int.h"

#define SB_CLONE_PIDFD 0x00001000ULL
#define SB_CLONE_INTO_CGROUP 0x200000000ULL

/* The kernel's struct clone_args (v2, 88 bytes); spelled here so <linux/sched.h> and <sched.h>
 * need not meet in one translation unit. */
struct sb_clone_args {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
        set_tid_size, cgroup;
};

/* How long the launcher waits for the sandbox to report ready (the setup takes milliseconds). */
#define SB_START_TIMEOUT_MS 20000

struct pd_sandbox {
    pid_t pid; /* init */
    int pidfd;
    int ctl;
    int proxy_fd, dns_udp_fd, dns_tcp_fd, pty_master;
    struct pd_cgroup *cg;
    bool reaped;
    int status; /* valid once reaped */
};

static const struct {
    const char *name;
    unsigned bit;
} layer_names[] = {
    {"userns", PD_SB_LAYER_USERNS},
    {"landlock", PD_SB_LAYER_LANDLOCK},
    {"cgroup", PD_SB_LAYER_CGROUP},
    {"seccomp", PD_SB_LAYER_SECCOMP},
};

unsigned pd_sandbox_layer_bit(const char *name)
{
    for (size_t i = 0; i < sizeof layer_names / sizeof layer_names[0]; i++)
        if (strcmp(layer_names[i].name, name) == 0)
            return layer_names[i].bit;
    return 0;
}

const char *pd_sandbox_layer_names(void)
{
    return "userns, landlock, cgroup, seccomp";
}

static int write_file(pid_t pid, const char *name, const char *text, struct pd_err *err)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, name);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        pd_err_set(err, "userns: open %s: %s", path, strerror(errno));
        return -1;
    }
    size_t len = strlen(text);
    ssize_t n = write(fd, text, len);
    int e = errno;
    close(fd);
    if (n != (ssize_t)len) {
        pd_err_set(err, "userns: write '%.*s' to %s: %s",
                   (int)(len && text[len - 1] == '\n' ? len - 1 : len), text, path,
                   n < 0 ? strerror(e) : "short write");
        return -1;
    }
    return 0;
}

static int write_maps(pid_t pid, uid_t uid, gid_t gid, struct pd_err *err)
{
    char line[64];
    if (write_file(pid, "setgroups", "deny", err) != 0)
        return -1;
    snprintf(line, sizeof line, "%u %u 1\n", (unsigned)uid, (unsigned)uid);
    if (write_file(pid, "uid_map", line, err) != 0)
        return -1;
    snprintf(line, sizeof line, "%u %u 1\n", (unsigned)gid, (unsigned)gid);
    return write_file(pid, "gid_map", line, err);
}

static void kill_and_reap(struct pd_sandbox *sb)
{
    if (sb->pidfd < 0 || sb->reaped)
        return;
    syscall(SYS_pidfd_send_signal, sb->pidfd, SIGKILL, NULL, 0);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    while (waitid((idtype_t)P_PIDFD, (id_t)sb->pidfd, &si, WEXITED) != 0 && errno == EINTR) {
    }
    sb->reaped = true;
    sb->status = 137;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

void pd_sandbox_free(struct pd_sandbox *sb)
{
    if (!sb)
        return;
    kill_and_reap(sb);
    close_fd(&sb->pidfd);
    close_fd(&sb->ctl);
    close_fd(&sb->proxy_fd);
    close_fd(&sb->dns_udp_fd);
    close_fd(&sb->dns_tcp_fd);
    close_fd(&sb->pty_master);
    pd_cgroup_destroy(sb->cg);
    free(sb);
}

/* Wait for one message from S, bounded; a closed socket means S died before saying why. */
static int read_msg(struct pd_sandbox *sb, struct sb_msg *m, int *fds, size_t maxfds,
                    struct pd_err *err)
{
    struct pollfd p = {.fd = sb->ctl, .events = POLLIN};
    int rc;
    do
        rc = poll(&p, 1, SB_START_TIMEOUT_MS);
    while (rc < 0 && errno == EINTR);
    if (rc == 0) {
        pd_err_set(err, "sandbox: no answer from the sandbox's first process within %d s",
                   SB_START_TIMEOUT_MS / 1000);
        return -1;
    }
    memset(m, 0, sizeof *m);
    ssize_t n = pd_fdpass_recv(sb->ctl, m, sizeof *m, fds, maxfds);
    if (n < 0) {
        pd_err_set(err, "sandbox: reading the setup report: %s", strerror(errno));
        return -1;
    }
    if (n == 0) {
        pd_err_set(err, "sandbox: the sandbox's first process ended during setup");
        return -1;
    }
    if ((size_t)n < offsetof(struct sb_msg, text) + 1) {
        pd_err_set(err, "sandbox: short setup report (%zd bytes)", n);
        return -1;
    }
    m->text[sizeof m->text - 1] = '\0';
    return 0;
}

static void make_cgroup(struct pd_sandbox *sb, const struct pd_sandbox_spec *spec, char *warnings,
                        size_t cap)
{
    struct pd_err cerr = {{0}};
    char cgname[96];
    snprintf(cgname, sizeof cgname, "paddock-%.40s-%d", spec->name ? spec->name : "run",
             (int)getpid()); /* unique: two sandboxes may share a name */
    /* No freezer: init's death ends the PID namespace, which kills everything reliably. */
    const struct pd_cg_env env = {.no_freezer = true};
    sb->cg = pd_cgroup_create_env(&env, cgname, &spec->limits, &cerr);
    if (!sb->cg && !(spec->degraded & PD_SB_LAYER_CGROUP))
        pd_appendf(warnings, cap,
                   "cgroup: %s; limits fall back to rlimits (memory as address space, "
                   "processes per user, CPU unlimited); --allow-degraded=cgroup accepts this\n",
                   cerr.msg);
}

static int send_proceed(struct pd_sandbox *sb, unsigned degraded, bool rlimits, const int *join,
                        size_t njoin, char *warnings, size_t cap, struct pd_err *err)
{
    struct pd_filter_prog prog = {NULL, 0};
    struct pd_err ferr = {{0}};
    if (pd_sandbox_filter_build(&prog, &ferr) != 0) {
        if (!(degraded & PD_SB_LAYER_SECCOMP)) {
            pd_err_set(err,
                       "seccomp: %s (run 'paddock doctor'; --allow-degraded=seccomp runs "
                       "without the filter)",
                       ferr.msg);
            return -1;
        }
        pd_appendf(warnings, cap, "seccomp: %s; running without the syscall filter\n", ferr.msg);
    }
    size_t len = sizeof(struct sb_proceed) + (size_t)prog.len * sizeof(struct sock_filter);
    struct sb_proceed *m = calloc(1, len);
    if (!m) {
        pd_sandbox_filter_prog_free(&prog);
        pd_err_set(err, "sandbox: out of memory");
        return -1;
    }
    m->kind = SB_MSG_PROCEED;
    m->flags = rlimits ? SB_PROCEED_RLIMITS : 0;
    m->ninsns = prog.len;
    if (prog.len)
        memcpy(m->insns, prog.insns, (size_t)prog.len * sizeof(struct sock_filter));
    pd_sandbox_filter_prog_free(&prog);
    int e = 0;
    ssize_t n = pd_fdpass_send(sb->ctl, m, len, join, njoin) == 0 ? (ssize_t)len : -1;
    if (n < 0)
        e = errno;
    free(m);
    if (n != (ssize_t)len) {
        pd_err_set(err, "sandbox: send the syscall filter to the sandbox: %s",
                   n < 0 ? strerror(e) : "short send");
        return -1;
    }
    return 0;
}

int pd_sandbox_start(const struct pd_sandbox_spec *spec_in, struct pd_sandbox **out, char *warnings,
                     size_t cap, struct pd_err *err)
{
    *out = NULL;
    if (warnings && cap)
        warnings[0] = '\0';
    struct pd_sandbox_spec spec = *spec_in;
    spec.fs.uid = getuid();
    spec.fs.gid = getgid();
    bool root = geteuid() == 0;

    struct pd_sandbox *sb = calloc(1, sizeof *sb);
    if (!sb) {
        pd_err_set(err, "sandbox: out of memory");
        return -1;
    }
    sb->pidfd = sb->ctl = sb->proxy_fd = sb->dns_udp_fd = sb->dns_tcp_fd = sb->pty_master = -1;

    /* Resource limits: a cgroup nested under ours, else rlimits (applied by the agent). On cgroup
     * v2 it is made now and S is cloned straight into it; on v1 it is made and joined while S
     * builds the sandbox (below), off the start path. */
    bool want_limits = spec.limits.memory_bytes || spec.limits.pids || spec.limits.cpu_millis;
    struct statfs sfs;
    bool v2 = statfs("/sys/fs/cgroup", &sfs) == 0 && sfs.f_type == CGROUP2_SUPER_MAGIC;
    if (want_limits && v2)
        make_cgroup(sb, &spec, warnings, cap);

    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
        pd_err_set(err, "sandbox: socketpair: %s", strerror(errno));
        pd_sandbox_free(sb);
        return -1;
    }
    sb->ctl = sv[0];

    /* The cgroup namespace comes later, from S itself, once it is in the sandbox's cgroup (on
     * v1 that is after this clone): then its root is the sandbox's own group. */
    uint64_t flags =
        (uint64_t)(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC);
    bool userns = !(root && (spec.degraded & PD_SB_LAYER_USERNS));
    if (userns)
        flags |= CLONE_NEWUSER;
    struct sb_clone_args ca;
    memset(&ca, 0, sizeof ca);
    ca.flags = flags | SB_CLONE_PIDFD;
    ca.pidfd = (uint64_t)(uintptr_t)&sb->pidfd;
    ca.exit_signal = SIGCHLD;
    if (sb->cg && pd_cgroup_dirfd(sb->cg) >= 0) {
        ca.flags |= SB_CLONE_INTO_CGROUP;
        ca.cgroup = (uint64_t)pd_cgroup_dirfd(sb->cg);
    }
    spec.userns = userns;
    long pid = syscall(SYS_clone3, &ca, sizeof ca);
    if (pid == 0) {
        close(sv[0]);
        sb_child_main(&spec, sv[1]);
    }
    int clone_errno = errno;
    close(sv[1]);
    if (pid < 0) {
        /* Which layer: the probe behind `paddock doctor` tries each namespace on its own. */
        struct pd_probe pr;
        pd_probe_run(&pr);
        char missing[256] = "";
        static const enum pd_probe_layer ns[] = {PD_PROBE_USERNS, PD_PROBE_MOUNTNS, PD_PROBE_PIDNS,
                                                 PD_PROBE_NETNS,  PD_PROBE_UTSNS,   PD_PROBE_IPCNS};
        for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
            const struct pd_probe_entry *e = &pr.layers[ns[i]];
            if (e->state != PD_PROBE_AVAILABLE && (userns || ns[i] != PD_PROBE_USERNS))
                pd_appendf(missing, sizeof missing, "%s%s (%.80s)", missing[0] ? "; " : "", e->id,
                           e->detail);
        }
        pd_err_set(err, "%s: clone3 into new %s namespaces: %s%s%s",
                   missing[0] ? "namespaces" : "sandbox",
                   userns ? "user, mount, pid, net, uts, ipc" : "mount, pid, net, uts, ipc",
                   strerror(clone_errno), missing[0] ? ": missing: " : "", missing);
        if (userns && !root && pr.layers[PD_PROBE_USERNS].state != PD_PROBE_AVAILABLE)
            pd_err_prefix(err, "user namespaces are not available to this user (see 'paddock "
                               "doctor'; as root, --allow-degraded=userns)");
        pd_sandbox_free(sb);
        return -1;
    }
    sb->pid = (pid_t)pid;

    struct sb_msg m;
    int fds[PD_FDPASS_MAX];
    if (userns && write_maps(sb->pid, spec.fs.uid, spec.fs.gid, err) != 0)
        goto fail;
    char go = SB_GO;
    if (send(sb->ctl, &go, 1, MSG_NOSIGNAL) != 1) {
        pd_err_set(err, "sandbox: release the sandbox's first process: %s", strerror(errno));
        goto fail;
    }
    /* While S builds its filesystem: make the v1 cgroup and open what S needs to join it (S joins
     * by itself on receipt, as one thread: no RCU wait; see cgroup.h), and compile the syscall
     * filter. */
    int join[PD_FDPASS_MAX];
    int njoin = 0;
    if (want_limits && !v2)
        make_cgroup(sb, &spec, warnings, cap);
    if (sb->cg && pd_cgroup_kind(sb->cg) == PD_CG_V1) {
        /* S joins by itself, as a single thread: no RCU wait (cgroup.h). */
        struct pd_err jerr;
        njoin = pd_cgroup_v1_join_fds(sb->cg, join, PD_FDPASS_MAX, &jerr);
        if (njoin < 0) {
            njoin = 0;
            if (pd_cgroup_add(sb->cg, sb->pid, err) != 0)
                goto fail;
        }
    } else if (sb->cg && pd_cgroup_dirfd(sb->cg) < 0 && pd_cgroup_add(sb->cg, sb->pid, err) != 0) {
        goto fail;
    }
    int prc = send_proceed(sb, spec.degraded, want_limits && !sb->cg, join, (size_t)njoin, warnings,
                           cap, err);
    for (int i = 0; i < njoin; i++)
        close(join[i]);
    if (prc != 0) {
        /* S may have ended with its own report first (a failed setup step): that is the news. */
        struct pd_err serr = {{0}};
        if (read_msg(sb, &m, fds, PD_FDPASS_MAX, &serr) == 0 && m.kind == SB_MSG_ERROR)
            pd_err_set(err, "%s", m.text);
        for (size_t i = 0; i < PD_FDPASS_MAX; i++)
            if (fds[i] >= 0)
                close(fds[i]);
        goto fail;
    }
    if (read_msg(sb, &m, fds, PD_FDPASS_MAX, err) != 0)
        goto fail;
    if (m.kind == SB_MSG_ERROR) {
        pd_err_set(err, "%s", m.text);
        goto fail;
    }
    if (m.kind != SB_MSG_READY || fds[0] < 0 || fds[1] < 0 || fds[2] < 0 ||
        (spec.pty && fds[3] < 0)) {
        for (size_t i = 0; i < PD_FDPASS_MAX; i++)
            if (fds[i] >= 0)
                close(fds[i]);
        pd_err_set(err, "sandbox: unexpected setup report (kind %u)", (unsigned)m.kind);
        goto fail;
    }
    sb->proxy_fd = fds[0];
    sb->dns_udp_fd = fds[1];
    sb->dns_tcp_fd = fds[2];
    sb->pty_master = fds[3];
    if (m.text[0])
        pd_appendf(warnings, cap, "%s", m.text);
    if (read_msg(sb, &m, fds, PD_FDPASS_MAX, err) != 0)
        goto fail;
    for (size_t i = 0; i < PD_FDPASS_MAX; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    if (m.kind == SB_MSG_ERROR) {
        pd_err_set(err, "%s", m.text);
        goto fail;
    }
    if (m.kind == SB_MSG_EXEC_FAILED) {
        /* The command is the agent's business: report like a shell, and let init end. */
        pd_err_set(err, "%s", m.text);
        close_fd(&sb->ctl);
        *out = sb;
        return 1;
    }
    close_fd(&sb->ctl);
    *out = sb;
    return 0;
fail:
    pd_sandbox_free(sb);
    return -1;
}

int pd_sandbox_take_proxy_fd(struct pd_sandbox *sb)
{
    int fd = sb->proxy_fd;
    sb->proxy_fd = -1;
    return fd;
}

int pd_sandbox_take_dns_udp_fd(struct pd_sandbox *sb)
{
    int fd = sb->dns_udp_fd;
    sb->dns_udp_fd = -1;
    return fd;
}

int pd_sandbox_take_dns_tcp_fd(struct pd_sandbox *sb)
{
    int fd = sb->dns_tcp_fd;
    sb->dns_tcp_fd = -1;
    return fd;
}

int pd_sandbox_pty_master(const struct pd_sandbox *sb)
{
    return sb->pty_master;
}

int pd_sandbox_pidfd(const struct pd_sandbox *sb)
{
    return sb->pidfd;
}

int pd_sandbox_signal(struct pd_sandbox *sb, int sig)
{
    if (sb->reaped) {
        errno = ESRCH;
        return -1;
    }
    return (int)syscall(SYS_pidfd_send_signal, sb->pidfd, sig, NULL, 0);
}

int pd_sandbox_wait(struct pd_sandbox *sb, struct pd_err *err)
{
    if (sb->reaped)
        return sb->status;
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int rc;
    do
        rc = waitid((idtype_t)P_PIDFD, (id_t)sb->pidfd, &si, WEXITED);
    while (rc != 0 && errno == EINTR);
    if (rc != 0) {
        pd_err_set(err, "sandbox: waitid(init): %s", strerror(errno));
        return -1;
    }
    sb->reaped = true;
    if (si.si_code == CLD_EXITED)
        sb->status = si.si_status;
    else
        sb->status = 128 + si.si_status; /* init itself was killed (timeout, SIGKILL) */
    return sb->status;
}

void pd_sandbox_events(const struct pd_sandbox *sb, struct pd_cg_events *ev)
{
    memset(ev, 0, sizeof *ev);
    if (sb->cg)
        pd_cgroup_events(sb->cg, ev, NULL);
}
