/* fs_mount.c - pd_fs_setup: the sandbox's mount tree (see fs.h for the tree and its order). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox/fs_int.h"

/* ---------------------------------------------------------------- steps */

/* The staging root: a tmpfs over the old /tmp holding newroot/, oldroot/, the empty file and the
 * resolv.conf/hosts files; then pivot into it. */
static int write_stage_file(struct fsctx *c, const char *path, const char *data, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return fs_fail(c, "create", path);
    size_t len = data ? strlen(data) : 0, off = 0;
    while (off < len) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fs_fail(c, "write", path);
            close(fd);
            return -1;
        }
        off += (size_t)n;
    }
    if (fchmod(fd, mode) != 0) {
        fs_fail(c, "chmod", path);
        close(fd);
        return -1;
    }
    close(fd);
    /* Read-only bind of itself, so every bind of it is read-only too. */
    if (mount(path, path, NULL, MS_BIND, NULL) != 0 ||
        mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
              NULL) != 0)
        return fs_fail(c, "read-only bind of", path);
    return 0;
}

static int stage(struct fsctx *c)
{
    const struct pd_fs_plan *p = c->p;
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        return fs_fail(c, "make every mount private:", "/");
    if (mount("pd-stage", STAGE, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=16m") != 0)
        return fs_fail(c, "mount staging tmpfs on", STAGE);
    if (mkdir(STAGE NEWROOT, 0755) != 0 || mkdir(STAGE OLDROOT, 0755) != 0)
        return fs_fail(c, "mkdir in staging tmpfs", STAGE);
    if (syscall(SYS_pivot_root, STAGE, STAGE OLDROOT) != 0)
        return fs_fail(c, "pivot_root into staging tmpfs", STAGE);
    if (chdir("/") != 0)
        return fs_fail(c, "chdir", "/");
    if (write_stage_file(c, EMPTY_FILE, NULL, 0) != 0 ||
        (p->resolv_conf && write_stage_file(c, "/resolv.conf", p->resolv_conf, 0644) != 0) ||
        (p->hosts && write_stage_file(c, "/hosts", p->hosts, 0644) != 0))
        return -1;
    if (mount("pd-root", NEWROOT, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m") != 0)
        return fs_fail(c, "mount root tmpfs on", NEWROOT);
    static const char *const dirs[] = {"proc", "dev", "sys", "tmp", "workspace"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        char path[64];
        snprintf(path, sizeof path, NEWROOT "/%s", dirs[i]);
        if (mkdir(path, 0755) != 0)
            return fs_fail(c, "mkdir", path);
    }
    if (mount("proc", NEWROOT "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0)
        return fs_fail(c, "mount proc on", "/proc");
    c->newroot = open(NEWROOT, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (c->newroot < 0)
        return fs_fail(c, "open", NEWROOT);
    c->oldroot = open(OLDROOT, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (c->oldroot < 0)
        return fs_fail(c, "open", OLDROOT);
    return 0;
}

static bool replaced_top(const char *name)
{
    static const char *const names[] = {".", "..", "proc", "dev", "sys", "tmp", "workspace"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(name, names[i]))
            return true;
    return false;
}

static int make_mount_point(struct fsctx *c, const char *dst, bool dir);

static bool masked_exactly(const struct fsctx *c, const char *path)
{
    for (size_t i = 0; i < c->p->nmasked; i++)
        if (c->p->masked[i] && !strcmp(c->p->masked[i], path))
            return true;
    return false;
}

/* One top-level entry of the rootfs into the root tmpfs. */
static int root_entry(struct fsctx *c, int rootfd, const char *name)
{
    struct stat st;
    if (fstatat(rootfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return fs_fail(c, "stat rootfs entry", name);
    if (S_ISLNK(st.st_mode)) {
        char target[4096];
        ssize_t n = readlinkat(rootfd, name, target, sizeof target - 1);
        if (n >= (ssize_t)sizeof target - 1)
            errno = ENAMETOOLONG;
        if (n < 0 || n >= (ssize_t)sizeof target - 1)
            return fs_fail(c, "readlink rootfs entry", name);
        target[n] = '\0';
        if (symlinkat(target, c->newroot, name) != 0)
            return fs_fail(c, "symlink", name);
        return 0;
    }
    if (S_ISDIR(st.st_mode)) {
        if (mkdirat(c->newroot, name, 0755) != 0)
            return fs_fail(c, "mkdir mount point", name);
        /* Entries that would be covered at once need no bind (each bind costs three mount
         * calls): a masked one is an empty 0000 directory (what its mask would be), HOME gets its
         * tmpfs on the empty directory, and /home holding HOME is just the way to it (other
         * users' directories are not there at all). */
        char top[300];
        snprintf(top, sizeof top, "/%.290s", name);
        if (masked_exactly(c, top)) {
            if (fchmodat(c->newroot, name, 0, 0) != 0)
                return fs_fail(c, "chmod 0000 (masked)", top);
            return 0;
        }
        size_t tl = strlen(top);
        if (!strcmp(top, c->p->home))
            return 0;
        if (!strcmp(top, "/home") && !strncmp(c->p->home, top, tl) && c->p->home[tl] == '/')
            return make_mount_point(c, c->p->home, true);
    } else if (S_ISREG(st.st_mode)) {
        int fd = openat(c->newroot, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0)
            return fs_fail(c, "create mount point", name);
        close(fd);
    } else {
        return 0; /* sockets, fifos, devices at the top level: not carried over */
    }
    int src = fs_xopenat2(rootfd, name, O_PATH | O_NOFOLLOW, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS);
    if (src < 0)
        return fs_fail(c, "open rootfs entry", name);
    int dst = openat(c->newroot, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (dst < 0) {
        close(src);
        return fs_fail(c, "open mount point", name);
    }
    char what[300];
    snprintf(what, sizeof what, "/%s (read-only root)", name);
    int rc =
        fs_bind_tree(c, src, dst, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, what);
    close(src);
    close(dst);
    return rc;
}

static int bind_rootfs(struct fsctx *c)
{
    int rootfd = fs_xopenat2(c->oldroot, c->p->rootfs, O_RDONLY | O_DIRECTORY, RESOLVE_IN_ROOT);
    if (rootfd < 0)
        return fs_fail(c, "open rootfs", c->p->rootfs);
    DIR *d = fdopendir(rootfd);
    if (!d) {
        fs_fail(c, "opendir rootfs", c->p->rootfs);
        close(rootfd);
        return -1;
    }
    int rc = 0;
    struct dirent *de;
    errno = 0;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (!replaced_top(de->d_name))
            rc = root_entry(c, dirfd(d), de->d_name);
        errno = 0;
    }
    if (rc == 0 && errno != 0)
        rc = fs_fail(c, "readdir rootfs", c->p->rootfs);
    closedir(d);
    return rc;
}

static int mask_paths(struct fsctx *c)
{
    for (size_t i = 0; i < c->p->nmasked; i++) {
        const char *m = c->p->masked[i];
        if (!m || m[0] != '/' || !strcmp(m, "/")) {
            pd_err_set(c->err, "masked path \"%s\": expected an absolute path other than /",
                       m ? m : "(null)");
            return -1;
        }
        int fd = fs_in_root(c, m, 0);
        if (fd < 0) {
            if (errno == ENOENT || errno == ELOOP || errno == ENOTDIR || errno == EACCES)
                continue; /* missing, dangling, looping, or out of the caller's reach */
            return fs_fail(c, "resolve masked path", m);
        }
        int rc = fs_mask_fd(c, fd, m);
        close(fd);
        if (rc != 0)
            return -1;
    }
    return 0;
}

static int proc_masks(struct fsctx *c)
{
    int sys = fs_in_root(c, "/proc/sys", O_DIRECTORY);
    if (sys < 0)
        return fs_fail(c, "open", "/proc/sys");
    int rc = fs_bind_tree(
        c, sys, sys, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
        "/proc/sys (read-only)");
    close(sys);
    if (rc != 0)
        return -1;
    static const char *const hide[] = {"/proc/sysrq-trigger", "/proc/kcore", "/proc/keys",
                                       "/proc/timer_list",    "/proc/acpi",  "/proc/scsi"};
    for (size_t i = 0; i < sizeof hide / sizeof hide[0]; i++) {
        int fd = fs_in_root(c, hide[i], O_NOFOLLOW);
        if (fd < 0) {
            if (errno == ENOENT)
                continue;
            return fs_fail(c, "open", hide[i]);
        }
        rc = fs_mask_fd(c, fd, hide[i]);
        close(fd);
        if (rc != 0)
            return -1;
    }
    return 0;
}

static int setup_dev(struct fsctx *c)
{
    char opts[96];
    if (mount("tmpfs", NEWROOT "/dev", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              "mode=0755,size=64k") != 0)
        return fs_fail(c, "mount tmpfs on", "/dev");
    static const char *const nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
    for (size_t i = 0; i < sizeof nodes / sizeof nodes[0]; i++) {
        char in[32], host[32];
        snprintf(in, sizeof in, NEWROOT "/dev/%s", nodes[i]);
        snprintf(host, sizeof host, "dev/%s", nodes[i]);
        int src = fs_xopenat2(c->oldroot, host, O_PATH, RESOLVE_IN_ROOT);
        if (src < 0) {
            if (errno == ENOENT && !strcmp(nodes[i], "tty"))
                continue;
            return fs_fail(c, "open host device", host);
        }
        int fd = open(in, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        int dst = fd < 0 ? -1 : open(in, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0)
            close(fd);
        if (dst < 0) {
            close(src);
            return fs_fail(c, "create mount point", in + strlen(NEWROOT));
        }
        /* A plain bind (one call): a device node is never executed nor set-id, so the mount
         * flags that matter elsewhere do not here. */
        char sp[64], dp[64];
        int rc = mount(fs_fdpath(src, sp), fs_fdpath(dst, dp), NULL, MS_BIND, NULL);
        close(src);
        close(dst);
        if (rc != 0)
            return fs_fail(c, "bind the host device onto", in + strlen(NEWROOT));
    }
    static const char *const links[][2] = {{"fd", "/proc/self/fd"},
                                           {"stdin", "/proc/self/fd/0"},
                                           {"stdout", "/proc/self/fd/1"},
                                           {"stderr", "/proc/self/fd/2"},
                                           {"ptmx", "pts/ptmx"}};
    for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
        char in[32];
        snprintf(in, sizeof in, NEWROOT "/dev/%s", links[i][0]);
        if (symlink(links[i][1], in) != 0)
            return fs_fail(c, "symlink", in + strlen(NEWROOT));
    }
    if (mkdir(NEWROOT "/dev/pts", 0755) != 0 || mkdir(NEWROOT "/dev/shm", 01777) != 0)
        return fs_fail(c, "mkdir in", "/dev");
    /* No gid=5 (tty): it is not mapped in a user namespace (EINVAL), and nothing inside needs a
     * tty group; terminals belong to the sandbox's user. */
    if (mount("devpts", NEWROOT "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
              "newinstance,ptmxmode=0666,mode=0620") != 0)
        return fs_fail(c, "mount devpts on", "/dev/pts");
    snprintf(opts, sizeof opts, "mode=1777,size=%" PRIu64,
             c->p->tmp_size ? c->p->tmp_size : DEFAULT_SIZE);
    if (mount("tmpfs", NEWROOT "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts) != 0)
        return fs_fail(c, "mount tmpfs on", "/dev/shm");
    if (mount(NULL, NEWROOT "/dev", NULL,
              MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0)
        return fs_fail(c, "remount read-only", "/dev");
    return 0;
}

static int setup_sys_tmp(struct fsctx *c)
{
    if (mount("sysfs", NEWROOT "/sys", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
              NULL) != 0 &&
        mount("tmpfs", NEWROOT "/sys", "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
              "mode=0755,size=4k,nr_inodes=1") != 0)
        return fs_fail(c, "mount sysfs (or an empty tmpfs) on", "/sys");
    char opts[96];
    snprintf(opts, sizeof opts, "mode=1777,size=%" PRIu64,
             c->p->tmp_size ? c->p->tmp_size : DEFAULT_SIZE);
    if (mount("tmpfs", NEWROOT "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, opts) != 0)
        return fs_fail(c, "mount tmpfs on", "/tmp");
    /* /var/tmp too: the host's persistent temporary files (and the Unix sockets daemons leave
     * there) are not the sandbox's; a /var/tmp that resolves to /tmp is already fresh. */
    int vt = fs_in_root(c, "/var/tmp", O_DIRECTORY);
    if (vt >= 0) {
        struct stat a, b;
        int rc = 0;
        if (fstat(vt, &a) == 0 && stat(NEWROOT "/tmp", &b) == 0 &&
            (a.st_dev != b.st_dev || a.st_ino != b.st_ino))
            rc = fs_tmpfs_on(c, vt, MS_NOSUID | MS_NODEV, opts, "/var/tmp");
        close(vt);
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* The directories above a protected path are pinned: each is bound onto itself (still writable),
 * so it is a mount point and cannot be renamed or removed (EBUSY); otherwise `mv .git .git.old;
 * mkdir .git` would put a new, writable .git/config where the protected one was. */
#define MAX_PINNED 128
struct pinned {
    dev_t dev;
    ino_t ino;
};

static int pin_parents(struct fsctx *c, int ws, const char *rel, struct pinned *pinned,
                       size_t *npinned)
{
    char prefix[4096];
    size_t len = strlen(rel);
    if (len >= sizeof prefix) {
        pd_err_set(c->err, "protected path \"%.64s...\": too long", rel);
        return -1;
    }
    for (size_t i = 1; i < len; i++) {
        if (rel[i] != '/' || rel[i - 1] == '/')
            continue;
        memcpy(prefix, rel, i);
        prefix[i] = '\0';
        int d = fs_xopenat2(ws, prefix, O_PATH | O_NOFOLLOW | O_DIRECTORY,
                            RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS);
        if (d < 0)
            return 0; /* a parent that is missing or a symlink: nothing of it is protected */
        struct stat st;
        bool seen = fstat(d, &st) != 0;
        for (size_t k = 0; !seen && k < *npinned; k++)
            seen = pinned[k].dev == st.st_dev && pinned[k].ino == st.st_ino;
        if (!seen && *npinned < MAX_PINNED) {
            char what[300];
            snprintf(what, sizeof what, "/workspace/%.200s (parent of a protected path)", prefix);
            if (fs_bind_tree(c, d, d, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, what) != 0) {
                close(d);
                return -1;
            }
            pinned[(*npinned)++] = (struct pinned){st.st_dev, st.st_ino};
        }
        close(d);
    }
    return 0;
}

static int setup_workspace(struct fsctx *c)
{
    const struct pd_fs_plan *p = c->p;
    int src = fs_xopenat2(c->oldroot, p->workspace, O_PATH | O_DIRECTORY,
                          RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS);
    if (src < 0)
        return fs_fail(c, "open workspace (an existing directory, canonical path, no symlinks)",
                       p->workspace);
    int dst = open(NEWROOT "/workspace", O_PATH | O_DIRECTORY | O_CLOEXEC);
    int rc = dst < 0
                 ? fs_fail(c, "open", "/workspace")
                 : fs_bind_tree(c, src, dst, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, "/workspace");
    close(src);
    fs_close_fd(&dst);
    if (rc != 0)
        return -1;
    int ws = open(NEWROOT "/workspace", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (ws < 0)
        return fs_fail(c, "open", "/workspace");
    struct pinned pinned[MAX_PINNED];
    size_t npinned = 0;
    for (size_t i = 0; i < p->nprotected && rc == 0; i++) {
        const char *rel = p->protected_paths[i];
        if (!rel || !rel[0] || rel[0] == '/') {
            pd_err_set(c->err, "protected path \"%s\": expected a path relative to the workspace",
                       rel ? rel : "(null)");
            rc = -1;
            break;
        }
        /* Parents first: the path is then resolved in the pinned mounts, not beneath them. */
        if (pin_parents(c, ws, rel, pinned, &npinned) != 0) {
            rc = -1;
            break;
        }
        int fd = fs_xopenat2(ws, rel, O_PATH | O_NOFOLLOW, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS);
        if (fd < 0 && errno == ENOENT)
            continue;
        if (fd < 0 && errno == EXDEV) {
            pd_err_set(c->err,
                       "protected path \"%s\" resolves outside the workspace (.., or a symlink "
                       "leading out): "
                       "expected a path beneath it",
                       rel);
            rc = -1;
            break;
        }
        if (fd < 0) {
            rc = fs_fail(c, "resolve protected path in the workspace:", rel);
            break;
        }
        struct stat st;
        int onto = fd; /* where the read-only copy is mounted: the name itself */
        if (fstat(fd, &st) == 0 && S_ISLNK(st.st_mode)) {
            /* The last component is a symlink staying inside: protect what it names, mounted over
             * the link itself where the kernel can (new mount API), so the name cannot be
             * removed or replaced either; with mount(2) only the target is covered. */
            int target = fs_xopenat2(ws, rel, O_PATH, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS);
            if (target < 0 && errno == ENOENT) {
                close(fd);
                continue;
            }
            if (target < 0) {
                close(fd);
                rc = errno == EXDEV
                         ? (pd_err_set(c->err,
                                       "protected path \"%s\" resolves outside the workspace "
                                       "(a symlink leading out): expected a path beneath it",
                                       rel),
                            -1)
                         : fs_fail(c, "resolve protected path in the workspace:", rel);
                break;
            }
            if (c->legacy) {
                close(fd);
                fd = onto = target;
            } else {
                int link = fd;
                fd = target;
                onto = link;
            }
        }
        char what[300];
        snprintf(what, sizeof what, "/workspace/%s (protected, read-only)", rel);
        rc = fs_bind_tree(c, fd, onto, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
                          what);
        if (onto != fd)
            close(onto);
        close(fd);
    }
    /* Masked paths inside the workspace are hidden there too (the workspace is a mount of its
     * own, so the masks of the root do not reach it): a credential file the policy reads, say. */
    size_t wlen = strlen(p->workspace);
    for (size_t i = 0; i < p->nmasked && rc == 0; i++) {
        const char *m = p->masked[i];
        if (!m || strncmp(m, p->workspace, wlen) != 0 || m[wlen] != '/' || !m[wlen + 1])
            continue;
        int fd = fs_xopenat2(ws, m + wlen + 1, O_PATH | O_NOFOLLOW,
                             RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS);
        if (fd < 0)
            continue; /* missing, or not beneath the workspace after all: nothing to hide here */
        char what[300];
        snprintf(what, sizeof what, "/workspace/%.200s (masked)", m + wlen + 1);
        rc = fs_mask_fd(c, fd, what);
        close(fd);
    }
    close(ws);
    return rc;
}

static bool plain_beneath(const char *path, const char *dir);
static int make_mount_point(struct fsctx *c, const char *dst, bool dir);

static int setup_home(struct fsctx *c)
{
    const struct pd_fs_plan *p = c->p;
    int fd = fs_in_root(c, p->home, O_DIRECTORY);
    /* A HOME beneath /tmp or /var/tmp (CI users, tests) is made in the sandbox's fresh one. */
    if (fd < 0 && errno == ENOENT &&
        (plain_beneath(p->home, "/tmp") || plain_beneath(p->home, "/var/tmp"))) {
        if (make_mount_point(c, p->home, true) != 0)
            return -1;
        fd = fs_in_root(c, p->home, O_DIRECTORY);
    }
    if (fd < 0)
        return fs_fail(
            c, "open HOME mount point (must exist as a directory in the root filesystem)", p->home);
    char opts[128];
    snprintf(opts, sizeof opts, "mode=0700,uid=%u,gid=%u,size=%" PRIu64, (unsigned)p->uid,
             (unsigned)p->gid, p->home_size ? p->home_size : DEFAULT_SIZE);
    int rc = fs_tmpfs_on(c, fd, MS_NOSUID | MS_NODEV, opts, p->home);
    if (rc != 0 && errno == EINVAL)
        pd_err_prefix(c->err, "HOME owner %u:%u must be mapped in the user namespace",
                      (unsigned)p->uid, (unsigned)p->gid);
    close(fd);
    return rc;
}

/* `path` beneath `dir` ("/tmp", HOME), with no ".", ".." or empty components? */
static bool plain_beneath(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    if (strncmp(path, dir, n) != 0 || path[n] != '/')
        return false;
    for (const char *s = path + n; *s;) {
        s++; /* past '/' */
        size_t len = strcspn(s, "/");
        if (len == 0 || (len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
            return false;
        s += len;
    }
    return true;
}

/* Make the mount point `dst` (beneath HOME or /tmp, both fresh tmpfs) as a directory or a file. */
static int make_mount_point(struct fsctx *c, const char *dst, bool dir)
{
    char path[4096];
    int n = snprintf(path, sizeof path, NEWROOT "%s", dst);
    if (n < 0 || (size_t)n >= sizeof path) {
        pd_err_set(c->err, "bind destination %s: path too long", dst);
        return -1;
    }
    for (char *s = path + strlen(NEWROOT) + 1; (s = strchr(s, '/')) != NULL; s++) {
        *s = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            return fs_fail(c, "mkdir bind mount point", path + strlen(NEWROOT));
        *s = '/';
    }
    if (dir ? mkdir(path, 0755) != 0 : mknod(path, S_IFREG | 0644, 0) != 0)
        return fs_fail(c, "create bind mount point", dst);
    return 0;
}

static int extra_binds(struct fsctx *c)
{
    const struct pd_fs_plan *p = c->p;
    for (size_t i = 0; i < p->nbinds; i++) {
        const struct pd_fs_bind *b = &p->binds[i];
        if (!b->src || !b->dst || b->src[0] != '/' || b->dst[0] != '/') {
            pd_err_set(c->err, "bind %zu: expected absolute source and destination paths", i);
            return -1;
        }
        int src = fs_xopenat2(c->oldroot, b->src, O_PATH, RESOLVE_IN_ROOT);
        if (src < 0)
            return fs_fail(c, "open bind source", b->src);
        struct stat ss, ds;
        if (fstat(src, &ss) != 0) {
            close(src);
            return fs_fail(c, "stat bind source", b->src);
        }
        int dst = fs_in_root(c, b->dst, 0);
        if (dst < 0 && errno == ENOENT &&
            (plain_beneath(b->dst, "/tmp") || plain_beneath(b->dst, "/var/tmp") ||
             plain_beneath(b->dst, p->home))) {
            if (make_mount_point(c, b->dst, S_ISDIR(ss.st_mode)) != 0) {
                close(src);
                return -1;
            }
            dst = fs_in_root(c, b->dst, 0);
        }
        if (dst < 0) {
            close(src);
            return fs_fail(c, "bind destination (must exist inside the sandbox)", b->dst);
        }
        int rc = 0;
        if (fstat(dst, &ds) != 0) {
            rc = fs_fail(c, "stat bind destination", b->dst);
        } else if (S_ISDIR(ss.st_mode) != S_ISDIR(ds.st_mode)) {
            pd_err_set(c->err, "bind %s onto %s: expected both directories or both non-directories",
                       b->src, b->dst);
            rc = -1;
        } else {
            uint64_t attr = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (b->rw ? 0 : MOUNT_ATTR_RDONLY);
            rc = fs_bind_tree(c, src, dst, attr, b->dst);
        }
        close(src);
        close(dst);
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* Bind the staging file `file` over `etc` ("/etc/resolv.conf"): the file itself, or when it is a
 * symlink the symlink itself (move_mount does not follow it) or else its target inside. */
static int etc_file(struct fsctx *c, const char *file, const char *etc)
{
    int fd = fs_in_root(c, etc, O_NOFOLLOW);
    if (fd < 0)
        return fs_fail(c, "open (it must exist in the root filesystem)", etc);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return fs_fail(c, "stat", etc);
    }
    if (S_ISLNK(st.st_mode) && !c->legacy) {
        int t = (int)syscall(SYS_open_tree, AT_FDCWD, file, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
        if (t >= 0) {
            int rc = (int)syscall(SYS_move_mount, t, "", fd, "",
                                  MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
            close(t);
            if (rc == 0) {
                close(fd);
                return 0;
            }
        }
    }
    if (S_ISLNK(st.st_mode)) {
        close(fd);
        fd = fs_in_root(c, etc, 0);
        if (fd < 0)
            return fs_fail(c, "open the symlink's target inside the sandbox of", etc);
        if (fstat(fd, &st) != 0) {
            close(fd);
            return fs_fail(c, "stat", etc);
        }
    }
    char dp[64];
    int rc = 0;
    if (S_ISDIR(st.st_mode)) {
        pd_err_set(c->err, "bind onto %s: it is a directory, expected a file", etc);
        rc = -1;
    } else if (mount(file, fs_fdpath(fd, dp), NULL, MS_BIND, NULL) != 0) {
        rc = fs_fail(c, "bind onto", etc);
    }
    close(fd);
    return rc;
}

static int finish(struct fsctx *c)
{
    if ((c->p->resolv_conf && etc_file(c, "/resolv.conf", "/etc/resolv.conf") != 0) ||
        (c->p->hosts && etc_file(c, "/hosts", "/etc/hosts") != 0))
        return -1;
    if (mount(NULL, NEWROOT, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) !=
        0)
        return fs_fail(c, "remount read-only", "/ (root tmpfs)");
    fs_close_fd(&c->oldroot);
    fs_close_fd(&c->newroot);
    /* One detach for everything: after pivot_root(".", ".") the staging root (and the old root
     * mounted beneath it) sits on top of the new root, and a lazy unmount of it takes the whole
     * subtree. Every unmount batch costs an expedited RCU grace period, so one, not two. */
    if (chdir(NEWROOT) != 0)
        return fs_fail(c, "chdir", NEWROOT);
    if (syscall(SYS_pivot_root, ".", ".") != 0)
        return fs_fail(c, "pivot_root into", NEWROOT);
    if (umount2(".", MNT_DETACH) != 0)
        return fs_fail(c, "detach the staging and old roots", "/");
    if (chdir("/") != 0 || chdir("/workspace") != 0)
        return fs_fail(c, "chdir", "/workspace");
    return 0;
}

static bool absolute(const char *s)
{
    return s && s[0] == '/';
}

int pd_fs_setup(const struct pd_fs_plan *p, struct pd_err *err)
{
    if (!p || !absolute(p->rootfs) || !absolute(p->workspace) || !absolute(p->home) ||
        !strcmp(p->home, "/") || (p->nmasked && !p->masked) ||
        (p->nprotected && !p->protected_paths) || (p->nbinds && !p->binds)) {
        pd_err_set(
            err,
            "fs plan: expected absolute rootfs, workspace and home (home not /), and lists for "
            "every non-zero count");
        return -1;
    }
    struct fsctx c = {
        .p = p, .err = err, .legacy = p->legacy_mount_api, .newroot = -1, .oldroot = -1};
    mode_t old_umask = umask(022);
    int rc = stage(&c);
    if (rc == 0)
        rc = proc_masks(&c);
    if (rc == 0)
        rc = bind_rootfs(&c);
    if (rc == 0)
        rc = mask_paths(&c);
    if (rc == 0)
        rc = setup_dev(&c);
    if (rc == 0)
        rc = setup_sys_tmp(&c);
    if (rc == 0)
        rc = setup_workspace(&c);
    if (rc == 0)
        rc = setup_home(&c);
    if (rc == 0)
        rc = extra_binds(&c);
    if (rc == 0)
        rc = finish(&c);
    fs_close_fd(&c.oldroot);
    fs_close_fd(&c.newroot);
    umask(old_umask);
    return rc;
}
