/*
 * cgroup_layout.c - the host's cgroup layout (mountinfo + /proc/self/cgroup) and the small text
 * and interface-file helpers of the cgroup module (see cgroup.h, cgroup_int.h).
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

/* ---------------------------------------------------------------- text */

/* Is tok one of the words of list, separated by sep? */
bool cg_has_word(const char *list, const char *tok, char sep)
{
    size_t n = strlen(tok);
    for (const char *p = list; p && *p;) {
        const char *end = strchr(p, sep);
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len > 0 && (p[len - 1] == '\n' || p[len - 1] == ' '))
            len--;
        if (len == n && strncmp(p, tok, n) == 0)
            return true;
        p = end ? end + 1 : NULL;
    }
    return false;
}

/* Read a whole file (at most max bytes) into a NUL-terminated heap buffer; NULL with errno. */
char *cg_read_text_at(int dirfd, const char *path, size_t max, size_t *len_out)
{
    int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return NULL;
    size_t cap = 4096, got = 0;
    char *buf = malloc(cap);
    if (!buf) {
        close(fd);
        errno = ENOMEM;
        return NULL;
    }
    for (;;) {
        if (got + 1 >= cap) {
            if (cap >= max)
                break; /* cut: callers treat the text as a prefix */
            size_t ncap = cap * 2 > max ? max : cap * 2;
            char *nb = realloc(buf, ncap);
            if (!nb)
                break;
            buf = nb;
            cap = ncap;
        }
        ssize_t n = read(fd, buf + got, cap - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            free(buf);
            close(fd);
            errno = e;
            return NULL;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    if (len_out)
        *len_out = got;
    return buf;
}

/* Read a small file into buf (NUL-terminated, trailing newlines removed); 0 or -errno. */
int cg_read_small_at(int dirfd, const char *file, char *buf, size_t size)
{
    buf[0] = '\0';
    int fd = openat(dirfd, file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    size_t got = 0;
    while (got + 1 < size) {
        ssize_t n = read(fd, buf + got, size - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            return -e;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    while (got > 0 && buf[got - 1] == '\n')
        buf[--got] = '\0';
    return 0;
}

/* Write s to an interface file in one write; create: the fake tree of the tests. 0 or -errno. */
int cg_write_at(int dirfd, const char *file, const char *s, bool create)
{
    int flags = O_WRONLY | O_CLOEXEC | O_NOFOLLOW | (create ? O_CREAT | O_TRUNC : 0);
    int fd = openat(dirfd, file, flags, 0644);
    if (fd < 0)
        return -errno;
    size_t len = strlen(s);
    ssize_t n;
    do
        n = write(fd, s, len);
    while (n < 0 && errno == EINTR);
    int e = n < 0 ? errno : ((size_t)n != len ? EIO : 0);
    if (close(fd) != 0 && e == 0)
        e = errno;
    return -e;
}

/* "key N" lines (memory.events, pids.events, memory.oom_control): 0 found, -ENOENT file missing,
 * -ENODATA key missing, other -errno. */
int cg_read_key_at(int dirfd, const char *file, const char *key, uint64_t *out)
{
    char buf[1024];
    int r = cg_read_small_at(dirfd, file, buf, sizeof buf);
    if (r != 0)
        return r;
    size_t klen = strlen(key);
    for (char *line = buf; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        if (strncmp(line, key, klen) == 0 && line[klen] == ' ') {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(line + klen + 1, &end, 10);
            if (errno == 0 && end != line + klen + 1) {
                *out = v;
                return 0;
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    return -ENODATA;
}

int cg_read_u64_at(int dirfd, const char *file, uint64_t *out)
{
    char buf[64];
    int r = cg_read_small_at(dirfd, file, buf, sizeof buf);
    if (r != 0)
        return r;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(buf, &end, 10);
    if (errno != 0 || end == buf)
        return -EINVAL;
    *out = v;
    return 0;
}

void cg_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

long cg_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---------------------------------------------------------------- the host layout */

/* Undo mountinfo's octal escapes (\040 space, \011 tab, \012 newline, \134 backslash) in place. */
static void unescape_octal(char *s)
{
    char *w = s;
    for (const char *r = s; *r;) {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
            r[3] >= '0' && r[3] <= '7') {
            *w++ = (char)(((r[1] - '0') << 6) | ((r[2] - '0') << 3) | (r[3] - '0'));
            r += 4;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
}

/* dst = mnt + (own relative to the mount's root mroot); "" when own is not below mroot or the
 * result does not fit. */
static void join_own(char *dst, size_t size, const char *mnt, const char *mroot, const char *own)
{
    dst[0] = '\0';
    if (!own || own[0] != '/')
        return;
    size_t rl = strcmp(mroot, "/") == 0 ? 0 : strlen(mroot);
    if (rl > 0 && (strncmp(own, mroot, rl) != 0 || (own[rl] != '/' && own[rl] != '\0')))
        return;
    const char *rest = own + rl;
    if (strcmp(rest, "/") == 0)
        rest = "";
    int n = snprintf(dst, size, "%s%s", mnt, rest);
    if (n < 0 || (size_t)n >= size)
        dst[0] = '\0';
}

struct mount_line {
    char *root, *mnt, *fstype, *super;
};

/* Split one mountinfo line in place; false if it is malformed. Fields: id parent maj:min root
 * mountpoint opts [optional...] - fstype source superopts. */
static bool split_mount_line(char *line, struct mount_line *m)
{
    char *sep = strstr(line, " - ");
    if (!sep)
        return false;
    *sep = '\0';
    char *save = NULL;
    m->root = m->mnt = NULL;
    int i = 0;
    for (char *f = strtok_r(line, " ", &save); f; f = strtok_r(NULL, " ", &save), i++) {
        if (i == 3)
            m->root = f;
        else if (i == 4)
            m->mnt = f;
    }
    m->fstype = strtok_r(sep + 3, " ", &save);
    char *source = m->fstype ? strtok_r(NULL, " ", &save) : NULL;
    m->super = source ? strtok_r(NULL, " ", &save) : NULL;
    if (!m->root || !m->mnt || !m->fstype || !m->super)
        return false;
    unescape_octal(m->root);
    unescape_octal(m->mnt);
    return true;
}

/* The path of the /proc/self/cgroup line whose controller list holds ctl ("" = the v2 line). */
static const char *own_path(char *pc, const char *ctl, char *out, size_t size)
{
    out[0] = '\0';
    if (!pc)
        return NULL;
    for (const char *line = pc; line && *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        const char *c1 = memchr(line, ':', len);
        const char *c2 = c1 ? memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - line)) : NULL;
        if (c2) {
            size_t cl = (size_t)(c2 - c1 - 1);
            bool match = false;
            if (ctl[0] == '\0') {
                match = cl == 0 && c1 - line == 1 && line[0] == '0';
            } else if (cl > 0 && cl < 256) {
                char list[256];
                memcpy(list, c1 + 1, cl);
                list[cl] = '\0';
                match = cg_has_word(list, ctl, ',');
            }
            size_t pl = len - (size_t)(c2 + 1 - line);
            if (match && pl > 0 && pl < size) {
                memcpy(out, c2 + 1, pl);
                out[pl] = '\0';
                return out;
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    return NULL;
}

void pd_cg_layout_read(const struct pd_cg_env *env, struct pd_cg_layout *out)
{
    memset(out, 0, sizeof *out);
    const char *root = env && env->v2_root ? env->v2_root : DEFAULT_V2_ROOT;
    const char *pcpath = env && env->proc_cgroup ? env->proc_cgroup : DEFAULT_PROC_CGROUP;
    const char *mipath = env && env->mountinfo ? env->mountinfo : DEFAULT_MOUNTINFO;
    if (strlen(root) >= sizeof out->v2_root)
        return;
    snprintf(out->v2_root, sizeof out->v2_root, "%s", root);
    char *pc = cg_read_text_at(AT_FDCWD, pcpath, PROC_CGROUP_MAX, NULL);
    char *mi = cg_read_text_at(AT_FDCWD, mipath, MOUNTINFO_MAX, NULL);
    char *own = malloc(PD_CG_PATH_MAX);
    if (!own)
        goto done;
    struct statfs sf;
    bool v2 =
        (env && env->force_v2) || (statfs(root, &sf) == 0 && sf.f_type == CGROUP2_SUPER_MAGIC);
    /* each mount's root field ("/" unless the mount shows a sub-tree, e.g. in a container) */
    char mroot[PD_CG_NCTL + 1][PD_CG_PATH_MAX];
    for (size_t k = 0; k <= PD_CG_NCTL; k++)
        snprintf(mroot[k], sizeof mroot[k], "/");
    for (char *line = mi; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        struct mount_line m;
        if (split_mount_line(line, &m)) {
            if (v2 && strcmp(m.fstype, "cgroup2") == 0 && strcmp(m.mnt, root) == 0 &&
                strlen(m.root) < sizeof mroot[PD_CG_NCTL])
                snprintf(mroot[PD_CG_NCTL], sizeof mroot[PD_CG_NCTL], "%s", m.root);
            else if (!v2 && strcmp(m.fstype, "cgroup") == 0) {
                for (size_t k = 0; k < PD_CG_NCTL; k++)
                    if (!out->v1_mnt[k][0] &&
                        cg_has_word(m.super, pd_cg_ctl_name((enum pd_cg_ctl)k), ',') &&
                        strlen(m.mnt) < sizeof out->v1_mnt[k] && strlen(m.root) < sizeof mroot[k]) {
                        snprintf(out->v1_mnt[k], sizeof out->v1_mnt[k], "%s", m.mnt);
                        snprintf(mroot[k], sizeof mroot[k], "%s", m.root);
                    }
            } else if (!v2 && strcmp(m.fstype, "cgroup2") == 0 && !out->note[0]) {
                char ctl[256];
                int dfd = open(m.mnt, O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (dfd < 0 || cg_read_small_at(dfd, "cgroup.controllers", ctl, sizeof ctl) != 0)
                    snprintf(ctl, sizeof ctl, "unreadable");
                if (dfd >= 0)
                    close(dfd);
                pd_appendf(out->note, sizeof out->note,
                           "cgroup2 also mounted at %s (controllers: %s)", m.mnt,
                           ctl[0] ? ctl : "none");
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    if (v2) {
        out->kind = PD_CG_V2;
        if (own_path(pc, "", own, PD_CG_PATH_MAX))
            join_own(out->v2_own, sizeof out->v2_own, root, mroot[PD_CG_NCTL], own);
        goto done;
    }
    for (size_t k = 0; k < PD_CG_NCTL; k++) {
        if (!out->v1_mnt[k][0])
            continue;
        if (k < PD_CG_FREEZER)
            out->kind = PD_CG_V1;
        if (own_path(pc, pd_cg_ctl_name((enum pd_cg_ctl)k), own, PD_CG_PATH_MAX))
            join_own(out->v1_own[k], sizeof out->v1_own[k], out->v1_mnt[k], mroot[k], own);
    }
done:
    free(own);
    free(pc);
    free(mi);
}
