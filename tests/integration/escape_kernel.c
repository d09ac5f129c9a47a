/*
 * escape_kernel.c - the escape probe's attempts on the kernel's process, mount, namespace and other
 * privileged interfaces: ptrace, process-vm-readv, mount, new-mount-api, pivot-root, unshare,
 * setns, clone-newuser, tiocsti, io-uring, bpf, perf-event-open, userfaultfd, keyctl, kexec-load,
 * init-module, open-by-handle-at, i386, mknod. The contract is at the top of escape.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/io_uring.h>
#include <linux/kexec.h>
#include <linux/keyctl.h>
#include <linux/perf_event.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "escape.h"

#ifndef PTRACE_TRACEME
#define PTRACE_TRACEME 0
#endif
#ifndef PTRACE_ATTACH
#define PTRACE_ATTACH 16
#endif
#ifndef PTRACE_DETACH
#define PTRACE_DETACH 17
#endif
#ifndef PTRACE_KILL
#define PTRACE_KILL 8
#endif
#ifndef FSOPEN_CLOEXEC
#define FSOPEN_CLOEXEC 0x00000001
#endif
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

/* ---------------------------------------------------------------- process attacks */

static pid_t target_parent(void)
{
    pid_t pp = getppid();
    return pp > 0 ? pp : 1;
}

void esc_a_ptrace(struct out *o)
{
    pid_t target = target_parent();
    errno = 0;
    long rc = syscall(SYS_ptrace, PTRACE_ATTACH, (long)target, 0L, 0L);
    int err = errno;
    char label[64];
    snprintf(label, sizeof label, "PTRACE_ATTACH pid %d", (int)target);
    esc_try_result(o, label, rc == 0, err);
    if (rc == 0) {
        int st = 0;
        waitpid(target, &st, __WALL);
        syscall(SYS_ptrace, PTRACE_DETACH, (long)target, 0L, 0L);
    }

    /* PTRACE_TRACEME, then exec: the child reports the ptrace result through a pipe before exec. */
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
        esc_probe_error(o, errno, "pipe: %s", strerror(errno));
        return;
    }
    pid_t pid = fork();
    if (pid < 0) {
        esc_probe_error(o, errno, "fork: %s", strerror(errno));
        close(p[0]);
        close(p[1]);
        return;
    }
    if (pid == 0) {
        close(p[0]);
        errno = 0;
        int e = syscall(SYS_ptrace, PTRACE_TRACEME, 0L, 0L, 0L) == 0 ? 0 : errno;
        if (write(p[1], &e, sizeof e) != (ssize_t)sizeof e)
            _exit(5);
        if (e)
            _exit(0);
        char *argv[] = {(char *)"/bin/true", NULL};
        execv(argv[0], argv);
        _exit(6);
    }
    close(p[1]);
    int e = -1;
    ssize_t n = read(p[0], &e, sizeof e);
    close(p[0]);
    if (n != (ssize_t)sizeof e) {
        kill(pid, SIGKILL);
        esc_reap(pid);
        esc_probe_error(o, 0, "PTRACE_TRACEME child did not report");
        return;
    }
    int st = 0;
    if (e == 0) {
        /* Traced: the exec stops it with SIGTRAP; we are its tracer. */
        if (waitpid(pid, &st, __WALL) == pid && WIFSTOPPED(st))
            syscall(SYS_ptrace, PTRACE_KILL, (long)pid, 0L, 0L);
        kill(pid, SIGKILL);
    }
    esc_reap(pid);
    esc_try_result(o, "PTRACE_TRACEME+exec", e == 0, e);
}

/* The first mapping of pid, from /proc/PID/maps; 0 if unreadable. */
static uintptr_t first_mapping(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    unsigned long long start = 0;
    if (fscanf(f, "%llx-", &start) != 1)
        start = 0;
    fclose(f);
    return (uintptr_t)start;
}

void esc_a_process_vm_readv(struct out *o)
{
    pid_t target = target_parent();
    char buf[64];
    uintptr_t addr = first_mapping(target);
    if (!addr)
        addr = (uintptr_t)buf; /* unknown layout: the access check comes before the copy */
    struct iovec local = {buf, sizeof buf};
    struct iovec remote = {(void *)addr, sizeof buf};
    errno = 0;
    long rc = syscall(SYS_process_vm_readv, (long)target, &local, 1L, &remote, 1L, 0L);
    int err = errno;
    char label[64];
    snprintf(label, sizeof label, "process_vm_readv pid %d", (int)target);
    if (rc > 0) {
        esc_try_result(o, label, true, 0);
        esc_detail(o, "read %ld bytes", rc);
    } else if (rc < 0 && err == EFAULT) {
        o->escaped = true;
        esc_detail(o, "%s: access check passed (EFAULT on the address)", label);
    } else {
        esc_try_result(o, label, false, rc == 0 ? EIO : err);
    }
}

/* ---------------------------------------------------------------- mounts and namespaces */

void esc_a_mount(struct out *o)
{
    if (mkdir("/tmp/x", 0755) != 0 && errno != EEXIST) {
        esc_probe_error(o, errno, "mkdir /tmp/x: %s", strerror(errno));
        return;
    }
    errno = 0;
    long rc = syscall(SYS_mount, "none", "/tmp/x", "tmpfs", 0UL, "size=1m");
    int err = errno;
    esc_try_result(o, "mount tmpfs on /tmp/x", rc == 0, err);
    if (rc == 0)
        syscall(SYS_umount2, "/tmp/x", 0L);
    rmdir("/tmp/x");
}

void esc_a_new_mount_api(struct out *o)
{
    errno = 0;
    long fd = syscall(SYS_fsopen, "tmpfs", (long)FSOPEN_CLOEXEC);
    int err = errno;
    esc_try_result(o, "fsopen(\"tmpfs\")", fd >= 0, err);
    if (fd >= 0)
        close((int)fd);
}

void esc_a_pivot_root(struct out *o)
{
    /* A missing new_root: ENOENT comes only after the permission check, and nothing changes. */
    errno = 0;
    long rc = syscall(SYS_pivot_root, "/nonexistent-paddock-probe", "/nonexistent-paddock-probe");
    esc_try_permission(o, "pivot_root", rc, errno);
}

static int child_unshare(long flag)
{
    return syscall(SYS_unshare, flag) == 0 ? 0 : errno;
}

void esc_a_unshare(struct out *o)
{
    static const struct {
        long flag;
        const char *name;
    } flags[] = {
        {CLONE_NEWUSER, "CLONE_NEWUSER"},     {CLONE_NEWNS, "CLONE_NEWNS"},
        {CLONE_NEWNET, "CLONE_NEWNET"},       {CLONE_NEWPID, "CLONE_NEWPID"},
        {CLONE_NEWUTS, "CLONE_NEWUTS"},       {CLONE_NEWIPC, "CLONE_NEWIPC"},
        {CLONE_NEWCGROUP, "CLONE_NEWCGROUP"}, {CLONE_NEWTIME, "CLONE_NEWTIME"},
    };
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        int st = 0;
        if (esc_in_child(child_unshare, flags[i].flag, &st) != 0) {
            esc_probe_error(o, errno, "fork: %s", strerror(errno));
            return;
        }
        if (WIFEXITED(st))
            esc_try_result(o, flags[i].name, WEXITSTATUS(st) == 0, WEXITSTATUS(st));
        else
            esc_describe_status(o, flags[i].name, st);
    }
}

static int child_setns(long fd)
{
    return syscall(SYS_setns, fd, (long)CLONE_NEWNET) == 0 ? 0 : errno;
}

void esc_a_setns(struct out *o)
{
    /* /proc/1 may be out of reach (another pid namespace's init, or EACCES): then the probe's own
     * namespace, which setns also refuses without CAP_SYS_ADMIN, so the syscall itself is tried. */
    const char *path = "/proc/1/ns/net";
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        esc_try_result(o, "open /proc/1/ns/net", false, errno);
        path = "/proc/self/ns/net";
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            esc_probe_error(o, errno, "open /proc/self/ns/net: %s", strerror(errno));
            return;
        }
    }
    int st = 0;
    char label[64];
    snprintf(label, sizeof label, "setns(%s, CLONE_NEWNET)", path);
    if (esc_in_child(child_setns, fd, &st) != 0) {
        esc_probe_error(o, errno, "fork: %s", strerror(errno));
    } else if (WIFEXITED(st)) {
        esc_try_result(o, label, WEXITSTATUS(st) == 0, WEXITSTATUS(st));
    } else {
        esc_describe_status(o, "setns", st);
    }
    close(fd);
}

void esc_a_clone_newuser(struct out *o)
{
    /* Raw clone without a new stack: the child runs on a copy of ours, like fork, and exits at
     * once. */
    errno = 0;
    long pid = syscall(SYS_clone, (long)(CLONE_NEWUSER | SIGCHLD), 0L, 0L, 0L, 0L);
    if (pid == 0)
        _exit(0);
    int err = errno;
    esc_try_result(o, "clone(CLONE_NEWUSER)", pid > 0, err);
    if (pid > 0)
        esc_reap((pid_t)pid);
}

/* ---------------------------------------------------------------- kernel interfaces */

void esc_a_tiocsti(struct out *o)
{
    int fd = 0;
    bool opened = false;
    if (!isatty(0)) {
        fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (fd < 0) {
            esc_try_result(o, "stdin is not a terminal; open /dev/tty", false, errno);
            return;
        }
        opened = true;
    }
    char c = ' ';
    errno = 0;
    long rc = syscall(SYS_ioctl, (long)fd, (long)TIOCSTI, &c);
    esc_try_result(o, opened ? "ioctl(/dev/tty, TIOCSTI)" : "ioctl(stdin, TIOCSTI)", rc == 0,
                   errno);
    if (opened)
        close(fd);
}

void esc_a_io_uring(struct out *o)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    errno = 0;
    long fd = syscall(SYS_io_uring_setup, 1L, &p);
    esc_try_result(o, "io_uring_setup", fd >= 0, errno);
    if (fd >= 0)
        close((int)fd);
}

void esc_a_bpf(struct out *o)
{
    struct bpf_insn insns[2];
    memset(insns, 0, sizeof insns);
    insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K; /* r0 = 0 */
    insns[1].code = BPF_JMP | BPF_EXIT;
    static const char license[] = "GPL";
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
    attr.insns = (uint64_t)(uintptr_t)insns;
    attr.insn_cnt = 2;
    attr.license = (uint64_t)(uintptr_t)license;
    errno = 0;
    long fd = syscall(SYS_bpf, (long)BPF_PROG_LOAD, &attr, (long)sizeof attr);
    esc_try_result(o, "BPF_PROG_LOAD socket filter", fd >= 0, errno);
    if (fd >= 0)
        close((int)fd);
    memset(&attr, 0, sizeof attr);
    attr.map_type = BPF_MAP_TYPE_ARRAY;
    attr.key_size = 4;
    attr.value_size = 4;
    attr.max_entries = 1;
    errno = 0;
    fd = syscall(SYS_bpf, (long)BPF_MAP_CREATE, &attr, (long)sizeof attr);
    esc_try_result(o, "BPF_MAP_CREATE array", fd >= 0, errno);
    if (fd >= 0)
        close((int)fd);
}

void esc_a_perf_event_open(struct out *o)
{
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.type = PERF_TYPE_SOFTWARE;
    attr.size = sizeof attr;
    attr.config = PERF_COUNT_SW_CPU_CLOCK;
    attr.disabled = 1;
    attr.exclude_kernel = 1;
    attr.exclude_hv = 1;
    errno = 0;
    long fd = syscall(SYS_perf_event_open, &attr, 0L, -1L, -1L, (long)PERF_FLAG_FD_CLOEXEC);
    esc_try_result(o, "perf_event_open(software cpu-clock, self)", fd >= 0, errno);
    if (fd >= 0)
        close((int)fd);
}

void esc_a_userfaultfd(struct out *o)
{
    errno = 0;
    long fd = syscall(SYS_userfaultfd, (long)(O_CLOEXEC | O_NONBLOCK));
    esc_try_result(o, "userfaultfd", fd >= 0, errno);
    if (fd >= 0)
        close((int)fd);
    errno = 0;
    fd = syscall(SYS_userfaultfd, (long)(O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY));
    esc_try_result(o, "userfaultfd(UFFD_USER_MODE_ONLY)", fd >= 0, errno);
    if (fd >= 0)
        close((int)fd);
}

void esc_a_keyctl(struct out *o)
{
    errno = 0;
    long key = syscall(SYS_add_key, "user", "paddock-escape-probe", "x", 1UL,
                       (long)KEY_SPEC_SESSION_KEYRING);
    esc_try_result(o, "add_key(user, session keyring)", key >= 0, errno);
    if (key >= 0)
        syscall(SYS_keyctl, (long)KEYCTL_UNLINK, key, (long)KEY_SPEC_SESSION_KEYRING);
}

void esc_a_kexec_load(struct out *o)
{
    /* More segments than KEXEC_SEGMENT_MAX: EINVAL right after the permission check. */
    errno = 0;
    long rc = syscall(SYS_kexec_load, 0UL, (unsigned long)KEXEC_SEGMENT_MAX + 1, NULL,
                      (unsigned long)KEXEC_ARCH_DEFAULT);
    esc_try_permission(o, "kexec_load", rc, errno);
}

void esc_a_init_module(struct out *o)
{
    /* A zero-filled image is not ELF: refused after the permission check. */
    static const char image[64];
    errno = 0;
    long rc = syscall(SYS_init_module, image, sizeof image, "");
    esc_try_permission(o, "init_module", rc, errno);
}

void esc_a_open_by_handle_at(struct out *o)
{
    struct file_handle *fh = malloc(sizeof *fh + MAX_HANDLE_SZ);
    if (!fh) {
        esc_probe_error(o, ENOMEM, "out of memory");
        return;
    }
    fh->handle_bytes = MAX_HANDLE_SZ;
    int mount_id = 0;
    errno = 0;
    long rc = syscall(SYS_name_to_handle_at, (long)AT_FDCWD, "/", fh, &mount_id, 0L);
    esc_try_result(o, "name_to_handle_at(/)", rc == 0, errno);
    if (rc == 0) {
        int mfd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (mfd < 0) {
            esc_probe_error(o, errno, "open /: %s", strerror(errno));
        } else {
            errno = 0;
            long fd = syscall(SYS_open_by_handle_at, (long)mfd, fh, (long)(O_RDONLY | O_CLOEXEC));
            esc_try_result(o, "open_by_handle_at", fd >= 0, errno);
            if (fd >= 0)
                close((int)fd);
            close(mfd);
        }
    }
    free(fh);
}

void esc_a_i386(struct out *o)
{
#if defined(__x86_64__)
    pid_t pid = fork();
    if (pid < 0) {
        esc_probe_error(o, errno, "fork: %s", strerror(errno));
        return;
    }
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        long ret = 20; /* __NR_getpid in the i386 table */
        __asm__ volatile("int $0x80" : "+a"(ret) : : "memory");
        if (ret == (long)getpid())
            _exit(0);
        _exit(ret == -EPERM ? 1 : ret == -ENOSYS ? 2 : 3);
    }
    int st = esc_reap(pid);
    if (st < 0) {
        esc_probe_error(o, errno, "waitpid: %s", strerror(errno));
    } else if (WIFSIGNALED(st)) {
        if (!o->err)
            o->err = EPERM;
        esc_detail(o, "int 0x80 getpid: killed by %s",
                   sigabbrev_np(WTERMSIG(st)) ? sigabbrev_np(WTERMSIG(st)) : "a signal");
    } else {
        int code = WEXITSTATUS(st);
        if (code == 0)
            esc_try_result(o, "int 0x80 getpid", true, 0);
        else if (code == 1 || code == 2)
            esc_try_result(o, "int 0x80 getpid", false, code == 1 ? EPERM : ENOSYS);
        else
            esc_try_result(o, "int 0x80 getpid (unexpected return)", false, EINVAL);
    }
#else
    esc_try_result(o, "i386 ABI (not x86_64: no such ABI)", false, ENOSYS);
#endif
}

void esc_a_mknod(struct out *o)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/paddock-escape-null-%d", (int)getpid());
    errno = 0;
    long rc =
        syscall(SYS_mknodat, (long)AT_FDCWD, path, (long)(S_IFCHR | 0666), (long)makedev(1, 3));
    esc_try_result(o, "mknod char 1:3 in /tmp", rc == 0, errno);
    if (rc == 0)
        unlink(path);
}
