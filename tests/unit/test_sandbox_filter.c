/* test_sandbox_filter.c - unit tests for sandbox/filter.{h,c}: in a forked child (the filter cannot
 * be removed once loaded), every refused operation fails with EPERM (clone3: ENOSYS), including
 * through argument encodings that try to slip past a comparison, and ordinary operations still
 * work; the documentation lists every table entry. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox/filter.h"

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

/* In the child: write one line per failed expectation to fd 1 of the pipe, exit 0 if none. */
static int bad;
static int out_fd;

static void expect(const char *what, long rc, int want_errno)
{
    int e = errno;
    if (want_errno == 0 ? rc < 0 : (rc != -1 || e != want_errno)) {
        char line[256];
        int n = snprintf(line, sizeof line, "%s: rc=%ld errno=%d (%s), wanted %s\n", what, rc, e,
                         strerror(e), want_errno ? strerror(want_errno) : "success");
        if (write(out_fd, line, (size_t)n) < 0)
            _exit(3);
        bad++;
    }
}

static long i386_getpid(void)
{
#if defined(__x86_64__)
    long ret;
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory");
    return ret;
#else
    return -EPERM;
#endif
}

static void child_checks(void)
{
    struct pd_err err;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || pd_sandbox_filter_load(&err) != 0) {
        dprintf(out_fd, "cannot load: %s\n", err.msg);
        _exit(2);
    }
    /* Refused. */
    errno = 0;
    expect("ptrace", ptrace(PTRACE_TRACEME, 0, NULL, NULL), EPERM);
    expect("unshare(CLONE_NEWUSER)", unshare(CLONE_NEWUSER), EPERM);
    expect("mount", mount("none", "/tmp", "tmpfs", 0, NULL), EPERM);
    expect("bpf", syscall(SYS_bpf, 0, NULL, 0), EPERM);
    expect("keyctl", syscall(SYS_keyctl, 0, 0, 0, 0, 0), EPERM);
    expect("io_uring_setup", syscall(SYS_io_uring_setup, 1, NULL), EPERM);
    expect("perf_event_open", syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0), EPERM);
    expect("userfaultfd", syscall(SYS_userfaultfd, 0), EPERM);
    expect("open_by_handle_at", syscall(SYS_open_by_handle_at, -1, NULL, 0), EPERM);
    expect("setns", syscall(SYS_setns, -1, 0), EPERM);
    expect("clone3", syscall(SYS_clone3, NULL, 0), ENOSYS);
    expect("clone(CLONE_NEWNS)", syscall(SYS_clone, CLONE_NEWNS | SIGCHLD, 0, 0, 0, 0), EPERM);
    expect("clone(CLONE_NEWUSER|CLONE_NEWPID)",
           syscall(SYS_clone, CLONE_NEWUSER | CLONE_NEWPID | SIGCHLD, 0, 0, 0, 0), EPERM);
    int p[2];
    if (pipe(p) != 0)
        _exit(4);
    char c = 'x';
    expect("ioctl(TIOCSTI)", ioctl(p[0], TIOCSTI, &c), EPERM);
    /* The request with garbage in the upper 32 bits is still TIOCSTI to the kernel. */
    expect("ioctl(TIOCSTI | 1<<32)",
           syscall(SYS_ioctl, p[0], (unsigned long)TIOCSTI | (1UL << 32), &c), EPERM);
    expect("socket(AF_PACKET)", socket(AF_PACKET, SOCK_RAW, 0), EPERM);
    expect("socket(AF_INET, SOCK_RAW)", socket(AF_INET, SOCK_RAW, 1), EPERM);
    expect("socket(AF_INET6, SOCK_RAW|SOCK_CLOEXEC)", socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, 58),
           EPERM);
    expect("socket(AF_INET, SOCK_PACKET)", socket(AF_INET, SOCK_PACKET, 0), EPERM);
    expect("socket(AF_VSOCK)", socket(AF_VSOCK, SOCK_STREAM, 0), EPERM);
    expect("socket(AF_NETLINK, NETLINK_AUDIT)", socket(AF_NETLINK, SOCK_RAW, NETLINK_AUDIT), EPERM);
    long r = i386_getpid();
    if (r != -EPERM) {
        dprintf(out_fd, "i386 getpid via int 0x80 returned %ld, wanted -EPERM\n", r);
        bad++;
    }
    /* Set-id bits: refused however they would be set; plain modes work. */
    char dir[] = "/tmp/pd-filter-XXXXXX";
    if (!mkdtemp(dir))
        _exit(4);
    char f1[64], f2[64];
    snprintf(f1, sizeof f1, "%s/a", dir);
    snprintf(f2, sizeof f2, "%s/b", dir);
    expect("open(O_CREAT, 04755)", open(f2, O_WRONLY | O_CREAT, 04755), EPERM);
    expect("openat(O_CREAT, 02755)", openat(AT_FDCWD, f2, O_WRONLY | O_CREAT, 02755), EPERM);
    expect("creat(06755)", creat(f2, 06755), EPERM);
    expect("mknod(S_IFREG|04755)", mknod(f2, S_IFREG | 04755, 0), EPERM);
    expect("openat2", syscall(437, AT_FDCWD, f2, NULL, 0), ENOSYS);
    expect("fchmodat2", syscall(452, AT_FDCWD, f2, 0755, 0), ENOSYS);
    int fd = open(f1, O_WRONLY | O_CREAT, 0755);
    expect("open(O_CREAT, 0755)", fd, 0);
    expect("chmod(04755)", chmod(f1, 04755), EPERM);
    expect("chmod(02711)", chmod(f1, 02711), EPERM);
    expect("fchmod(04700)", fchmod(fd, 04700), EPERM);
    expect("fchmodat(06755)", fchmodat(AT_FDCWD, f1, 06755, 0), EPERM);
    expect("chmod(0700)", chmod(f1, 0700), 0);
    expect("fchmod(0644)", fchmod(fd, 0644), 0);
    /* Without O_CREAT the mode register is junk and must not matter. */
    int rfd = (int)syscall(SYS_openat, AT_FDCWD, f1, O_RDONLY, 04755);
    expect("openat(O_RDONLY, junk mode 04755)", rfd, 0);
    if (rfd >= 0)
        close(rfd);
    if (fd >= 0)
        close(fd);
    unlink(f1);
    rmdir(dir);
    /* Still allowed. */
    expect("getpid", getpid(), 0);
    int s;
    expect("socket(AF_INET, SOCK_STREAM)", s = socket(AF_INET, SOCK_STREAM, 0), 0);
    close(s);
    expect("socket(AF_INET6, SOCK_DGRAM)", s = socket(AF_INET6, SOCK_DGRAM, 0), 0);
    close(s);
    expect("socket(AF_NETLINK, NETLINK_ROUTE)", s = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE), 0);
    close(s);
    expect("socket(AF_UNIX)", s = socket(AF_UNIX, SOCK_STREAM, 0), 0);
    close(s);
    expect("ioctl(FIONREAD)", ioctl(p[0], FIONREAD, &s), 0);
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    int st = 0;
    expect("fork", pid, 0);
    if (pid > 0 && (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)) {
        dprintf(out_fd, "forked child did not exit 0\n");
        bad++;
    }
    _exit(bad ? 1 : 0);
}

static void test_refused_and_allowed(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        out_fd = p[1];
        child_checks();
    }
    close(p[1]);
    char buf[8192];
    size_t len = 0;
    ssize_t n;
    while ((n = read(p[0], buf + len, sizeof buf - 1 - len)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    close(p[0]);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("filter checks failed (status %d):\n%s", st, buf);
}

static void test_table_documented(void **state)
{
    (void)state;
    FILE *f = fopen(PD_TEST_SRCDIR "/docs/sandbox-seccomp.md", "r");
    assert_non_null(f);
    static char doc[1 << 16];
    size_t n = fread(doc, 1, sizeof doc - 1, f);
    fclose(f);
    doc[n] = '\0';
    size_t nt;
    const struct pd_filter_entry *t = pd_sandbox_filter_table(&nt);
    assert_true(nt > 40);
    for (size_t i = 0; i < nt; i++) {
        char needle[128];
        snprintf(needle, sizeof needle, "`%s`", t[i].name);
        if (!strstr(doc, needle))
            fail_msg("docs/sandbox-seccomp.md does not list %s", needle);
        assert_true(t[i].why && t[i].why[0]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refused_and_allowed),
        cmocka_unit_test(test_table_documented),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
