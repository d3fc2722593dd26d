/* The copier: with several repositories, the ready Raft leader's agent brings every finished
 * backup and every archive slice to the repositories that lack it (backup/copy.h), records each
 * backup's new copy in the catalog (CmdBackupCopied), and removes from a repository the backups
 * the catalog deleted while it was down. A backup or a slice is written to the first repository
 * that takes it (backup/repos.h); this is how the others, and one that was down, catch up. One
 * repository failing delays only its own copies. The loop only decides; the thread copies. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <raft.h>

#include "agent_int.h"
#include "backup/chunk.h"
#include "backup/copy.h"
#include "backup/policy.h"
#include "backup/repos.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/secret.h"

struct job {
	uint64_t id;
	char name[96];
	char sha[65];
	char repos[HA_FSM_REPOS_TEXT];
	bool expired[HA_REPOS_MAX]; /* that repository's own retention no longer keeps it */
};

struct copied {
	uint64_t id;
	char repo[HA_NAME_MAX];
	bool removed; /* taken out of the repository (its retention), not copied there */
};

struct ha_copier {
	uv_async_t async;
	pthread_t thread;
	bool busy; /* loop side: a thread runs */
	atomic_int cancel;
	pthread_mutex_t mu;
	bool finished; /* under mu */
	struct ha_repos repos;
	uint8_t master[HA_KEY_LEN];
	bool have_key;
	char node[HA_NAME_MAX];
	bool cleaned; /* the thread's: what a copy of an earlier run of this agent left staged */
	/* the thread's input: a snapshot of the catalog */
	struct job jobs[HA_FSM_MAX_BACKUPS];
	unsigned n_jobs;
	char deleted[HA_FSM_MAX_BACKUPS][96];
	unsigned n_deleted;
	/* the thread's own: each repository's backups as listed at the start of the pass; one
	 * whose listing fails is down for the whole pass (skipped: its timeouts are paid once a
	 * pass, not once per object, and never delay the others' copies) */
	char **listed[HA_REPOS_MAX];
	size_t n_listed[HA_REPOS_MAX];
	/* its output, for the loop to record */
	struct copied done[HA_FSM_MAX_BACKUPS];
	unsigned n_done;
	unsigned failures;
	uint64_t slices, bytes;
	char last_error[512];
	/* loop side */
	uint64_t next_ms;
	uint64_t every_ms; /* [backup] copy_interval_ms: a pass at least this often */
	unsigned keep_full[HA_REPOS_MAX], keep_days[HA_REPOS_MAX]; /* each one's own retention */
	uint64_t seen_done; /* the number of finished backups at the last pass */
};

/* ---- the thread ---- */

static void note(struct ha_copier *c, const char *what, const char *repo, const char *name,
                 const char *error)
{
	ha_warn(what, "repository=%s object=%s error=\"%s\"", repo, name, error);
	c->failures++;
	snprintf(c->last_error, sizeof(c->last_error), "%s: %s", repo, error);
}

static int in_list(char **l, size_t n, const char *name)
{
	size_t lo = 0, hi = n; /* sorted */
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int cmp = strcmp(l[mid], name);
		if (cmp == 0)
			return 1;
		if (cmp < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/* Each repository's backups, once a pass; a repository that does not answer is down for the
 * pass. */
static void list_repos(struct ha_copier *c)
{
	for (size_t r = 0; r < c->repos.n; r++) {
		struct ha_store *s = &c->repos.r[r].backups;
		struct ha_err e = {0};
		c->listed[r] = NULL;
		c->n_listed[r] = 0;
		/* down: not read from either (copy.h) */
		c->repos.r[r].down = s->ops->list(s, &c->listed[r], &c->n_listed[r], &e) != 0;
		if (c->repos.r[r].down)
			note(c, "backup-copy-failed", c->repos.r[r].name, "(list)", e.msg);
	}
}

static void unlist_repos(struct ha_copier *c)
{
	for (size_t r = 0; r < c->repos.n; r++) {
		ha_store_names_free(c->listed[r], c->n_listed[r]);
		c->listed[r] = NULL;
		c->n_listed[r] = 0;
	}
}

/* Every finished backup into every repository whose list lacks it. */
/* For the loop to propose: backup id copied to (or removed from) repository rn. */
static void record(struct ha_copier *c, uint64_t id, const char *rn, bool removed)
{
	pthread_mutex_lock(&c->mu);
	if (c->n_done < HA_FSM_MAX_BACKUPS) {
		c->done[c->n_done].id = id;
		snprintf(c->done[c->n_done].repo, sizeof(c->done[0].repo), "%s", rn);
		c->done[c->n_done].removed = removed;
		c->n_done++;
	}
	pthread_mutex_unlock(&c->mu);
}

/* Repository r's own retention no longer keeps j: removed from it when there, and taken off
 * the catalog's list (recorded: whether the list names it). */
static void expire(struct ha_copier *c, const struct job *j, size_t r, bool recorded)
{
	const char *rn = c->repos.r[r].name;
	/* never the last copy: another repository that keeps it must hold it whole */
	bool elsewhere = false;
	for (size_t k = 0; k < c->repos.n; k++)
		elsewhere = elsewhere || (k != r && !j->expired[k] &&
		                          ha_fsm_repos_has(j->repos, c->repos.r[k].name));
	if (!elsewhere)
		return;
	if (in_list(c->listed[r], c->n_listed[r], j->name)) {
		struct ha_store *s = &c->repos.r[r].backups;
		struct ha_err e = {0};
		if (s->ops->remove(s, j->name, &e) != 0) {
			note(c, "backup-delete-failed", rn, j->name, e.msg);
			return;
		}
		ha_info("backup-deleted",
		        "repository=%s name=%s why=\"the repository's own "
		        "retention\"",
		        rn, j->name);
	}
	if (recorded)
		record(c, j->id, rn, true);
}

static void copy_backups(struct ha_copier *c)
{
	for (unsigned i = 0; i < c->n_jobs && !atomic_load(&c->cancel); i++) {
		struct job *j = &c->jobs[i];
		for (size_t r = 0; r < c->repos.n && !atomic_load(&c->cancel); r++) {
			const char *rn = c->repos.r[r].name;
			if (c->repos.r[r].down)
				continue;
			if (j->expired[r]) {
				expire(c, j, r, ha_fsm_repos_has(j->repos, rn));
				continue;
			}
			if (ha_fsm_repos_has(j->repos, rn))
				continue;
			struct ha_err e = {0};
			/* listed: committed there (a manifest whose staging is not over is not) */
			int has = in_list(c->listed[r], c->n_listed[r], j->name)
			              ? ha_repo_has(&c->repos, false, r, j->name, j->sha, &e)
			              : 0;
			if (has < 0) {
				note(c, "backup-copy-refused", rn, j->name, e.msg);
				continue;
			}
			struct ha_repo_copied got = {0};
			uint64_t t0 = ha_now_ms();
			if (!has && ha_repo_copy(&c->repos, false, r, j->name, c->node, c->master,
			                         j->sha, &c->cancel, &got, &e) != 0) {
				note(c, "backup-copy-failed", rn, j->name, e.msg);
				continue;
			}
			if (!has)
				ha_info("backup-copied",
				        "repository=%s backup=%s chunks=%llu bytes=%llu ms=%llu",
				        rn, j->name, (unsigned long long)got.chunks,
				        (unsigned long long)got.bytes,
				        (unsigned long long)(ha_now_ms() - t0));
			c->bytes += got.bytes;
			record(c, j->id, rn, false);
		}
	}
}

/* A deleted backup still in a repository (it was down when retention swept): removed. */
static void remove_deleted(struct ha_copier *c)
{
	for (unsigned i = 0; i < c->n_deleted && !atomic_load(&c->cancel); i++)
		for (size_t r = 0; r < c->repos.n && !atomic_load(&c->cancel); r++) {
			struct ha_store *s = &c->repos.r[r].backups;
			struct ha_err e = {0};
			if (c->repos.r[r].down ||
			    !in_list(c->listed[r], c->n_listed[r], c->deleted[i]))
				continue;
			if (s->ops->remove(s, c->deleted[i], &e) != 0)
				note(c, "backup-delete-failed", c->repos.r[r].name, c->deleted[i],
				     e.msg);
			else
				ha_info("backup-deleted",
				        "repository=%s name=%s why=\"retention, "
				        "caught up\"",
				        c->repos.r[r].name, c->deleted[i]);
		}
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Archive slices: each repository gets the slices another has, from its own oldest on (older
 * ones retention removes anyway; a repository with none gets them all). Each repository's
 * slices are listed once; one down for the pass is neither listed nor written. */
static void copy_slices(struct ha_copier *c)
{
	char **mine[HA_REPOS_MAX] = {0};
	size_t n_mine[HA_REPOS_MAX] = {0}, n_all = 0;
	bool up[HA_REPOS_MAX] = {0};
	struct ha_err e = {0};
	for (size_t r = 0; r < c->repos.n; r++) {
		struct ha_store *s = &c->repos.r[r].archive;
		if (c->repos.r[r].down)
			continue;
		if (s->ops->list(s, &mine[r], &n_mine[r], &e) != 0) {
			note(c, "archive-copy-failed", c->repos.r[r].name, "(list)", e.msg);
			continue;
		}
		up[r] = true;
		n_all += n_mine[r];
	}
	/* their union, sorted (names point into mine) */
	char **all = n_all ? malloc(n_all * sizeof(*all)) : NULL;
	size_t k = 0;
	for (size_t r = 0; all && r < c->repos.n; r++)
		for (size_t i = 0; i < n_mine[r]; i++)
			all[k++] = mine[r][i];
	if (k)
		qsort(all, k, sizeof(*all), by_name);
	for (size_t r = 0; r < c->repos.n && !atomic_load(&c->cancel); r++) {
		if (!up[r])
			continue;
		for (size_t i = 0; i < k && !atomic_load(&c->cancel); i++) {
			if ((i && !strcmp(all[i], all[i - 1])) ||
			    in_list(mine[r], n_mine[r], all[i]) ||
			    (n_mine[r] && strcmp(all[i], mine[r][0]) < 0))
				continue;
			struct ha_repo_copied got = {0};
			if (ha_repo_copy(&c->repos, true, r, all[i], c->node, c->master, NULL,
			                 &c->cancel, &got, &e) != 0) {
				note(c, "archive-copy-failed", c->repos.r[r].name, all[i], e.msg);
				break; /* the next pass goes on, in order */
			}
			c->slices++;
			c->bytes += got.bytes;
		}
	}
	free(all);
	for (size_t r = 0; r < c->repos.n; r++)
		ha_store_names_free(mine[r], n_mine[r]);
}

static void *run(void *arg)
{
	struct ha_agent *a = arg;
	struct ha_copier *c = a->cp;
	c->failures = 0;
	if (!c->cleaned) {
		/* copies are staged under their own identity (ha_repo_copy_stager), which this
		 * agent's copier alone uses, one pass at a time: what one left when the agent died
		 * is dropped at its first pass */
		char stager[HA_NAME_MAX];
		ha_repo_copy_stager(c->node, stager);
		for (size_t r = 0; r < c->repos.n; r++) {
			c->repos.r[r].backups.ops->clean(&c->repos.r[r].backups, stager);
			c->repos.r[r].archive.ops->clean(&c->repos.r[r].archive, stager);
		}
		c->cleaned = true;
	}
	list_repos(c);
	copy_backups(c);
	remove_deleted(c);
	copy_slices(c);
	unlist_repos(c);
	pthread_mutex_lock(&c->mu);
	c->finished = true;
	pthread_mutex_unlock(&c->mu);
	uv_async_send(&c->async);
	return NULL;
}

/* ---- the loop ---- */

static void proposed(void *data, int status, int fsm_result)
{
	(void)data;
	(void)fsm_result;
	if (status != 0)
		ha_warn("backup-copy-record-failed", "status=%d", status);
}

static void on_async(uv_async_t *h)
{
	struct ha_agent *a = h->data;
	struct ha_copier *c = a->cp;
	pthread_mutex_lock(&c->mu);
	bool finished = c->finished;
	c->finished = false;
	struct copied done[HA_FSM_MAX_BACKUPS];
	unsigned n = c->n_done;
	memcpy(done, c->done, n * sizeof(done[0]));
	c->n_done = 0;
	pthread_mutex_unlock(&c->mu);
	if (!finished || !c->busy)
		return;
	pthread_join(c->thread, NULL);
	c->busy = false;
	for (unsigned i = 0; i < n && ha_raft_ready(a->raft); i++) {
		uint8_t *buf;
		size_t len;
		if (ha_fsm_cmd_backup_copied(done[i].id, done[i].repo, done[i].removed, raft_malloc,
		                             &buf, &len) == 0 &&
		    ha_raft_propose(a->raft, buf, len, proposed, a) != 0)
			ha_warn("backup-copy-record-failed", "id=%llu repository=%s",
			        (unsigned long long)done[i].id, done[i].repo);
	}
	/* a failed copy is tried again at the next pass; a pass with failures waits the whole
	 * interval, one without comes again when a backup ends */
	c->next_ms = ha_now_ms() + c->every_ms;
}

/* The catalog's finished backups lacking a repository, and its deleted ones. */
static void snapshot(struct ha_copier *c, const struct ha_fsm_state *st)
{
	c->n_jobs = c->n_deleted = 0;
	/* each repository's own retention, over the same catalog as the cluster's */
	static uint64_t expired[HA_REPOS_MAX][HA_FSM_MAX_BACKUPS]; /* loop thread only */
	int n_expired[HA_REPOS_MAX] = {0};
	for (size_t k = 0; k < c->repos.n; k++)
		if (c->keep_full[k] || c->keep_days[k])
			n_expired[k] = ha_bk_expired(st, c->keep_full[k], c->keep_days[k],
			                             ha_unix_ms(), expired[k], HA_FSM_MAX_BACKUPS);
	for (unsigned i = 0; i < st->n_backups; i++) {
		const struct ha_backup_rec *r = &st->backups[i];
		if (r->state == HA_BK_DELETED) {
			snprintf(c->deleted[c->n_deleted++], sizeof(c->deleted[0]), "%s", r->name);
			continue;
		}
		if (r->state != HA_BK_DONE)
			continue;
		bool settled = true, gone[HA_REPOS_MAX] = {0};
		for (size_t k = 0; k < c->repos.n; k++) {
			for (int x = 0; x < n_expired[k]; x++)
				gone[k] = gone[k] || expired[k][x] == r->id;
			/* settled there: kept and listed, or expired and not listed */
			settled = settled && gone[k] != ha_fsm_backup_in(r, c->repos.r[k].name);
		}
		if (settled)
			continue;
		struct job *j = &c->jobs[c->n_jobs++];
		memcpy(j->expired, gone, sizeof(j->expired));
		j->id = r->id;
		snprintf(j->name, sizeof(j->name), "%s", r->name);
		snprintf(j->sha, sizeof(j->sha), "%s", r->manifest_sha);
		snprintf(j->repos, sizeof(j->repos), "%s", r->repos);
	}
}

void ha_copier_tick(struct ha_agent *a)
{
	struct ha_copier *c = a->cp;
	/* A pass of a leader that is no longer one stops at its next chunk: the new leader's
	 * copier starts its own, and two copiers staging the same name at once could undo each
	 * other's copy (the store refuses a name another node stages, but both may check first). */
	if (c != NULL && c->busy && !ha_raft_ready(a->raft) && !atomic_load(&c->cancel)) {
		atomic_store(&c->cancel, 1);
		ha_info("backup-copier-cancel", "why=\"no longer the leader\"");
	}
	if (c == NULL || c->busy || !c->have_key || a->stopping || !ha_raft_ready(a->raft))
		return;
	const struct ha_fsm_state *st = ha_raft_fsm(a->raft);
	uint64_t done = 0;
	for (unsigned i = 0; i < st->n_backups; i++)
		done += st->backups[i].state == HA_BK_DONE;
	uint64_t now = ha_now_ms();
	if (now < c->next_ms && done == c->seen_done)
		return;
	c->seen_done = done;
	snapshot(c, st);
	atomic_store(&c->cancel, 0);
	c->busy = true;
	if (pthread_create(&c->thread, NULL, run, a) != 0) {
		c->busy = false;
		c->next_ms = now + c->every_ms;
	}
}

int ha_copier_start(struct ha_agent *a, struct ha_err *e)
{
	if (a->cfg.n_repos < 2)
		return 0; /* one repository: nothing to copy */
	struct ha_copier *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return ha_err_set(e, HA_ENOMEM, "out of memory");
	struct ha_err re = {0};
	if (ha_repos_open(&c->repos, &a->cfg, &re) != 0) {
		ha_error("backup-copier-off", "error=\"%s\"", re.msg); /* the agent still starts */
		free(c);
		return 0;
	}
	pthread_mutex_init(&c->mu, NULL);
	uv_async_init(a->loop, &c->async, on_async);
	c->async.data = a;
	snprintf(c->node, sizeof(c->node), "%s", a->self->name);
	c->every_ms = a->cfg.backup_copy_interval_ms;
	for (size_t k = 0; k < c->repos.n; k++) {
		c->keep_full[k] = a->cfg.repos[k].keep_full;
		c->keep_days[k] = a->cfg.repos[k].keep_days;
	}
	struct ha_err ke = {0};
	c->have_key = ha_key_load(a->cfg.backup_key_file, c->master, &ke) == 0;
	if (!c->have_key)
		ha_warn("backup-copier-off", "why=\"%s\"", ke.msg);
	a->cp = c;
	return 0;
}

void ha_copier_stop(struct ha_agent *a)
{
	struct ha_copier *c = a->cp;
	if (c == NULL)
		return;
	atomic_store(&c->cancel, 1);
	uv_close((uv_handle_t *)&c->async, NULL);
}

void ha_copier_free(struct ha_agent *a)
{
	struct ha_copier *c = a->cp;
	if (c == NULL)
		return;
	if (c->busy)
		pthread_join(c->thread, NULL);
	ha_wipe(c->master, sizeof(c->master));
	ha_repos_close(&c->repos);
	pthread_mutex_destroy(&c->mu);
	free(c);
	a->cp = NULL;
}
