/*
 * escape.c - the escape probe: a test-only program that the black-box sandbox tests
 * (tests/integration/test_sandbox*.py) run inside `paddock run`. Never installed.
 *
 * Contract:
 *
 * `escape ATTEMPT [ARGS]` performs ONE escape attempt, for real (raw syscalls where libc would hide
 * or emulate the operation), and prints ONE JSON line on stdout:
 *   {"attempt": "...", "result": "refused"|"escaped"|"error", "errno": "EPERM"|null,
 *    "detail": "...", ...attempt-specific members}
 * then exits 0 when the attempt was refused, 3 when it escaped, 4 on a probe error (bad arguments,
 * a step of the probe itself failing). An attempt made of several tries (each unshare flag,
 * PTRACE_ATTACH and PTRACE_TRACEME, ...) escaped when any try succeeded; "errno" is then the first
 * refusal's, and "detail" lists every try.
 *
 * A kernel call that fails only AFTER its permission check (pivot_root on a missing path,
 * kexec_load with too many segments, init_module of a non-ELF image, netlink changes) is made with
 * such arguments on purpose, so that nothing changes even where it is permitted: any errno but
 * EPERM/EACCES/ENOSYS there means the permission check passed, which counts as escaped.
 *
 * Anything an attempt creates when it succeeds (a mount, a key, an address, a device node) is
 * undone before the probe exits. Forked helpers are waited for, except where the attempt is to
 * leave them behind (fork-bomb, background); those stop by themselves after a bound (30 s and 60
 * s).
 *
 * No global mutable state; every fd is closed on every path (the fds attempt must not see the
 * probe's own leftovers).
 *
 * Files: this one holds main() (the dispatch on ATTEMPT) and the report building; the attempts
 * live in escape_kernel.c (syscall and kernel interfaces), escape_net.c (sockets, netlink, HTTP),
 * escape_files.c (file writes, links, set-id bits) and escape_proc.c (privileges, what the process
 * was given, resources and lifetime); escape.h declares what they share.
 *
 * Attempts: ptrace, process-vm-readv, mount, new-mount-api, pivot-root, unshare, setns,
 * clone-newuser, raw-socket, packet-socket, netlink-route-change, vsock, connect ADDR PORT,
 * udp-dns ADDR, unix-connect PATH|@ABSTRACT, tiocsti, io-uring, bpf, perf-event-open, userfaultfd,
 * keyctl, kexec-load, init-module, open-by-handle-at, i386, mknod, setuid-gain PATH, caps,
 * write PATH [TEXT], read PATH, symlink-write LINK, hardlink SRC DST, chmod-suid PATH, env, fds,
 * fork-bomb N, balloon MB, background FILE, http URL. ("pivot_root" and "process_vm_readv" are
 * accepted too.)
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "escape.h"

enum result { R_REFUSED, R_ESCAPED, R_ERROR };

/* ---------------------------------------------------------------- report building */

void esc_detail(struct out *o, const char *fmt, ...)
{
    if (o->dlen + 3 >= sizeof o->detail)
        return;
    if (o->dlen > 0) {
        memcpy(o->detail + o->dlen, "; ", 2);
        o->dlen += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->detail + o->dlen, sizeof o->detail - o->dlen, fmt, ap);
    va_end(ap);
    if (n < 0) {
        o->detail[o->dlen] = '\0';
        return;
    }
    size_t add = (size_t)n;
    if (add >= sizeof o->detail - o->dlen)
        add = sizeof o->detail - o->dlen - 1;
    o->dlen += add;
}

void esc_x_raw(struct out *o, const char *s, size_t n)
{
    if (o->oom)
        return;
    if (o->xlen + n + 1 > o->xcap) {
        size_t cap = o->xcap ? o->xcap : 1024;
        while (cap < o->xlen + n + 1) {
            if (cap > SIZE_MAX / 2) {
                o->oom = true;
                return;
            }
            cap *= 2;
        }
        char *p = realloc(o->extra, cap);
        if (!p) {
            o->oom = true;
            return;
        }
        o->extra = p;
        o->xcap = cap;
    }
    memcpy(o->extra + o->xlen, s, n);
    o->xlen += n;
    o->extra[o->xlen] = '\0';
}

void esc_x_str(struct out *o, const char *s)
{
    esc_x_raw(o, s, strlen(s));
}

/* A JSON string of n bytes; bytes >= 0x80 are written as \u00XX (read back as Latin-1). */
void esc_x_json_bytes(struct out *o, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    esc_x_raw(o, "\"", 1);
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\')
            continue;
        esc_x_raw(o, s + start, i - start);
        char esc[7] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], '\0'};
        if (c == '"' || c == '\\') {
            esc[1] = (char)c;
            esc_x_raw(o, esc, 2);
        } else if (c == '\n') {
            esc_x_raw(o, "\\n", 2);
        } else {
            esc_x_raw(o, esc, 6);
        }
        start = i + 1;
    }
    esc_x_raw(o, s + start, n - start);
    esc_x_raw(o, "\"", 1);
}

void esc_x_key(struct out *o, const char *key)
{
    esc_x_str(o, ", ");
    esc_x_json_bytes(o, key, strlen(key));
    esc_x_str(o, ": ");
}

void esc_x_member_str(struct out *o, const char *key, const char *s, size_t n)
{
    esc_x_key(o, key);
    esc_x_json_bytes(o, s, n);
}

void esc_x_member_int(struct out *o, const char *key, long long v)
{
    char num[32];
    int n = snprintf(num, sizeof num, "%lld", v);
    esc_x_key(o, key);
    esc_x_raw(o, num, n > 0 ? (size_t)n : 0);
}

/* One try of an attempt: ok (it worked: escaped) or refused with err. */
void esc_try_result(struct out *o, const char *label, bool ok, int err)
{
    if (ok) {
        o->escaped = true;
        esc_detail(o, "%s: succeeded", label);
        return;
    }
    if (!o->err)
        o->err = err;
    esc_detail(o, "%s: %s", label,
               err ? strerrorname_np(err) ? strerrorname_np(err) : "errno?" : "failed");
}

/* A try whose arguments make it fail right after the permission check (see the contract). */
void esc_try_permission(struct out *o, const char *label, long rc, int err)
{
    if (rc >= 0) {
        esc_try_result(o, label, true, 0);
    } else if (err == EPERM || err == EACCES || err == ENOSYS) {
        esc_try_result(o, label, false, err);
    } else {
        o->escaped = true;
        esc_detail(o, "%s: permission check passed (then %s)", label, strerrorname_np(err));
    }
}

void esc_probe_error(struct out *o, int err, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    o->error = true;
    if (err && !o->err)
        o->err = err;
    esc_detail(o, "%s", buf);
}

static int emit(struct out *o)
{
    enum result r = o->error || o->oom ? R_ERROR : o->escaped ? R_ESCAPED : R_REFUSED;
    static const char *const names[] = {"refused", "escaped", "error"};
    struct out line = {.attempt = o->attempt};
    esc_x_str(&line, "{\"attempt\": ");
    esc_x_json_bytes(&line, o->attempt, strlen(o->attempt));
    esc_x_str(&line, ", \"result\": \"");
    esc_x_str(&line, names[r]);
    esc_x_str(&line, "\", \"errno\": ");
    if (o->err) {
        const char *en = strerrorname_np(o->err);
        esc_x_json_bytes(&line, en ? en : "E?", strlen(en ? en : "E?"));
    } else {
        esc_x_str(&line, "null");
    }
    esc_x_str(&line, ", \"detail\": ");
    esc_x_json_bytes(&line, o->oom ? "out of memory building the report" : o->detail,
                     o->oom ? strlen("out of memory building the report") : o->dlen);
    if (o->extra && !o->oom)
        esc_x_raw(&line, o->extra, o->xlen);
    esc_x_str(&line, "}\n");
    free(o->extra);
    o->extra = NULL;
    if (line.oom || !line.extra) {
        free(line.extra);
        fputs("{\"attempt\": \"?\", \"result\": \"error\", \"errno\": \"ENOMEM\", \"detail\": "
              "\"out of memory\"}\n",
              stdout);
        fflush(stdout);
        return 4;
    }
    size_t off = 0;
    while (off < line.xlen) {
        ssize_t w = write(STDOUT_FILENO, line.extra + off, line.xlen - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    free(line.extra);
    return r == R_REFUSED ? 0 : r == R_ESCAPED ? 3 : 4;
}

/* ---------------------------------------------------------------- helpers */

void esc_close_fd(int fd)
{
    if (fd >= 0)
        close(fd);
}

/* Wait for a child; returns its wait status, or -1. */
int esc_reap(pid_t pid)
{
    int st = 0;
    while (waitpid(pid, &st, __WALL) < 0) {
        if (errno != EINTR)
            return -1;
    }
    return st;
}

void esc_describe_status(struct out *o, const char *label, int st)
{
    if (WIFSIGNALED(st))
        esc_detail(o, "%s: killed by %s", label,
                   sigabbrev_np(WTERMSIG(st)) ? sigabbrev_np(WTERMSIG(st)) : "?");
    else if (WIFEXITED(st))
        esc_detail(o, "%s: exited %d", label, WEXITSTATUS(st));
}

bool esc_parse_long(const char *s, long lo, long hi, long *v)
{
    char *end = NULL;
    errno = 0;
    long x = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0' || x < lo || x > hi)
        return false;
    *v = x;
    return true;
}

/* Run fn(arg) in a forked child whose exit status carries an errno (0: success); returns the
 * child's wait status in *st, or -1 when fork failed (errno set). */
int esc_in_child(int (*fn)(long), long arg, int *st)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0)
        _exit(fn(arg) & 0xff);
    *st = esc_reap(pid);
    return 0;
}

/* ---------------------------------------------------------------- dispatch */

/* Sanitizer builds: LeakSanitizer stops the world with ptrace-style machinery that the sandbox's
 * syscall filter refuses (ptrace is one of the attempts), and then fails the whole process; so leak
 * checking is off by default for the probe (ASAN_OPTIONS, on the host, can turn it back on). ASan
 * and UBSan proper stay on. Unused in other builds. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "detect_leaks=0";
}

int main(int argc, char **argv)
{
    struct out o;
    memset(&o, 0, sizeof o);
    if (argc < 2) {
        o.attempt = "";
        esc_probe_error(&o, EINVAL,
                        "usage: escape ATTEMPT [ARGS] (see the comment at the top of escape.c)");
        return emit(&o);
    }
    const char *a = argv[1];
    o.attempt = a;
    int ac = argc - 2;
    char **av = argv + 2;
    if (strcmp(a, "ptrace") == 0)
        esc_a_ptrace(&o);
    else if (strcmp(a, "process-vm-readv") == 0 || strcmp(a, "process_vm_readv") == 0)
        esc_a_process_vm_readv(&o);
    else if (strcmp(a, "mount") == 0)
        esc_a_mount(&o);
    else if (strcmp(a, "new-mount-api") == 0)
        esc_a_new_mount_api(&o);
    else if (strcmp(a, "pivot-root") == 0 || strcmp(a, "pivot_root") == 0)
        esc_a_pivot_root(&o);
    else if (strcmp(a, "unshare") == 0)
        esc_a_unshare(&o);
    else if (strcmp(a, "setns") == 0)
        esc_a_setns(&o);
    else if (strcmp(a, "clone-newuser") == 0)
        esc_a_clone_newuser(&o);
    else if (strcmp(a, "raw-socket") == 0)
        esc_a_raw_socket(&o);
    else if (strcmp(a, "packet-socket") == 0)
        esc_a_packet_socket(&o);
    else if (strcmp(a, "netlink-route-change") == 0)
        esc_a_netlink_route_change(&o);
    else if (strcmp(a, "vsock") == 0)
        esc_a_vsock(&o);
    else if (strcmp(a, "connect") == 0)
        esc_a_connect(&o, ac, av);
    else if (strcmp(a, "udp-dns") == 0)
        esc_a_udp_dns(&o, ac, av);
    else if (strcmp(a, "unix-connect") == 0)
        esc_a_unix_connect(&o, ac, av);
    else if (strcmp(a, "tiocsti") == 0)
        esc_a_tiocsti(&o);
    else if (strcmp(a, "io-uring") == 0)
        esc_a_io_uring(&o);
    else if (strcmp(a, "bpf") == 0)
        esc_a_bpf(&o);
    else if (strcmp(a, "perf-event-open") == 0)
        esc_a_perf_event_open(&o);
    else if (strcmp(a, "userfaultfd") == 0)
        esc_a_userfaultfd(&o);
    else if (strcmp(a, "keyctl") == 0)
        esc_a_keyctl(&o);
    else if (strcmp(a, "kexec-load") == 0)
        esc_a_kexec_load(&o);
    else if (strcmp(a, "init-module") == 0)
        esc_a_init_module(&o);
    else if (strcmp(a, "open-by-handle-at") == 0)
        esc_a_open_by_handle_at(&o);
    else if (strcmp(a, "i386") == 0)
        esc_a_i386(&o);
    else if (strcmp(a, "mknod") == 0)
        esc_a_mknod(&o);
    else if (strcmp(a, "setuid-gain") == 0)
        esc_a_setuid_gain(&o, ac, av);
    else if (strcmp(a, "caps") == 0)
        esc_a_caps(&o);
    else if (strcmp(a, "write") == 0)
        esc_a_write(&o, ac, av);
    else if (strcmp(a, "read") == 0)
        esc_a_read(&o, ac, av);
    else if (strcmp(a, "symlink-write") == 0)
        esc_a_symlink_write(&o, ac, av);
    else if (strcmp(a, "hardlink") == 0)
        esc_a_hardlink(&o, ac, av);
    else if (strcmp(a, "chmod-suid") == 0)
        esc_a_chmod_suid(&o, ac, av);
    else if (strcmp(a, "env") == 0)
        esc_a_env(&o);
    else if (strcmp(a, "fds") == 0)
        esc_a_fds(&o);
    else if (strcmp(a, "fork-bomb") == 0)
        esc_a_fork_bomb(&o, ac, av);
    else if (strcmp(a, "balloon") == 0)
        esc_a_balloon(&o, ac, av);
    else if (strcmp(a, "background") == 0)
        esc_a_background(&o, ac, av);
    else if (strcmp(a, "http") == 0)
        esc_a_http(&o, ac, av);
    else
        esc_probe_error(&o, EINVAL, "unknown attempt '%s'", a);
    return emit(&o);
}
