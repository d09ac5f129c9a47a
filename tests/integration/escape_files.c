/*
 * escape_files.c - the escape probe's file attempts: write, read, symlink-write, hardlink,
 * chmod-suid. The contract is at the top of escape.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include "escape.h"

#define MARKER "paddock-escape-probe\n"

/* ---------------------------------------------------------------- files */

bool esc_write_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        s += w;
        n -= (size_t)w;
    }
    return true;
}

/* Open (flags) and write text: 0, or an errno. */
static int write_file(const char *path, int flags, const char *text)
{
    int fd = open(path, flags | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0)
        return errno;
    int e = esc_write_all(fd, text, strlen(text)) ? 0 : errno ? errno : EIO;
    if (close(fd) != 0 && e == 0)
        e = errno;
    return e;
}

void esc_a_write(struct out *o, int argc, char **argv)
{
    if (argc < 1) {
        esc_probe_error(o, EINVAL, "usage: escape write PATH [TEXT]");
        return;
    }
    int e = write_file(argv[0], O_CREAT | O_TRUNC, argc > 1 ? argv[1] : MARKER);
    char label[PATH_MAX + 16];
    snprintf(label, sizeof label, "write %s", argv[0]);
    esc_try_result(o, label, e == 0, e);
}

void esc_a_read(struct out *o, int argc, char **argv)
{
    if (argc < 1) {
        esc_probe_error(o, EINVAL, "usage: escape read PATH");
        return;
    }
    char label[PATH_MAX + 16];
    snprintf(label, sizeof label, "read %s", argv[0]);
    int fd = open(argv[0], O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        esc_try_result(o, label, false, errno);
        return;
    }
    char buf[SHOW_MAX];
    size_t n = 0;
    int e = 0;
    while (n < sizeof buf) {
        ssize_t r = read(fd, buf + n, sizeof buf - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            e = errno;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    if (n == 0) {
        esc_try_result(o, label, false, e ? e : ENODATA);
        esc_detail(o, "opened, nothing read");
        return;
    }
    esc_try_result(o, label, true, 0);
    esc_x_member_int(o, "bytes", (long long)n);
    esc_x_member_str(o, "content", buf, n);
}

void esc_a_symlink_write(struct out *o, int argc, char **argv)
{
    if (argc < 1) {
        esc_probe_error(o, EINVAL, "usage: escape symlink-write LINK");
        return;
    }
    char target[PATH_MAX];
    ssize_t n = readlink(argv[0], target, sizeof target - 1);
    if (n < 0) {
        esc_probe_error(o, errno, "%s is not a readable symlink: %s", argv[0], strerror(errno));
        return;
    }
    target[n] = '\0';
    esc_x_member_str(o, "target", target, (size_t)n);
    int e = write_file(argv[0], O_CREAT | O_TRUNC, MARKER);
    char label[2 * PATH_MAX + 32];
    snprintf(label, sizeof label, "write through %s -> %s", argv[0], target);
    esc_try_result(o, label, e == 0, e);
}

void esc_a_hardlink(struct out *o, int argc, char **argv)
{
    if (argc < 2) {
        esc_probe_error(o, EINVAL, "usage: escape hardlink SRC DST");
        return;
    }
    errno = 0;
    long rc = syscall(SYS_linkat, (long)AT_FDCWD, argv[0], (long)AT_FDCWD, argv[1], 0L);
    char label[2 * PATH_MAX + 32];
    snprintf(label, sizeof label, "link %s -> %s", argv[0], argv[1]);
    if (rc != 0) {
        esc_try_result(o, label, false, errno);
        return;
    }
    esc_detail(o, "%s: linked", label);
    int e = write_file(argv[1], O_APPEND, MARKER);
    snprintf(label, sizeof label, "write %s", argv[1]);
    esc_try_result(o, label, e == 0, e);
    unlink(argv[1]);
}

void esc_a_chmod_suid(struct out *o, int argc, char **argv)
{
    if (argc < 1) {
        esc_probe_error(o, EINVAL, "usage: escape chmod-suid PATH");
        return;
    }
    struct stat sb;
    if (stat(argv[0], &sb) != 0) {
        int e = write_file(argv[0], O_CREAT | O_EXCL, "#!/bin/sh\nid\n");
        if (e) {
            esc_try_result(o, "create the file", false, e);
            return;
        }
    }
    errno = 0;
    long rc = syscall(SYS_fchmodat, (long)AT_FDCWD, argv[0], (long)(S_ISUID | S_ISGID | 0755));
    int e = errno;
    if (rc != 0) {
        esc_try_result(o, "chmod 6755", false, e);
        return;
    }
    if (stat(argv[0], &sb) != 0) {
        esc_probe_error(o, errno, "stat after chmod: %s", strerror(errno));
        return;
    }
    esc_x_member_int(o, "mode", (long long)(sb.st_mode & 07777));
    esc_x_member_int(o, "uid", (long long)sb.st_uid);
    esc_x_member_int(o, "gid", (long long)sb.st_gid);
    if (sb.st_mode & (S_ISUID | S_ISGID)) {
        o->escaped = true;
        esc_detail(o, "chmod 6755 kept the set-id bits (mode %04o)",
                   (unsigned)(sb.st_mode & 07777));
    } else {
        o->err = EPERM;
        esc_detail(o, "chmod 6755 accepted but the set-id bits were dropped (mode %04o)",
                   (unsigned)(sb.st_mode & 07777));
    }
}
