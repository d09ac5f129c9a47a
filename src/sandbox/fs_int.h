/* fs_int.h - internal to the sandbox filesystem module (fs_mount.c, fs_bind.c): the setup context
 * and the mount primitives every step uses. Not for other modules: the contract is fs.h.
 *
 * Every primitive works on file descriptors (O_PATH) resolved with openat2, so a path is checked
 * once and never looked up again by name; mount(2) reaches an fd through the new PID namespace's
 * procfs (fs_fdpath), the new mount API through the fd itself. Failures fill c->err as
 * "STEP PATH: strerror" and return -1 with errno kept. */
#ifndef PD_SANDBOX_FS_INT_H
#define PD_SANDBOX_FS_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "sandbox/fs.h"

#define STAGE "/tmp" /* where the staging tmpfs goes in the old root */
#define NEWROOT "/newroot" /* inside the staging root */
#define OLDROOT "/oldroot"
#define EMPTY_FILE "/empty" /* staging: empty 0000 file, read-only bind of itself */
#define DEFAULT_SIZE ((uint64_t)64 << 20)

/* One pd_fs_setup run. */
struct fsctx {
    const struct pd_fs_plan *p;
    struct pd_err *err;
    bool legacy; /* mount(2) only: no open_tree/mount_setattr/move_mount */
    int newroot; /* O_PATH of /newroot (the root tmpfs) */
    int oldroot; /* O_PATH of /oldroot (the host's root) */
};

/* "STEP PATH: strerror(errno)" into c->err; returns -1, errno kept. */
int fs_fail(struct fsctx *c, const char *step, const char *path);
/* openat2 with O_CLOEXEC added; -1 with errno. */
int fs_xopenat2(int dirfd, const char *path, int flags, uint64_t resolve);
/* "/newroot/proc/self/fd/FD" in buf: the path mount(2) uses to reach what fd names. */
const char *fs_fdpath(int fd, char buf[64]);
void fs_close_fd(int *fd);
/* Resolve an absolute path inside the new root (symlinks stay inside): O_PATH fd, or -1 with errno
 * and no message. */
int fs_in_root(struct fsctx *c, const char *path, int flags);
/* Bind what src names, recursively, onto what dst names, and set attr (MOUNT_ATTR_RDONLY, NOSUID,
 * NODEV, NOEXEC) on every mount of the new tree: open_tree + mount_setattr + move_mount, or
 * (legacy, or ENOSYS) mount(2) and a remount of each mount of the tree keeping its locked flags.
 * `what` names the destination in errors. */
int fs_bind_tree(struct fsctx *c, int src, int dst, uint64_t attr, const char *what);
/* Mount a tmpfs with flags and opts on what fd names. */
int fs_tmpfs_on(struct fsctx *c, int fd, unsigned long flags, const char *opts, const char *what);
/* Hide what fd names: an empty read-only tmpfs of mode 0000 on a directory, a read-only bind of the
 * staging empty 0000 file on anything else; nothing when it is already hidden. */
int fs_mask_fd(struct fsctx *c, int fd, const char *what);

#endif
