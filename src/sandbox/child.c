/*
 * child.c - the sandbox's first process (S), from clone3 to init, and the agent's last steps
 * before exec (see sandbox.h for the order and why).
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include "core/caps.h"
#include "sandbox/filter.h"
#include "core/sys_compat.h"
#include "sandbox/sandbox_int.h"

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

extern char **environ;

static void close_from(unsigned first, unsigned last)
{
    if (first > last)
        return;
    if (syscall(SYS_close_range, first, last, 0) == 0)
        return;
    for (unsigned fd = first; fd <= last && fd < 65536; fd++)
        close((int)fd);
}

/* Close every fd but 0-2 and `keep` (and `keep2` when >= 0). */
static void close_others(int keep, int keep2)
{
    int a = keep < keep2 ? keep : keep2, b = keep < keep2 ? keep2 : keep;
    if (a < 0) {
        a = b;
        b = -1;
    }
    if (a < 0) {
        close_from(3, ~0U);
        return;
    }
    close_from(3, (unsigned)a - 1);
    if (b < 0) {
        close_from((unsigned)a + 1, ~0U);
        return;
    }
    close_from((unsigned)a + 1, (unsigned)b - 1);
    close_from((unsigned)b + 1, ~0U);
}

static _Noreturn void fail_to(int fd, uint32_t kind, uint32_t code, const struct pd_err *err)
{
    struct sb_msg m;
    memset(&m, 0, sizeof m);
    m.kind = kind;
    m.code = code;
    snprintf(m.text, sizeof m.text, "%s", err->msg);
    if (write(fd, &m, sizeof m) < 0) {
        /* nobody to tell */
    }
    _exit((int)code);
}

/* ---------------------------------------------------------------- the agent */

static int apply_core_limit(struct pd_err *err)
{
    struct rlimit rl = {0, 0};
    if (setrlimit(RLIMIT_CORE, &rl) != 0) {
        pd_err_set(err, "rlimits: RLIMIT_CORE 0: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static _Noreturn void agent_main(const struct pd_sandbox_spec *spec, bool rlimits, int slave,
                                 int report)
{
    struct pd_err err = {{0}};
    sigset_t none;
    sigemptyset(&none);
    for (int s = 1; s < NSIG; s++)
        signal(s, SIG_DFL);
    sigprocmask(SIG_SETMASK, &none, NULL);

    if (setsid() < 0) {
        pd_err_set(&err, "agent: setsid: %s", strerror(errno));
        fail_to(report, SB_MSG_ERROR, 125, &err);
    }
    if (slave >= 0) {
        if (ioctl(slave, TIOCSCTTY, 0) != 0) {
            pd_err_set(&err, "pty: make the terminal controlling: %s", strerror(errno));
            fail_to(report, SB_MSG_ERROR, 125, &err);
        }
        for (int fd = 0; fd <= 2; fd++)
            if (dup2(slave, fd) < 0) {
                pd_err_set(&err, "pty: dup2: %s", strerror(errno));
                fail_to(report, SB_MSG_ERROR, 125, &err);
            }
        if (slave > 2)
            close(slave);
    }
    close_others(report, -1);
    if (chdir("/workspace") != 0) {
        pd_err_set(&err, "fs: chdir /workspace: %s", strerror(errno));
        fail_to(report, SB_MSG_ERROR, 125, &err);
    }
    if (apply_core_limit(&err) != 0)
        fail_to(report, SB_MSG_ERROR, 125, &err);
    if (rlimits && pd_limits_apply_rlimits(&spec->limits, &err) != 0)
        fail_to(report, SB_MSG_ERROR, 125, &err);

    static const uint16_t ports[] = {PD_SANDBOX_PROXY_PORT, PD_SANDBOX_DNS_PORT};
    int abi = pd_fs_landlock(&spec->fs, ports, sizeof ports / sizeof ports[0], &err);
    if (abi < 0) {
        pd_err_prefix(&err, "landlock");
        fail_to(report, SB_MSG_ERROR, 125, &err);
    }
    if (abi == 0 && !(spec->degraded & PD_SB_LAYER_LANDLOCK)) {
        pd_err_set(&err, "landlock: the kernel has no Landlock (run 'paddock doctor'; "
                         "--allow-degraded=landlock runs without it)");
        fail_to(report, SB_MSG_ERROR, 125, &err);
    }
    if (sb_drop_privileges(&err) != 0)
        fail_to(report, SB_MSG_ERROR, 125, &err);
    /* The syscall filter is already in force: S installed it before forking us. */
    environ = (char **)spec->envp;
    execvp(spec->argv[0], spec->argv);
    int e = errno;
    pd_err_set(&err, "%s: %s", spec->argv[0],
               e == ENOENT ? "command not found in the sandbox" : strerror(e));
    dprintf(2, "paddock: %s\n", err.msg);
    fail_to(report, SB_MSG_EXEC_FAILED, e == ENOENT ? 127 : 126, &err);
}

int sb_drop_privileges(struct pd_err *err)
{
    if (pd_caps_lock_securebits("caps", err) != 0 ||
        pd_caps_drop_bounding("caps", true, err) != 0 || pd_caps_clear("caps", err) != 0)
        return -1;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        pd_err_set(err, "no_new_privs: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- S */

static _Noreturn void fail(int ctl, const struct pd_err *err)
{
    fail_to(ctl, SB_MSG_ERROR, 125, err);
}

static int recv_proceed(int ctl, struct pd_filter_prog *out, bool *rlimits, struct pd_err *err)
{
    size_t cap = sizeof(struct sb_proceed) + BPF_MAXINSNS * sizeof(struct sock_filter);
    struct sb_proceed *m = malloc(cap);
    if (!m) {
        pd_err_set(err, "sandbox: out of memory");
        return -1;
    }
    int join[PD_FDPASS_MAX];
    ssize_t n = pd_fdpass_recv(ctl, m, cap, join, PD_FDPASS_MAX);
    /* Join the sandbox's cgroup (v1: one "0" per hierarchy's tasks file moves this thread). */
    for (int i = 0; i < PD_FDPASS_MAX; i++) {
        if (join[i] < 0)
            continue;
        if (n > 0 && write(join[i], "0", 1) != 1) {
            pd_err_set(err, "cgroup: join the sandbox's group: %s", strerror(errno));
            n = -2;
        }
        close(join[i]);
    }
    if (n == -2) {
        free(m);
        return -1;
    }
    if (n < (ssize_t)sizeof *m || (size_t)n > cap || m->kind != SB_MSG_PROCEED ||
        m->ninsns > BPF_MAXINSNS ||
        (size_t)n != sizeof *m + (size_t)m->ninsns * sizeof(struct sock_filter)) {
        int e = errno;
        free(m);
        pd_err_set(err, "sandbox: no go-ahead from the launcher (%s)",
                   n < 0    ? strerror(e)
                   : n == 0 ? "it closed the socket"
                            : "bad message");
        return -1;
    }
    out->len = (unsigned short)m->ninsns;
    out->insns = NULL;
    *rlimits = (m->flags & SB_PROCEED_RLIMITS) != 0;
    if (m->ninsns) {
        /* Kept for the agent and for init: both install it. */
        out->insns = malloc((size_t)m->ninsns * sizeof(struct sock_filter));
        if (!out->insns) {
            free(m);
            pd_err_set(err, "sandbox: out of memory");
            return -1;
        }
        memcpy(out->insns, m->insns, (size_t)m->ninsns * sizeof(struct sock_filter));
    }
    free(m);
    return 0;
}

static int open_pty(const struct winsize *ws, int *master, int *slave, struct pd_err *err)
{
    *master = open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (*master < 0) {
        pd_err_set(err, "pty: open /dev/pts/ptmx: %s", strerror(errno));
        return -1;
    }
    int unlock = 0;
    if (ioctl(*master, TIOCSPTLCK, &unlock) != 0) {
        pd_err_set(err, "pty: unlock: %s", strerror(errno));
        close(*master);
        return -1;
    }
    if (ws->ws_row && ws->ws_col)
        ioctl(*master, TIOCSWINSZ, ws);
    *slave = ioctl(*master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (*slave < 0) {
        pd_err_set(err, "pty: open the terminal's peer: %s", strerror(errno));
        close(*master);
        return -1;
    }
    return 0;
}

_Noreturn void sb_child_main(const struct pd_sandbox_spec *spec, int ctl)
{
    struct pd_err err = {{0}};
    close_others(ctl, -1);
    /* The launcher's death ends the sandbox. */
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    char go = 0;
    ssize_t n;
    do
        n = read(ctl, &go, 1);
    while (n < 0 && errno == EINTR);
    if (n != 1 || go != SB_GO)
        _exit(125);

    if (spec->hostname && sethostname(spec->hostname, strlen(spec->hostname)) != 0) {
        pd_err_set(&err, "utsns: sethostname: %s", strerror(errno));
        fail(ctl, &err);
    }
    int fds[PD_FDPASS_MAX] = {-1, -1, -1, -1};
    if (sb_net_setup(&fds[0], &fds[1], &fds[2], &err) != 0)
        fail(ctl, &err);
    if (pd_fs_setup(&spec->fs, &err) != 0) {
        pd_err_prefix(&err, "fs");
        fail(ctl, &err);
    }
    int slave = -1;
    if (spec->pty && open_pty(&spec->winsize, &fds[3], &slave, &err) != 0)
        fail(ctl, &err);

    /* Signals wait for init's loop from here on (none is lost between fork and sigwait). */
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);

    struct sb_msg m;
    memset(&m, 0, sizeof m);
    m.kind = SB_MSG_READY;
    if (pd_fdpass_send(ctl, &m, sizeof m, fds, spec->pty ? 4 : 3) != 0) {
        pd_err_set(&err, "sandbox: send the listeners to the launcher: %s", strerror(errno));
        fail(ctl, &err);
    }
    for (int i = 0; i < PD_FDPASS_MAX; i++)
        if (fds[i] >= 0)
            close(fds[i]);

    /* The launcher's go-ahead: we are in the sandbox's cgroup, and here is the filter. */
    struct pd_filter_prog filter = {NULL, 0};
    bool rlimits = false;
    if (recv_proceed(ctl, &filter, &rlimits, &err) != 0)
        fail(ctl, &err);
    if (unshare(CLONE_NEWCGROUP) != 0) {
        pd_err_set(&err, "cgroupns: unshare(CLONE_NEWCGROUP): %s", strerror(errno));
        fail(ctl, &err);
    }
    /* The syscall filter, once, here: the agent inherits it across fork and exec, and init lives
     * under it too (S still holds CAP_SYS_ADMIN in its user namespace, so no_new_privs is not
     * needed yet). Everything S does from here on is allowed by it; clone3 is not (ENOSYS), so
     * the agent comes from clone with CLONE_PIDFD. */
    if (filter.len && pd_sandbox_filter_install(&filter, &err) != 0) {
        pd_err_prefix(&err, "seccomp");
        fail(ctl, &err);
    }
    pd_sandbox_filter_prog_free(&filter);

    int rp[2];
    if (pipe2(rp, O_CLOEXEC) != 0) {
        pd_err_set(&err, "sandbox: pipe: %s", strerror(errno));
        fail(ctl, &err);
    }
    int agent_pidfd = -1;
    /* x86_64 and the generic ABI order: flags, stack, parent_tid (where CLONE_PIDFD stores the
     * pidfd), child_tid, tls. */
    long pid =
        syscall(SYS_clone, (unsigned long)(CLONE_PIDFD | SIGCHLD), 0UL, &agent_pidfd, 0UL, 0UL);
    if (pid == 0) {
        close(rp[0]);
        close(ctl);
        agent_main(spec, rlimits, slave, rp[1]);
    }
    if (pid < 0) {
        pd_err_set(&err, "sandbox: start the agent: %s", strerror(errno));
        fail(ctl, &err);
    }
    close(rp[1]);
    if (slave >= 0)
        close(slave);
    memset(&m, 0, sizeof m);
    do
        n = read(rp[0], &m, sizeof m);
    while (n < 0 && errno == EINTR);
    close(rp[0]);
    if (n == (ssize_t)sizeof m) {
        m.text[sizeof m.text - 1] = '\0';
        pd_fdpass_send(ctl, &m, sizeof m, NULL, 0);
        if (m.kind == SB_MSG_ERROR) {
            syscall(SYS_pidfd_send_signal, agent_pidfd, SIGKILL, NULL, 0);
            _exit(125);
        }
        /* EXEC_FAILED: init below reports the agent's 127/126 like any exit. */
    } else {
        m.kind = SB_MSG_STARTED;
        m.text[0] = '\0';
        pd_fdpass_send(ctl, &m, sizeof m, NULL, 0);
    }
    close(ctl);

    /* Init is confined like the agent: nothing in it is worth more than in the agent. */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    if (sb_drop_privileges(&err) != 0) {
        dprintf(2, "paddock: init: %s\n", err.msg);
        syscall(SYS_pidfd_send_signal, agent_pidfd, SIGKILL, NULL, 0);
        _exit(125);
    }
    sb_init_run((pid_t)pid, agent_pidfd);
}
