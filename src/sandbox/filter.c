/* filter.c - the sandbox's syscall filter (see filter.h and docs/sandbox-seccomp.md). */
#include "sandbox/filter.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <linux/netlink.h>
#include <sched.h>
#include <seccomp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
#ifndef TIOCLINUX
#define TIOCLINUX 0x541C
#endif

/* The whole table: entries whose name is a bare syscall are refused whatever their arguments
 * (EPERM); the others carry their condition in the name and are built by hand below. */
static const struct pd_filter_entry table[] = {
    {"ptrace", "read and write another process's memory and registers"},
    {"process_vm_readv", "read another process's memory"},
    {"process_vm_writev", "write another process's memory"},
    {"mount", "change the filesystem view the sandbox was given"},
    {"umount2", "uncover what a mount hides (masked credential paths)"},
    {"pivot_root", "change the root of the mount namespace"},
    {"chroot", "change the root directory"},
    {"open_tree", "new mount API: clone a mount"},
    {"move_mount", "new mount API: attach a mount"},
    {"fsopen", "new mount API: create a filesystem context"},
    {"fsconfig", "new mount API: configure it"},
    {"fsmount", "new mount API: make a mount of it"},
    {"fspick", "new mount API: reconfigure a mount"},
    {"mount_setattr", "new mount API: change mount flags (e.g. make read-only writable)"},
    {"unshare", "new namespaces: a fresh user namespace regains every capability inside it"},
    {"setns", "join another namespace"},
    {"bpf", "load programs into the kernel"},
    {"perf_event_open", "kernel profiling: a large attack surface and information leaks"},
    {"userfaultfd", "stall the kernel at chosen points (exploitation aid)"},
    {"keyctl", "the kernel keyring is not namespaced: keys of other users and sessions"},
    {"add_key", "the kernel keyring"},
    {"request_key", "the kernel keyring"},
    {"kexec_load", "replace the running kernel"},
    {"kexec_file_load", "replace the running kernel"},
    {"init_module", "load a kernel module"},
    {"finit_module", "load a kernel module"},
    {"delete_module", "unload a kernel module"},
    {"io_uring_setup", "io_uring runs operations outside this filter's view"},
    {"io_uring_enter", "io_uring"},
    {"io_uring_register", "io_uring"},
    {"open_by_handle_at", "open any file of a filesystem by handle, bypassing the mount view"},
    {"name_to_handle_at", "make such handles"},
    {"lookup_dcookie", "kernel profiling interface"},
    {"acct", "process accounting for the whole host"},
    {"swapon", "host memory management"},
    {"swapoff", "host memory management"},
    {"reboot", "the host's power state"},
    {"syslog", "the kernel log (host addresses, other tenants' messages)"},
    {"quotactl", "filesystem quotas of the host"},
    {"iopl", "direct I/O port access"},
    {"ioperm", "direct I/O port access"},
    {"settimeofday", "the host clock"},
    {"clock_settime", "the host clock"},
    {"clock_adjtime", "the host clock"},
    {"vhangup", "hang up the terminal"},
    {"clone3", "ENOSYS: its flags are in memory the filter cannot read; libc then uses clone"},
    {"clone(CLONE_NEW*)", "new namespaces (as unshare)"},
    {"ioctl(TIOCSTI)", "push characters into the terminal's input: commands typed on the host"},
    {"ioctl(TIOCLINUX)", "the same through the Linux console"},
    {"socket(AF_PACKET)", "raw link-layer frames: bypass the network namespace's rules"},
    {"socket(AF_INET/AF_INET6, SOCK_RAW or SOCK_PACKET)", "raw IP: forge packets"},
    {"socket(AF_NETLINK, protocol other than NETLINK_ROUTE)",
     "kernel interfaces (audit, uevents, ...); libc needs only NETLINK_ROUTE"},
    {"socket(AF_VSOCK)", "talk to the hypervisor or other VMs"},
    {"chmod/fchmod/fchmodat(mode with S_ISUID or S_ISGID)",
     "a set-id file left in the workspace runs with the caller's ids on the host (nosuid only "
     "holds inside)"},
    {"open/openat/creat(O_CREAT or O_TMPFILE, mode with S_ISUID or S_ISGID)",
     "the same, set at creation"},
    {"mknod/mknodat(mode with S_ISUID or S_ISGID)", "the same, through mknod of a regular file"},
    {"openat2", "ENOSYS: its mode is in memory the filter cannot read; libc uses openat"},
    {"fchmodat2", "ENOSYS: as fchmodat, with flags; libc falls back to fchmodat"},
    {"other ABIs (i386 int 0x80, x32)",
     "a deny list for one syscall table means nothing for another"},
};

#define NTABLE (sizeof table / sizeof table[0])

const struct pd_filter_entry *pd_sandbox_filter_table(size_t *n)
{
    *n = NTABLE;
    return table;
}

static scmp_filter_ctx fail(scmp_filter_ctx ctx, struct pd_err *err, const char *what, int rc)
{
    pd_err_set(err, "sandbox syscall filter: %s: %s", what, strerror(rc < 0 ? -rc : rc));
    seccomp_release(ctx);
    return NULL;
}

#define EPERM_ACT SCMP_ACT_ERRNO(EPERM)

/* One argument comparison with every field set (libseccomp's SCMP_An leaves datum_b out for
 * two-operand forms, which -Wmissing-field-initializers rejects). */
static struct scmp_arg_cmp arg(unsigned n, enum scmp_compare op, uint64_t a, uint64_t b)
{
    return (struct scmp_arg_cmp){.arg = n, .op = op, .datum_a = a, .datum_b = b};
}

/* The filter as a libseccomp context (the caller releases it), or NULL with err. */
static scmp_filter_ctx build_ctx(struct pd_err *err)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx) {
        pd_err_set(err, "sandbox syscall filter: seccomp_init failed");
        return NULL;
    }
    int rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, EPERM_ACT);
    if (rc != 0)
        return fail(ctx, err, "refusing other ABIs", rc);
    for (size_t i = 0; i < NTABLE; i++) {
        if (strchr(table[i].name, '(') || strchr(table[i].name, ' ') ||
            strcmp(table[i].name, "clone3") == 0 || strcmp(table[i].name, "openat2") == 0 ||
            strcmp(table[i].name, "fchmodat2") == 0)
            continue; /* conditional or ENOSYS: below */
        int nr = seccomp_syscall_resolve_name(table[i].name);
        if (nr == __NR_SCMP_ERROR)
            continue; /* not a syscall of this architecture: nothing to refuse */
        if ((rc = seccomp_rule_add(ctx, EPERM_ACT, nr, 0)) != 0)
            return fail(ctx, err, table[i].name, rc);
    }
    /* Set-id bits: refused when the mode argument carries S_ISUID or S_ISGID (one rule per bit:
     * a masked comparison tests equality, "any of these bits" needs two). */
    static const uint64_t setid[] = {S_ISUID, S_ISGID};
    static const struct {
        const char *name;
        unsigned mode_arg;
    } chmods[] = {{"chmod", 1}, {"fchmod", 1},  {"fchmodat", 2},
                  {"mknod", 1}, {"mknodat", 2}, {"creat", 1}};
    for (size_t i = 0; i < sizeof chmods / sizeof chmods[0]; i++) {
        int nr = seccomp_syscall_resolve_name(chmods[i].name);
        for (size_t b = 0; nr != __NR_SCMP_ERROR && b < 2; b++)
            if ((rc = seccomp_rule_add(
                     ctx, EPERM_ACT, nr, 1,
                     arg(chmods[i].mode_arg, SCMP_CMP_MASKED_EQ, setid[b], setid[b]))) != 0)
                return fail(ctx, err, chmods[i].name, rc);
    }
    /* open/openat: only with O_CREAT or O_TMPFILE is the mode argument meaningful (otherwise it
     * is whatever the register held). */
    static const uint64_t creating[] = {O_CREAT, __O_TMPFILE};
    static const struct {
        const char *name;
        unsigned flags_arg, mode_arg;
    } opens[] = {{"open", 1, 2}, {"openat", 2, 3}};
    for (size_t i = 0; i < sizeof opens / sizeof opens[0]; i++) {
        int nr = seccomp_syscall_resolve_name(opens[i].name);
        for (size_t c = 0; nr != __NR_SCMP_ERROR && c < 2; c++)
            for (size_t b = 0; b < 2; b++)
                if ((rc = seccomp_rule_add(
                         ctx, EPERM_ACT, nr, 2,
                         arg(opens[i].flags_arg, SCMP_CMP_MASKED_EQ, creating[c], creating[c]),
                         arg(opens[i].mode_arg, SCMP_CMP_MASKED_EQ, setid[b], setid[b]))) != 0)
                    return fail(ctx, err, opens[i].name, rc);
    }
    /* openat2 and fchmodat2 keep their mode where the filter cannot check it (a struct) or are
     * newer than libseccomp's tables: ENOSYS, and libc takes the older call. */
    static const struct {
        const char *name;
        int nr;
    } enosys[] = {{"openat2", 437}, {"fchmodat2", 452}};
    for (size_t i = 0; i < sizeof enosys / sizeof enosys[0]; i++) {
        int nr = seccomp_syscall_resolve_name(enosys[i].name);
        if (nr == __NR_SCMP_ERROR)
            nr = enosys[i].nr; /* x86_64 numbers; the filter is native-only */
        if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), nr, 0)) != 0)
            return fail(ctx, err, enosys[i].name, rc);
    }
    int clone3 = seccomp_syscall_resolve_name("clone3");
    if (clone3 != __NR_SCMP_ERROR &&
        (rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), clone3, 0)) != 0)
        return fail(ctx, err, "clone3", rc);
    static const uint64_t ns_flags[] = {CLONE_NEWNS,  CLONE_NEWUTS, CLONE_NEWIPC,    CLONE_NEWUSER,
                                        CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP, CLONE_NEWTIME};
    for (size_t i = 0; i < sizeof ns_flags / sizeof ns_flags[0]; i++)
        if ((rc = seccomp_rule_add(ctx, EPERM_ACT, SCMP_SYS(clone), 1,
                                   arg(0, SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]))) != 0)
            return fail(ctx, err, "clone(CLONE_NEW*)", rc);
    /* ioctl's request is an unsigned int passed in a 64-bit register: compare the low 32 bits. */
    static const uint64_t ioctls[] = {TIOCSTI, TIOCLINUX};
    for (size_t i = 0; i < sizeof ioctls / sizeof ioctls[0]; i++)
        if ((rc = seccomp_rule_add(ctx, EPERM_ACT, SCMP_SYS(ioctl), 1,
                                   arg(1, SCMP_CMP_MASKED_EQ, 0xffffffffu, ioctls[i]))) != 0)
            return fail(ctx, err, "ioctl", rc);
    static const uint64_t families[] = {AF_PACKET, AF_VSOCK};
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++)
        if ((rc = seccomp_rule_add(ctx, EPERM_ACT, SCMP_SYS(socket), 1,
                                   arg(0, SCMP_CMP_EQ, families[i], 0))) != 0)
            return fail(ctx, err, "socket(family)", rc);
    /* The socket type carries SOCK_NONBLOCK/SOCK_CLOEXEC in its high bits: compare the low 4. */
    static const uint64_t inet[] = {AF_INET, AF_INET6};
    static const uint64_t raw_types[] = {SOCK_RAW, SOCK_PACKET};
    for (size_t i = 0; i < 2; i++)
        for (size_t j = 0; j < 2; j++)
            if ((rc = seccomp_rule_add(ctx, EPERM_ACT, SCMP_SYS(socket), 2,
                                       arg(0, SCMP_CMP_EQ, inet[i], 0),
                                       arg(1, SCMP_CMP_MASKED_EQ, 0xf, raw_types[j]))) != 0)
                return fail(ctx, err, "socket(SOCK_RAW)", rc);
    if ((rc = seccomp_rule_add(ctx, EPERM_ACT, SCMP_SYS(socket), 2,
                               arg(0, SCMP_CMP_EQ, AF_NETLINK, 0),
                               arg(2, SCMP_CMP_NE, NETLINK_ROUTE, 0))) != 0)
        return fail(ctx, err, "socket(AF_NETLINK)", rc);
    return ctx;
}

int pd_sandbox_filter_build(struct pd_filter_prog *out, struct pd_err *err)
{
    memset(out, 0, sizeof *out);
    scmp_filter_ctx ctx = build_ctx(err);
    if (!ctx)
        return -1;
    int fd = memfd_create("paddock-seccomp", MFD_CLOEXEC);
    if (fd < 0) {
        seccomp_release(ctx);
        pd_err_set(err, "sandbox syscall filter: memfd_create: %s", strerror(errno));
        return -1;
    }
    int rc = seccomp_export_bpf(ctx, fd);
    seccomp_release(ctx);
    struct stat st;
    if (rc != 0 || fstat(fd, &st) != 0 || st.st_size <= 0 ||
        st.st_size % (off_t)sizeof(struct sock_filter) != 0 ||
        st.st_size / (off_t)sizeof(struct sock_filter) > BPF_MAXINSNS) {
        close(fd);
        pd_err_set(err, "sandbox syscall filter: exporting the BPF program failed (%s)",
                   rc ? strerror(-rc) : "bad size");
        return -1;
    }
    size_t len = (size_t)st.st_size;
    out->insns = malloc(len);
    ssize_t n = out->insns ? pread(fd, out->insns, len, 0) : -1;
    close(fd);
    if (n != (ssize_t)len) {
        pd_sandbox_filter_prog_free(out);
        pd_err_set(err, "sandbox syscall filter: reading the BPF program back failed");
        return -1;
    }
    out->len = (unsigned short)(len / sizeof(struct sock_filter));
    return 0;
}

int pd_sandbox_filter_install(const struct pd_filter_prog *p, struct pd_err *err)
{
    struct sock_fprog fp = {.len = p->len, .filter = p->insns};
    if (!p->insns || p->len == 0) {
        pd_err_set(err, "sandbox syscall filter: no program to install");
        return -1;
    }
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fp) != 0) {
        pd_err_set(err, "sandbox syscall filter: seccomp(SECCOMP_SET_MODE_FILTER): %s%s",
                   strerror(errno), errno == EACCES ? " (no_new_privs must be set first)" : "");
        return -1;
    }
    return 0;
}

void pd_sandbox_filter_prog_free(struct pd_filter_prog *p)
{
    free(p->insns);
    p->insns = NULL;
    p->len = 0;
}

int pd_sandbox_filter_load(struct pd_err *err)
{
    struct pd_filter_prog p;
    if (pd_sandbox_filter_build(&p, err) != 0)
        return -1;
    int rc = pd_sandbox_filter_install(&p, err);
    pd_sandbox_filter_prog_free(&p);
    return rc;
}
