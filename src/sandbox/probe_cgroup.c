/* probe_cgroup.c - the host probe's cgroup layer (see probe.h): cgroup v2 with a delegated subtree
 * offering memory, pids and cpu, else writable cgroup v1 hierarchies for them, else rlimits only. A
 * test group is created in a child process and always removed again. */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "sandbox/probe_int.h"

#define CGROUP_ROOT "/sys/fs/cgroup"
#define PATH_MAX_PROBE 512

static const char *const cg_controllers[] = {"memory", "pids", "cpu"};
#define NCG (sizeof cg_controllers / sizeof cg_controllers[0])

struct cg_plan {
    int version; /* 2, 1, or 0 (none) */
    char v2_dir[PATH_MAX_PROBE]; /* v2: the caller's own cgroup directory */
    char v1_mnt[NCG][PATH_MAX_PROBE]; /* v1: mount point per controller, "" if not mounted */
    char probe_name[64]; /* paddock-probe-<pid> */
    char note[160]; /* e.g. a hybrid cgroup2 mount */
};

/* Is tok one of the comma-separated words in list? */
static bool has_word(const char *list, const char *tok)
{
    size_t n = strlen(tok);
    for (const char *p = list; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == n && strncmp(p, tok, n) == 0)
            return true;
        p = comma ? comma + 1 : NULL;
    }
    return false;
}

/* Read /proc/self/mountinfo (bounded) into a heap buffer. */
static char *read_mountinfo(void)
{
    size_t cap = 1 << 16, got = 0;
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
    int fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        free(buf);
        return NULL;
    }
    for (;;) {
        if (got + 1 >= cap) {
            if (cap >= (1u << 22))
                break;
            char *nb = realloc(buf, cap * 2);
            if (!nb)
                break;
            buf = nb;
            cap *= 2;
        }
        ssize_t n = read(fd, buf + got, cap - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    return buf;
}

static void plan_cgroups(const struct probe_ctx *c, struct cg_plan *p)
{
    memset(p, 0, sizeof *p);
    snprintf(p->probe_name, sizeof p->probe_name, "paddock-probe-%ld", (long)c->self);
    struct statfs sf;
    if (statfs(CGROUP_ROOT, &sf) == 0 && sf.f_type == CGROUP2_SUPER_MAGIC) {
        p->version = 2;
        char cg[1024];
        const char *own = "/";
        if (probe_read_small("/proc/self/cgroup", cg, sizeof cg) == 0) {
            for (char *line = cg; line && *line;) {
                char *nl = strchr(line, '\n');
                if (nl)
                    *nl = '\0';
                if (strncmp(line, "0::", 3) == 0)
                    own = line + 3;
                line = nl ? nl + 1 : NULL;
            }
        }
        snprintf(p->v2_dir, sizeof p->v2_dir, "%s%s", CGROUP_ROOT,
                 strcmp(own, "/") == 0 ? "" : own);
        return;
    }
    char *mi = read_mountinfo();
    if (!mi)
        return;
    for (char *line = mi; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        /* fields: id parent maj:min root mountpoint opts [optional...] - fstype source superopts */
        char *sep = strstr(line, " - ");
        if (sep) {
            *sep = '\0';
            char *save = NULL, *f, *mnt = NULL;
            int i = 0;
            for (f = strtok_r(line, " ", &save); f; f = strtok_r(NULL, " ", &save), i++)
                if (i == 4)
                    mnt = f;
            char *fstype = strtok_r(sep + 3, " ", &save);
            char *source = fstype ? strtok_r(NULL, " ", &save) : NULL;
            char *super = source ? strtok_r(NULL, " ", &save) : NULL;
            if (mnt && fstype && super && strcmp(fstype, "cgroup") == 0) {
                for (size_t k = 0; k < NCG; k++)
                    if (!p->v1_mnt[k][0] && has_word(super, cg_controllers[k]))
                        snprintf(p->v1_mnt[k], sizeof p->v1_mnt[k], "%s", mnt);
            } else if (mnt && fstype && strcmp(fstype, "cgroup2") == 0 && !p->note[0]) {
                char ctl[256], path[PATH_MAX_PROBE + 32];
                snprintf(path, sizeof path, "%s/cgroup.controllers", mnt);
                if (probe_read_small(path, ctl, sizeof ctl) != 0)
                    snprintf(ctl, sizeof ctl, "unreadable");
                probe_appendf(p->note, sizeof p->note,
                              "cgroup2 also mounted at %s (controllers: %s)", mnt,
                              ctl[0] ? ctl : "none");
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    free(mi);
    for (size_t k = 0; k < NCG; k++)
        if (p->v1_mnt[k][0])
            p->version = 1;
}

static void child_cgroup_v2(const struct cg_plan *p, struct child_report *r)
{
    char dir[PATH_MAX_PROBE + 64], path[PATH_MAX_PROBE + 128], ctl[256];
    snprintf(dir, sizeof dir, "%s/%s", p->v2_dir, p->probe_name);
    if (mkdir(dir, 0755) != 0) {
        probe_rep(r, PD_PROBE_MISSING,
                  "cgroup v2: mkdir %s: %s (no delegated writable subtree: rlimits only)", dir,
                  strerror(errno));
        return;
    }
    snprintf(path, sizeof path, "%s/cgroup.controllers", dir);
    if (probe_read_small(path, ctl, sizeof ctl) != 0)
        ctl[0] = '\0';
    char ok[64] = "", bad[PD_PROBE_DETAIL_MAX] = "";
    snprintf(path, sizeof path, "%s/cgroup.subtree_control", dir);
    for (size_t k = 0; k < NCG; k++) {
        /* cgroup.controllers is space-separated: look for the word */
        bool offered = false;
        size_t n = strlen(cg_controllers[k]);
        for (const char *q = ctl; (q = strstr(q, cg_controllers[k])) != NULL; q += n)
            if ((q == ctl || q[-1] == ' ') && (q[n] == ' ' || q[n] == '\0'))
                offered = true;
        if (!offered) {
            probe_appendf(bad, sizeof bad, "%s%s (not in %s/cgroup.subtree_control)",
                          bad[0] ? ", " : "", cg_controllers[k], p->v2_dir);
            continue;
        }
        char w[32];
        snprintf(w, sizeof w, "+%s", cg_controllers[k]);
        if (probe_write_str(path, w) == 0)
            probe_appendf(ok, sizeof ok, "%s%s", ok[0] ? "," : "", cg_controllers[k]);
        else
            probe_appendf(bad, sizeof bad, "%s%s (enabling: %s)", bad[0] ? ", " : "",
                          cg_controllers[k], strerror(errno));
    }
    int rm = rmdir(dir);
    int rme = errno;
    if (!bad[0])
        probe_rep(
            r, PD_PROBE_AVAILABLE,
            "cgroup v2: test group under %s created, %s enabled in its subtree_control, removed",
            p->v2_dir, ok);
    else
        probe_rep(r, ok[0] ? PD_PROBE_PARTIAL : PD_PROBE_MISSING,
                  "cgroup v2: test group under %s created and removed; usable: %s; not: %s%s",
                  p->v2_dir, ok[0] ? ok : "none", bad, ok[0] ? "" : " (rlimits only)");
    if (rm != 0)
        probe_appendf(r->detail, sizeof r->detail, "; rmdir %s: %s", dir, strerror(rme));
}

static void child_cgroup_v1(const struct cg_plan *p, struct child_report *r)
{
    char ok[64] = "", bad[PD_PROBE_DETAIL_MAX] = "";
    for (size_t k = 0; k < NCG; k++) {
        if (!p->v1_mnt[k][0]) {
            probe_appendf(bad, sizeof bad, "%s%s: no v1 hierarchy mounted", bad[0] ? "; " : "",
                          cg_controllers[k]);
            continue;
        }
        char dir[PATH_MAX_PROBE + 64];
        snprintf(dir, sizeof dir, "%s/%s", p->v1_mnt[k], p->probe_name);
        if (mkdir(dir, 0755) != 0) {
            probe_appendf(bad, sizeof bad, "%smkdir %s: %s", bad[0] ? "; " : "", dir,
                          strerror(errno));
            continue;
        }
        if (rmdir(dir) != 0) {
            probe_appendf(bad, sizeof bad, "%srmdir %s: %s", bad[0] ? "; " : "", dir,
                          strerror(errno));
            continue;
        }
        probe_appendf(ok, sizeof ok, "%s%s", ok[0] ? "," : "", cg_controllers[k]);
    }
    if (!bad[0])
        probe_rep(r, PD_PROBE_AVAILABLE,
                  "cgroup v1: a test group created and removed in the %s hierarchies", ok);
    else if (ok[0])
        probe_rep(r, PD_PROBE_PARTIAL, "cgroup v1: test group works for %s; not for: %s", ok, bad);
    else
        probe_rep(r, PD_PROBE_MISSING, "cgroup v1: %s (rlimits only)", bad);
}

static void child_cgroup(const struct probe_ctx *c, long param, struct child_report *r)
{
    (void)c;
    const struct cg_plan *p = (const struct cg_plan *)(intptr_t)param;
    if (p->version == 2)
        child_cgroup_v2(p, r);
    else
        child_cgroup_v1(p, r);
}

void probe_cgroup(const struct probe_ctx *c, struct pd_probe_entry *e)
{
    struct cg_plan *p = malloc(sizeof *p);
    if (!p) {
        e->state = PD_PROBE_MISSING;
        snprintf(e->detail, sizeof e->detail, "cannot run the probe: out of memory");
        return;
    }
    plan_cgroups(c, p);
    if (p->version == 0) {
        e->state = PD_PROBE_MISSING;
        snprintf(e->detail, sizeof e->detail,
                 "%s is not a cgroup2 mount and no v1 memory/pids/cpu hierarchy is mounted: "
                 "resource limits would be rlimits only",
                 CGROUP_ROOT);
    } else {
        struct child_report r;
        probe_run_child(c, child_cgroup, (long)(intptr_t)p, &r);
        e->state = (enum pd_probe_state)r.state;
        snprintf(e->detail, sizeof e->detail, "%s", r.detail);
        /* The child removes its groups; if it died half-way, remove them here. */
        char dir[PATH_MAX_PROBE + 64];
        bool leftover = false;
        if (p->version == 2) {
            snprintf(dir, sizeof dir, "%s/%s", p->v2_dir, p->probe_name);
            leftover = rmdir(dir) == 0;
        } else {
            for (size_t k = 0; k < NCG; k++) {
                if (!p->v1_mnt[k][0])
                    continue;
                snprintf(dir, sizeof dir, "%s/%s", p->v1_mnt[k], p->probe_name);
                leftover = rmdir(dir) == 0 || leftover;
            }
        }
        if (leftover)
            probe_appendf(e->detail, sizeof e->detail, "; a leftover test group was removed");
    }
    if (p->note[0])
        probe_appendf(e->detail, sizeof e->detail, "; %s", p->note);
    free(p);
}
