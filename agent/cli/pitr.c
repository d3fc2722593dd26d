/* Point-in-time recovery from the binlog archive (docs/backup.md): `haadm restore --to-time |
 * --to-gtid | --before-gtid`, and `haadm binlog list | find`. The newest backup before the
 * point is restored beside the target, a throwaway mariadbd is started on it, and the archived
 * transactions after the backup are replayed through `mariadb-binlog - | mariadb` up to the
 * point; then the result is renamed into place. Blocking; haadm only. */
#include "pitr.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../backup/archive.h"
#include "../backup/fsutil.h"
#include "../common/clock.h"
#include "../common/proc.h"
#include "../common/secret.h"
#include "../db/reclone.h"
#include "backup.h"
#include "render.h"

#define WALK_MAX  10000000ULL /* slices read back from the head: years of them */
#define WRITE_MAX (1u << 20)  /* the replay stream is written in pieces of this size */
#define REPLAY_MS (24ULL * 3600 * 1000)

/* ---- the point ---- */

int ha_pitr_parse_time(const char *text, uint64_t *unix_s, char *why, size_t size)
{
	struct tm tm = {0};
	const char *rest = strptime(text, "%Y-%m-%d %H:%M:%S", &tm);
	if (rest == NULL)
		rest = strptime(text, "%Y-%m-%dT%H:%M:%S", &tm);
	if (rest == NULL) {
		snprintf(why, size,
		         "'%s': not a time (YYYY-MM-DD HH:MM:SS, UTC unless a zone "
		         "such as +02:00 follows)",
		         text);
		return -1;
	}
	while (*rest == ' ')
		rest++;
	long offset = 0;
	if (*rest == 'Z' || (rest[0] == 'U' && rest[1] == 'T' && rest[2] == 'C')) {
		rest += *rest == 'Z' ? 1 : 3;
	} else if (*rest == '+' || *rest == '-') {
		const char *z = rest + 1;
		if (!isdigit((unsigned char)z[0]) || !isdigit((unsigned char)z[1]) || z[2] != ':' ||
		    !isdigit((unsigned char)z[3]) || !isdigit((unsigned char)z[4])) {
			snprintf(why, size, "'%s': a zone is +HH:MM or -HH:MM", text);
			return -1;
		}
		int h = (z[0] - '0') * 10 + (z[1] - '0'), m = (z[3] - '0') * 10 + (z[4] - '0');
		if (h > 14 || m > 59) {
			snprintf(why, size, "'%s': no such zone", text);
			return -1;
		}
		offset = (h * 3600L + m * 60L) * (*rest == '+' ? 1 : -1);
		rest = z + 5;
	}
	if (*rest) {
		snprintf(why, size, "'%s': unexpected '%s' after the time", text, rest);
		return -1;
	}
	time_t t = timegm(&tm);
	if (t < 0 || (long long)t - offset < 0 || (long long)t - offset > 253402300799LL) {
		snprintf(why, size, "'%s': before 1970 or after 9999", text);
		return -1;
	}
	*unix_s = (uint64_t)((long long)t - offset);
	return 0;
}

static int parse_one_gtid(const char *text, struct ha_gtid *g, char *why, size_t size)
{
	struct ha_gtid_pos p;
	if (ha_gtid_parse(text, &p, NULL) != 0 || p.n != 1) {
		snprintf(why, size, "'%s': not one GTID (domain-server-seq)", text);
		return -1;
	}
	*g = p.g[0];
	return 0;
}

/* Whether transaction g (at time ts) is past the point: the replay stops before it. */
static bool past(const struct ha_pitr_point *pt, const struct ha_gtid *g, uint64_t ts, bool *last)
{
	*last = false;
	switch (pt->kind) {
	case HA_PITR_TIME:
		return ts >= pt->unix_s;
	case HA_PITR_BEFORE_GTID:
		return g->domain == pt->gtid.domain && g->seq >= pt->gtid.seq;
	case HA_PITR_TO_GTID:
		if (g->domain == pt->gtid.domain && g->seq > pt->gtid.seq)
			return true;
		*last = g->domain == pt->gtid.domain && g->seq == pt->gtid.seq;
		return false;
	}
	return true;
}

/* ---- the archive's chain, from the head back to a backup ---- */

struct link {
	char *name;
	int cap; /* index into caps: transactions above it are errant; -1 none */
};

struct chain {
	struct link *l; /* oldest first once loaded */
	size_t n, cap_l;
	struct ha_gtid_pos *caps;
	size_t n_caps;
	char first_start[HA_GTID_TEXT_MAX]; /* where the oldest slice loaded begins */
	char gap[HA_SLICE_NAME_MAX + HA_SLICE_NOTE_MAX + 16]; /* the chain ends before this gap */
	uint64_t end_ts; /* the newest slice kept: its last transaction's time */
};

static void chain_free(struct chain *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->l[i].name);
	free(c->l);
	free(c->caps);
	memset(c, 0, sizeof(*c));
}

static int push(struct chain *c, const char *name, int cap)
{
	if (c->n == c->cap_l) {
		size_t ncap = c->cap_l ? c->cap_l * 2 : 64;
		struct link *grown = realloc(c->l, ncap * sizeof(*grown));
		if (grown == NULL)
			return -1;
		c->l = grown;
		c->cap_l = ncap;
	}
	c->l[c->n].name = strdup(name);
	c->l[c->n].cap = cap;
	return c->l[c->n++].name ? 0 : -1;
}

static int add_cap(struct chain *c, const struct ha_gtid_pos *p);

/* A slice that records a fork (where its source and the archive agreed after a failover) caps
 * every older slice at it: their transactions above it are errant, whatever the positions
 * around a gap say. */
static int fork_cap(struct chain *c, const char *fork, int *cap)
{
	struct ha_gtid_pos f;
	if (!fork[0] || ha_gtid_parse(fork, &f, NULL) != 0)
		return 0;
	if (*cap >= 0)
		ha_gtid_min(&c->caps[*cap], &f, &f);
	*cap = add_cap(c, &f);
	return *cap < 0 ? -1 : 0;
}

static int add_cap(struct chain *c, const struct ha_gtid_pos *p)
{
	struct ha_gtid_pos *grown = realloc(c->caps, (c->n_caps + 1) * sizeof(*grown));
	if (grown == NULL)
		return -1;
	c->caps = grown;
	c->caps[c->n_caps] = *p;
	return (int)c->n_caps++;
}

/* History is missing before slice `name`: a restore from the backup being chained can only
 * reach points before the gap. What was loaded (it follows the gap) is dropped; the replay must
 * then stop inside what remains (check_reached). */
static void cut_at_gap(struct chain *c, const char *name, const char *gap, int *cap)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->l[i].name);
	c->n = 0;
	free(c->caps);
	c->caps = NULL;
	c->n_caps = 0;
	*cap = -1;
	snprintf(c->gap, sizeof(c->gap), "slice %s: %s", name, gap);
}

/* Walks back from the head until a slice that begins at or before `from` (the backup's
 * position). Crossing a gap, the chain is cut before it (c->gap says so: only points before it
 * are reachable). An archive that begins after `from` is refused with what to do. */
static int load_chain(struct repo *rp, const char *head, const struct ha_gtid_pos *from,
                      struct chain *c, struct ha_err *e)
{
	char name[HA_SLICE_NAME_MAX];
	snprintf(name, sizeof(name), "%s", head);
	struct ha_gtid_pos later_start; /* the start of the slice after the current one */
	bool have_later = false;
	int cap = -1;
	for (uint64_t walked = 0; walked < WALK_MAX; walked++) {
		struct ha_slice s;
		int rc = ha_archive_slice(&rp->archive, rp->key, name, &s, e);
		if (rc != 0)
			return rc;
		struct ha_gtid_pos start, end;
		if (ha_gtid_parse(s.start, &start, NULL) != 0 ||
		    ha_gtid_parse(s.end, &end, NULL) != 0) {
			ha_slice_free(&s);
			return ha_err_set(e, HA_EPROTO, "slice %s: bad positions", name);
		}
		if (have_later && !ha_gtid_contains(&later_start, &end)) {
			/* the next slice starts before this one ends: a failover left this one's
			 * last transactions off the main line */
			struct ha_gtid_pos capped = later_start;
			if (cap >= 0)
				ha_gtid_min(&c->caps[cap], &later_start, &capped);
			cap = add_cap(c, &capped);
			if (cap < 0) {
				ha_slice_free(&s);
				return ha_err_set(e, HA_ENOMEM, "out of memory");
			}
		}
		if (c->n == 0)
			c->end_ts = s.last_ts;
		if (push(c, s.name, cap) != 0) {
			ha_slice_free(&s);
			return ha_err_set(e, HA_ENOMEM, "out of memory");
		}
		bool done = ha_gtid_contains(from, &start);
		char gap[HA_SLICE_NOTE_MAX], prev[HA_SLICE_NAME_MAX], fork[HA_GTID_TEXT_MAX];
		snprintf(gap, sizeof(gap), "%s", s.gap);
		snprintf(fork, sizeof(fork), "%s", s.fork);
		snprintf(prev, sizeof(prev), "%s", s.prev);
		snprintf(c->first_start, sizeof(c->first_start), "%s", s.start);
		ha_slice_free(&s);
		if (done)
			break;
		if (gap[0]) /* only points before it are reachable from this backup */
			cut_at_gap(c, name, gap, &cap);
		if (!prev[0])
			return gap[0]
			           ? ha_err_set(e, HA_EPROTO, "the archive begins with a gap")
			           : ha_err_set(e, HA_EPROTO,
			                        "the archive begins at %s, after the backup's "
			                        "position: restore from a backup taken after the "
			                        "archive began",
			                        c->first_start[0] ? c->first_start : "(empty)");
		if (fork_cap(c, fork, &cap) != 0)
			return ha_err_set(e, HA_ENOMEM, "out of memory");
		later_start = start;
		have_later = true;
		snprintf(name, sizeof(name), "%s", prev);
	}
	for (size_t i = 0; i < c->n / 2; i++) { /* oldest first */
		struct link t = c->l[i];
		c->l[i] = c->l[c->n - 1 - i];
		c->l[c->n - 1 - i] = t;
	}
	return 0;
}

/* ---- replay ---- */

struct replay {
	const struct ha_pitr_point *pt;
	struct ha_gtid_pos done;       /* the position reached: the backup's, then each replayed */
	const struct ha_gtid_pos *cap; /* this slice's (NULL none) */
	bool include, stop, reached;
	struct ha_gtid other; /* the archive's transaction at the point's number, from another
	                         server: the point is not on the main line */
	bool mismatch;
	uint64_t count, last_ts;
	struct ha_gtid last;
	int fd; /* mariadb-binlog's stdin; -1: scanning only (counting, checking) */
	struct ha_buf out;
	char err[512];
};

static int flush_out(struct replay *r)
{
	if (r->fd >= 0 && r->out.len && ha_write_all(r->fd, r->out.data, r->out.len) != 0) {
		snprintf(r->err, sizeof(r->err), "the replay stopped taking input (%s)",
		         strerror(errno));
		return HA_EIO;
	}
	ha_buf_reset(&r->out);
	return 0;
}

static int emit(struct replay *r, const uint8_t *raw, size_t n)
{
	if (r->fd < 0)
		return 0;
	ha_buf_append(&r->out, raw, n);
	if (ha_buf_failed(&r->out)) {
		snprintf(r->err, sizeof(r->err), "out of memory");
		return HA_EIO;
	}
	return r->out.len >= WRITE_MAX ? flush_out(r) : 0;
}

static struct ha_gtid *domain_of(struct ha_gtid_pos *p, uint32_t domain)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->g[i].domain == domain)
			return &p->g[i];
	return NULL;
}

/* Whether transaction g belongs after the backup on the main line: under the slice's cap
 * (not left behind by a failover), not in the backup or replayed already. */
static bool wanted(struct replay *r, const struct ha_gtid *g)
{
	if (r->cap) {
		const struct ha_gtid *c = NULL;
		for (size_t i = 0; i < r->cap->n; i++)
			if (r->cap->g[i].domain == g->domain)
				c = &r->cap->g[i];
		if (c == NULL || g->seq > c->seq)
			return false; /* errant */
	}
	struct ha_gtid *have = domain_of(&r->done, g->domain);
	return have == NULL || g->seq > have->seq;
}

/* Each sequence number follows the last one of its domain: anything else is a hole. */
static int in_order(struct replay *r, const struct ha_gtid *g)
{
	struct ha_gtid *have = domain_of(&r->done, g->domain);
	if (have == NULL || g->seq == have->seq + 1)
		return 0;
	snprintf(r->err, sizeof(r->err),
	         "a gap in the archive: domain %u goes from %llu to %llu (transactions missing); "
	         "restore to a point before %u-%u-%llu",
	         g->domain, (unsigned long long)have->seq, (unsigned long long)g->seq, g->domain,
	         g->server, (unsigned long long)g->seq);
	return HA_EPROTO;
}

/* Whether the transactions missing before g (if any) all come after a GTID point. */
static bool hole_after_point(struct replay *r, const struct ha_gtid *g)
{
	if (r->pt->kind == HA_PITR_TIME || g->domain != r->pt->gtid.domain)
		return false;
	struct ha_gtid *have = domain_of(&r->done, g->domain);
	uint64_t first_missing = have ? have->seq + 1 : 1;
	return r->pt->kind == HA_PITR_BEFORE_GTID ? first_missing >= r->pt->gtid.seq
	                                          : first_missing > r->pt->gtid.seq;
}

static void advance(struct replay *r, const struct ha_gtid *g, uint32_t ts)
{
	struct ha_gtid *have = domain_of(&r->done, g->domain);
	if (have) {
		*have = *g;
	} else if (r->done.n < HA_GTID_MAX_DOMAINS) {
		r->done.g[r->done.n++] = *g;
		for (size_t i = r->done.n - 1;
		     i > 0 && r->done.g[i - 1].domain > r->done.g[i].domain;
		     i--) { /* sorted by domain, for the text form */
			struct ha_gtid t = r->done.g[i];
			r->done.g[i] = r->done.g[i - 1];
			r->done.g[i - 1] = t;
		}
	}
	r->count++;
	r->last = *g;
	r->last_ts = ts;
}

static int on_event(void *arg, const struct ha_bl_event *ev, enum ha_bl_role role,
                    const struct ha_bl_split *tx, const uint8_t *raw)
{
	struct replay *r = arg;
	if (tx->closed && r->include) {
		/* the open transaction ended with the event before (an end not known by its
		 * event, or the slice's end) */
		r->include = false;
		advance(r, &tx->closed_gtid, tx->closed_ts);
		if (r->pt->kind == HA_PITR_TO_GTID && r->reached) {
			r->stop = true;
			return 1;
		}
	}
	if (ev == NULL)
		return 0;
	if (role == HA_BL_OUTSIDE)
		return ev->type == HA_BL_FD ? emit(r, raw, ev->size) : 0;
	if (role == HA_BL_TX_START) {
		r->include = wanted(r, &tx->gtid);
		if (!r->include)
			return 0;
		bool last;
		if (r->pt->kind != HA_PITR_TIME && tx->gtid.domain == r->pt->gtid.domain &&
		    tx->gtid.seq == r->pt->gtid.seq && tx->gtid.server != r->pt->gtid.server) {
			r->mismatch = true;
			r->other = tx->gtid;
			r->stop = true;
			return 1;
		}
		if (r->pt->kind == HA_PITR_TO_GTID && r->reached) {
			r->stop = true; /* the point was the last one replayed (or in the backup) */
			return 1;
		}
		bool beyond = past(r->pt, &tx->gtid, tx->ts, &last);
		/* a hole in the sequence stops the replay unless it lies wholly after a GTID point
		 * (missing transactions of unknown time may lie before a time point) */
		int rc = beyond && hole_after_point(r, &tx->gtid) ? 0 : in_order(r, &tx->gtid);
		if (rc != 0)
			return rc;
		if (beyond) {
			r->stop = true;
			return 1;
		}
		r->reached = r->reached || last;
	}
	if (!r->include)
		return 0;
	int rc = emit(r, raw, ev->size);
	if (rc == 0 && role == HA_BL_TX_END) {
		r->include = false;
		advance(r, &tx->gtid, tx->ts);
		if (r->pt->kind == HA_PITR_TO_GTID && r->reached) {
			r->stop = true;
			return 1;
		}
	}
	return rc;
}

/* Every slice of the chain through r (stops at the point). */
static int scan_chain(struct repo *rp, const struct chain *c, struct replay *r, struct ha_err *e)
{
	if (emit(r, ha_bl_magic, HA_BL_MAGIC_LEN) != 0)
		return ha_err_set(e, HA_EIO, "%s", r->err);
	for (size_t i = 0; i < c->n && !r->stop; i++) {
		struct ha_slice s;
		int rc = ha_archive_slice(&rp->archive, rp->key, c->l[i].name, &s, e);
		if (rc != 0)
			return rc;
		r->cap = c->l[i].cap >= 0 ? &c->caps[c->l[i].cap] : NULL;
		r->include = false;
		rc = ha_archive_scan(&rp->archive, rp->key, &s, on_event, r, e);
		ha_slice_free(&s);
		if (rc != 0)
			return r->err[0] ? ha_err_set(e, rc, "%s", r->err) : rc;
	}
	return flush_out(r) ? ha_err_set(e, HA_EIO, "%s", r->err) : 0;
}

/* mariadb-binlog - | mariadb, fed by scan_chain; their messages in log. */
static int replay(struct repo *rp, const struct chain *c, struct replay *r,
                  const struct ha_cli_server *srv, const char *log, struct ha_err *e)
{
	int in[2], mid[2];
	if (pipe2(in, O_CLOEXEC) != 0)
		return ha_err_set(e, HA_EIO, "pipe: %s", strerror(errno));
	if (pipe2(mid, O_CLOEXEC) != 0) {
		close(in[0]);
		close(in[1]);
		return ha_err_set(e, HA_EIO, "pipe: %s", strerror(errno));
	}
	char a_sock[PATH_MAX + 32];
	snprintf(a_sock, sizeof(a_sock), "--socket=%s", srv->sock);
	char *bl_argv[] = {rp->binlog_tool, "--no-defaults", "-", NULL};
	/* the throwaway server runs without grant tables; account statements in the history
	 * (CREATE USER, GRANT, SET PASSWORD) need them: this session loads them first and keeps
	 * every privilege (the server is restarted without them for the last step) */
	char *cl_argv[] = {rp->client_tool,
	                   "--no-defaults",
	                   a_sock,
	                   "-uroot",
	                   "--binary-mode",
	                   "--init-command=FLUSH PRIVILEGES",
	                   NULL};
	struct ha_proc_stream logf = {.fd = -1, .path = log, .append = true};
	struct ha_proc_spec bs = {.argv = bl_argv, .io = {{.fd = in[0]}, {.fd = mid[1]}, logf}};
	struct ha_proc_spec cs = {.argv = cl_argv, .io = {{.fd = mid[0]}, logf, logf}};
	pid_t bp = 0, cp = 0;
	int rc = ha_proc_start(&cs, &cp);
	if (rc == 0)
		rc = ha_proc_start(&bs, &bp);
	close(in[0]);
	close(mid[0]);
	close(mid[1]);
	if (rc != 0) {
		close(in[1]);
		if (cp)
			ha_proc_wait(cp, 10000, false, &(int){0});
		return ha_err_set(e, HA_EIO, "cannot run %s: %s",
		                  bp ? rp->client_tool : rp->binlog_tool, strerror(rc));
	}
	void (*old)(int) = signal(SIGPIPE, SIG_IGN);
	r->fd = in[1];
	rc = scan_chain(rp, c, r, e);
	close(in[1]);
	r->fd = -1;
	int bs_status = 0, cs_status = 0;
	bool bkill = ha_proc_wait(bp, REPLAY_MS, false, &bs_status) != 0;
	bool ckill = ha_proc_wait(cp, REPLAY_MS, false, &cs_status) != 0;
	signal(SIGPIPE, old);
	if (rc != 0)
		return rc;
	char st[64];
	if (bkill || !ha_proc_ok(bs_status))
		return ha_err_set(e, HA_EDB, "%s failed (%s); see %s", rp->binlog_tool,
		                  ha_proc_status(bs_status, st, sizeof(st)), log);
	if (ckill || !ha_proc_ok(cs_status))
		return ha_err_set(e, HA_EDB,
		                  "replaying into the restored server failed (%s %s); see %s",
		                  rp->client_tool, ha_proc_status(cs_status, st, sizeof(st)), log);
	return 0;
}

/* ---- the backup to start from ---- */

static bool before_point(const Haagent__BackupRecord *b, const struct ha_gtid_pos *pos,
                         const struct ha_pitr_point *pt)
{
	if (pt->kind == HA_PITR_TIME)
		return b->finished_unix_ms / 1000 < pt->unix_s;
	for (size_t i = 0; i < pos->n; i++)
		if (pos->g[i].domain == pt->gtid.domain)
			return pt->kind == HA_PITR_TO_GTID ? pos->g[i].seq <= pt->gtid.seq
			                                   : pos->g[i].seq < pt->gtid.seq;
	return true;
}

struct candidate {
	uint64_t id, finished_ms;
	struct ha_gtid_pos pos;
};

static int newest_first(const void *a, const void *b)
{
	const struct candidate *x = a, *y = b;
	return x->finished_ms < y->finished_ms ? 1 : x->finished_ms > y->finished_ms ? -1 : 0;
}

/* The finished, restorable backups before the point (or backup `want`), newest first. */
static size_t candidates(const Haagent__BackupsResponse *cat, uint64_t want,
                         const struct ha_pitr_point *pt, struct candidate **out)
{
	*out = calloc(cat->n_backups ? cat->n_backups : 1, sizeof(**out));
	size_t n = 0;
	for (size_t i = 0; *out && i < cat->n_backups; i++) {
		const Haagent__BackupRecord *b = cat->backups[i];
		uint64_t chain[HA_CLI_MAX_CHAIN];
		struct candidate *c = &(*out)[n];
		if (b->state != HA_BK_DONE || (want && b->id != want) ||
		    ha_gtid_parse(b->gtid, &c->pos, NULL) != 0 || !before_point(b, &c->pos, pt) ||
		    ha_cli_backup_chain(cat, b->id, chain, NULL) < 0)
			continue;
		c->id = b->id;
		c->finished_ms = b->finished_unix_ms;
		n++;
	}
	if (n > 1)
		qsort(*out, n, sizeof(**out), newest_first);
	return n;
}

/* Whether a backup's position lies on the archive's main line: per domain, its last
 * transaction is the one the chain has at that number (same server), not one a failover left
 * behind. A backup of an old primary holding its errant tail is not a base to replay onto. */
struct online {
	const struct ha_gtid_pos *b;
	const struct ha_gtid_pos *cap;
	bool resolved[HA_GTID_MAX_DOMAINS];
	size_t open;
	bool ok;
	char why[300];
};

static int online_event(void *arg, const struct ha_bl_event *ev, enum ha_bl_role role,
                        const struct ha_bl_split *tx, const uint8_t *raw)
{
	(void)ev;
	(void)raw;
	struct online *o = arg;
	if (role != HA_BL_TX_START)
		return 0;
	const struct ha_gtid *g = &tx->gtid;
	for (size_t i = 0; i < o->b->n; i++) {
		const struct ha_gtid *b = &o->b->g[i];
		if (o->resolved[i] || b->domain != g->domain || g->seq < b->seq)
			continue;
		o->resolved[i] = true;
		o->open--;
		bool capped = false;
		if (o->cap) {
			capped = true;
			for (size_t k = 0; k < o->cap->n; k++)
				if (o->cap->g[k].domain == g->domain && g->seq <= o->cap->g[k].seq)
					capped = false;
		}
		if (g->seq != b->seq || g->server != b->server || capped) {
			o->ok = false;
			snprintf(
			    o->why, sizeof(o->why),
			    "its position %u-%u-%llu is not on the archive's main line (there: "
			    "%u-%u-%llu%s)",
			    b->domain, b->server, (unsigned long long)b->seq, g->domain, g->server,
			    (unsigned long long)g->seq,
			    capped ? ", left behind by a failover" : "");
			return 1;
		}
	}
	return o->open == 0 ? 1 : 0;
}

static int on_main_line(struct repo *rp, const struct chain *c, const struct ha_gtid_pos *bpos,
                        bool *ok, char *why, size_t size, struct ha_err *e)
{
	struct online o = {.b = bpos, .open = bpos->n, .ok = true};
	struct ha_gtid_pos start;
	if (ha_gtid_parse(c->first_start, &start, NULL) == 0)
		for (size_t i = 0; i < bpos->n; i++)
			for (size_t k = 0; k < start.n; k++)
				if (start.g[k].domain == bpos->g[i].domain &&
				    start.g[k].seq == bpos->g[i].seq) {
					o.resolved[i] = true;
					o.open--;
					if (start.g[k].server != bpos->g[i].server && o.ok) {
						o.ok = false;
						snprintf(o.why, sizeof(o.why),
						         "its position is not the archive's at "
						         "%u-%u-%llu",
						         start.g[k].domain, start.g[k].server,
						         (unsigned long long)start.g[k].seq);
					}
				}
	for (size_t i = 0; o.ok && o.open > 0 && i < c->n; i++) {
		struct ha_slice s;
		int rc = ha_archive_slice(&rp->archive, rp->key, c->l[i].name, &s, e);
		if (rc != 0)
			return rc;
		o.cap = c->l[i].cap >= 0 ? &c->caps[c->l[i].cap] : NULL;
		rc = ha_archive_scan(&rp->archive, rp->key, &s, online_event, &o, e);
		ha_slice_free(&s);
		if (rc != 0)
			return rc;
	}
	if (o.ok && o.open > 0) {
		o.ok = false;
		snprintf(o.why, sizeof(o.why), "the archive does not reach its position yet");
	}
	*ok = o.ok;
	snprintf(why, size, "%s", o.why);
	return 0;
}

/* The newest candidate the archive can replay onto: its chain loaded into c. */
static int choose(struct repo *rp, const Haagent__ArchiveState *a, const struct candidate *cs,
                  size_t n, struct chain *c, size_t *chosen, struct ha_err *e)
{
	char why[600] = "";
	for (size_t i = 0; i < n; i++) {
		memset(c, 0, sizeof(*c));
		struct ha_err le = {0};
		bool ok = false;
		char w[300] = "";
		int rc = load_chain(rp, a->head, &cs[i].pos, c, &le);
		if (rc == 0)
			rc = on_main_line(rp, c, &cs[i].pos, &ok, w, sizeof(w), &le);
		if (rc == 0 && ok) {
			*chosen = i;
			return 0;
		}
		if (!why[0])
			snprintf(why, sizeof(why), "backup %llu: %s", (unsigned long long)cs[i].id,
			         rc ? le.msg : w);
		chain_free(c);
	}
	if (n == 0)
		return ha_err_set(e, HA_EINVAL,
		                  "no finished, restorable backup from before the point");
	return ha_err_set(e, HA_EINVAL, "no backup before the point can be replayed onto: %s%s",
	                  why, n > 1 ? " (and the older ones likewise)" : "");
}

/* ---- haadm restore --to-... ---- */

static void result(const struct globals *g, int rc, const struct ha_pitr_result *res,
                   const char *dir, const char *msg, uint64_t ms)
{
	if (g->json) {
		struct ha_buf b = HA_BUF_INIT;
		struct ha_json j;
		ha_json_init(&j, &b, false);
		ha_json_obj_begin(&j, NULL);
		ha_json_str(&j, "result", rc == 0 ? "restored" : "failed");
		ha_json_uint(&j, "backup", res->backup);
		ha_json_uint(&j, "replayed", res->replayed);
		ha_json_uint(&j, "slices", res->slices);
		ha_json_str_or_null(&j, "position", res->position);
		ha_json_str_or_null(&j, "last_gtid", res->last_gtid);
		ha_json_uint(&j, "last_time_unix", res->last_ts);
		ha_json_bool(&j, "stopped_at_point", res->stopped);
		ha_json_str(&j, "detail", msg);
		ha_json_uint(&j, "ms", ms);
		ha_json_str_or_null(&j, "target_dir", rc == 0 ? dir : NULL);
		ha_json_obj_end(&j);
		printf("%s\n", ha_buf_cstr(&b));
		ha_buf_free(&b);
		return;
	}
	fprintf(rc ? stderr : stdout, "%s%s (%.1f s)\n", rc ? "haadm: restore: " : "", msg,
	        ms / 1000.0);
}

/* Whether the archive holds everything the primary logged (its position, as the leader last
 * heard it, is the archive's head): a point after the head is then reachable. */
static bool archive_complete(const struct globals *g, uint64_t point, char *why, size_t size)
{
	uint64_t now_ms = ha_unix_ms();
	if (point * 1000 > now_ms) {
		snprintf(why, size, "the point is in the future");
		return false;
	}
	Haagent__StatusResponse *st = NULL;
	struct ha_err e = {0};
	if (ha_cli_status(g, false, &st, &e) != 0 || st->archive == NULL) {
		snprintf(why, size, "the archive's state is unknown (%s)",
		         e.msg[0] ? e.msg : "none");
		if (st)
			haagent__status_response__free_unpacked(st, NULL);
		return false;
	}
	const Haagent__NodeStatus *p = NULL;
	for (size_t i = 0; i < st->n_nodes; i++)
		if (st->nodes[i]->id == st->primary_id && st->nodes[i]->has_health &&
		    st->nodes[i]->health->db == HAAGENT__DB_STATE__DB_UP)
			p = st->nodes[i];
	struct ha_gtid_pos pos, head;
	bool ok = false;
	if (p == NULL || !st->authoritative)
		snprintf(why, size, "the primary's position is not known");
	else if (ha_gtid_parse(p->health->gtid_binlog, &pos, NULL) != 0 ||
	         ha_gtid_parse(st->archive->end_gtid, &head, NULL) != 0)
		snprintf(why, size, "the primary's or the archive's position does not parse");
	else if (now_ms - p->report_age_ms < point * 1000)
		/* the primary's position was read before the point: what it wrote since is not
		 * known to be archived */
		snprintf(why, size, "the primary's last known position is older than the point");
	else if (ha_gtid_count_missing(&pos, &head) != 0)
		snprintf(why, size, "the archive is %llu transactions behind the primary",
		         (unsigned long long)ha_gtid_count_missing(&pos, &head));
	else
		ok = true;
	haagent__status_response__free_unpacked(st, NULL);
	return ok;
}

/* After the replay: whether it reached the point, and if not, why the result would be wrong. */
static int check_reached(const struct replay *r, const struct chain *c,
                         const struct ha_pitr_point *pt, bool complete, const char *incomplete,
                         uint64_t id, struct ha_err *e)
{
	const struct ha_gtid *g = &pt->gtid;
	if (r->mismatch)
		return ha_err_set(
		    e, HA_EINVAL,
		    "%u-%u-%llu is not on the archive's main line: it has %u-%u-%llu at "
		    "that number (the other was left behind by a failover, or never "
		    "existed)",
		    g->domain, g->server, (unsigned long long)g->seq, r->other.domain,
		    r->other.server, (unsigned long long)r->other.seq);
	bool reached = pt->kind == HA_PITR_TO_GTID ? r->reached : r->stop;
	if (reached)
		return 0;
	char when[32];
	ha_cli_utc(c->end_ts, when, sizeof(when));
	if (c->gap[0])
		return ha_err_set(
		    e, HA_EPROTO,
		    "the point lies past a gap in the archive (%s): from backup %llu only "
		    "points up to %s UTC are reachable; restore from a backup taken "
		    "after the gap",
		    c->gap, (unsigned long long)id, when);
	if (pt->kind != HA_PITR_TIME)
		return ha_err_set(
		    e, HA_EINVAL,
		    "%u-%u-%llu is not in the archive after backup %llu (haadm binlog "
		    "find shows what is)",
		    g->domain, g->server, (unsigned long long)g->seq, (unsigned long long)id);
	if (!complete)
		return ha_err_set(e, HA_EINVAL,
		                  "the point is past the archive's head (%s UTC) and %s: what the "
		                  "primary wrote since is not archived yet; wait for the archive "
		                  "(haadm status) or choose an earlier point",
		                  when, incomplete);
	return 0;
}

/* The throwaway server's socket and pid file: not part of the restored datadir. */
static void server_files_gone(const char *dir)
{
	char f[PATH_MAX + 48];
	snprintf(f, sizeof(f), "%s/pitr.sock", dir);
	unlink(f);
	snprintf(f, sizeof(f), "%s/pitr.pid", dir);
	unlink(f);
}

static int restore_to(struct repo *rp, Haagent__BackupsResponse *cat, const struct candidate *cd,
                      struct chain *c, const struct ha_pitr_point *pt, bool complete,
                      const char *incomplete, const char *dir, struct ha_pitr_result *res,
                      struct ha_err *e)
{
	char stage[PATH_MAX + 32], logs[PATH_MAX + 32], log[PATH_MAX + 48];
	snprintf(stage, sizeof(stage), "%s.pitr-partial", dir);
	snprintf(logs, sizeof(logs), "%s.pitr-logs", dir);
	snprintf(log, sizeof(log), "%s/replay.log", logs);
	int rc = 0;
	struct stat sb;
	if (stat(dir, &sb) == 0)
		rc = ha_err_set(e, HA_EINVAL, "%s exists: give a new directory", dir);
	unsigned links = 0;
	if (rc == 0) {
		ha_rm_rf(stage);
		ha_rm_rf(logs);
		if (ha_mkdir_p(logs, 0700) != 0)
			rc = ha_err_set(e, HA_EIO, "create %s: %s", logs, strerror(errno));
	}
	if (rc == 0)
		rc = ha_cli_restore_chain(rp, cat, cd->id, stage, &links, e);
	struct ha_cli_server srv = {0};
	if (rc == 0)
		rc = ha_cli_server_start(stage, logs, "pitr", &srv, e);
	struct replay r = {.pt = pt, .done = cd->pos, .fd = -1};
	if (pt->kind == HA_PITR_TO_GTID) { /* the point may be in the backup itself */
		const struct ha_gtid *have = domain_of(&r.done, pt->gtid.domain);
		r.reached = have && (have->seq > pt->gtid.seq || (have->seq == pt->gtid.seq &&
		                                                  have->server == pt->gtid.server));
		if (have && have->seq == pt->gtid.seq && have->server != pt->gtid.server) {
			r.mismatch = true;
			r.other = *have;
		}
	}
	if (rc == 0 && !r.mismatch)
		rc = replay(rp, c, &r, &srv, log, e);
	if (rc == 0)
		rc = check_reached(&r, c, pt, complete, incomplete, cd->id, e);
	ha_gtid_format(&r.done, res->position, sizeof(res->position));
	/* the replay turned the grant tables on: a fresh start without them for the last step */
	if (rc == 0 && ha_cli_server_stop(&srv) != 0)
		rc = ha_err_set(e, HA_EDB,
		                "the restored server did not shut down cleanly (see "
		                "%s/pitr.err)",
		                logs);
	if (rc == 0)
		rc = ha_cli_server_start(stage, logs, "pitr", &srv, e);
	if (rc == 0) {
		char detail[512];
		/* the restored server knows where it stands: a replica started on it resumes there
		 */
		if (ha_db_pitr_finish(&srv.where, res->position, detail, sizeof(detail)) != 0)
			rc = ha_err_set(e, HA_EDB, "after the replay: %s", detail);
	}
	if (srv.pid && ha_cli_server_stop(&srv) != 0 && rc == 0)
		rc = ha_err_set(e, HA_EDB,
		                "the restored server did not shut down cleanly (see "
		                "%s/pitr.err)",
		                logs);
	if (rc == 0) {
		server_files_gone(stage);
		if (rename(stage, dir) != 0)
			rc = ha_err_set(e, HA_EIO, "rename %s to %s: %s", stage, dir,
			                strerror(errno));
	}
	if (rc == 0)
		ha_rm_rf(logs);
	else
		ha_rm_rf(stage);
	res->backup = cd->id;
	res->replayed = r.count;
	res->slices = c->n;
	res->last_ts = r.last_ts;
	if (r.count)
		snprintf(res->last_gtid, sizeof(res->last_gtid), "%u-%u-%llu", r.last.domain,
		         r.last.server, (unsigned long long)r.last.seq);
	res->stopped = r.stop || r.reached;
	return rc;
}

int ha_pitr_restore(struct globals *g, uint64_t want, const struct ha_pitr_point *pt,
                    const char *dir)
{
	struct repo rp;
	struct ha_err e = {0};
	Haagent__BackupsResponse *cat = NULL;
	struct ha_pitr_result res = {0};
	uint64_t t0 = ha_now_ms();
	struct candidate *cs = NULL;
	struct chain c = {0};
	size_t n = 0, chosen = 0;
	bool complete = false;
	char incomplete[200] = "";
	int rc = ha_cli_open_repo(g, &rp, &e);
	if (rc == 0)
		rc = ha_cli_catalog(g, &cat, &e);
	if (rc == 0 && (cat->archive == NULL || !cat->archive->head[0]))
		rc = ha_err_set(&e, HA_EINVAL,
		                "there is no binlog archive ([backup] archive = yes and a running "
		                "cluster keep one); restore a backup without a point instead");
	if (rc == 0) {
		n = candidates(cat, want, pt, &cs);
		if (cs == NULL)
			rc = ha_err_set(&e, HA_ENOMEM, "out of memory");
	}
	if (rc == 0)
		rc = choose(&rp, cat->archive, cs, n, &c, &chosen, &e);
	/* a time past the head is reachable only when the archive holds all there is */
	if (rc == 0 && pt->kind == HA_PITR_TIME && pt->unix_s > cat->archive->last_ts)
		complete = archive_complete(g, pt->unix_s, incomplete, sizeof(incomplete));
	if (rc == 0)
		rc = ha_cli_hold(g, cs[chosen].id, &cat, &e);
	if (rc == 0)
		rc = restore_to(&rp, cat, &cs[chosen], &c, pt, complete, incomplete, dir, &res, &e);
	char msg[1400];
	if (rc == 0) {
		char when[32];
		ha_cli_utc(res.last_ts, when, sizeof(when));
		char brief[HA_GTID_BRIEF_MAX];
		snprintf(msg, sizeof(msg),
		         "restored backup %llu and replayed %llu transactions from %zu archive "
		         "slices%s%s%s%s; position %s; start mariadbd with --datadir=%s%s",
		         (unsigned long long)res.backup, (unsigned long long)res.replayed,
		         res.slices, res.replayed ? ", the last " : "",
		         res.replayed ? res.last_gtid : "", res.replayed ? " at " : "",
		         res.replayed ? when : "", ha_gtid_brief(res.position, brief), dir,
		         res.stopped ? ""
		                     : " (the point is after the archive's head, which holds all "
		                       "the primary wrote)");
	} else {
		snprintf(msg, sizeof(msg), "%s", e.msg);
	}
	result(g, rc, &res, dir, msg, ha_now_ms() - t0);
	chain_free(&c);
	free(cs);
	if (cat)
		haagent__backups_response__free_unpacked(cat, NULL);
	ha_wipe(rp.key, sizeof(rp.key));
	return rc == 0 ? 0 : (rc == HA_EPROTO ? HA_EPROTO : rc);
}

int ha_pitr_point_from(int kind, const char *text, struct ha_pitr_point *pt, char *why, size_t size)
{
	pt->kind = kind;
	if (kind == HA_PITR_TIME)
		return ha_pitr_parse_time(text, &pt->unix_s, why, size);
	return parse_one_gtid(text, &pt->gtid, why, size);
}

int ha_pitr_roll_forward(struct repo *rp, const Haagent__BackupsResponse *cat, uint64_t id,
                         const char *dir, char *position, size_t size, uint64_t *replayed,
                         struct ha_err *e)
{
	*replayed = 0;
	const Haagent__BackupRecord *b = ha_cli_backup_find(cat, id);
	struct candidate cd = {.id = id};
	if (cat->archive == NULL || !cat->archive->head[0])
		return ha_err_set(e, HA_EINVAL, "there is no binlog archive");
	if (b == NULL || ha_gtid_parse(b->gtid, &cd.pos, NULL) != 0)
		return ha_err_set(e, HA_EINVAL, "backup %llu has no usable position",
		                  (unsigned long long)id);
	struct chain c = {0};
	bool ok = false;
	char why[300] = "", logs[PATH_MAX + 32], log[PATH_MAX + 48];
	int rc = load_chain(rp, cat->archive->head, &cd.pos, &c, e);
	if (rc == 0 && c.gap[0])
		rc = ha_err_set(e, HA_EPROTO, "the archive has a gap after the backup (%s)", c.gap);
	if (rc == 0)
		rc = on_main_line(rp, &c, &cd.pos, &ok, why, sizeof(why), e);
	if (rc == 0 && !ok)
		rc = ha_err_set(e, HA_EINVAL, "backup %llu: %s", (unsigned long long)id, why);
	snprintf(logs, sizeof(logs), "%s.pitr-logs", dir);
	snprintf(log, sizeof(log), "%s/replay.log", logs);
	if (rc == 0 && (ha_rm_rf(logs), ha_mkdir_p(logs, 0700)) != 0)
		rc = ha_err_set(e, HA_EIO, "create %s: %s", logs, strerror(errno));
	struct ha_cli_server srv = {0};
	if (rc == 0)
		rc = ha_cli_server_start(dir, logs, "pitr", &srv, e);
	/* every archived transaction after the backup: a point past any */
	struct ha_pitr_point all = {.kind = HA_PITR_TIME, .unix_s = UINT64_MAX / 2000};
	struct replay r = {.pt = &all, .done = cd.pos, .fd = -1};
	if (rc == 0)
		rc = replay(rp, &c, &r, &srv, log, e);
	if (srv.pid && ha_cli_server_stop(&srv) != 0 && rc == 0)
		rc = ha_err_set(e, HA_EDB, "the restored server did not shut down cleanly (see %s)",
		                logs);
	if (rc == 0) {
		server_files_gone(dir);
		ha_rm_rf(logs);
		ha_gtid_format(&r.done, position, size);
		*replayed = r.count;
	}
	chain_free(&c);
	return rc;
}
