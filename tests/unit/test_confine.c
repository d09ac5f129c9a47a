/*
 * test_confine.c - what the gateway's confinement (src/gateway/confine.h) refuses, checked from inside a
 * confined child process: each probe forks, confines the child exactly as `paddock gateway` confines
 * itself (no --user; the tests may run as root or not), attempts one operation and reports the errno.
 * The black-box tests check the gateway still works confined; these check the filter really bites.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "gateway/confine.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

#define RESULT_OK 0
#define RESULT_WRONG 1
#define RESULT_CONFINE_FAILED 100

extern char **environ;

/* Runs probe() in a confined child; returns its exit status, or 200 + the signal that killed it. */
static int confined(int (*probe)(void))
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        pd_log_set_level(PD_LOG_OFF); /* the "confined"/"running as root" lines are not under test */
        struct pd_confine_opts o = {.user = NULL, .no_seccomp = false};
        struct pd_err err;
        if (pd_confine(&o, &err) != 0)
            _exit(RESULT_CONFINE_FAILED);
        _exit(probe());
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 200 + WTERMSIG(st);
}

static int expect_errno(long rc, int want)
{
    return rc == -1 && errno == want ? RESULT_OK : RESULT_WRONG;
}

static int probe_execve(void)
{
    /* /bin/false: if the exec went through, the child's exit status says so (1, not 0). */
    char *argv[] = {"/bin/false", NULL};
    return expect_errno(execve("/bin/false", argv, environ), EPERM);
}

static int probe_unshare_net(void)
{
    return expect_errno(unshare(CLONE_NEWNET), EPERM);
}

static int probe_mount(void)
{
    return expect_errno(mount("none", "/tmp", "tmpfs", 0, NULL), EPERM);
}

static int probe_bpf(void)
{
    return expect_errno(syscall(SYS_bpf, 0, NULL, 0), EPERM);
}

static int probe_io_uring(void)
{
    return expect_errno(syscall(SYS_io_uring_setup, 1, NULL), EPERM);
}

static int probe_keyctl(void)
{
    return expect_errno(syscall(SYS_keyctl, 0, 0, 0, 0, 0), EPERM);
}

static int probe_setuid_root(void)
{
    /* Root without --user keeps uid 0 but no capability: changing identity is refused anyway. */
    return expect_errno(syscall(SYS_setuid, 0), EPERM);
}

static int probe_fork(void)
{
    return expect_errno(fork(), EPERM);
}

static int probe_unlisted_mknod(void)
{
    return expect_errno(syscall(SYS_mknodat, AT_FDCWD, "/tmp/pd-confine-node", S_IFIFO | 0600, 0), ENOSYS);
}

static int probe_tiocsti(void)
{
    char c = 'x';
    return expect_errno(ioctl(0, TIOCSTI, &c), ENOSYS);
}

static int probe_x32_abi(void)
{
    /* The x32 ABI is another way into the kernel's syscall table: the filter kills the process. */
    syscall(0x40000000 | SYS_getpid);
    return RESULT_WRONG;
}

static int probe_allowed_still_work(void)
{
    /* What the gateway needs keeps working: a socket, a pipe, a file read, the time. */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int p[2];
    struct timespec ts;
    if (s < 0 || pipe(p) != 0 || clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return RESULT_WRONG;
    int f = open("/etc/hosts", O_RDONLY | O_CLOEXEC);
    char buf[16];
    if (f < 0 || read(f, buf, sizeof buf) < 0)
        return RESULT_WRONG;
    close(f);
    close(s);
    close(p[0]);
    close(p[1]);
    return RESULT_OK;
}

static void test_refused_with_eperm(void **state)
{
    (void)state;
    assert_int_equal(confined(probe_execve), RESULT_OK);
    assert_int_equal(confined(probe_unshare_net), RESULT_OK);
    assert_int_equal(confined(probe_mount), RESULT_OK);
    assert_int_equal(confined(probe_bpf), RESULT_OK);
    assert_int_equal(confined(probe_io_uring), RESULT_OK);
    assert_int_equal(confined(probe_keyctl), RESULT_OK);
    assert_int_equal(confined(probe_setuid_root), RESULT_OK);
    /* LeakSanitizer needs fork-like clones at exit, so sanitizer builds allow them (confine.h). */
    if (!SANITIZED)
        assert_int_equal(confined(probe_fork), RESULT_OK);
}

static void test_unlisted_get_enosys(void **state)
{
    (void)state;
    assert_int_equal(confined(probe_unlisted_mknod), RESULT_OK);
    assert_int_equal(confined(probe_tiocsti), RESULT_OK);
}

static void test_other_abi_kills(void **state)
{
    (void)state;
    assert_int_equal(confined(probe_x32_abi), 200 + SIGSYS);
}

static void test_allowed_syscalls_work(void **state)
{
    (void)state;
    assert_int_equal(confined(probe_allowed_still_work), RESULT_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refused_with_eperm),
        cmocka_unit_test(test_unlisted_get_enosys),
        cmocka_unit_test(test_other_abi_kills),
        cmocka_unit_test(test_allowed_syscalls_work),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
