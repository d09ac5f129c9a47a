/*
 * fs.h - the filesystem a sandboxed agent sees (mount namespace) and its Landlock second layer.
 *
 * Who calls it: the sandbox launcher. pd_fs_setup runs in the sandbox's first process S (new user,
 * mount and PID namespaces, S is PID 1 there and holds every capability of its user namespace,
 * single-threaded). pd_fs_landlock runs later in the agent's process (after fork, while it still
 * has its capabilities or after no_new_privs), before seccomp and exec.
 * Files: fs_mount.c (the steps below), fs_bind.c + fs_int.h (mount primitives on fds),
 * fs_landlock.c (Landlock and the default masked list).
 *
 * The tree pd_fs_setup builds, in this order:
 *  1. every existing mount made private recursively (nothing propagates to or from the host);
 *     a staging tmpfs over the old /tmp becomes the root (pivot_root); the old root is /oldroot.
 *  2. /newroot = a tmpfs holding, for each top-level entry of the rootfs, a recursive bind made
 *     read-only, nosuid, nodev on every submount (open_tree + mount_setattr + move_mount on 5.12+,
 *     else mount(2) and a mountinfo walk remounting each submount with its locked flags kept).
 *     Entries that would be covered at once are not bound: a masked directory is an empty 0000
 *     directory, HOME an empty directory for its tmpfs, /home (when HOME lies in it) only the
 *     way to HOME.
 *     Top-level symlinks are copied as symlinks. proc, dev, sys, tmp and workspace are not bound:
 *     the root tmpfs holds empty mount points, so /workspace need not exist in the rootfs.
 *  3. /proc: a fresh procfs of the new PID namespace; /proc/sys read-only; sysrq-trigger, kcore,
 *     keys, timer_list, acpi, scsi masked (those the kernel has).
 *  4. masks: each existing `masked` path, resolved inside the new root (never out of it): a
 *     directory gets an empty read-only tmpfs of mode 0000, anything else a read-only bind of an
 *     empty 0000 file. Missing, dangling, looping or unreachable (EACCES) paths are skipped.
 *  5. /dev: tmpfs 0755 nosuid,noexec with plain binds (a device node is never executed nor
 *     set-id) of the host's null zero full random urandom tty,
 *     symlinks fd stdin stdout stderr ptmx, a new devpts at pts, a tmpfs 1777 at shm
 *     (size tmp_size); then /dev itself is made read-only.
 *  6. /sys: a fresh sysfs, read-only; or, when the user namespace does not own the network
 *     namespace, an empty read-only tmpfs. /tmp and /var/tmp (unless it resolves to /tmp):
 *     tmpfs 1777, size tmp_size each.
 *  7. /workspace: the workspace, rw,nosuid,nodev; then each existing protected path (resolved
 *     beneath the workspace; one resolving outside is an error) bound read-only onto itself, the
 *     directories above it pinned (bound onto themselves: they cannot be renamed or removed);
 *     then every masked path that lies in the workspace, hidden there too.
 *  8. HOME: tmpfs 0700 owned by uid:gid, size home_size (it covers masks beneath it); a HOME
 *     beneath /tmp or /var/tmp (fresh tmpfs) is made there first.
 *  9. extra binds: rw ones rw,nosuid,nodev, the others read-only recursively. A destination that
 *     does not exist inside is an error, except beneath HOME or /tmp (fresh tmpfs) where the
 *     mount point is made.
 * 10. /etc/resolv.conf, /etc/hosts: read-only binds of staging files holding the given contents,
 *     over the file; over a symlink itself (move_mount) or, with mount(2), over its target
 *     resolved inside the new root. Either must exist in the rootfs.
 * 11. the root tmpfs made read-only, pivot_root(".", ".") into /newroot, the staging root and the
 *     old root beneath it detached at once (each unmount batch costs an RCU grace period), cwd
 *     /workspace.
 * Every mount is nosuid,nodev but the device binds; /proc, /dev, /dev/shm and masks noexec.
 *
 * Never: follows a symlink out of the new root or out of the workspace (openat2 RESOLVE_IN_ROOT,
 * RESOLVE_BENEATH, then mounts through the fd), creates anything on the host, changes a host
 * mount. Every failure names the step and the path ("mount tmpfs on /tmp: Permission denied");
 * the mount namespace is then half-built and the caller must exit.
 *
 * Limits: a protected path that does not exist is not protected (the agent may create it), and
 * renaming a parent of one (mv .git .git.old; mkdir .git) sidesteps it: protect the parent for
 * that. Masks apply to paths of the rootfs, not to paths inside the workspace, /tmp or HOME.
 * With mount(2) only, a resolv.conf/hosts symlink into a masked directory (/run) is an error.
 */
#ifndef PD_SANDBOX_FS_H
#define PD_SANDBOX_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/err.h"

/* An extra bind: host path src onto the existing path dst inside; rw or read-only. */
struct pd_fs_bind {
    const char *src;
    const char *dst;
    bool rw;
};

struct pd_fs_plan {
    /* "/" or a directory holding a root filesystem (a host path); bound read-only. */
    const char *rootfs;
    /* Absolute canonical host path (no symlink in it); bound read-write at /workspace. */
    const char *workspace;
    /* Absolute path inside, existing in the rootfs or beneath /tmp or /var/tmp: a fresh tmpfs
     * 0700 owned by uid:gid. */
    const char *home;
    /* Bytes: tmpfs size of HOME, and of /tmp and /dev/shm each (0: 64 MiB). */
    uint64_t home_size, tmp_size;
    /* Absolute paths inside (== host paths, the root being the host's): hidden when they exist. */
    const char *const *masked;
    size_t nmasked;
    /* Relative to the workspace: read-only when they exist; one resolving outside is an error. */
    const char *const *protected_paths;
    size_t nprotected;
    const struct pd_fs_bind *binds;
    size_t nbinds;
    /* Contents of /etc/resolv.conf and /etc/hosts inside, or NULL (the rootfs's own). */
    const char *resolv_conf;
    const char *hosts;
    /* Inside ids owning HOME (must be mapped in the user namespace). */
    uid_t uid;
    gid_t gid;
    /* Added: force the mount(2) fallback even when open_tree/mount_setattr exist (tests, and
     * kernels where the new API misbehaves). */
    bool legacy_mount_api;
};

/* Build the tree above and pivot into it. 0, or -1 with err naming the step and path. */
int pd_fs_setup(const struct pd_fs_plan *p, struct pd_err *err);

/* Landlock, in the agent's process: read+execute everywhere; every write-type right of the ABI
 * (write_file, remove_*, make_*, refer, truncate, ioctl_dev) only beneath /workspace, HOME, /tmp,
 * /var/tmp, /dev/shm and the rw binds' destinations; write_file+truncate+ioctl_dev on /dev/null,
 * /dev/zero, /dev/full, /dev/tty and beneath /dev/pts. ABI >= 4: TCP connect only to connect_ports,
 * no TCP bind. ABI >= 6: abstract unix sockets and signals scoped to the domain. Needs no_new_privs
 * or CAP_SYS_ADMIN in the current user namespace. Returns the ABI used (the kernel's, capped at 6,
 * the newest whose rights this code knows; 0: no Landlock in this kernel, nothing done), or -1
 * with err. */
int pd_fs_landlock(const struct pd_fs_plan *p, const uint16_t *connect_ports, size_t nports,
                   struct pd_err *err);

/* The default masked list for a user whose home is `home` (absolute, no trailing slash needed).
 * *out receives a malloc'ed array of malloc'ed absolute paths; returns the count or -1 (ENOMEM,
 * or a relative/empty home). Free with pd_fs_free_list. Entries and why (fs_landlock.c keeps the
 * table; each path is hidden only when it exists):
 *   ~/.ssh ~/.gnupg ~/.password-store ~/.local/share/keyrings   private keys, agent sockets, vaults
 *   ~/.aws ~/.config/gcloud ~/.azure ~/.kube ~/.docker ~/.terraform.d ~/.vault-token
 *   ~/.config/gh ~/.config/hub ~/.git-credentials ~/.netrc ~/.npmrc ~/.pypirc ~/.pgpass ~/.my.cnf
 *   ~/.cargo/credentials.toml ~/.config/op ~/.oci                cloud, registry, database tokens
 *   (all under HOME are covered by HOME's tmpfs too; they are listed so a plan whose HOME differs
 *   from the caller's real home, or a bind of it, still hides them)
 *   /root (when home is not /root)            the administrator's files
 *   /etc/shadow /etc/gshadow                  password hashes
 *   /etc/sudoers /etc/sudoers.d               sudo rules
 *   /etc/ssh /etc/ssl/private                 host private keys (SSH, TLS): readable by their
 *                                             owner, root, which a root caller's command is
 *   /run /var/run                             daemon sockets (docker.sock, dbus, systemd, agent)
 *   /var/lib/paddock /etc/paddock             Paddock's own state, policies and credentials
 *   /var/lib/docker /var/lib/containerd       other containers' filesystems
 * Not listed: /proc and /sys paths (fresh instances, masked by pd_fs_setup itself). */
int pd_fs_default_masked(const char *home, char ***out, struct pd_err *err);
void pd_fs_free_list(char **list, size_t n);

#endif
