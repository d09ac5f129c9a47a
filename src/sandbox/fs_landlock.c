/* fs_landlock.c - pd_fs_landlock (the Landlock layer that repeats the mount rules) and
 * pd_fs_default_masked (the default list of hidden paths); see fs.h. */
#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox/fs.h"

/* The installed header may predate ABI 3..6: our own copies of the constants and structs. */
#define LL_FS_EXECUTE (1ull << 0)
#define LL_FS_WRITE_FILE (1ull << 1)
#define LL_FS_READ_FILE (1ull << 2)
#define LL_FS_READ_DIR (1ull << 3)
#define LL_FS_REMOVE_DIR (1ull << 4)
#define LL_FS_REMOVE_FILE (1ull << 5)
#define LL_FS_MAKE_CHAR (1ull << 6)
#define LL_FS_MAKE_DIR (1ull << 7)
#define LL_FS_MAKE_REG (1ull << 8)
#define LL_FS_MAKE_SOCK (1ull << 9)
#define LL_FS_MAKE_FIFO (1ull << 10)
#define LL_FS_MAKE_BLOCK (1ull << 11)
#define LL_FS_MAKE_SYM (1ull << 12)
#define LL_FS_REFER (1ull << 13) /* ABI 2 */
#define LL_FS_TRUNCATE (1ull << 14) /* ABI 3 */
#define LL_FS_IOCTL_DEV (1ull << 15) /* ABI 5 */
#define LL_NET_BIND_TCP (1ull << 0) /* ABI 4 */
#define LL_NET_CONNECT_TCP (1ull << 1)
#define LL_SCOPE_ABSTRACT_UNIX (1ull << 0) /* ABI 6 */
#define LL_SCOPE_SIGNAL (1ull << 1)
#define LL_RULE_PATH_BENEATH 1
#define LL_RULE_NET_PORT 2
#define LL_MAX_ABI 6 /* the newest ABI whose rights this file knows */

struct ll_ruleset_attr {
    uint64_t handled_access_fs;
    uint64_t handled_access_net;
    uint64_t scoped;
};

struct ll_path_beneath {
    uint64_t allowed_access;
    int32_t parent_fd;
} __attribute__((packed));

struct ll_net_port {
    uint64_t allowed_access;
    uint64_t port;
};

#define LL_READ (LL_FS_EXECUTE | LL_FS_READ_FILE | LL_FS_READ_DIR)
#define LL_FILE_ONLY \
    (LL_FS_EXECUTE | LL_FS_WRITE_FILE | LL_FS_READ_FILE | LL_FS_TRUNCATE | LL_FS_IOCTL_DEV)

static uint64_t fs_rights(int abi)
{
    uint64_t r = (LL_FS_MAKE_SYM << 1) - 1; /* ABI 1: bits 0..12 */
    if (abi >= 2)
        r |= LL_FS_REFER;
    if (abi >= 3)
        r |= LL_FS_TRUNCATE;
    if (abi >= 5)
        r |= LL_FS_IOCTL_DEV;
    return r;
}

/* Allow `access` (masked to what the ruleset handles, and to file rights on a non-directory)
 * beneath `path`. A missing path is skipped when `optional`. */
static int add_path(int rs, const char *path, uint64_t access, uint64_t handled, bool optional,
                    struct pd_err *err)
{
    int fd = open(path, O_PATH | O_CLOEXEC);
    if (fd < 0) {
        if (optional && errno == ENOENT)
            return 0;
        pd_err_set(err, "landlock: open %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        pd_err_set(err, "landlock: stat %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    struct ll_path_beneath pb = {.allowed_access = access & handled, .parent_fd = fd};
    if (!S_ISDIR(st.st_mode))
        pb.allowed_access &= LL_FILE_ONLY;
    int rc = 0;
    if (pb.allowed_access &&
        syscall(SYS_landlock_add_rule, rs, LL_RULE_PATH_BENEATH, &pb, 0) != 0) {
        pd_err_set(err, "landlock: add rule for %s: %s", path, strerror(errno));
        rc = -1;
    }
    close(fd);
    return rc;
}

int pd_fs_landlock(const struct pd_fs_plan *p, const uint16_t *connect_ports, size_t nports,
                   struct pd_err *err)
{
    if (!p || !p->home || (nports && !connect_ports) || (p->nbinds && !p->binds)) {
        pd_err_set(err,
                   "landlock: expected a plan with home, and a port list for a non-zero count");
        return -1;
    }
    long v = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    if (v < 0) {
        if (errno == ENOSYS || errno == EOPNOTSUPP)
            return 0;
        pd_err_set(err, "landlock_create_ruleset(VERSION): %s", strerror(errno));
        return -1;
    }
    int abi = v > LL_MAX_ABI ? LL_MAX_ABI : (int)v;
    struct ll_ruleset_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.handled_access_fs = fs_rights(abi);
    size_t attr_size = sizeof attr.handled_access_fs;
    if (abi >= 4) {
        attr.handled_access_net = LL_NET_BIND_TCP | LL_NET_CONNECT_TCP;
        attr_size = offsetof(struct ll_ruleset_attr, scoped);
    }
    if (abi >= 6) {
        attr.scoped = LL_SCOPE_ABSTRACT_UNIX | LL_SCOPE_SIGNAL;
        attr_size = sizeof attr;
    }
    int rs = (int)syscall(SYS_landlock_create_ruleset, &attr, attr_size, 0);
    if (rs < 0) {
        pd_err_set(err, "landlock_create_ruleset (ABI %d): %s", abi, strerror(errno));
        return -1;
    }
    uint64_t all = attr.handled_access_fs;
    uint64_t dev = LL_READ | LL_FS_WRITE_FILE | LL_FS_TRUNCATE | LL_FS_IOCTL_DEV;
    int rc = add_path(rs, "/", LL_READ, all, false, err);
    static const char *const writable[] = {"/workspace", "/tmp", "/dev/shm"};
    for (size_t i = 0; rc == 0 && i < sizeof writable / sizeof writable[0]; i++)
        rc = add_path(rs, writable[i], all, all, false, err);
    if (rc == 0)
        rc = add_path(rs, "/var/tmp", all, all, true, err); /* fresh tmpfs, when the root has it */
    if (rc == 0)
        rc = add_path(rs, p->home, all, all, false, err);
    for (size_t i = 0; rc == 0 && i < p->nbinds; i++)
        if (p->binds[i].rw)
            rc = add_path(rs, p->binds[i].dst, all, all, false, err);
    static const char *const devs[] = {"/dev/null", "/dev/zero", "/dev/full", "/dev/tty",
                                       "/dev/pts"};
    for (size_t i = 0; rc == 0 && i < sizeof devs / sizeof devs[0]; i++)
        rc = add_path(rs, devs[i], dev, all, true, err);
    for (size_t i = 0; rc == 0 && abi >= 4 && i < nports; i++) {
        struct ll_net_port np = {.allowed_access = LL_NET_CONNECT_TCP, .port = connect_ports[i]};
        if (syscall(SYS_landlock_add_rule, rs, LL_RULE_NET_PORT, &np, 0) != 0) {
            pd_err_set(err, "landlock: add rule for TCP connect to port %u: %s",
                       (unsigned)connect_ports[i], strerror(errno));
            rc = -1;
        }
    }
    if (rc == 0 && syscall(SYS_landlock_restrict_self, rs, 0) != 0) {
        int e = errno;
        pd_err_set(err, "landlock_restrict_self: %s%s", strerror(e),
                   e == EPERM ? " (expected no_new_privs or CAP_SYS_ADMIN in the user namespace)"
                              : "");
        rc = -1;
    }
    close(rs);
    return rc == 0 ? abi : -1;
}

/* ---------------------------------------------------------------- default masked list */

/* Beneath HOME (see fs.h for why each is there). */
static const char *const home_entries[] = {
    ".ssh",
    ".gnupg",
    ".password-store",
    ".local/share/keyrings",
    ".aws",
    ".config/gcloud",
    ".azure",
    ".kube",
    ".docker",
    ".terraform.d",
    ".vault-token",
    ".config/gh",
    ".config/hub",
    ".git-credentials",
    ".netrc",
    ".npmrc",
    ".pypirc",
    ".pgpass",
    ".my.cnf",
    ".cargo/credentials.toml",
    ".config/op",
    ".oci",
};

/* Host-wide. */
static const char *const host_entries[] = {
    "/etc/shadow",    "/etc/gshadow",    "/etc/sudoers",
    "/etc/sudoers.d", "/etc/ssh",        "/etc/ssl/private",
    "/run",           "/var/run",        "/var/lib/paddock",
    "/etc/paddock",   "/var/lib/docker", "/var/lib/containerd",
};

void pd_fs_free_list(char **list, size_t n)
{
    if (!list)
        return;
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

int pd_fs_default_masked(const char *home, char ***out, struct pd_err *err)
{
    if (!out || !home || home[0] != '/') {
        pd_err_set(err, "default masked list: expected an absolute home path");
        return -1;
    }
    *out = NULL;
    size_t hl = strlen(home);
    while (hl > 1 && home[hl - 1] == '/')
        hl--;
    bool home_is_root = hl == 5 && !strncmp(home, "/root", 5);
    size_t nh = sizeof home_entries / sizeof home_entries[0];
    size_t nx = sizeof host_entries / sizeof host_entries[0];
    size_t cap = nh + nx + 1, n = 0;
    char **list = calloc(cap, sizeof *list);
    if (!list)
        goto oom;
    for (size_t i = 0; i < nh; i++) {
        size_t len = (hl == 1 ? 0 : hl) + 1 + strlen(home_entries[i]) + 1;
        char *s = malloc(len);
        if (!s)
            goto oom;
        snprintf(s, len, "%.*s/%s", (int)(hl == 1 ? 0 : hl), home, home_entries[i]);
        list[n++] = s;
    }
    for (size_t i = 0; i < nx; i++)
        if (!(list[n] = strdup(host_entries[i])))
            goto oom;
        else
            n++;
    if (!home_is_root) {
        if (!(list[n] = strdup("/root")))
            goto oom;
        n++;
    }
    *out = list;
    return (int)n;
oom:
    pd_fs_free_list(list, n);
    pd_err_set(err, "default masked list: out of memory");
    errno = ENOMEM;
    return -1;
}
