/*
 * cgroup.c - the sandbox's cgroup (see cgroup.h for the contract).
 *
 * Layout (the host layout and the text helpers are in cgroup_layout.c): directory and interface
 * file access relative to held fds (no path is resolved twice, no symlink followed below the
 * hierarchy root), sub-group walks (process lists, bottom-up removal), creation (v2, v1), kill,
 * events, destroy.
 */
#include "sandbox/cgroup_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

static const char *const ctl_names[PD_CG_NCTL] = {"memory", "pids", "cpu", "freezer"};

const char *pd_cg_ctl_name(enum pd_cg_ctl c)
{
    return (unsigned)c < PD_CG_NCTL ? ctl_names[c] : "?";
}

/* ---------------------------------------------------------------- directories */

/* Open the directory `path` (below `root`, which is trusted: it comes from mountinfo or the test
 * env) component by component, refusing symlinks and "..". O_PATH fd or -errno. */
static int open_below(const char *root, const char *path)
{
    size_t rl = strlen(root);
    if (strncmp(path, root, rl) != 0 || (path[rl] != '/' && path[rl] != '\0'))
        return -EXDEV;
    int fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    const char *p = path + rl;
    while (*p) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        size_t len = strcspn(p, "/");
        char comp[256];
        if (len >= sizeof comp || (len == 2 && p[0] == '.' && p[1] == '.') ||
            (len == 1 && p[0] == '.')) {
            close(fd);
            return -EINVAL;
        }
        memcpy(comp, p, len);
        comp[len] = '\0';
        int nfd = openat(fd, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int e = errno;
        close(fd);
        if (nfd < 0)
            return -e;
        fd = nfd;
        p += len;
    }
    return fd;
}

struct pidvec {
    pid_t *v;
    size_t n, cap;
};

/* Append the pids of dirfd's cgroup.procs. 0, or -errno (-ENOENT: no such file = no process). */
static int procs_of(int dirfd, struct pidvec *pv)
{
    size_t len = 0;
    char *text = cg_read_text_at(dirfd, "cgroup.procs", PROCS_MAX, &len);
    if (!text)
        return -errno;
    bool cut = len + 1 >= PROCS_MAX;
    for (char *p = text; *p;) {
        char *nl = strchr(p, '\n');
        if (!nl && cut)
            break; /* a number cut by the bound is not a pid */
        char *end;
        long v = strtol(p, &end, 10);
        if (end != p && v > 0 && v <= INT32_MAX) {
            if (pv->n == pv->cap) {
                size_t nc = pv->cap ? pv->cap * 2 : 64;
                pid_t *nv = realloc(pv->v, nc * sizeof *nv);
                if (!nv) {
                    free(text);
                    return -ENOMEM;
                }
                pv->v = nv;
                pv->cap = nc;
            }
            pv->v[pv->n++] = (pid_t)v;
        }
        if (!nl)
            break;
        p = nl + 1;
    }
    free(text);
    return 0;
}

/* Call fn on every sub-directory of dirfd (each opened O_RDONLY|O_DIRECTORY|O_NOFOLLOW): before
 * (pre) or after (!pre) its own sub-directories. The callback gets the parent fd and the name. */
typedef int (*walk_fn)(int parentfd, const char *name, int fd, void *ctx);

static int walk_subdirs(int dirfd, int depth, bool pre, walk_fn fn, void *ctx)
{
    if (depth >= WALK_DEPTH_MAX)
        return 0;
    int lfd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (lfd < 0)
        return errno == ENOENT ? 0 : -errno;
    DIR *d = fdopendir(lfd);
    if (!d) {
        int e = errno;
        close(lfd);
        return -e;
    }
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' &&
            (de->d_name[1] == '\0' || (de->d_name[1] == '.' && de->d_name[2] == '\0')))
            continue;
        if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
            continue;
        int sfd = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sfd < 0)
            continue; /* not a directory, a symlink, or gone */
        int r = pre ? fn(dirfd, de->d_name, sfd, ctx) : 0;
        if (r == 0)
            r = walk_subdirs(sfd, depth + 1, pre, fn, ctx);
        if (r == 0 && !pre)
            r = fn(dirfd, de->d_name, sfd, ctx);
        close(sfd);
        if (r != 0 && rc == 0)
            rc = r;
    }
    closedir(d);
    return rc;
}

static int collect_cb(int parentfd, const char *name, int fd, void *ctx)
{
    (void)parentfd;
    (void)name;
    int r = procs_of(fd, ctx);
    return r == -ENOENT ? 0 : r;
}

/* Every pid in the group at fd and its sub-groups. */
static int subtree_pids(int fd, struct pidvec *pv)
{
    int r = procs_of(fd, pv);
    if (r != 0 && r != -ENOENT)
        return r;
    return walk_subdirs(fd, 0, true, collect_cb, pv);
}

/* rmdir, retried while the kernel still counts dying tasks (EBUSY). 0 or -errno. */
static int rmdir_at(int parentfd, const char *name)
{
    long deadline = cg_now_ms() + PD_CG_RMDIR_TIMEOUT_MS;
    for (;;) {
        if (unlinkat(parentfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT)
            return 0;
        if (errno != EBUSY || cg_now_ms() > deadline)
            return -errno;
        cg_sleep_ms(5);
    }
}

static int rmdir_cb(int parentfd, const char *name, int fd, void *ctx)
{
    (void)fd;
    (void)ctx;
    return rmdir_at(parentfd, name);
}

/* Remove the group `name` under parentfd (fd: the group itself) and its sub-groups, bottom-up. */
static int remove_group(int parentfd, const char *name, int fd)
{
    int r = walk_subdirs(fd, 0, false, rmdir_cb, NULL);
    int r2 = rmdir_at(parentfd, name);
    return r != 0 ? r : r2;
}

/* ---------------------------------------------------------------- the object */

struct cg_dir {
    int parentfd; /* O_PATH: the caller's group in this hierarchy; -1 when unused */
    int fd; /* O_RDONLY|O_DIRECTORY: the sandbox's group; -1 when unused */
    int same_as; /* v1: -1, or the controller whose hierarchy (mount) this one shares */
    char path[PD_CG_PATH_MAX + PD_CG_NAME_MAX + 2];
};

struct pd_cgroup {
    enum pd_cg_kind kind;
    bool fake, no_kill_file;
    char name[PD_CG_NAME_MAX + 1];
    struct cg_dir v2;
    struct cg_dir v1[PD_CG_NCTL];
};

enum pd_cg_kind pd_cgroup_kind(const struct pd_cgroup *cg)
{
    return cg ? cg->kind : PD_CG_NONE;
}

int pd_cgroup_dirfd(const struct pd_cgroup *cg)
{
    return cg && cg->kind == PD_CG_V2 ? cg->v2.fd : -1;
}

const char *pd_cgroup_path(const struct pd_cgroup *cg, enum pd_cg_ctl ctl)
{
    if (!cg)
        return "";
    if (cg->kind == PD_CG_V2)
        return cg->v2.path;
    if ((unsigned)ctl >= PD_CG_NCTL || cg->v1[ctl].fd < 0)
        return "";
    return cg->v1[ctl].path;
}

static void dir_init(struct cg_dir *d)
{
    d->parentfd = -1;
    d->fd = -1;
    d->same_as = -1;
    d->path[0] = '\0';
}

/* A group directory we own (not an alias of another controller's). */
static bool dir_owned(const struct cg_dir *d)
{
    return d->fd >= 0 && d->same_as < 0;
}

static bool name_ok(const char *name)
{
    size_t n = name ? strnlen(name, PD_CG_NAME_MAX + 1) : 0;
    if (n == 0 || n > PD_CG_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '-' && c != '_' && c != '.')))
            return false;
    }
    return true;
}

/* Make the group `name` under d->parentfd into d (fd, path); a stale empty group is removed
 * first. label: "cgroup v2" or "cgroup v1 (memory)". 0, or -1 with err (-2: a stale group of the
 * name holds processes). */
static int make_group(struct cg_dir *d, const char *parent_path, const char *name,
                      const char *label, bool v2, struct pd_err *err)
{
    if (snprintf(d->path, sizeof d->path, "%s/%s", parent_path, name) >= (int)sizeof d->path) {
        pd_err_set(err, "%s: path %s/%s too long (at most %d bytes)", label, parent_path, name,
                   PD_CG_PATH_MAX);
        return -1;
    }
    for (int attempt = 0;; attempt++) {
        if (mkdirat(d->parentfd, name, 0755) == 0)
            break;
        int e = errno;
        if (e == EEXIST && attempt == 0) {
            int sfd = openat(d->parentfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sfd < 0) {
                pd_err_set(err, "%s: %s exists and is not a directory (%s): expected a cgroup",
                           label, d->path, strerror(errno));
                return -1;
            }
            struct pidvec pv = {0};
            int r = subtree_pids(sfd, &pv);
            if (r != 0 || pv.n > 0) {
                if (r != 0)
                    pd_err_set(err,
                               "%s: a group %s already exists and its processes cannot be "
                               "listed (%s)",
                               label, d->path, strerror(-r));
                else
                    pd_err_set(
                        err,
                        "%s: a group %s already exists and holds %zu process(es) "
                        "(pid %ld): a sandbox of this name is still running or a crashed one "
                        "left processes; stop them or choose another name",
                        label, d->path, pv.n, (long)pv.v[0]);
                free(pv.v);
                close(sfd);
                return -2;
            }
            free(pv.v);
            r = remove_group(d->parentfd, name, sfd);
            close(sfd);
            if (r != 0) {
                pd_err_set(err, "%s: a stale group %s (empty) could not be removed: %s", label,
                           d->path, strerror(-r));
                return -1;
            }
            continue;
        }
        if (e == EACCES || e == EPERM || e == EROFS)
            pd_err_set(err,
                       v2 ? "%s: %s not writable by uid %u: the service manager did not delegate "
                            "it (systemd: run paddock in a unit or scope with Delegate=yes)"
                          : "%s: %s not writable by uid %u: cgroup v1 has no delegation (run as "
                            "root, or use a host with cgroup v2 and a delegated subtree)",
                       label, parent_path, (unsigned)geteuid());
        else
            pd_err_set(err, "%s: mkdir %s: %s", label, d->path, strerror(e));
        return -1;
    }
    d->fd = openat(d->parentfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (d->fd < 0) {
        int e = errno;
        pd_err_set(err, "%s: opening the new group %s: %s", label, d->path, strerror(e));
        unlinkat(d->parentfd, name, AT_REMOVEDIR);
        return -1;
    }
    return 0;
}

static int write_limit(const struct cg_dir *d, const char *file, const char *value, bool fake,
                       bool optional, const char *label, struct pd_err *err)
{
    int r = cg_write_at(d->fd, file, value, fake);
    if (r == 0 || (optional && r == -ENOENT))
        return 0;
    pd_err_set(err, "%s: writing \"%s\" to %s/%s: %s%s", label, value, d->path, file, strerror(-r),
               r == -EINVAL ? " (the value is refused: a parent group may have a lower limit)"
                            : "");
    return -1;
}

static void close_dir(struct cg_dir *d)
{
    if (d->fd >= 0 && d->same_as < 0)
        close(d->fd);
    if (d->parentfd >= 0 && d->same_as < 0)
        close(d->parentfd);
    dir_init(d);
}

/* Remove every group directory and close every fd (no kill). */
static void release(struct pd_cgroup *cg)
{
    if (cg->v2.fd >= 0)
        remove_group(cg->v2.parentfd, cg->name, cg->v2.fd);
    close_dir(&cg->v2);
    for (size_t k = 0; k < PD_CG_NCTL; k++) {
        if (dir_owned(&cg->v1[k]))
            remove_group(cg->v1[k].parentfd, cg->name, cg->v1[k].fd);
        close_dir(&cg->v1[k]);
    }
}

#define INTERNAL_FMT                                                                            \
    "%s: %s holds processes (pid %ld: the caller's own group), so the %s controller cannot be " \
    "enabled for its sub-groups (cgroup v2 \"no internal processes\" rule): run paddock in a "  \
    "leaf group of its delegated subtree (systemd: DelegateSubgroup=) with the controllers "    \
    "enabled above it"

static int create_v2(struct pd_cgroup *cg, const struct pd_cg_layout *lay,
                     const struct pd_limits *lim, struct pd_err *err)
{
    const char *L = "cgroup v2";
    if (!lay->v2_own[0]) {
        pd_err_set(err,
                   "%s: the caller's group is unknown (no \"0::/path\" line in /proc/self/"
                   "cgroup, or it is not below %s)",
                   L, lay->v2_root);
        return -1;
    }
    struct cg_dir *d = &cg->v2;
    d->parentfd = open_below(lay->v2_root, lay->v2_own);
    if (d->parentfd < 0) {
        pd_err_set(err, "%s: opening the caller's group %s: %s (expected a directory, no symlink)",
                   L, lay->v2_own, strerror(-d->parentfd));
        return -1;
    }
    char ctl[512], sub[512];
    int r = cg_read_small_at(d->parentfd, "cgroup.controllers", ctl, sizeof ctl);
    if (r != 0) {
        pd_err_set(err, "%s: reading %s/cgroup.controllers: %s (expected a cgroup2 directory)", L,
                   lay->v2_own, strerror(-r));
        return -1;
    }
    if (cg_read_small_at(d->parentfd, "cgroup.subtree_control", sub, sizeof sub) != 0)
        sub[0] = '\0';
    bool need[3] = {lim->memory_bytes > 0, lim->pids > 0, lim->cpu_millis > 0};
    char enable[64] = "";
    bool enable_memory = false;
    for (size_t k = 0; k < 3; k++) {
        if (!need[k])
            continue;
        if (!cg_has_word(ctl, ctl_names[k], ' ')) {
            pd_err_set(err,
                       "%s: the %s controller is not offered in %s/cgroup.controllers (it "
                       "has: %s): the parent did not delegate it, so a %s limit cannot be set",
                       L, ctl_names[k], lay->v2_own, ctl[0] ? ctl : "none", ctl_names[k]);
            return -1;
        }
        if (!cg_has_word(sub, ctl_names[k], ' ')) {
            size_t len = strlen(enable);
            snprintf(enable + len, sizeof enable - len, "%s+%s", len ? " " : "", ctl_names[k]);
            enable_memory = enable_memory || k == PD_CG_MEMORY;
        }
    }
    bool is_root = strcmp(lay->v2_own, lay->v2_root) == 0;
    if (enable_memory && !is_root) {
        struct pidvec pv = {0};
        if (procs_of(d->parentfd, &pv) == 0 && pv.n > 0) {
            pd_err_set(err, INTERNAL_FMT, L, lay->v2_own, (long)pv.v[0], "memory");
            free(pv.v);
            return -1;
        }
        free(pv.v);
    }
    if (make_group(d, lay->v2_own, cg->name, L, true, err) != 0)
        return -1;
    if (enable[0]) {
        r = cg_write_at(d->parentfd, "cgroup.subtree_control", enable, cg->fake);
        if (r == -EBUSY) {
            pd_err_set(err, INTERNAL_FMT, L, lay->v2_own, (long)getpid(), enable);
            return -1;
        }
        if (r != 0) {
            pd_err_set(err, "%s: writing \"%s\" to %s/cgroup.subtree_control: %s%s", L, enable,
                       lay->v2_own, strerror(-r),
                       r == -EACCES || r == -EPERM ? ": the service manager did not delegate it"
                                                   : "");
            return -1;
        }
    }
    char v[64];
    if (lim->memory_bytes) {
        snprintf(v, sizeof v, "%" PRIu64, lim->memory_bytes);
        if (write_limit(d, "memory.max", v, cg->fake, false, L, err) != 0 ||
            write_limit(d, "memory.swap.max", "0", cg->fake, true, L, err) != 0)
            return -1;
    }
    if (lim->pids) {
        snprintf(v, sizeof v, "%" PRIu64, lim->pids);
        if (write_limit(d, "pids.max", v, cg->fake, false, L, err) != 0)
            return -1;
    }
    if (lim->cpu_millis) {
        snprintf(v, sizeof v, "%" PRIu64 " %u", (uint64_t)lim->cpu_millis * (CPU_PERIOD_US / 1000),
                 CPU_PERIOD_US);
        if (write_limit(d, "cpu.max", v, cg->fake, false, L, err) != 0)
            return -1;
    }
    return 0;
}

/* The limits of controller k into its v1 directory d (possibly shared with another controller). */
static int write_v1_limits(const struct pd_cgroup *cg, const struct cg_dir *d, size_t k,
                           const struct pd_limits *lim, const char *L, struct pd_err *err)
{
    char v[64];
    if (k == PD_CG_MEMORY && lim->memory_bytes) {
        snprintf(v, sizeof v, "%" PRIu64, lim->memory_bytes);
        /* limit_in_bytes first: memsw may never be below it */
        if (write_limit(d, "memory.limit_in_bytes", v, cg->fake, false, L, err) != 0 ||
            write_limit(d, "memory.memsw.limit_in_bytes", v, cg->fake, true, L, err) != 0)
            return -1;
    } else if (k == PD_CG_PIDS && lim->pids) {
        snprintf(v, sizeof v, "%" PRIu64, lim->pids);
        if (write_limit(d, "pids.max", v, cg->fake, false, L, err) != 0)
            return -1;
    } else if (k == PD_CG_CPU && lim->cpu_millis) {
        snprintf(v, sizeof v, "%u", CPU_PERIOD_US);
        if (write_limit(d, "cpu.cfs_period_us", v, cg->fake, false, L, err) != 0)
            return -1;
        snprintf(v, sizeof v, "%" PRIu64, (uint64_t)lim->cpu_millis * (CPU_PERIOD_US / 1000));
        if (write_limit(d, "cpu.cfs_quota_us", v, cg->fake, false, L, err) != 0)
            return -1;
    }
    return 0;
}

/* One v1 hierarchy: the group and its limits. 0, or -1 with err. */
static int create_v1_one(struct pd_cgroup *cg, const struct pd_cg_layout *lay, size_t k,
                         const struct pd_limits *lim, struct pd_err *err)
{
    char L[48];
    snprintf(L, sizeof L, "cgroup v1 (%s)", ctl_names[k]);
    struct cg_dir *d = &cg->v1[k];
    if (!lay->v1_mnt[k][0]) {
        pd_err_set(err,
                   "%s: no %s hierarchy is mounted (expected a \"cgroup\" mount with the %s "
                   "option in /proc/self/mountinfo)",
                   L, ctl_names[k], ctl_names[k]);
        return -1;
    }
    if (!lay->v1_own[k][0]) {
        pd_err_set(err,
                   "%s: the caller's group in the hierarchy at %s is unknown or not below "
                   "that mount (/proc/self/cgroup)",
                   L, lay->v1_mnt[k]);
        return -1;
    }
    d->parentfd = open_below(lay->v1_mnt[k], lay->v1_own[k]);
    if (d->parentfd < 0) {
        pd_err_set(err, "%s: opening the caller's group %s: %s", L, lay->v1_own[k],
                   strerror(-d->parentfd));
        return -1;
    }
    int r = make_group(d, lay->v1_own[k], cg->name, L, false, err);
    if (r != 0)
        return r;
    return write_v1_limits(cg, d, k, lim, L, err);
}

static int create_v1(struct pd_cgroup *cg, const struct pd_cg_layout *lay,
                     const struct pd_limits *lim, bool no_freezer, struct pd_err *err)
{
    bool need[PD_CG_NCTL] = {lim->memory_bytes > 0, lim->pids > 0, lim->cpu_millis > 0, false};
    char skipped[PD_ERR_MAX] = "";
    size_t made = 0;
    for (size_t k = 0; k < PD_CG_NCTL; k++) {
        if (k == PD_CG_FREEZER && no_freezer)
            continue;
        /* Controllers mounted together share one directory. */
        for (size_t j = 0; j < k; j++)
            if (lay->v1_mnt[k][0] && cg->v1[j].fd >= 0 &&
                strcmp(lay->v1_mnt[j], lay->v1_mnt[k]) == 0) {
                cg->v1[k] = cg->v1[j];
                cg->v1[k].same_as = (int)j;
                break;
            }
        if (cg->v1[k].same_as >= 0) {
            char L[48];
            snprintf(L, sizeof L, "cgroup v1 (%s)", ctl_names[k]);
            if (write_v1_limits(cg, &cg->v1[k], k, lim, L, err) != 0)
                return -1;
            continue;
        }
        if (!lay->v1_mnt[k][0] && !need[k])
            continue; /* not mounted, not needed */
        struct pd_err e1;
        int r = create_v1_one(cg, lay, k, lim, &e1);
        if (r != 0 && (k != PD_CG_FREEZER || r == -2)) {
            pd_err_set(err, "%s", e1.msg);
            return -1;
        }
        if (r != 0) {
            /* The freezer only makes killing tighter: go without it. */
            if (cg->v1[k].fd >= 0)
                remove_group(cg->v1[k].parentfd, cg->name, cg->v1[k].fd);
            close_dir(&cg->v1[k]);
            pd_appendf(skipped, sizeof skipped, "%s%s", skipped[0] ? "; " : "", e1.msg);
            continue;
        }
        if (k != PD_CG_FREEZER)
            made++;
    }
    if (made == 0) {
        pd_err_set(err, "cgroup v1: no usable memory, pids or cpu hierarchy%s%s",
                   skipped[0] ? ": " : "", skipped);
        return -1;
    }
    return 0;
}

struct pd_cgroup *pd_cgroup_create_env(const struct pd_cg_env *env, const char *name,
                                       const struct pd_limits *lim, struct pd_err *err)
{
    static const struct pd_limits none = {0, 0, 0};
    if (!lim)
        lim = &none;
    if (!name_ok(name)) {
        pd_err_set(err,
                   "cgroup name \"%.80s\": expected 1 to %d characters of A-Z a-z 0-9 _ . -, "
                   "starting with a letter or digit",
                   name ? name : "(null)", PD_CG_NAME_MAX);
        return NULL;
    }
    if (lim->pids > PD_LIMITS_PIDS_MAX) {
        pd_err_set(err, "pids limit %" PRIu64 ": expected at most %u", lim->pids,
                   PD_LIMITS_PIDS_MAX);
        return NULL;
    }
    if (lim->cpu_millis &&
        (lim->cpu_millis < PD_LIMITS_CPU_MIN || lim->cpu_millis > PD_LIMITS_CPU_MAX)) {
        pd_err_set(err, "cpu limit %um: expected 0 (no limit) or %um to %um", lim->cpu_millis,
                   PD_LIMITS_CPU_MIN, PD_LIMITS_CPU_MAX);
        return NULL;
    }
    struct pd_cg_layout *lay = malloc(sizeof *lay);
    struct pd_cgroup *cg = calloc(1, sizeof *cg);
    if (!lay || !cg) {
        free(lay);
        free(cg);
        pd_err_set(err, "cgroup: out of memory");
        return NULL;
    }
    pd_cg_layout_read(env, lay);
    snprintf(cg->name, sizeof cg->name, "%s", name);
    cg->fake = env && env->fake_files;
    cg->no_kill_file = env && env->no_kill_file;
    dir_init(&cg->v2);
    for (size_t k = 0; k < PD_CG_NCTL; k++)
        dir_init(&cg->v1[k]);
    cg->kind = lay->kind;
    int rc = -1;
    if (lay->kind == PD_CG_V2)
        rc = create_v2(cg, lay, lim, err);
    else if (lay->kind == PD_CG_V1)
        rc = create_v1(cg, lay, lim, env && env->no_freezer, err);
    else
        pd_err_set(err,
                   "no cgroup: %s is not a cgroup2 mount and no cgroup v1 memory, pids or "
                   "cpu hierarchy is mounted",
                   lay->v2_root);
    free(lay);
    if (rc != 0) {
        release(cg);
        free(cg);
        return NULL;
    }
    return cg;
}

struct pd_cgroup *pd_cgroup_create(const char *name, const struct pd_limits *lim,
                                   struct pd_err *err)
{
    return pd_cgroup_create_env(NULL, name, lim, err);
}

int pd_cgroup_add(struct pd_cgroup *cg, pid_t pid, struct pd_err *err)
{
    if (!cg || pid <= 0) {
        pd_err_set(err, "cgroup add: expected a group and a pid > 0");
        return -1;
    }
    char v[32];
    snprintf(v, sizeof v, "%ld", (long)pid);
    if (cg->kind == PD_CG_V2) {
        int r = cg_write_at(cg->v2.fd, "cgroup.procs", v, false);
        if (r != 0) {
            pd_err_set(err, "cgroup v2: moving pid %ld into %s/cgroup.procs: %s", (long)pid,
                       cg->v2.path, strerror(-r));
            return -1;
        }
        return 0;
    }
    for (size_t k = 0; k < PD_CG_NCTL; k++) {
        if (!dir_owned(&cg->v1[k]))
            continue;
        int r = cg_write_at(cg->v1[k].fd, "cgroup.procs", v, false);
        if (r != 0) {
            pd_err_set(err, "cgroup v1: moving pid %ld into %s/cgroup.procs: %s", (long)pid,
                       cg->v1[k].path, strerror(-r));
            return -1;
        }
    }
    return 0;
}

/* "paddock-<anything>-<pid>": the pid, or 0 when the name does not end that way. */
static pid_t sweep_pid(const char *name, const char *prefix)
{
    size_t pl = strlen(prefix);
    if (strncmp(name, prefix, pl) != 0)
        return 0;
    const char *dash = strrchr(name + pl, '-');
    if (!dash || !dash[1])
        return 0;
    long v = 0;
    for (const char *p = dash + 1; *p; p++) {
        if (*p < '0' || *p > '9' || v > 4194304)
            return 0;
        v = v * 10 + (*p - '0');
    }
    return (pid_t)v;
}

static size_t sweep_dir(const char *dir, const char *prefix)
{
    if (!dir[0])
        return 0;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return 0;
    }
    size_t removed = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        pid_t pid = de->d_type == DT_DIR ? sweep_pid(de->d_name, prefix) : 0;
        /* Its launcher is gone (a live pid, even a reused one, keeps the group) and it is older
         * than a minute (a launcher in another PID namespace has a pid we cannot see, but its
         * group is empty only for the moment between making and joining it); rmdir refuses a
         * group that still holds a process, so nothing in use is ever removed. */
        struct stat st;
        if (pid > 0 && kill(pid, 0) != 0 && errno == ESRCH &&
            fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            st.st_mtime < time(NULL) - 60 && unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR) == 0)
            removed++;
    }
    closedir(d);
    return removed;
}

size_t pd_cgroup_sweep(const struct pd_cg_env *env, const char *prefix)
{
    struct pd_cg_layout lay;
    pd_cg_layout_read(env, &lay);
    size_t n = 0;
    if (lay.kind == PD_CG_V2)
        n += sweep_dir(lay.v2_own, prefix);
    for (size_t k = 0; lay.kind == PD_CG_V1 && k < PD_CG_NCTL; k++) {
        bool dup = false; /* co-mounted controllers share a directory */
        for (size_t j = 0; j < k; j++)
            dup = dup || !strcmp(lay.v1_own[j], lay.v1_own[k]);
        if (!dup)
            n += sweep_dir(lay.v1_own[k], prefix);
    }
    return n;
}

int pd_cgroup_v1_join_fds(const struct pd_cgroup *cg, int *fds, size_t max, struct pd_err *err)
{
    if (!cg || cg->kind != PD_CG_V1) {
        pd_err_set(err, "cgroup: join fds exist for cgroup v1 groups only");
        return -1;
    }
    size_t n = 0;
    for (size_t k = 0; k < PD_CG_NCTL; k++) {
        if (!dir_owned(&cg->v1[k]))
            continue;
        if (n >= max) {
            pd_err_set(err, "cgroup v1: more than %zu hierarchies", max);
            goto fail;
        }
        int fd = openat(cg->v1[k].fd, "tasks", O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) {
            pd_err_set(err, "cgroup v1: open %s/tasks: %s", cg->v1[k].path, strerror(errno));
            goto fail;
        }
        fds[n++] = fd;
    }
    return (int)n;
fail:
    for (size_t i = 0; i < n; i++)
        close(fds[i]);
    return -1;
}

int pd_cgroup_events(const struct pd_cgroup *cg, struct pd_cg_events *out, struct pd_err *err)
{
    memset(out, 0, sizeof *out);
    if (!cg) {
        pd_err_set(err, "cgroup events: no group");
        return -1;
    }
    int r;
    const char *file;
    const char *path;
    if (cg->kind == PD_CG_V2) {
        int fd = cg->v2.fd;
        path = cg->v2.path;
        file = "memory.events";
        r = cg_read_key_at(fd, file, "oom_kill", &out->oom_kills);
        if (r == 0 || r == -ENOENT || r == -ENODATA)
            r = cg_read_key_at(fd, file, "max", &out->memory_max_hits);
        if (r == 0 || r == -ENOENT || r == -ENODATA) {
            file = "pids.events";
            r = cg_read_key_at(fd, file, "max", &out->pids_max_hits);
        }
        if (r == 0 || r == -ENOENT || r == -ENODATA) {
            file = "memory.peak";
            r = cg_read_u64_at(fd, file, &out->memory_peak);
        }
    } else {
        const struct cg_dir *m = &cg->v1[PD_CG_MEMORY], *p = &cg->v1[PD_CG_PIDS];
        r = 0;
        path = m->path;
        file = "memory.oom_control";
        if (m->fd >= 0) {
            r = cg_read_key_at(m->fd, file, "oom_kill", &out->oom_kills);
            if (r == 0 || r == -ENOENT || r == -ENODATA) {
                file = "memory.failcnt";
                r = cg_read_u64_at(m->fd, file, &out->memory_max_hits);
            }
            uint64_t sw = 0; /* with memsw set, the swap+memory counter may be the one hit */
            if ((r == 0 || r == -ENOENT) &&
                cg_read_u64_at(m->fd, "memory.memsw.failcnt", &sw) == 0 &&
                sw > out->memory_max_hits)
                out->memory_max_hits = sw;
            if (r == 0 || r == -ENOENT) {
                file = "memory.max_usage_in_bytes";
                r = cg_read_u64_at(m->fd, file, &out->memory_peak);
            }
        }
        if ((r == 0 || r == -ENOENT || r == -ENODATA) && p->fd >= 0) {
            path = p->path;
            file = "pids.events";
            r = cg_read_key_at(p->fd, file, "max", &out->pids_max_hits);
        }
    }
    if (r == 0 || r == -ENOENT || r == -ENODATA)
        return 0;
    pd_err_set(err, "cgroup: reading %s/%s: %s", path, file, strerror(-r));
    return -1;
}

/* ---------------------------------------------------------------- kill */

/* Freeze (on) or thaw (!on) the group if a freezer is available; waits (bounded) for the state. */
static void set_frozen(struct pd_cgroup *cg, bool on)
{
    long deadline = cg_now_ms() + 100;
    char st[64];
    if (cg->kind == PD_CG_V2) {
        if (cg_write_at(cg->v2.fd, "cgroup.freeze", on ? "1" : "0", false) != 0 || !on)
            return;
        while (cg_now_ms() < deadline) {
            uint64_t frozen = 0;
            if (cg_read_key_at(cg->v2.fd, "cgroup.events", "frozen", &frozen) != 0 || frozen)
                return;
            cg_sleep_ms(1);
        }
        return;
    }
    const struct cg_dir *f = &cg->v1[PD_CG_FREEZER];
    if (f->fd < 0)
        return;
    if (cg_write_at(f->fd, "freezer.state", on ? "FROZEN" : "THAWED", false) != 0 || !on)
        return;
    while (cg_now_ms() < deadline) {
        if (cg_read_small_at(f->fd, "freezer.state", st, sizeof st) != 0 ||
            strcmp(st, "FROZEN") == 0)
            return;
        cg_sleep_ms(1);
    }
}

/* For messages: the group's directory (v2) or its first v1 directory. */
static const char *first_path(const struct pd_cgroup *cg)
{
    if (cg->kind == PD_CG_V2)
        return cg->v2.path;
    for (size_t k = 0; k < PD_CG_NCTL; k++)
        if (cg->v1[k].fd >= 0)
            return cg->v1[k].path;
    return cg->name;
}

/* Every pid in every directory of the group. */
static int group_pids(const struct pd_cgroup *cg, struct pidvec *pv)
{
    if (cg->kind == PD_CG_V2)
        return subtree_pids(cg->v2.fd, pv);
    for (size_t k = 0; k < PD_CG_NCTL; k++) {
        if (!dir_owned(&cg->v1[k]))
            continue;
        int r = subtree_pids(cg->v1[k].fd, pv);
        if (r != 0)
            return r;
    }
    return 0;
}

int pd_cgroup_kill(struct pd_cgroup *cg, struct pd_err *err)
{
    if (!cg)
        return 0;
    long deadline = cg_now_ms() + PD_CG_KILL_TIMEOUT_MS;
    pid_t self = getpid();
    struct pidvec pv = {0};
    /* The caller in its own sandbox group (a misuse): neither cgroup.kill nor the freezer, which
     * would kill or freeze the caller too; the plain kill loop skips it. */
    bool self_inside = false;
    if (group_pids(cg, &pv) == 0) {
        for (size_t i = 0; i < pv.n; i++)
            self_inside = self_inside || pv.v[i] == self;
        if (pv.n == 0) {
            /* Already empty (the usual end: the sandbox's PID namespace is gone): no freezing. */
            free(pv.v);
            return 0;
        }
    }
    bool killfile = !self_inside && cg->kind == PD_CG_V2 && !cg->no_kill_file &&
                    cg_write_at(cg->v2.fd, "cgroup.kill", "1", false) == 0;
    bool freeze = !self_inside && !killfile;
    for (unsigned round = 0;; round++) {
        pv.n = 0;
        if (freeze)
            set_frozen(cg, true);
        int r = group_pids(cg, &pv);
        size_t others = 0;
        pid_t one = 0; /* for the message */
        for (size_t i = 0; i < pv.n; i++) {
            if (pv.v[i] == self)
                continue;
            others++;
            one = pv.v[i];
            if (!killfile)
                kill(pv.v[i], SIGKILL);
        }
        if (freeze)
            set_frozen(cg, false);
        if (r != 0) {
            pd_err_set(err, "cgroup: listing the processes of %s: %s", first_path(cg),
                       strerror(-r));
            free(pv.v);
            return -1;
        }
        if (others == 0)
            break;
        if (cg_now_ms() > deadline) {
            pd_err_set(err, "cgroup: %zu process(es) still in %s after %d ms of killing (pid %ld)",
                       others, first_path(cg), PD_CG_KILL_TIMEOUT_MS, (long)one);
            free(pv.v);
            return -1;
        }
        cg_sleep_ms(round < 10 ? 1 : 5);
    }
    free(pv.v);
    return 0;
}

void pd_cgroup_destroy(struct pd_cgroup *cg)
{
    if (!cg)
        return;
    pd_cgroup_kill(cg, NULL);
    release(cg);
    free(cg);
}
