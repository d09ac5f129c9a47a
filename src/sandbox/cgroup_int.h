/*
 * cgroup_int.h - private to src/sandbox/cgroup*.c: interface-file helpers relative to held
 * directory fds, shared by the layout reader (cgroup_layout.c) and the group object (cgroup.c).
 * cgroup.h is the module's contract.
 */
#ifndef PD_SANDBOX_CGROUP_INT_H
#define PD_SANDBOX_CGROUP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/str.h"
#include "sandbox/cgroup.h"

#define DEFAULT_V2_ROOT "/sys/fs/cgroup"
#define DEFAULT_PROC_CGROUP "/proc/self/cgroup"
#define DEFAULT_MOUNTINFO "/proc/self/mountinfo"
#define MOUNTINFO_MAX (4u << 20)
#define PROC_CGROUP_MAX (64u << 10)
#define PROCS_MAX (8u << 20) /* bytes of one cgroup.procs read */
#define WALK_DEPTH_MAX 32 /* sub-groups deeper than this are not visited */
#define CPU_PERIOD_US 100000u

bool cg_has_word(const char *list, const char *tok, char sep);
char *cg_read_text_at(int dirfd, const char *path, size_t max, size_t *len_out);
int cg_read_small_at(int dirfd, const char *file, char *buf, size_t size);
int cg_write_at(int dirfd, const char *file, const char *s, bool create);
int cg_read_key_at(int dirfd, const char *file, const char *key, uint64_t *out);
int cg_read_u64_at(int dirfd, const char *file, uint64_t *out);
/* Append formatted text to buf (NUL-terminated, cut to size: human text). */
void cg_sleep_ms(long ms);
long cg_now_ms(void);

#endif
