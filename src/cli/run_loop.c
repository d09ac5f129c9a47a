/*
 * run_loop.c - `paddock run` once the sandbox exists (run.h): its gateway process, the terminal
 * relay, signals, the timeout, and the exit status.
 *
 * One poll loop, single-threaded: init's pidfd (the sandbox's end), the gateway's pidfd, a
 * signalfd, a timerfd (timeout, then the grace period of a stop), and in terminal mode the caller's
 * stdin and the sandbox's pty master. The caller's terminal is put in raw mode and restored on
 * every path that returns; bytes are relayed, so nothing the agent does reaches the host terminal
 * but output (TIOCSTI on the sandbox's terminal injects into the sandbox's own input only).
 */
#include <errno.h>
#include <link.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "core/sys_compat.h"

#include "cli/run.h"
#include "core/fdpass.h"

#define STOP_GRACE_S 10 /* after SIGTERM/SIGINT is forwarded, SIGKILL follows this much later */
#define GATEWAY_STOP_MS 2000 /* the gateway's graceful shutdown, then SIGKILL */

int pd_run_gateway_spawn(struct run_ctx *ctx)
{
    struct run_gateway *gw = &ctx->gw;
    gw->pid = -1;
    gw->pidfd = gw->sock = -1;
    gw->termed = false;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
        fprintf(stderr, "paddock run: socketpair for the gateway: %s\n", strerror(errno));
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "paddock run: fork for the gateway: %s\n", strerror(errno));
        close(sv[0]);
        close(sv[1]);
        return -1;
    }
    if (pid == 0) {
        /* fds 0-2: /dev/null and the log; 3: the listeners socket; 4: the built-in policy. */
        prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        int hs = fcntl(sv[1], F_DUPFD, 10), hl = fcntl(ctx->log_fd, F_DUPFD, 10);
        int hm = ctx->policy_memfd >= 0 ? fcntl(ctx->policy_memfd, F_DUPFD, 10) : -1;
        int null = open("/dev/null", O_RDWR);
        if (hs < 0 || hl < 0 || null < 0 || (ctx->policy_memfd >= 0 && hm < 0) ||
            dup2(null, 0) < 0 || dup2(hl, 1) < 0 || dup2(hl, 2) < 0 || dup2(hs, 3) != 3 ||
            (hm >= 0 && dup2(hm, 4) != 4))
            _exit(127);
        syscall(SYS_close_range, hm >= 0 ? 5 : 4, ~0U, 0);
        char *args[16];
        int n = 0;
        args[n++] = (char *)"paddock";
        args[n++] = (char *)"gateway";
        args[n++] = (char *)"--config";
        args[n++] = (char *)ctx->policy_path;
        args[n++] = (char *)"--listeners-from";
        args[n++] = (char *)"3";
        args[n++] = (char *)"--sandbox-id";
        args[n++] = (char *)ctx->name;
        args[n++] = (char *)"--workers";
        args[n++] = (char *)"1";
        if (geteuid() == 0) {
            args[n++] = (char *)"--user";
            args[n++] = (char *)"nobody";
        }
        args[n] = NULL;
        execv("/proc/self/exe", args);
        dprintf(2, "paddock run: exec of the gateway: %s\n", strerror(errno));
        _exit(127);
    }
    close(sv[1]);
    gw->sock = sv[0];
    gw->pid = pid;
    gw->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (gw->pidfd < 0) {
        fprintf(stderr, "paddock run: pidfd_open(gateway): %s\n", strerror(errno));
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        close(gw->sock);
        gw->sock = -1;
        gw->pid = -1;
        return -1;
    }
    return 0;
}

/* Ask the gateway to stop (it flushes its byte budgets and log); pd_run_gateway_stop waits. */
static void gateway_term(struct run_gateway *gw)
{
    if (gw->sock >= 0)
        close(gw->sock);
    gw->sock = -1;
    if (gw->pidfd >= 0 && !gw->termed)
        syscall(SYS_pidfd_send_signal, gw->pidfd, SIGTERM, NULL, 0);
    gw->termed = true;
}

void pd_run_gateway_stop(struct run_gateway *gw)
{
    gateway_term(gw);
    if (gw->pidfd < 0)
        return;
    struct pollfd p = {.fd = gw->pidfd, .events = POLLIN};
    int rc;
    do
        rc = poll(&p, 1, GATEWAY_STOP_MS);
    while (rc < 0 && errno == EINTR);
    if (rc == 0)
        syscall(SYS_pidfd_send_signal, gw->pidfd, SIGKILL, NULL, 0);
    siginfo_t si;
    while (waitid((idtype_t)P_PIDFD, (id_t)gw->pidfd, &si, WEXITED) != 0 && errno == EINTR) {
    }
    close(gw->pidfd);
    gw->pidfd = -1;
}

/* Start the gateway and hand it the listeners (closed here on every path: when the gateway cannot
 * start, connections are refused from now on and the sandbox has no network). */
static void activate_gateway(struct run_ctx *ctx, int lfds[3])
{
    struct run_gateway *gw = &ctx->gw;
    int rc = pd_run_gateway_spawn(ctx);
    int e = 0;
    if (rc == 0) {
        /* The socket stays open: it is the gateway's lifeline (it shuts down when our end closes,
         * however we end). */
        rc = pd_fdpass_send(gw->sock, "listeners", 9, lfds, 3);
        e = errno;
    }
    for (int i = 0; i < 3; i++) {
        close(lfds[i]);
        lfds[i] = -1;
    }
    if (rc != 0) {
        fprintf(
            stderr,
            "\r\npaddock run: the gateway could not take the listeners (%s; see %s): the sandbox "
            "has no network\r\n",
            e ? strerror(e) : "it did not start", ctx->log_path);
        pd_run_gateway_stop(gw);
    }
}

/* ---------------------------------------------------------------- terminal relay */

struct relay {
    bool on;
    bool raw;
    struct termios saved;
    int master;
    bool in_open; /* still reading the caller's stdin */
    char to_master[4096];
    size_t tm_len;
};

static void relay_begin(struct relay *r, int master)
{
    r->on = master >= 0;
    r->master = master;
    r->in_open = r->on;
    if (!r->on)
        return;
    /* Started in the background (`paddock run ... &`): touching the terminal's modes or reading
     * it would stop us (SIGTTOU/SIGTTIN) and disturb the shell that owns it. Relay output only. */
    pid_t fg = tcgetpgrp(0); /* -1: not our controlling terminal, so no job control applies */
    if (fg >= 0 && fg != getpgrp()) {
        r->in_open = false;
        int fl0 = fcntl(master, F_GETFL);
        if (fl0 >= 0)
            fcntl(master, F_SETFL, fl0 | O_NONBLOCK);
        return;
    }
    int fl = fcntl(master, F_GETFL);
    if (fl >= 0)
        fcntl(master, F_SETFL, fl | O_NONBLOCK);
    if (tcgetattr(0, &r->saved) == 0) {
        struct termios raw = r->saved;
        cfmakeraw(&raw);
        if (tcsetattr(0, TCSANOW, &raw) == 0)
            r->raw = true;
    }
}

/* TCSANOW, not TCSADRAIN: draining waits until whoever holds the terminal's other side has read
 * all our output, and a program that drives us through a pty and waits for our exit before reading
 * would then wait for us forever. Output already written was processed when it was written. */
static void relay_end(struct relay *r)
{
    if (r->raw)
        tcsetattr(0, TCSANOW, &r->saved);
    r->raw = false;
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* the caller's stdout is gone: drop the output, keep the sandbox */
        p += w;
        n -= (size_t)w;
    }
}

/* Copy what the sandbox's terminal has for the caller. false once it is closed (EIO/EOF). */
static bool relay_out(struct relay *r)
{
    char buf[16384];
    for (int rounds = 0; rounds < 16; rounds++) {
        ssize_t n = read(r->master, buf, sizeof buf);
        if (n > 0) {
            write_all(1, buf, (size_t)n);
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return true;
        return false;
    }
    return true;
}

static void relay_in(struct relay *r)
{
    if (r->tm_len == 0) {
        ssize_t n = read(0, r->to_master, sizeof r->to_master);
        if (n <= 0) {
            if (n == 0 || (errno != EAGAIN && errno != EINTR))
                r->in_open = false;
            return;
        }
        r->tm_len = (size_t)n;
    }
}

static void relay_flush_in(struct relay *r)
{
    while (r->tm_len > 0) {
        ssize_t w = write(r->master, r->to_master, r->tm_len);
        if (w < 0) {
            if (errno != EAGAIN && errno != EINTR)
                r->tm_len = 0; /* the sandbox's terminal is gone */
            return;
        }
        memmove(r->to_master, r->to_master + w, r->tm_len - (size_t)w);
        r->tm_len -= (size_t)w;
    }
}

static void relay_winch(const struct relay *r)
{
    struct winsize ws;
    if (r->on && ioctl(0, TIOCGWINSZ, &ws) == 0)
        ioctl(r->master, TIOCSWINSZ, &ws);
}

/* ---------------------------------------------------------------- memory */

/* The launcher lives as long as the sandbox but, once it runs, only polls. Startup touched most of
 * libc's and paddock's code (policy loading, the sandbox's setup); those text pages stay counted in
 * its RSS although it will not run them again. Unmap them from this process (they are read-only
 * file pages: the page cache keeps them and a later use faults them back in), so a long-lived
 * launcher costs its working set, not its startup. Only the executable, never written segments
 * of the loaded files: never data, RELRO or anything written. */
static int trim_object(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    (void)data;
    if (info->dlpi_name && !strncmp(info->dlpi_name, "linux-", 6))
        return 0; /* the vDSO (linux-vdso.so.1, linux-gate.so.1): not a file mapping */
    long page = sysconf(_SC_PAGESIZE);
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X) || (ph->p_flags & PF_W))
            continue;
        uintptr_t lo = (info->dlpi_addr + ph->p_vaddr) & ~((uintptr_t)page - 1);
        uintptr_t hi = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
        madvise((void *)lo, hi - lo, MADV_DONTNEED);
    }
    return 0;
}

static void trim_startup_text(void)
{
    /* The loaded objects' executable segments, straight from the dynamic linker (no /proc read). */
    dl_iterate_phdr(trim_object, NULL);
}

/* ---------------------------------------------------------------- supervise */

static int arm(int tfd, unsigned seconds)
{
    struct itimerspec its;
    memset(&its, 0, sizeof its);
    its.it_value.tv_sec = (time_t)seconds;
    return timerfd_settime(tfd, 0, &its, NULL);
}

int pd_run_supervise(struct run_ctx *ctx)
{
    struct pd_sandbox *sb = ctx->sb;
    struct pd_err err = {{0}};
    struct run_gateway *gw = &ctx->gw;
    /* Socket activation: the listeners wait here until the sandbox first uses the network; then
     * the gateway starts and takes them. Until then nothing is accepted or answered (connections
     * and queries queue in the sockets), so nothing can leave either way. */
    int lfds[3] = {pd_sandbox_take_proxy_fd(sb), pd_sandbox_take_dns_udp_fd(sb),
                   pd_sandbox_take_dns_tcp_fd(sb)};
    bool activated = false;

    sigset_t set;
    sigemptyset(&set);
    int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH, SIGCHLD, SIGUSR1, SIGUSR2};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaddset(&set, sigs[i]);
    int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (sfd < 0 || tfd < 0) {
        fprintf(stderr, "paddock run: signalfd/timerfd: %s\n", strerror(errno));
        if (sfd >= 0)
            close(sfd);
        if (tfd >= 0)
            close(tfd);
        pd_run_gateway_stop(gw);
        pd_sandbox_free(sb);
        return 125;
    }
    if (ctx->timeout_s)
        arm(tfd, ctx->timeout_s);

    /* While the command runs: the cgroups of launchers killed before they could clean up. */
    pd_cgroup_sweep(NULL, "paddock-");
    trim_startup_text();
    struct relay r;
    memset(&r, 0, sizeof r);
    relay_begin(&r, ctx->pty ? pd_sandbox_pty_master(sb) : -1);

    bool timed_out = false, stopping = false, killed = false;
    for (;;) {
        struct pollfd p[9];
        nfds_t n = 0;
        p[n++] = (struct pollfd){.fd = pd_sandbox_pidfd(sb), .events = POLLIN};
        p[n++] = (struct pollfd){.fd = sfd, .events = POLLIN};
        p[n++] = (struct pollfd){.fd = tfd, .events = POLLIN};
        p[n++] = (struct pollfd){.fd = gw->pidfd, .events = POLLIN}; /* -1 is ignored by poll */
        p[n++] =
            (struct pollfd){.fd = r.on && r.in_open && r.tm_len == 0 ? 0 : -1, .events = POLLIN};
        p[n++] = (struct pollfd){.fd = r.on ? r.master : -1,
                                 .events = (short)(POLLIN | (r.tm_len ? POLLOUT : 0))};
        for (int i = 0; i < 3; i++)
            p[n++] = (struct pollfd){.fd = activated ? -1 : lfds[i], .events = POLLIN};
        int prc = poll(p, n, -1);
        if (prc < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "paddock run: poll: %s\n", strerror(errno));
            pd_sandbox_signal(sb, SIGKILL);
            break;
        }
        if (p[5].revents & (POLLIN | POLLHUP | POLLERR)) {
            if (!relay_out(&r))
                p[5].fd = -1;
        }
        if (p[5].revents & POLLOUT)
            relay_flush_in(&r);
        if (p[4].revents & (POLLIN | POLLHUP | POLLERR)) {
            relay_in(&r);
            relay_flush_in(&r);
        }
        if (p[1].revents & POLLIN) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
                int sig = (int)si.ssi_signo;
                if (sig == SIGCHLD)
                    continue; /* pidfds say who ended */
                if (sig == SIGWINCH) {
                    relay_winch(&r);
                    continue;
                }
                if ((sig == SIGINT || sig == SIGTERM || sig == SIGHUP || sig == SIGQUIT) &&
                    stopping) {
                    if (!killed)
                        fprintf(stderr, "\r\npaddock run: second %s: killing the sandbox\r\n",
                                strsignal(sig));
                    killed = true;
                    pd_sandbox_signal(sb, SIGKILL);
                    continue;
                }
                pd_sandbox_signal(sb, sig);
                if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP || sig == SIGQUIT) {
                    stopping = true;
                    if (!timed_out)
                        arm(tfd, STOP_GRACE_S);
                }
            }
        }
        if (p[2].revents & POLLIN) {
            uint64_t ticks;
            if (read(tfd, &ticks, sizeof ticks) < 0) {
                /* nothing to do: the timer fired */
            }
            if (stopping && !timed_out) {
                fprintf(stderr,
                        "\r\npaddock run: the command did not stop within %d s of the "
                        "signal: killing the sandbox\r\n",
                        STOP_GRACE_S);
            } else {
                timed_out = true;
                fprintf(stderr, "\r\npaddock run: timeout after %u s: stopping the sandbox\r\n",
                        ctx->timeout_s);
            }
            pd_sandbox_signal(sb, SIGKILL);
        }
        if (p[3].revents & POLLIN) {
            siginfo_t si;
            memset(&si, 0, sizeof si);
            waitid((idtype_t)P_PIDFD, (id_t)gw->pidfd, &si, WEXITED);
            fprintf(stderr,
                    "\r\npaddock run: the gateway ended (%s %d; see %s); the sandbox has no "
                    "network from now on\r\n",
                    si.si_code == CLD_EXITED ? "status" : "signal", si.si_status, ctx->log_path);
            close(gw->pidfd);
            gw->pidfd = -1;
        }
        if (!activated && ((p[6].revents | p[7].revents | p[8].revents) & (POLLIN | POLLERR))) {
            activated = true;
            activate_gateway(ctx, lfds);
        }
        if (p[0].revents & POLLIN)
            break;
    }
    int status = pd_sandbox_wait(sb, &err);
    if (status < 0) {
        fprintf(stderr, "paddock run: %s\n", err.msg);
        status = 125;
    }
    if (r.on) {
        /* What the agent wrote last is still in the terminal's buffer. */
        while (relay_out(&r)) {
            struct pollfd pm = {.fd = r.master, .events = POLLIN};
            if (poll(&pm, 1, 0) <= 0)
                break;
        }
    }
    relay_end(&r);
    struct pd_cg_events ev;
    pd_sandbox_events(sb, &ev);
    if (ev.oom_kills)
        fprintf(stderr,
                "paddock run: the sandbox reached its memory limit (%llu process(es) "
                "killed)\n",
                (unsigned long long)ev.oom_kills);
    if (ev.pids_max_hits)
        fprintf(stderr,
                "paddock run: the sandbox reached its process limit (%llu fork(s) "
                "refused)\n",
                (unsigned long long)ev.pids_max_hits);
    for (int i = 0; i < 3; i++)
        if (lfds[i] >= 0)
            close(lfds[i]);
    gateway_term(gw); /* it shuts down while the sandbox's cgroup is removed */
    pd_sandbox_free(sb);
    pd_run_gateway_stop(gw);
    close(sfd);
    close(tfd);
    return timed_out ? 124 : status;
}
