/* test_sandbox_fs.c - unit tests for sandbox/fs.{h}, fs_mount.c, fs_landlock.c: each case forks a
 * child that (as root, or as uid/gid 65534) unshares user+mount+PID namespaces, maps its own ids,
 * forks the PID 1 of the new namespace, which runs pd_fs_setup and checks the tree it sees from
 * inside (read-only root, writable workspace, symlink and hard-link escapes, masks, protected
 * paths, tmpfs sizes, /proc, /dev, /sys, resolv.conf/hosts, Landlock files and TCP ports). Failed
 * expectations come back one line each through a pipe. Both mount paths (open_tree/mount_setattr
 * and the mount(2) fallback) run the same checks; the host's mount table must not change. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <linux/magic.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox/fs.h"

#define NOBODY 65534
#define SIZE_1M (1u << 20)
#define RESOLV "nameserver 127.0.0.1\noptions ndots:0\n"
#define HOSTS "127.0.0.1 localhost\n::1 localhost\n10.9.8.7 pd-test-host\n"

/* The host side of one case: a workspace under /tmp, and under VISIBLE_ROOT (visible inside through
 * the read-only root: not /tmp, /var/tmp, /run or /home, which the sandbox replaces or hides) the
 * masked directory and file, HOME, and the sources of the extra binds. */
#define VISIBLE_ROOT "/var/lib/paddock-test"
struct fixture {
    char base[64], ws[96], vbase[64];
    char mdir[128], mfile[128], home[128], bind_a[128], bind_b[128], bind_ro[128];
    char dangling[160], loop[160];
    char rootfs[96]; /* a small root filesystem whose /etc/resolv.conf is a symlink */
    char sub[96]; /* a rw tmpfs mounted (in the case's own mount namespace) inside the root */
    uid_t uid;
    gid_t gid;
};

/* Checks in the sandbox: one line per failed expectation to fd. */
struct chk {
    int fd;
    int bad;
};

static void report(struct chk *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report(struct chk *k, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n > sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    if (write(k->fd, line, (size_t)n) < 0)
        _exit(3);
    k->bad++;
}

/* rc from a syscall-like call: want_errno 0 means success expected. */
static void expect(struct chk *k, const char *what, long rc, int want_errno)
{
    int e = errno;
    if (want_errno == 0 ? rc < 0 : (rc >= 0 || e != want_errno))
        report(k, "%s: rc=%ld errno=%s, wanted %s", what, rc, rc < 0 ? strerror(e) : "-",
               want_errno ? strerror(want_errno) : "success");
}

static void expect_open(struct chk *k, const char *path, int flags, int want_errno)
{
    errno = 0;
    int fd = open(path, flags | O_CLOEXEC, 0644);
    char what[300];
    snprintf(what, sizeof what, "open %s flags 0%o", path, (unsigned)flags);
    expect(k, what, fd, want_errno);
    if (fd >= 0)
        close(fd);
}

static void write_file(const char *path, const char *data)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
    close(fd);
}

static void read_text(const char *path, char *buf, size_t size)
{
    buf[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, buf, size - 1);
    buf[n > 0 ? n : 0] = '\0';
    close(fd);
}

/* ---------------------------------------------------------------- fixture (host side) */

static void chown_tree(const char *path, uid_t u, gid_t g)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "chown -hR %u:%u '%s'", (unsigned)u, (unsigned)g, path);
    assert_int_equal(system(cmd), 0);
}

static void fixture_make(struct fixture *f, bool unpriv)
{
    memset(f, 0, sizeof *f);
    f->uid = unpriv ? NOBODY : 0;
    f->gid = unpriv ? NOBODY : 0;
    snprintf(f->base, sizeof f->base, "/tmp/pdfs.XXXXXX");
    snprintf(f->vbase, sizeof f->vbase, VISIBLE_ROOT "/pdfs.XXXXXX");
    if (mkdir(VISIBLE_ROOT, 0755) != 0)
        assert_int_equal(errno, EEXIST);
    assert_non_null(mkdtemp(f->base));
    assert_non_null(mkdtemp(f->vbase));
    assert_int_equal(chmod(f->base, 0755), 0);
    assert_int_equal(chmod(f->vbase, 0755), 0);
    snprintf(f->ws, sizeof f->ws, "%s/ws", f->base);
    char p[256];
    assert_int_equal(mkdir(f->ws, 0755), 0);
    snprintf(p, sizeof p, "%s/.git", f->ws);
    assert_int_equal(mkdir(p, 0755), 0);
    snprintf(p, sizeof p, "%s/.git/hooks", f->ws);
    assert_int_equal(mkdir(p, 0755), 0);
    snprintf(p, sizeof p, "%s/.git/hooks/pre-commit", f->ws);
    write_file(p, "#!/bin/sh\n");
    snprintf(p, sizeof p, "%s/.bashrc", f->ws);
    write_file(p, "# rc\n");
    snprintf(p, sizeof p, "%s/etc-link", f->ws);
    assert_int_equal(symlink("/etc", p), 0);
    snprintf(p, sizeof p, "%s/escape", f->ws);
    assert_int_equal(symlink("/etc/passwd", p), 0);
    snprintf(p, sizeof p, "%s/inner-link", f->ws);
    assert_int_equal(symlink(".bashrc", p), 0);

    snprintf(f->mdir, sizeof f->mdir, "%s/secret_dir", f->vbase);
    assert_int_equal(mkdir(f->mdir, 0755), 0);
    snprintf(p, sizeof p, "%s/key", f->mdir);
    write_file(p, "KEY\n");
    snprintf(f->mfile, sizeof f->mfile, "%s/secret_file", f->vbase);
    write_file(f->mfile, "SECRET\n");
    snprintf(f->home, sizeof f->home, "%s/home", f->vbase);
    assert_int_equal(mkdir(f->home, 0755), 0);
    snprintf(f->bind_a, sizeof f->bind_a, "%s/bind_a", f->vbase);
    snprintf(f->bind_b, sizeof f->bind_b, "%s/bind_b", f->vbase);
    snprintf(f->bind_ro, sizeof f->bind_ro, "%s/bind_ro", f->vbase);
    assert_int_equal(mkdir(f->bind_a, 0755), 0);
    assert_int_equal(mkdir(f->bind_b, 0755), 0);
    assert_int_equal(mkdir(f->bind_ro, 0755), 0);
    snprintf(p, sizeof p, "%s/dangling", f->vbase);
    assert_int_equal(symlink("/nonexistent-pd", p), 0);
    snprintf(f->dangling, sizeof f->dangling, "%s/dangling/x", f->vbase);
    snprintf(p, sizeof p, "%s/loop", f->vbase);
    assert_int_equal(symlink("loop", p), 0);
    snprintf(f->loop, sizeof f->loop, "%s/loop/x", f->vbase);
    snprintf(f->sub, sizeof f->sub, "%s/sub", f->vbase);
    assert_int_equal(mkdir(f->sub, 0755), 0);
    snprintf(f->rootfs, sizeof f->rootfs, "%s/rootfs", f->vbase);
    static const char *const dirs[] = {"", "/etc", "/run", "/home", "/home/u", "/usr", "/proc"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        snprintf(p, sizeof p, "%s%s", f->rootfs, dirs[i]);
        assert_int_equal(mkdir(p, 0755), 0);
    }
    snprintf(p, sizeof p, "%s/run/resolv-real", f->rootfs);
    write_file(p, "nameserver 192.0.2.1\n");
    snprintf(p, sizeof p, "%s/etc/hosts", f->rootfs);
    write_file(p, "127.0.0.1 orig\n");
    snprintf(p, sizeof p, "%s/etc/resolv.conf", f->rootfs);
    assert_int_equal(symlink("../run/resolv-real", p), 0);
    snprintf(p, sizeof p, "%s/bin", f->rootfs);
    assert_int_equal(symlink("usr/bin", p), 0);
    chown_tree(f->base, f->uid, f->gid);
    chown_tree(f->vbase, f->uid, f->gid);
}

static void fixture_remove(struct fixture *f)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", f->base, f->vbase);
    assert_int_equal(system(cmd), 0);
}

struct plan_store {
    struct pd_fs_plan plan;
    const char *masked[4];
    const char *prot[3];
    struct pd_fs_bind binds[3];
};

static void plan_make(const struct fixture *f, struct plan_store *s, bool legacy)
{
    memset(s, 0, sizeof *s);
    s->masked[0] = f->mdir;
    s->masked[1] = f->mfile;
    s->masked[2] = f->dangling;
    s->masked[3] = f->loop;
    s->prot[0] = ".git/hooks";
    s->prot[1] = ".bashrc";
    s->prot[2] = "does/not/exist";
    s->binds[0] = (struct pd_fs_bind){f->bind_a, "/tmp/bind_a", true};
    s->binds[1] = (struct pd_fs_bind){f->bind_b, f->bind_b, true}; /* onto itself, outside /tmp */
    s->binds[2] = (struct pd_fs_bind){f->bind_ro, "/tmp/bind_ro", false};
    struct pd_fs_plan *p = &s->plan;
    p->rootfs = "/";
    p->workspace = f->ws;
    p->home = f->home;
    p->home_size = SIZE_1M;
    p->tmp_size = SIZE_1M;
    p->masked = s->masked;
    p->nmasked = 4;
    p->protected_paths = s->prot;
    p->nprotected = 3;
    p->binds = s->binds;
    p->nbinds = 3;
    p->resolv_conf = RESOLV;
    p->hosts = HOSTS;
    p->uid = f->uid;
    p->gid = f->gid;
    p->legacy_mount_api = legacy;
}

/* ---------------------------------------------------------------- the runner */

typedef void (*check_fn)(const struct fixture *f, struct plan_store *s, struct chk *k);

static void write_proc(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
        _exit(20);
    close(fd);
}

/* Child A: drop to the fixture's ids, unshare, map ids, fork PID 1 (B) which runs fn. */
static void child_a(const struct fixture *f, bool legacy, int extra_ns, check_fn fn, int out)
{
    /* A submount of the root, rw and suid-capable, made by real root: in the sandbox's user
     * namespace its flags are locked, and the recursive read-only bind must still cover it. */
    if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("pd-sub", f->sub, "tmpfs", 0, "mode=0777,size=64k") != 0)
        _exit(26);
    if (f->uid != 0) {
        if (setgroups(0, NULL) != 0 || setresgid(f->gid, f->gid, f->gid) != 0 ||
            setresuid(f->uid, f->uid, f->uid) != 0)
            _exit(21);
        prctl(PR_SET_DUMPABLE, 1, 0, 0, 0); /* so /proc/self/uid_map is ours to write */
    }
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | extra_ns) != 0)
        _exit(22);
    char map[64];
    write_proc("/proc/self/setgroups", "deny");
    snprintf(map, sizeof map, "%u %u 1", (unsigned)f->uid, (unsigned)f->uid);
    write_proc("/proc/self/uid_map", map);
    snprintf(map, sizeof map, "%u %u 1", (unsigned)f->gid, (unsigned)f->gid);
    write_proc("/proc/self/gid_map", map);
    pid_t b = fork();
    if (b < 0)
        _exit(23);
    if (b == 0) {
        struct plan_store s;
        plan_make(f, &s, legacy);
        struct chk k = {out, 0};
        if (getpid() != 1)
            report(&k, "not PID 1 of the new namespace: %d", (int)getpid());
        fn(f, &s, &k);
        _exit(k.bad ? 1 : 0);
    }
    int st = 0;
    if (waitpid(b, &st, 0) != b)
        _exit(24);
    _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 25);
}

/* Does line (one mountinfo line) occur in table? Whole lines only. */
static bool has_line(const char *table, const char *line, size_t len)
{
    for (const char *t = table; (t = strstr(t, line)) != NULL; t++)
        if ((t == table || t[-1] == '\n') && strncmp(t, line, len) == 0 &&
            (t[len] == '\n' || t[len] == '\0'))
            return true;
    return false;
}

/* Lines of `a` missing from `b`, ignoring mounts under /run/netns (other users of this shared
 * machine create and remove network namespaces there while the tests run). */
static bool lines_missing(const char *a, const char *b)
{
    char line[1024];
    for (const char *s = a; *s;) {
        size_t len = strcspn(s, "\n");
        if (len > 0 && len < sizeof line) {
            memcpy(line, s, len);
            line[len] = '\0';
            if (!strstr(line, " /run/netns/") && !has_line(b, line, len))
                return true;
        }
        s += len + (s[len] == '\n');
    }
    return false;
}

static void read_mountinfo(char *buf, size_t size)
{
    read_text("/proc/self/mountinfo", buf, size);
}

/* Run fn in a fresh sandbox: NULL, or a malloc'ed text of every line it reported. */
static char *run_case(const struct fixture *f, bool legacy, int extra_ns, check_fn fn)
{
    const size_t info_size = 1u << 18;
    char *before = calloc(1, info_size), *after = calloc(1, info_size);
    assert_true(before && after);
    read_mountinfo(before, info_size);
    int pfd[2];
    assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
    fflush(NULL);
    pid_t a = fork();
    assert_true(a >= 0);
    if (a == 0) {
        close(pfd[0]);
        child_a(f, legacy, extra_ns, fn, pfd[1]);
    }
    close(pfd[1]);
    char buf[8192];
    size_t len = 0;
    ssize_t n;
    while (len < sizeof buf - 1 && (n = read(pfd[0], buf + len, sizeof buf - 1 - len)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    close(pfd[0]);
    int st = 0;
    assert_int_equal(waitpid(a, &st, 0), a);
    read_mountinfo(after, info_size);
    char *msg = NULL;
    bool changed = lines_missing(before, after) || lines_missing(after, before);
    free(before);
    free(after);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || len || changed) {
        size_t cap = len + 256;
        msg = malloc(cap);
        assert_non_null(msg);
        snprintf(msg, cap, "sandbox case (uid %u, %s mount API): status 0x%x%s\n%s",
                 (unsigned)f->uid, legacy ? "legacy" : "new", (unsigned)st,
                 changed ? ", the host's mount table changed" : "", buf);
    }
    return msg;
}

/* ---------------------------------------------------------------- checks inside */

static void drop_caps(struct chk *k)
{
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    memset(d, 0, sizeof d);
    if (syscall(SYS_capset, &h, d) != 0)
        report(k, "capset: %s", strerror(errno));
}

static bool setup_ok(struct plan_store *s, struct chk *k)
{
    struct pd_err err = {{0}};
    if (pd_fs_setup(&s->plan, &err) != 0) {
        report(k, "pd_fs_setup: %s", err.msg);
        return false;
    }
    return true;
}

/* Write `size` bytes in 64 KiB pieces; the errno of the first failure, 0 if none. */
static int fill(const char *path, size_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return errno;
    char chunk[65536];
    memset(chunk, 'x', sizeof chunk);
    int e = 0;
    for (size_t done = 0; done < size; done += sizeof chunk) {
        if (write(fd, chunk, sizeof chunk) != (ssize_t)sizeof chunk) {
            e = errno ? errno : ENOSPC;
            break;
        }
    }
    close(fd);
    unlink(path);
    return e;
}

static void check_dir_exact(struct chk *k, const char *dir, const char *const *names, size_t n)
{
    DIR *d = opendir(dir);
    if (!d) {
        report(k, "opendir %s: %s", dir, strerror(errno));
        return;
    }
    size_t seen = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        bool listed = false;
        for (size_t i = 0; i < n; i++)
            listed |= !strcmp(de->d_name, names[i]);
        if (!listed)
            report(k, "%s holds unexpected entry %s", dir, de->d_name);
        seen += listed;
    }
    closedir(d);
    if (seen != n)
        report(k, "%s holds %zu of the %zu expected entries", dir, seen, n);
}

static void check_tree(const struct fixture *f, struct plan_store *s, struct chk *k)
{
    if (!setup_ok(s, k))
        return;
    char cwd[256], buf[512];
    if (!getcwd(cwd, sizeof cwd) || strcmp(cwd, "/workspace"))
        report(k, "cwd is %s, wanted /workspace", cwd);
    /* Read-only root, including through a symlink in the workspace. */
    expect_open(k, "/etc/pd_x", O_WRONLY | O_CREAT, EROFS);
    expect_open(k, "/pd_x", O_WRONLY | O_CREAT, EROFS);
    expect_open(k, "/usr/pd_x", O_WRONLY | O_CREAT, EROFS);
    expect_open(k, "/workspace/etc-link/pd_x", O_WRONLY | O_CREAT, EROFS);
    errno = 0;
    expect(k, "mkdir /var/pd_x", mkdir("/var/pd_x", 0755), EROFS);
    /* Every mount of the root is read-only and nosuid, submounts included; the writable ones are
     * nosuid,nodev. */
    const char *const ro_paths[] = {"/", "/usr", "/etc", f->sub};
    for (size_t i = 0; i < sizeof ro_paths / sizeof ro_paths[0]; i++) {
        struct statvfs v;
        if (statvfs(ro_paths[i], &v) != 0 ||
            (v.f_flag & (ST_RDONLY | ST_NOSUID | ST_NODEV)) != (ST_RDONLY | ST_NOSUID | ST_NODEV))
            report(k, "%s is not read-only,nosuid,nodev", ro_paths[i]);
    }
    struct statfs subfs;
    if (statfs(f->sub, &subfs) != 0 || subfs.f_type != TMPFS_MAGIC)
        report(k, "%s: the host-side submount is not visible inside", f->sub);
    snprintf(buf, sizeof buf, "%s/x", f->sub);
    expect_open(k, buf, O_WRONLY | O_CREAT, EROFS);
    const char *const rw_paths[] = {"/workspace", "/tmp", f->home, "/dev/shm", "/tmp/bind_a"};
    for (size_t i = 0; i < sizeof rw_paths / sizeof rw_paths[0]; i++) {
        struct statvfs v;
        if (statvfs(rw_paths[i], &v) != 0 || (v.f_flag & ST_RDONLY) ||
            (v.f_flag & (ST_NOSUID | ST_NODEV)) != (ST_NOSUID | ST_NODEV))
            report(k, "%s is not rw,nosuid,nodev", rw_paths[i]);
    }
    /* Writable workspace; hard links out of it cannot be made. */
    int fd = open("/workspace/made-inside", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    expect(k, "create /workspace/made-inside", fd, 0);
    if (fd >= 0) {
        expect(k, "write /workspace/made-inside", write(fd, "inside\n", 7), 0);
        close(fd);
    }
    errno = 0;
    expect(k, "link /etc/passwd into the workspace", link("/etc/passwd", "/workspace/hl"), EXDEV);
    expect(k, "mknod char device in the workspace",
           mknod("/workspace/null2", S_IFCHR | 0666, makedev(1, 3)), EPERM);
    expect(k, "mknod char device in /tmp", mknod("/tmp/null2", S_IFCHR | 0666, makedev(1, 3)),
           EPERM);
    /* Protected paths read-only, the rest of the workspace writable. */
    expect_open(k, "/workspace/.bashrc", O_WRONLY, EROFS);
    expect_open(k, "/workspace/inner-link", O_WRONLY, EROFS);
    expect_open(k, "/workspace/.git/hooks/post-checkout", O_WRONLY | O_CREAT, EROFS);
    expect_open(k, "/workspace/.git/hooks/pre-commit", O_WRONLY, EROFS);
    /* Nor can a protected path or a directory above it be moved aside and replaced. */
    expect(k, "rename /workspace/.git (parent of a protected path)",
           rename("/workspace/.git", "/workspace/.git.old"), EBUSY);
    expect(k, "rename /workspace/.git/hooks", rename("/workspace/.git/hooks", "/workspace/.git/h2"),
           EBUSY);
    expect(k, "unlink /workspace/.bashrc", unlink("/workspace/.bashrc"), EBUSY);
    expect_open(k, "/workspace/.git/config", O_WRONLY | O_CREAT, 0);
    /* Extra binds. */
    expect_open(k, "/tmp/bind_a/from-sandbox", O_WRONLY | O_CREAT, 0);
    snprintf(buf, sizeof buf, "%s/x", f->bind_b);
    expect_open(k, buf, O_WRONLY | O_CREAT, 0);
    expect_open(k, "/tmp/bind_ro/x", O_WRONLY | O_CREAT, EROFS);
    /* /proc: only this namespace's processes (this one, PID 1), /proc/sys read-only. */
    static const char *const only_pid1[] = {"1"};
    DIR *d = opendir("/proc");
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)))
            if (de->d_name[0] >= '0' && de->d_name[0] <= '9' && strcmp(de->d_name, only_pid1[0]))
                report(k, "/proc shows process %s outside the sandbox", de->d_name);
        closedir(d);
    } else {
        report(k, "opendir /proc: %s", strerror(errno));
    }
    struct statvfs sv;
    if (statvfs("/proc/sys", &sv) != 0 || !(sv.f_flag & ST_RDONLY))
        report(k, "/proc/sys is not read-only");
    /* /dev: exactly the listed entries, and they work. */
    static const char *const devs[] = {"null", "zero", "full",  "random", "urandom",
                                       "tty",  "fd",   "stdin", "stdout", "stderr",
                                       "ptmx", "pts",  "shm"};
    check_dir_exact(k, "/dev", devs, sizeof devs / sizeof devs[0]);
    fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    expect(k, "open /dev/null", fd, 0);
    if (fd >= 0) {
        expect(k, "write /dev/null", write(fd, "x", 1), 0);
        close(fd);
    }
    fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
    expect(k, "open /dev/zero", fd, 0);
    if (fd >= 0) {
        buf[0] = 'x';
        if (read(fd, buf, 4) != 4 || buf[0] != 0)
            report(k, "read /dev/zero gave no zeros");
        close(fd);
    }
    expect_open(k, "/dev/pd_x", O_WRONLY | O_CREAT, EROFS);
    struct stat st;
    if (lstat("/dev/fd", &st) != 0 || !S_ISLNK(st.st_mode))
        report(k, "/dev/fd is not a symlink");
    if (stat("/dev/pts/ptmx", &st) != 0)
        report(k, "/dev/pts/ptmx missing: %s", strerror(errno));
    /* /sys read-only (fresh sysfs or an empty tmpfs). */
    if (statvfs("/sys", &sv) != 0 || !(sv.f_flag & ST_RDONLY))
        report(k, "/sys is not read-only");
    /* resolv.conf and hosts. */
    read_text("/etc/resolv.conf", buf, sizeof buf);
    if (strcmp(buf, RESOLV))
        report(k, "/etc/resolv.conf holds \"%s\"", buf);
    read_text("/etc/hosts", buf, sizeof buf);
    if (strcmp(buf, HOSTS))
        report(k, "/etc/hosts holds \"%s\"", buf);
    expect_open(k, "/etc/hosts", O_WRONLY, EROFS);
    /* HOME is a fresh tmpfs (the host's copy is hidden), owned by uid:gid, 0700, size-limited. */
    if (stat(f->home, &st) != 0 || st.st_uid != f->uid || st.st_gid != f->gid ||
        (st.st_mode & 07777) != 0700)
        report(k, "HOME %s: wrong owner or mode", f->home);
    snprintf(buf, sizeof buf, "%s/file", f->home);
    expect_open(k, buf, O_WRONLY | O_CREAT, 0);
    int e = fill(buf, 2 * SIZE_1M);
    if (e != ENOSPC)
        report(k, "writing 2 MiB into a 1 MiB HOME: %s, wanted ENOSPC",
               e ? strerror(e) : "success");
    e = fill("/tmp/big", 2 * SIZE_1M);
    if (e != ENOSPC)
        report(k, "writing 2 MiB into a 1 MiB /tmp: %s, wanted ENOSPC",
               e ? strerror(e) : "success");
    e = fill("/dev/shm/big", 2 * SIZE_1M);
    if (e != ENOSPC)
        report(k, "writing 2 MiB into a 1 MiB /dev/shm: %s, wanted ENOSPC",
               e ? strerror(e) : "success");
    if (stat("/tmp", &st) != 0 || (st.st_mode & 07777) != 01777)
        report(k, "/tmp mode is not 1777");
    /* Masks: without capabilities, as the agent will be. */
    drop_caps(k);
    errno = 0;
    d = opendir(f->mdir);
    expect(k, "opendir masked dir", d ? 0 : -1, EACCES);
    if (d)
        closedir(d);
    expect_open(k, f->mfile, O_RDONLY, EACCES);
    /* Masked /proc files (those this kernel has): the empty 0000 file. */
    static const char *const procs[] = {"/proc/kcore", "/proc/keys", "/proc/timer_list",
                                        "/proc/sysrq-trigger"};
    int masked_procs = 0;
    for (size_t i = 0; i < sizeof procs / sizeof procs[0]; i++) {
        if (stat(procs[i], &st) != 0)
            continue;
        masked_procs++;
        if ((st.st_mode & 07777) != 0 || st.st_size != 0)
            report(k, "%s is not masked (mode 0%o)", procs[i], (unsigned)st.st_mode);
        expect_open(k, procs[i], O_RDONLY, EACCES);
    }
    if (masked_procs == 0)
        report(k, "none of the masked /proc files exists");
    expect_open(k, "/workspace/after-drop", O_WRONLY | O_CREAT, 0);
}

static void check_escape(const struct fixture *f, struct plan_store *s, struct chk *k)
{
    (void)f;
    static const char *const bad[] = {"escape", "../ws/.bashrc", "/etc/passwd", "etc-link/passwd"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pid_t c = fork(); /* a failed setup leaves the namespace half-built: one try per child */
        if (c == 0) {
            if (unshare(CLONE_NEWNS) != 0)
                _exit(2);
            s->prot[0] = bad[i];
            struct pd_err err = {{0}};
            int rc = pd_fs_setup(&s->plan, &err);
            if (rc != -1 || !strstr(err.msg, bad[i]))
                report(k, "protected path %s: pd_fs_setup returned %d (%s), wanted -1 naming it",
                       bad[i], rc, err.msg);
            _exit(0);
        }
        int st = 0;
        if (c < 0 || waitpid(c, &st, 0) != c || st != 0)
            report(k, "child for %s: status 0x%x", bad[i], (unsigned)st);
    }
    /* A HOME missing from the rootfs: the error names the step and the path. */
    pid_t h = fork();
    if (h == 0) {
        if (unshare(CLONE_NEWNS) != 0)
            _exit(2);
        s->plan.home = "/pd-no-such-home";
        struct pd_err err = {{0}};
        if (pd_fs_setup(&s->plan, &err) != -1 || !strstr(err.msg, "HOME") ||
            !strstr(err.msg, "/pd-no-such-home: No such file or directory"))
            report(k, "missing HOME: got \"%s\"", err.msg);
        _exit(0);
    }
    int hst = 0;
    if (h < 0 || waitpid(h, &hst, 0) != h || hst != 0)
        report(k, "child for the HOME case: status 0x%x", (unsigned)hst);
    /* A bind whose destination does not exist (outside HOME and /tmp) is an error naming it. */
    pid_t c = fork();
    if (c == 0) {
        if (unshare(CLONE_NEWNS) != 0)
            _exit(2);
        s->binds[0].dst = "/etc/pd-no-such-dir";
        struct pd_err err = {{0}};
        if (pd_fs_setup(&s->plan, &err) != -1 || !strstr(err.msg, "/etc/pd-no-such-dir"))
            report(k, "bind to a missing destination: got \"%s\"", err.msg);
        _exit(0);
    }
    int st = 0;
    if (c < 0 || waitpid(c, &st, 0) != c || st != 0)
        report(k, "child for the bind case: status 0x%x", (unsigned)st);
}

/* rootfs = a directory: / holds exactly its entries plus the mount points, resolv.conf (a symlink
 * there) shows the given contents. */
static void check_rootfs_dir(const struct fixture *f, struct plan_store *s, struct chk *k)
{
    s->plan.rootfs = f->rootfs;
    s->plan.home = "/home/u";
    s->plan.nmasked = 0;
    s->plan.nbinds = 1; /* /tmp/bind_a: its mount point is made on the fresh /tmp */
    if (!setup_ok(s, k))
        return;
    static const char *const top[] = {"etc",  "run", "home", "usr", "bin",
                                      "proc", "dev", "sys",  "tmp", "workspace"};
    check_dir_exact(k, "/", top, sizeof top / sizeof top[0]);
    char buf[256];
    read_text("/etc/resolv.conf", buf, sizeof buf);
    if (strcmp(buf, RESOLV))
        report(k, "/etc/resolv.conf (a symlink in the rootfs) holds \"%s\"", buf);
    read_text("/etc/hosts", buf, sizeof buf);
    if (strcmp(buf, HOSTS))
        report(k, "/etc/hosts holds \"%s\"", buf);
    /* open_tree/move_mount mount over the symlink itself; mount(2) follows it to the target. */
    read_text("/run/resolv-real", buf, sizeof buf);
    const char *want = s->plan.legacy_mount_api ? RESOLV : "nameserver 192.0.2.1\n";
    if (strcmp(buf, want))
        report(k, "the symlink's target /run/resolv-real holds \"%s\", wanted \"%s\"", buf, want);
    struct stat st;
    if (lstat("/bin", &st) != 0 || !S_ISLNK(st.st_mode))
        report(k, "/bin is not the rootfs's symlink");
    expect_open(k, "/etc/pd_x", O_WRONLY | O_CREAT, EROFS);
    expect_open(k, "/home/u/x", O_WRONLY | O_CREAT, 0);
    expect_open(k, "/tmp/bind_a/x", O_WRONLY | O_CREAT, 0);
    expect_open(k, "/workspace/x", O_WRONLY | O_CREAT, 0);
}

/* With its own network namespace the sandbox gets a fresh sysfs, read-only. */
static void check_sysfs(const struct fixture *f, struct plan_store *s, struct chk *k)
{
    (void)f;
    if (!setup_ok(s, k))
        return;
    struct statfs sf;
    struct statvfs sv;
    if (statfs("/sys", &sf) != 0 || sf.f_type != SYSFS_MAGIC)
        report(k, "/sys is not a sysfs");
    if (statvfs("/sys", &sv) != 0 || !(sv.f_flag & ST_RDONLY))
        report(k, "/sys is not read-only");
    struct stat st;
    if (stat("/sys/kernel", &st) != 0)
        report(k, "/sys/kernel missing: %s", strerror(errno));
    errno = 0;
    expect(k, "mkdir in /sys", mkdir("/sys/pd", 0755), EROFS);
    expect(k, "mkdir in /sys/kernel", mkdir("/sys/kernel/pd", 0755), EROFS);
}

static int listener(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 4) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        return -1;
    *port = ntohs(a.sin_port);
    return fd;
}

static long tcp_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    long rc = fd < 0 ? -1 : connect(fd, (struct sockaddr *)&a, sizeof a);
    int e = errno;
    if (fd >= 0)
        close(fd);
    errno = e;
    return rc;
}

static void check_landlock(const struct fixture *f, struct plan_store *s, struct chk *k)
{
    if (!setup_ok(s, k))
        return;
    uint16_t p_ok = 0, p_no = 0;
    int l1 = listener(&p_ok), l2 = listener(&p_no);
    if (l1 < 0 || l2 < 0) {
        report(k, "cannot create loopback listeners: %s", strerror(errno));
        return;
    }
    /* The Landlock plan knows only bind_a: bind_b stays a writable mount that Landlock refuses. */
    struct pd_fs_plan lp = s->plan;
    lp.nbinds = 1;
    struct pd_err err = {{0}};
    int abi = pd_fs_landlock(&lp, &p_ok, 1, &err);
    if (abi < 1) {
        report(k, "pd_fs_landlock returned %d: %s (this host has Landlock)", abi, err.msg);
        return;
    }
    expect_open(k, "/tmp/bind_a/ok", O_WRONLY | O_CREAT, 0);
    char bb[200];
    snprintf(bb, sizeof bb, "%s/refused", f->bind_b);
    expect_open(k, bb, O_WRONLY | O_CREAT, EACCES);
    expect_open(k, "/workspace/ok", O_WRONLY | O_CREAT | O_TRUNC, 0);
    expect_open(k, "/tmp/ok", O_WRONLY | O_CREAT, 0);
    expect_open(k, "/dev/shm/ok", O_WRONLY | O_CREAT, 0);
    char hf[200];
    snprintf(hf, sizeof hf, "%s/ok", f->home);
    expect_open(k, hf, O_WRONLY | O_CREAT, 0);
    expect_open(k, "/dev/null", O_WRONLY | O_TRUNC, 0);
    expect_open(k, "/etc/passwd", O_RDONLY, 0);
    errno = 0;
    snprintf(bb, sizeof bb, "%s/d", f->bind_b);
    expect(k, "mkdir in the rw bind Landlock does not know", mkdir(bb, 0755), EACCES);
    expect(k, "mkdir /workspace/d", mkdir("/workspace/d", 0755), 0);
    expect(k, "rename within /workspace", rename("/workspace/d", "/workspace/d2"), 0);
    if (abi >= 4) {
        errno = 0;
        expect(k, "TCP connect to an allowed port", tcp_connect(p_ok), 0);
        expect(k, "TCP connect to a port not in the list", tcp_connect(p_no), EACCES);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        expect(k, "TCP bind", bind(fd, (struct sockaddr *)&a, sizeof a), EACCES);
        close(fd);
    }
    close(l1);
    close(l2);
}

/* ---------------------------------------------------------------- cases */

/* extra_ns: more CLONE_NEW* flags for the sandbox (CLONE_NEWNET: sysfs can be mounted). */
static void run_ns(bool unpriv, bool legacy, int extra_ns, check_fn fn)
{
    struct fixture f;
    fixture_make(&f, unpriv);
    char *msg = run_case(&f, legacy, extra_ns, fn);
    if (msg) {
        fixture_remove(&f);
        fail_msg("%s", msg); /* cmocka ends the test here: msg is not freed */
    }
    char buf[64] = "";
    struct stat st = {0};
    int rc = 0;
    if (fn == check_tree) { /* the workspace write reached the host, as the caller's uid */
        char p[200];
        snprintf(p, sizeof p, "%s/made-inside", f.ws);
        rc = stat(p, &st);
        read_text(p, buf, sizeof buf);
    }
    fixture_remove(&f);
    if (fn == check_tree) {
        assert_int_equal(rc, 0);
        assert_int_equal(st.st_uid, f.uid);
        assert_string_equal(buf, "inside\n");
    }
}

static void run_all(bool unpriv, bool legacy, check_fn fn)
{
    run_ns(unpriv, legacy, 0, fn);
}

static void test_tree_root(void **state)
{
    (void)state;
    run_all(false, false, check_tree);
}

static void test_tree_root_legacy(void **state)
{
    (void)state;
    run_all(false, true, check_tree);
}

static void test_tree_nobody(void **state)
{
    (void)state;
    run_all(true, false, check_tree);
}

static void test_tree_nobody_legacy(void **state)
{
    (void)state;
    run_all(true, true, check_tree);
}

static void test_escapes_refused(void **state)
{
    (void)state;
    run_all(false, false, check_escape);
    run_all(true, true, check_escape);
}

static void test_rootfs_dir(void **state)
{
    (void)state;
    run_all(false, false, check_rootfs_dir);
    run_all(false, true, check_rootfs_dir);
    run_all(true, false, check_rootfs_dir);
}

static void test_sysfs_with_netns(void **state)
{
    (void)state;
    run_ns(false, false, CLONE_NEWNET, check_sysfs);
    run_ns(true, true, CLONE_NEWNET, check_sysfs);
}

static void test_landlock_root(void **state)
{
    (void)state;
    run_all(false, false, check_landlock);
}

static void test_landlock_nobody(void **state)
{
    (void)state;
    run_all(true, false, check_landlock);
}

/* Invalid plans are refused before any mount (run in a private mount namespace all the same). */
static void test_plan_validation(void **state)
{
    (void)state;
    pid_t c = fork();
    assert_true(c >= 0);
    if (c == 0) {
        if (unshare(CLONE_NEWNS) != 0)
            _exit(2);
        struct pd_fs_plan p;
        memset(&p, 0, sizeof p);
        p.rootfs = "/";
        p.workspace = "relative/ws";
        p.home = "/root";
        struct pd_err err = {{0}};
        if (pd_fs_setup(&p, &err) != -1 || !strstr(err.msg, "absolute"))
            _exit(3);
        p.workspace = "/tmp";
        p.nmasked = 1; /* a count without a list */
        if (pd_fs_setup(&p, &err) != -1)
            _exit(4);
        p.nmasked = 0;
        p.home = "/";
        if (pd_fs_setup(&p, &err) != -1)
            _exit(5);
        _exit(0);
    }
    int st = 0;
    assert_int_equal(waitpid(c, &st, 0), c);
    assert_int_equal(st, 0);
}

static void test_default_masked(void **state)
{
    (void)state;
    static const char *const must[] = {
        "/home/alice/.ssh",
        "/home/alice/.aws",
        "/home/alice/.config/gcloud",
        "/home/alice/.kube",
        "/home/alice/.docker",
        "/home/alice/.gnupg",
        "/home/alice/.netrc",
        "/home/alice/.git-credentials",
        "/home/alice/.npmrc",
        "/home/alice/.pypirc",
        "/home/alice/.config/gh",
        "/home/alice/.azure",
        "/home/alice/.vault-token",
        "/home/alice/.terraform.d",
        "/home/alice/.config/hub",
        "/home/alice/.pgpass",
        "/home/alice/.my.cnf",
        "/home/alice/.password-store",
        "/home/alice/.local/share/keyrings",
        "/etc/shadow",
        "/etc/gshadow",
        "/etc/ssh",
        "/run",
        "/var/run",
        "/root",
        "/var/lib/paddock",
        "/etc/paddock",
    };
    char **list = NULL;
    struct pd_err err = {{0}};
    int n = pd_fs_default_masked("/home/alice/", &list, &err);
    assert_true(n > 0);
    for (size_t i = 0; i < sizeof must / sizeof must[0]; i++) {
        bool found = false;
        for (int j = 0; j < n; j++)
            found |= !strcmp(list[j], must[i]);
        if (!found)
            fail_msg("default masked list lacks %s", must[i]);
    }
    for (int j = 0; j < n; j++)
        assert_true(list[j][0] == '/');
    pd_fs_free_list(list, (size_t)n);
    /* Home /root: /root itself is not masked (HOME covers it), its secrets are. */
    n = pd_fs_default_masked("/root", &list, &err);
    assert_true(n > 0);
    bool root_listed = false, ssh = false;
    for (int j = 0; j < n; j++) {
        root_listed |= !strcmp(list[j], "/root");
        ssh |= !strcmp(list[j], "/root/.ssh");
    }
    assert_false(root_listed);
    assert_true(ssh);
    pd_fs_free_list(list, (size_t)n);
    assert_int_equal(pd_fs_default_masked("relative", &list, &err), -1);
    assert_non_null(strstr(err.msg, "absolute"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_validation),  cmocka_unit_test(test_default_masked),
        cmocka_unit_test(test_tree_root),        cmocka_unit_test(test_tree_root_legacy),
        cmocka_unit_test(test_tree_nobody),      cmocka_unit_test(test_tree_nobody_legacy),
        cmocka_unit_test(test_escapes_refused),  cmocka_unit_test(test_landlock_root),
        cmocka_unit_test(test_landlock_nobody),  cmocka_unit_test(test_rootfs_dir),
        cmocka_unit_test(test_sysfs_with_netns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
