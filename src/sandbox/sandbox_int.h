/*
 * sandbox_int.h - private to src/sandbox/{launch,child,init,netns,fdpass}.c: the messages between
 * the launcher and the sandbox's first process, and the steps each side runs. sandbox.h is the
 * module's contract.
 */
#ifndef PD_SANDBOX_SANDBOX_INT_H
#define PD_SANDBOX_SANDBOX_INT_H

#include <stddef.h>
#include <linux/filter.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/err.h"
#include "core/fdpass.h"
#include "sandbox/sandbox.h"

/* S -> launcher messages (SOCK_SEQPACKET: one message per send). */
enum sb_msg_kind {
    SB_MSG_READY = 1, /* fds: proxy, dns udp, dns tcp[, pty master]; text: warnings */
    SB_MSG_STARTED, /* the agent exec'd */
    SB_MSG_ERROR, /* text: "layer: step: reason"; code: exit status to report (125) */
    SB_MSG_EXEC_FAILED, /* text: "CMD: reason"; code: 126 or 127 */
};

struct sb_msg {
    uint32_t kind;
    uint32_t code;
    char text[PD_ERR_MAX];
};

/* launcher -> S: a single byte once the maps are written (S then builds the namespaces' contents),
 * then SB_MSG_PROCEED once S is in the sandbox's cgroup, with the syscall filter the launcher
 * compiled meanwhile (ninsns 0: run without it, --allow-degraded=seccomp). S forks the command only
 * after it. */
#define SB_GO 'g'
#define SB_MSG_PROCEED 0x50524f43u
#define SB_PROCEED_RLIMITS 1u /* no cgroup: the agent applies the limits as rlimits */
struct sb_proceed {
    uint32_t kind;
    uint32_t flags;
    uint32_t ninsns;
    struct sock_filter insns[]; /* at most BPF_MAXINSNS */
};

/* netns.c, in S: bring lo up, then the three listeners (127.0.0.1:3128 TCP, :53 UDP and TCP). */
int sb_net_setup(int *proxy, int *dns_udp, int *dns_tcp, struct pd_err *err);

/* caps.c: drop every capability (bounding, ambient, inheritable, permitted, effective), lock the
 * securebits so exec as uid 0 grants nothing, set no_new_privs. */
int sb_drop_privileges(struct pd_err *err);

/* child.c: S's whole life (never returns). ctl is the launcher's SOCK_SEQPACKET end. */
_Noreturn void sb_child_main(const struct pd_sandbox_spec *spec, int ctl);

/* init.c: PID 1's loop once the agent runs (never returns); exits with the agent's status. */
_Noreturn void sb_init_run(pid_t agent, int agent_pidfd);

#endif
