/*
 * sandbox.h - start one sandbox: the namespaces, the filesystem, the listening sockets the gateway
 * will serve, the PID-1 init and the agent's command in it. `paddock run` (src/cli/cmd_run.c) is
 * the one-shot front; agentd will reuse the same calls for long-lived sandboxes.
 *
 * Process model:
 *   caller (launcher) --clone3(NEWUSER|NEWNS|NEWPID|NEWNET|NEWUTS|NEWIPC|NEWCGROUP, PIDFD)--> S
 *   The caller writes S's uid/gid maps (identity: the caller's uid and gid; setgroups deny) and
 *   puts S in the sandbox's cgroup, then lets it go. S, PID 1 of the new PID namespace with every
 *   capability of its user namespace: sets the host name, brings `lo` up, creates the listeners
 *   (127.0.0.1:3128 TCP, 127.0.0.1:53 UDP and TCP), builds the filesystem (fs.h) and, when asked,
 *   a pseudo-terminal in the sandbox's own devpts; sends the listener fds (and the terminal's
 *   master) to the caller over a SOCK_SEQPACKET pair (SCM_RIGHTS) and closes its copies; forks the
 *   agent; then confines itself (no capabilities, no_new_privs, the syscall filter) and becomes
 *   init (init.c): it reaps every process, forwards SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1/2,
 *   SIGWINCH and SIGCONT to the agent through a pidfd, and when the agent ends, kills everything
 *   left and exits with the agent's status (128+N when a signal N killed it). When init ends, the
 *   kernel ends every process of the PID namespace.
 *   The agent process: new session (controlling terminal = the sandbox's pty when there is one),
 *   cwd /workspace, Landlock (fs.h), every capability dropped (effective, permitted, inheritable,
 *   ambient, bounding) with securebits locked, no_new_privs, rlimits when no cgroup, then execvpe
 *   of the command with exactly the given environment and fds 0-2.
 *
 * Failure: a layer that cannot be set up makes pd_sandbox_start() fail with err naming the layer
 * ("netns: ...") and the step, unless spec->degraded allows that layer to be skipped (then the
 * caller is told in `warnings`). Nothing is left behind on failure: S is killed and reaped, fds
 * closed. Exec failures of the command itself are the agent's: it prints "paddock: CMD: reason" on
 * its stderr and exits 127 (not found) or 126 (not executable), like a shell.
 *
 * Threads: call from a single-threaded process (clone3 without CLONE_VM, like fork).
 * Ownership: the caller owns the returned fds (listeners, pty master) and the sandbox object.
 */
#ifndef PD_SANDBOX_SANDBOX_H
#define PD_SANDBOX_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/types.h>

#include "core/err.h"
#include "sandbox/cgroup.h"
#include "sandbox/fs.h"

#define PD_SANDBOX_PROXY_PORT 3128
#define PD_SANDBOX_DNS_PORT 53

/* Layers that --allow-degraded may name (bit flags). */
enum {
    PD_SB_LAYER_USERNS = 1u << 0,
    PD_SB_LAYER_NETNS = 1u << 1,
    PD_SB_LAYER_LANDLOCK = 1u << 2,
    PD_SB_LAYER_CGROUP = 1u << 3,
    PD_SB_LAYER_SECCOMP = 1u << 4,
};

/* Parse a layer name ("userns", "netns", "landlock", "cgroup", "seccomp"); 0 when unknown. */
unsigned pd_sandbox_layer_bit(const char *name);
/* The names, comma-separated, for messages. */
const char *pd_sandbox_layer_names(void);

struct pd_sandbox_spec {
    char *const *argv; /* the command, argv[0] looked up in the sandbox's PATH */
    char *const *envp; /* the whole environment of the command */
    struct pd_fs_plan fs; /* the filesystem (fs.h); fs.uid/gid are filled by pd_sandbox_start */
    struct pd_limits limits; /* resource limits (cgroup.h) */
    const char *name; /* sandbox id: cgroup "paddock-<name>-<launcher pid>" */
    const char *hostname; /* UTS name inside */
    bool pty; /* give the sandbox its own terminal (the caller relays it) */
    struct winsize winsize; /* its first size, when pty */
    unsigned degraded; /* PD_SB_LAYER_* the caller allows to be missing */
    /* Filled by pd_sandbox_start for the sandbox's side (callers leave them zero). */
    bool userns; /* the sandbox has its own user namespace */
};

struct pd_sandbox;

/* Start the sandbox (see the contract above). Returns 0 when the agent runs; 1 when the sandbox
 * started but the command could not be executed (err says "CMD: reason"; init then ends with 127
 * or 126, which pd_sandbox_wait returns); -1 with err when the sandbox could not be set up (nothing
 * is left). On 0 and 1 *out holds the sandbox. warnings (may be NULL, cap bytes) receives one line
 * per layer that was skipped or weakened, "" when none. */
int pd_sandbox_start(const struct pd_sandbox_spec *spec, struct pd_sandbox **out, char *warnings,
                     size_t cap, struct pd_err *err);

/* The listening sockets created inside the sandbox's network namespace, for the gateway. Each call
 * hands over ownership (later calls return -1). */
int pd_sandbox_take_proxy_fd(struct pd_sandbox *sb);
int pd_sandbox_take_dns_udp_fd(struct pd_sandbox *sb);
int pd_sandbox_take_dns_tcp_fd(struct pd_sandbox *sb);
/* The master side of the sandbox's terminal (pty mode), or -1. Owned by the sandbox. */
int pd_sandbox_pty_master(const struct pd_sandbox *sb);
/* A pidfd of init: readable once the sandbox has ended. */
int pd_sandbox_pidfd(const struct pd_sandbox *sb);
/* Signal init (which forwards to the agent; SIGKILL ends the sandbox at once). 0 or -1 (errno). */
int pd_sandbox_signal(struct pd_sandbox *sb, int sig);
/* After pd_sandbox_pidfd() became readable (or to block until it does): reap init and return the
 * exit status to report (the agent's status, 128+N for a signal), or -1 with err. */
int pd_sandbox_wait(struct pd_sandbox *sb, struct pd_err *err);
/* What the cgroup saw (zeroes without a cgroup). */
void pd_sandbox_events(const struct pd_sandbox *sb, struct pd_cg_events *ev);
/* Kill whatever is left (SIGKILL to init), reap it, remove the cgroup, close every fd, free. Safe
 * with NULL. */
void pd_sandbox_free(struct pd_sandbox *sb);

#endif
