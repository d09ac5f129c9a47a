/*
 * init.c - PID 1 of the sandbox (see sandbox.h): reap, forward, end with the agent.
 *
 * Every signal is blocked (child.c did it before forking the agent) and taken with sigwaitinfo, so
 * none is lost and no handler runs. Signals from the launcher reach a PID-namespace init only
 * because they are blocked (a blocked signal is queued even for an "unkillable" init). Forwarding
 * goes through the agent's pidfd: the agent is init's child and is reaped only here, so the pidfd
 * and the pid name the same process until then.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/sys_compat.h"
#include "sandbox/sandbox_int.h"

static bool forwarded(int sig)
{
    switch (sig) {
    case SIGTERM:
    case SIGINT:
    case SIGHUP:
    case SIGQUIT:
    case SIGUSR1:
    case SIGUSR2:
    case SIGWINCH:
    case SIGCONT:
        return true;
    default:
        return false;
    }
}

_Noreturn void sb_init_run(pid_t agent, int agent_pidfd)
{
    sigset_t all;
    sigfillset(&all);
    bool agent_done = false;
    int code = 0;
    for (;;) {
        /* Reap whatever has ended; the agent's end ends the sandbox. */
        for (;;) {
            int st = 0;
            pid_t p = waitpid(-1, &st, WNOHANG);
            if (p <= 0) {
                if (p < 0 && errno == ECHILD && agent_done)
                    _exit(code);
                break;
            }
            if (p == agent) {
                agent_done = true;
                code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
                close(agent_pidfd);
                agent_pidfd = -1;
                /* Everything left behind (daemons, background jobs) goes with it. */
                kill(-1, SIGKILL);
            }
        }
        siginfo_t si;
        int sig = sigwaitinfo(&all, &si);
        if (sig < 0)
            continue;
        if (sig == SIGCHLD || agent_done || !forwarded(sig))
            continue;
        syscall(SYS_pidfd_send_signal, agent_pidfd, sig, NULL, 0);
    }
}
