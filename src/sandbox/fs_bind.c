/* fs_bind.c - the mount primitives of pd_fs_setup (see fs_int.h): binds with recursive
 * attributes (new mount API, or mount(2) plus a mountinfo walk), tmpfs and masks on resolved fds.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox/fs_int.h"

/* "STEP PATH: strerror(errno)", -1. */
int fs_fail(struct fsctx *c, const char *step, const char *path)
{
    int e = errno;
    pd_err_set(c->err, "%s %s: %s", step, path, strerror(e));
    errno = e;
    return -1;
}

int fs_xopenat2(int dirfd, const char *path, int flags, uint64_t resolve)
{
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = (uint64_t)(flags | O_CLOEXEC);
    how.resolve = resolve;
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

/* The path through which mount(2) reaches what fd names (proc of the new PID namespace). */
const char *fs_fdpath(int fd, char buf[64])
{
    snprintf(buf, 64, NEWROOT "/proc/self/fd/%d", fd);
    return buf;
}

void fs_close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* ---------------------------------------------------------------- mountinfo walk (fallback) */

/* Decode mountinfo's \NNN escapes in place. */
static void unescape(char *s)
{
    char *w = s;
    for (char *r = s; *r;) {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
            r[3] >= '0' && r[3] <= '7') {
            *w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
            r += 4;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
}

/* The flags of a mount that a remount in a user namespace must keep (they may be locked). */
static unsigned long kept_flags(const char *opts)
{
    unsigned long f = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", opts);
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (!strcmp(t, "ro"))
            f |= MS_RDONLY;
        else if (!strcmp(t, "nosuid"))
            f |= MS_NOSUID;
        else if (!strcmp(t, "nodev"))
            f |= MS_NODEV;
        else if (!strcmp(t, "noexec"))
            f |= MS_NOEXEC;
        else if (!strcmp(t, "noatime"))
            f |= MS_NOATIME;
        else if (!strcmp(t, "nodiratime"))
            f |= MS_NODIRATIME;
        else if (!strcmp(t, "relatime"))
            f |= MS_RELATIME;
        else if (!strcmp(t, "strictatime"))
            f |= MS_STRICTATIME;
    }
    return f;
}

static char *slurp(struct fsctx *c, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fs_fail(c, "open", path);
        return NULL;
    }
    size_t cap = 16384, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (cap - len < 4096) {
            char *nb = cap > SIZE_MAX / 2 ? NULL : realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fs_fail(c, "read", path);
            free(buf);
            close(fd);
            return NULL;
        }
        if (n == 0) {
            buf[len] = '\0';
            break;
        }
        len += (size_t)n;
    }
    close(fd);
    if (!buf)
        pd_err_set(c->err, "read %s: out of memory", path);
    return buf;
}

/* Remount every mount at or beneath `path` with `flags` added to the flags it must keep. */
static int remount_tree(struct fsctx *c, const char *path, unsigned long flags)
{
    char *info = slurp(c, NEWROOT "/proc/self/mountinfo");
    if (!info)
        return -1;
    size_t plen = strlen(path);
    int rc = 0;
    char *save = NULL;
    for (char *line = strtok_r(info, "\n", &save); line && rc == 0;
         line = strtok_r(NULL, "\n", &save)) {
        char *f[6];
        char *s2 = NULL, *p = line;
        int n = 0;
        for (; n < 6; n++, p = NULL) {
            f[n] = strtok_r(p, " ", &s2);
            if (!f[n])
                break;
        }
        if (n < 6)
            continue;
        unescape(f[4]);
        if (strncmp(f[4], path, plen) != 0 || (f[4][plen] != '\0' && f[4][plen] != '/'))
            continue;
        if (mount(NULL, f[4], NULL, MS_REMOUNT | MS_BIND | flags | kept_flags(f[5]), NULL) != 0)
            rc = fs_fail(c, "remount", f[4]);
    }
    free(info);
    return rc;
}

/* ---------------------------------------------------------------- binds */

static unsigned long ms_of(uint64_t attr)
{
    return ((attr & MOUNT_ATTR_RDONLY) ? MS_RDONLY : 0) |
           ((attr & MOUNT_ATTR_NOSUID) ? MS_NOSUID : 0) |
           ((attr & MOUNT_ATTR_NODEV) ? MS_NODEV : 0) |
           ((attr & MOUNT_ATTR_NOEXEC) ? MS_NOEXEC : 0);
}

/* Bind what src names, recursively, onto what dst names, then set `attr` (MOUNT_ATTR_*) on every
 * mount of the new tree. `what` names the destination in errors. */
int fs_bind_tree(struct fsctx *c, int src, int dst, uint64_t attr, const char *what)
{
    if (!c->legacy) {
        int t = (int)syscall(SYS_open_tree, src, "",
                             OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE);
        if (t < 0 && errno == ENOSYS) {
            c->legacy = true;
        } else if (t < 0) {
            return fs_fail(c, "open_tree for", what);
        } else {
            struct mount_attr ma;
            memset(&ma, 0, sizeof ma);
            ma.attr_set = attr;
            if (attr && syscall(SYS_mount_setattr, t, "", AT_EMPTY_PATH | AT_RECURSIVE, &ma,
                                sizeof ma) != 0) {
                if (errno != ENOSYS) {
                    fs_fail(c, "mount_setattr on", what);
                    close(t);
                    return -1;
                }
                close(t);
                c->legacy = true;
            } else {
                int rc = (int)syscall(SYS_move_mount, t, "", dst, "",
                                      MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
                close(t);
                return rc == 0 ? 0 : fs_fail(c, "move_mount onto", what);
            }
        }
    }
    char sp[64], dp[64], path[4096];
    if (mount(fs_fdpath(src, sp), fs_fdpath(dst, dp), NULL, MS_BIND | MS_REC, NULL) != 0)
        return fs_fail(c, "bind onto", what);
    /* dst's fd names the covered directory; its path string now reaches the new mount. */
    ssize_t n = readlink(dp, path, sizeof path - 1);
    if (n >= (ssize_t)sizeof path - 1)
        errno = ENAMETOOLONG;
    if (n < 0 || n >= (ssize_t)sizeof path - 1)
        return fs_fail(c, "readlink (path of the new mount)", what);
    path[n] = '\0';
    return remount_tree(c, path, ms_of(attr));
}

/* Mount a tmpfs on what fd names. */
int fs_tmpfs_on(struct fsctx *c, int fd, unsigned long flags, const char *opts, const char *what)
{
    char dp[64];
    if (mount("tmpfs", fs_fdpath(fd, dp), "tmpfs", flags, opts) != 0)
        return fs_fail(c, "mount tmpfs on", what);
    return 0;
}

/* Hide what fd names: an empty read-only 0000 tmpfs on a directory, the empty file on the rest. */
int fs_mask_fd(struct fsctx *c, int fd, const char *what)
{
    struct stat st;
    struct statfs sf;
    if (fstat(fd, &st) != 0 || fstatfs(fd, &sf) != 0)
        return fs_fail(c, "stat", what);
    /* Already hidden (two masked paths naming one place, e.g. /var/run -> /run): nothing to do.
     * At this step the only 0000 objects on a tmpfs are our masks (nothing writable is mounted). */
    if ((st.st_mode & 07777) == 0 && sf.f_type == TMPFS_MAGIC &&
        (S_ISDIR(st.st_mode) || st.st_size == 0))
        return 0;
    if (S_ISDIR(st.st_mode))
        return fs_tmpfs_on(c, fd, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                           "mode=000,size=4k,nr_inodes=1", what);
    char dp[64];
    if (mount(EMPTY_FILE, fs_fdpath(fd, dp), NULL, MS_BIND, NULL) != 0)
        return fs_fail(c, "mask (bind empty file onto)", what);
    return 0;
}

/* Resolve an absolute path inside the new root; -1 with errno (no err set). */
int fs_in_root(struct fsctx *c, const char *path, int flags)
{
    return fs_xopenat2(c->newroot, path, O_PATH | flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
}
