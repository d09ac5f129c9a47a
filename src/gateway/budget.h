/*
 * budget.h - hourly byte budgets of the egress gateway, per rule key, persisted across restarts.
 *
 * Who calls it: the egress proxy. Before a request or a CONNECT tunnel starts it calls
 * pd_budget_check() (exhausted -> answer 429 with the reason); as bytes flow it calls
 * pd_budget_charge(), which says whether the budget is now spent (a running tunnel is then closed).
 * A timer calls pd_budget_flush() when pd_budget_dirty() says so (e.g. every second), and the
 * gateway flushes once more at shutdown. The gateway creates one `struct pd_budget` at startup and
 * shares it between its worker threads.
 *
 * Keys: the rule key (pd_gw_budget_rule.key: the canonical domain pattern, or "default"), shared
 * by every host the rule matches, exactly like the rate limiter (ratelimit.h). 1..PD_BUDGET_KEY_MAX bytes of
 * printable ASCII without spaces. Limits come with every call (struct pd_budget_limits), so a
 * reload that changes a rule's numbers applies at the next call, against the bytes already counted.
 *
 * Window: "per hour" means the last 60 whole minutes plus the current minute. Bytes are counted in
 * PD_BUDGET_SLOTS one-minute slots per direction; a slot leaves the window 61 minutes after its
 * minute started. So a spent budget comes back gradually, a minute's worth of traffic at a time,
 * and never all at once at an hour boundary (a fixed window would let 2x the limit through around
 * the boundary). Why not the two-counter approximation (previous hour weighted by its remaining
 * fraction + current hour): it assumes the previous hour's bytes were spread evenly. An agent that
 * spends its budget at the end of an hour could then spend nearly the whole budget again before the
 * next hour ends: close to 2x the limit inside one real 60-minute span. Counting whole minutes for
 * up to 61 minutes means that every real 60-minute span lies inside the window of the charges it
 * contains, so no 60-minute span ever sees more than the limit (plus what was in flight when the
 * last charge crossed it). The cost is 2 x 61 counters per key (about 1 KiB) and, at worst, one
 * extra minute before bytes expire.
 *
 * Exhausted: counted bytes >= the limit in either limited direction. A limit of 0 means "not
 * limited" in that direction (the received limit is optional; bytes are counted both ways
 * regardless, so a limit added by a reload applies to the bytes already seen).
 *
 * Time: wall-clock seconds (time(NULL)), because counters outlive the process. A clock that moves
 * back by at most the window keeps charging the newest slot (nothing expires early); one that jumps
 * back by more re-anchors the window at the new time with its counts kept. A clock that jumps
 * forward expires what it skips over.
 *
 * Persistence: pd_budget_open() loads the state file; a missing file starts empty; an unreadable or
 * invalid one is an error naming the path and what was wrong (never silently reset: that would hand
 * an agent a fresh budget on every restart). pd_budget_flush() snapshots the counters under the
 * lock and writes outside it: a temp file in the same directory (mode 0600), fsync, rename over the
 * state file, fsync the directory. The file on disk is therefore always a complete old or a
 * complete new state. A crash or kill -9 loses at most the charges made since the last successful
 * flush. Format (version 1, times are Unix seconds, slot starts are multiples of 60, only slots
 * with bytes are listed, only keys with bytes in their window are written):
 *   {"version":1,"slot_seconds":60,"budgets":{
 *      "api.openai.com":{"slot":1700000040,"sent":[[1699999980,512],[1700000040,1024]],"received":[]}}}
 * "slot" is the newest slot of the key's window; every listed slot lies in [slot - 3600, slot].
 * Loading is strict: unknown fields, duplicates, out-of-window slots, negative counts or more keys
 * than max_keys are errors.
 *
 * Key lifetime and bounded memory: a key whose window holds no bytes carries no information (a new
 * key would count from zero too) and may be dropped at any time. So a key whose rule was removed by
 * a reload is kept while it still has bytes in its window (at most 61 minutes after its last
 * charge: if the rule comes back, its budget is still spent) and then forgotten: pd_budget_expire()
 * drops such keys and is meant for the flush timer; a new key arriving at a full table also
 * reclaims one. At most max_keys keys are held. A new key that finds the table full of keys with
 * bytes in their window cannot be counted, so it is refused (PD_BUDGET_NO_ROOM, with a reason): the
 * gateway denies the request or closes the tunnel. Looking for a reclaimable key scans the table
 * under the lock, which only happens for a new key at the limit: size max_keys well above the
 * number of rules. Memory is about 1 KiB per key (2 x 61 counters).
 *
 * Threads: every function may be called from any thread except pd_budget_free(). One mutex guards
 * the counters; it is never held across I/O (flush copies what it needs, then writes). A second
 * mutex serialises flushes so that two concurrent flushes cannot write an older snapshot after a
 * newer one; the hot path never takes it.
 *
 * Never: blocks a charge on I/O, sleeps, reads a clock, or keeps global state.
 */
#ifndef PD_GATEWAY_BUDGET_H
#define PD_GATEWAY_BUDGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "gateway/rule_key.h"

#define PD_BUDGET_KEY_MAX PD_GW_RULE_KEY_MAX /* bytes in a key (rule_key.h) */
#define PD_BUDGET_SLOT_SECONDS 60 /* width of one counting slot */
#define PD_BUDGET_SLOTS 61 /* 60 whole minutes + the current one */
#define PD_BUDGET_LIMIT_MAX (UINT64_C(1) << 50) /* 1 PiB per hour: the largest accepted limit */
#define PD_BUDGET_MAX_KEYS_LIMIT 10000 /* largest max_keys accepted (about 1 KiB per key) */
#define PD_BUDGET_STATE_MAX_BYTES (64u * 1024u * 1024u) /* larger state files are refused */

struct pd_budget;

/* A rule's budget. 0 = that direction is not limited. */
struct pd_budget_limits {
    uint64_t sent_per_hour; /* bytes agent -> upstream */
    uint64_t received_per_hour; /* bytes upstream -> agent (optional) */
};

enum pd_budget_verdict {
    PD_BUDGET_OK = 0, /* within budget */
    PD_BUDGET_EXHAUSTED, /* spent: 429 (check) or close the tunnel (charge); `why` says which */
    PD_BUDGET_NO_ROOM, /* new key, table full of keys still counting (or out of memory): deny */
    PD_BUDGET_INVALID, /* bad key or limits (a caller bug): deny */
};

/*
 * Open a budget table of at most max_keys (1..PD_BUDGET_MAX_KEYS_LIMIT) keys backed by state_path,
 * and load that file if it exists (see the header comment). state_path NULL = in memory only (flush
 * does nothing). NULL and err filled on failure; errors about the file start with its path.
 */
struct pd_budget *pd_budget_open(const char *state_path, size_t max_keys, struct pd_err *err);
/* Free everything. Does not flush (call pd_budget_flush first to keep the last charges). NULL is
 * accepted; no other call may run concurrently with or after it. */
void pd_budget_free(struct pd_budget *b);

/* Check a rule's limits: each 0 (not limited) or 1..PD_BUDGET_LIMIT_MAX. The field names in the
 * message are the configuration's: "bytes_sent_per_hour must be ...". */
int pd_budget_validate(const struct pd_budget_limits *limits, struct pd_err *err);

/*
 * Before a request or tunnel: is key's budget spent at now_s? Charges nothing and creates nothing.
 * PD_BUDGET_EXHAUSTED fills why with e.g. "byte budget for api.openai.com spent: 10485760 of
 * 10485760 bytes sent in the last hour; resets gradually over the next hour". PD_BUDGET_NO_ROOM:
 * the key has no counters yet and none could be made room for (a charge would fail). why may be
 * NULL.
 */
enum pd_budget_verdict pd_budget_check(struct pd_budget *b, const char *key,
                                       const struct pd_budget_limits *limits, int64_t now_s,
                                       struct pd_err *why);

/*
 * Count sent and received bytes against key at now_s (creating the key's counters when new), then
 * answer as pd_budget_check would at the same moment: PD_BUDGET_EXHAUSTED means the budget is spent
 * now (close a running tunnel). Bytes are counted even when the budget was already spent (they did
 * flow). PD_BUDGET_NO_ROOM: nothing was counted. why may be NULL.
 */
enum pd_budget_verdict pd_budget_charge(struct pd_budget *b, const char *key, uint64_t sent,
                                        uint64_t received, const struct pd_budget_limits *limits,
                                        int64_t now_s, struct pd_err *why);

/* Bytes counted in key's window at now_s (0 and 0 for an unknown key). Either out pointer may be
 * NULL. Returns false if the key is invalid. For metrics, status pages and tests. */
bool pd_budget_usage(struct pd_budget *b, const char *key, int64_t now_s, uint64_t *sent,
                     uint64_t *received);

/* Drop every key whose window is empty at now_s; returns how many. For the flush timer. */
size_t pd_budget_expire(struct pd_budget *b, int64_t now_s);

/* Number of keys held. */
size_t pd_budget_count(struct pd_budget *b);

/* Whether counters changed since the last successful flush. */
bool pd_budget_dirty(struct pd_budget *b);

/*
 * Write the state file atomically (see the header comment). 0, or -1 with err naming the path and
 * the step that failed; the table then stays dirty (the next flush retries) and the previous file
 * is untouched, except when only the final fsync of the directory failed ("written, but cannot
 * fsync its directory"): the new file is then in place but may not survive a power loss. Concurrent
 * charges are not blocked while the file is written. Does nothing and returns 0 when the table was
 * opened without a path.
 */
int pd_budget_flush(struct pd_budget *b, struct pd_err *err);

/* "ok", "exhausted", "no_room", "invalid" (stable: used in logs and metrics). */
const char *pd_budget_verdict_name(enum pd_budget_verdict v);

#endif
