/* The agent's part in backups: when the replicated catalog has a running job for this node, run
 * the backup pipeline (backup/pipeline.c) on a dedicated thread and report its progress and
 * result in the health reports; the coordinator records the outcome. A job that is no longer
 * running in the catalog (abandoned) is cancelled and its child killed. The loop only decides
 * and never blocks. */
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent_int.h"
#include "backup/pipeline.h"
#include "backup/repos.h"
#include "db/check.h"
#include "db/tables.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/quote.h"
#include "common/secret.h"

struct ha_bkrun {
	uv_async_t async;
	pthread_t thread;
	bool busy; /* loop side: a thread runs */
	atomic_int cancel;
	atomic_int child;
	atomic_int hold;
	pthread_mutex_t mu;
	bool finished; /* under mu */
	int rc;        /* under mu */
	char err[1024];
	struct ha_manifest m;
	struct ha_backup_spec spec;
	char work[PATH_MAX], tool[PATH_MAX], host[64], user[64], password[256];
	bool have_repo;        /* a repository is configured */
	struct ha_repos repos; /* every repository: store writes the first that takes it */
	char repo_error[512];  /* why they could not be opened */
	uint64_t checksum_max_bytes;
	uint64_t sums_ms; /* how long recording the checksums took */
	struct ha_store store;
	uint8_t master[HA_KEY_LEN];
	bool have_key;
	char key_error[256];
	/* retention: directories of deleted backups, removed by the leader's runner, on a thread
	 * of its own: a repository that is down makes a sweep wait for its timeouts, which must
	 * not keep this node from taking a backup job meanwhile (the coordinator abandons a job
	 * not taken within 30 s) */
	pthread_t sweep_thread;
	bool sweeping;       /* loop side: the sweep thread runs */
	bool sweep_finished; /* under mu */
	char sweep_names[HA_FSM_MAX_BACKUPS][96];
	uint64_t sweep_ids[HA_FSM_MAX_BACKUPS];
	bool sweep_late[HA_FSM_MAX_BACKUPS];  /* a failed or abandoned job's: if it is there */
	bool sweep_again[HA_FSM_MAX_BACKUPS]; /* recent: not remembered as swept yet */
	char sweep_nodes[HA_FSM_MAX_BACKUPS][HA_FSM_NAME_MAX]; /* whose staging area */
	unsigned n_sweep;
	uint64_t swept[HA_FSM_MAX_BACKUPS];
	unsigned n_swept;
	uint64_t swept_ms; /* when the last sweep was started */
	/* loop side: what is reported */
	uint64_t id;
	enum ha_backup_state state; /* 0: none yet */
	char detail[512];
	struct ha_backup_rec res;
};

/* Before the manifest: the tables' checksums at the backup's position, when the replica
 * stood still there (db/tables.h). Backup thread. */
static void record_sums(struct ha_backup_spec *sp)
{
	struct ha_bkrun *b = sp->arg;
	struct ha_db_where w = {.host = b->host,
	                        .port = sp->port,
	                        .user = b->user,
	                        .password = b->password,
	                        .timeout_ms = 5000,
	                        .statement_ms = 600000};
	uint64_t t0 = ha_now_ms();
	ha_db_record_sums(&w, sp->m->gtid, b->checksum_max_bytes, sp->cancel, sp->m);
	b->sums_ms = ha_now_ms() - t0;
}

static void bk_report(struct ha_agent *a, Haagent__BackupReport *r);

/* The job's state into this node's next health report (state.c reads a->bk_report), and a
 * report now. */
static void publish(struct ha_agent *a)
{
	bk_report(a, &a->bk_report);
	ha_agent_report_now(a);
}

static void *run(void *arg)
{
	struct ha_bkrun *b = arg;
	struct ha_err e = {0};
	b->store.ops->clean(&b->store, b->m.node);
	/* mariadb-backup lacking BINLOG MONITOR fails only at the very end: check first */
	char missing[256];
	int rc = ha_db_backup_privileges(b->host, b->spec.port, b->user, b->password, 5000, missing,
	                                 sizeof(missing));
	if (rc > 0) {
		struct ha_buf who = HA_BUF_INIT; /* a hint's text, quoted as SQL would need it */
		ha_quote_sql_string(&who, b->user);
		rc = ha_err_set(&e, HA_EDB, "the backup user lacks %s: GRANT %s ON *.* TO %s",
		                missing, missing, ha_buf_cstr(&who));
		ha_buf_free(&who);
	} else
		rc = ha_backup_create(&b->spec,
		                      &e); /* a failed check is mariadb-backup's to report */
	pthread_mutex_lock(&b->mu);
	b->rc = rc;
	snprintf(b->err, sizeof(b->err), "%s", rc ? e.msg : "");
	b->finished = true;
	pthread_mutex_unlock(&b->mu);
	uv_async_send(&b->async);
	return NULL;
}

static void *sweep(void *arg)
{
	struct ha_bkrun *b = arg;
	for (unsigned i = 0; i < b->n_sweep; i++) {
		struct ha_err e = {0};
		char *text = NULL;
		size_t len;
		if (b->sweep_late[i]) {
			/* a failed or abandoned job's: its staging area (its agent died or was cut
			 * off midway), and its backup only if it committed after all */
			if (b->sweep_nodes[i][0])
				b->store.ops->abort(&b->store, b->sweep_nodes[i],
				                    b->sweep_names[i]);
			if (b->store.ops->get_manifest(&b->store, b->sweep_names[i], &text, &len,
			                               &e) != 0)
				continue;
			free(text);
			ha_warn("backup-orphan", "name=%s why=\"committed after its job ended\"",
			        b->sweep_names[i]);
		}
		if (b->store.ops->remove(&b->store, b->sweep_names[i], &e) != 0)
			ha_warn("backup-delete-failed", "error=\"%s\"", e.msg);
		else
			ha_info("backup-deleted", "name=%s", b->sweep_names[i]);
	}
	pthread_mutex_lock(&b->mu);
	b->sweep_finished = true;
	pthread_mutex_unlock(&b->mu);
	uv_async_send(&b->async);
	return NULL;
}

/* Appends to the detail reported for the job (truncated at its size). Loop thread. */
static void add_detail(struct ha_bkrun *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void add_detail(struct ha_bkrun *b, const char *fmt, ...)
{
	size_t len = strlen(b->detail);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(b->detail + len, sizeof(b->detail) - len, fmt, ap);
	va_end(ap);
}

static void on_done(uv_async_t *h)
{
	struct ha_agent *a = h->data;
	struct ha_bkrun *b = a->bk;
	pthread_mutex_lock(&b->mu);
	bool finished = b->finished, swept = b->sweep_finished;
	b->finished = b->sweep_finished = false;
	pthread_mutex_unlock(&b->mu);
	if (swept && b->sweeping) {
		pthread_join(b->sweep_thread, NULL);
		b->sweeping = false;
		for (unsigned i = 0; i < b->n_sweep && b->n_swept < HA_FSM_MAX_BACKUPS; i++)
			if (!b->sweep_again[i])
				b->swept[b->n_swept++] = b->sweep_ids[i];
	}
	if (!finished || !b->busy)
		return;
	pthread_join(b->thread, NULL);
	b->busy = false;
	struct ha_manifest *m = &b->m;
	if (b->rc == 0) {
		b->state = HA_BK_DONE;
		snprintf(b->detail, sizeof(b->detail), "%llu bytes read, %llu stored in %zu chunks",
		         (unsigned long long)m->bytes_in, (unsigned long long)m->bytes_stored,
		         m->n_chunks);
		if (b->spec.held_ms)
			add_detail(b, "; paused %.1f s while the replica lagged",
			           (double)b->spec.held_ms / 1000.0);
		if (m->n_sums)
			add_detail(b, "; checksums of %zu tables recorded (%.1f s)%s%s", m->n_sums,
			           (double)b->sums_ms / 1000.0, m->sums_note[0] ? "; " : "",
			           m->sums_note);
		else if (m->sums_note[0])
			add_detail(b, "; table checksums %s", m->sums_note);
		b->res.started_ms = m->started_ms;
		b->res.finished_ms = m->finished_ms;
		b->res.from_lsn = m->from_lsn;
		b->res.to_lsn = m->to_lsn;
		ha_fsm_backup_gtid(b->res.gtid, sizeof(b->res.gtid), m->gtid);
		b->res.bytes_in = m->bytes_in;
		b->res.bytes_stored = m->bytes_stored;
		b->res.chunks = (uint32_t)m->n_chunks;
		b->res.server_id = m->server_id;
		snprintf(b->res.instance, sizeof(b->res.instance), "%s", m->instance);
		snprintf(b->res.manifest_sha, sizeof(b->res.manifest_sha), "%s", m->file_sha);
		const char *where = ha_repos_written(&b->store);
		snprintf(b->res.repos, sizeof(b->res.repos), "%s", where ? where : "");
		if (where && ha_repos_passed(&b->store)[0])
			add_detail(b, "; written to %s, passed over: %s", where,
			           ha_repos_passed(&b->store));
		ha_info("backup-done", "id=%llu name=%s bytes_in=%llu bytes_stored=%llu ms=%llu",
		        (unsigned long long)b->id, m->name, (unsigned long long)m->bytes_in,
		        (unsigned long long)m->bytes_stored,
		        (unsigned long long)(m->finished_ms - m->started_ms));
	} else {
		b->state = HA_BK_FAILED;
		snprintf(b->detail, sizeof(b->detail), "%s", b->err);
		ha_warn("backup-failed", "id=%llu error=\"%s\"", (unsigned long long)b->id, b->err);
	}
	ha_manifest_free(m);
	if (!a->stopping)
		publish(a);
}

int ha_bkrun_start(struct ha_agent *a, struct ha_err *e)
{
	struct ha_bkrun *b = calloc(1, sizeof(*b));
	if (b == NULL)
		return ha_err_set(e, HA_ENOMEM, "out of memory");
	pthread_mutex_init(&b->mu, NULL);
	uv_async_init(a->loop, &b->async, on_done);
	b->async.data = a;
	snprintf(b->work, sizeof(b->work), "%s/backup-work", a->cfg.data_dir);
	struct ha_err re = {0};
	b->have_repo = a->cfg.n_repos > 0;
	if (b->have_repo && ha_repos_open(&b->repos, &a->cfg, &re) != 0) {
		b->have_repo = false;
		snprintf(b->repo_error, sizeof(b->repo_error), "%s", re.msg);
	}
	b->store = b->repos.all_backups;
	snprintf(b->tool, sizeof(b->tool), "%s", a->cfg.backup_tool);
	snprintf(b->host, sizeof(b->host), "%s", a->self->address);
	snprintf(b->user, sizeof(b->user), "%s", a->cfg.db_user);
	snprintf(b->password, sizeof(b->password), "%s", a->cfg.db_password);
	b->checksum_max_bytes = (uint64_t)a->cfg.backup_checksum_max_mb << 20;
	if (b->have_repo) {
		struct ha_err ke = {0};
		if (ha_key_load(a->cfg.backup_key_file, b->master, &ke) == 0)
			b->have_key = true;
		else
			snprintf(b->key_error, sizeof(b->key_error), "%s", ke.msg);
	}
	a->bk = b;
	bk_report(a, &a->bk_report);
	return 0;
}

/* A lagging source: hold the stream (bounded, see pipeline.h), and resume when it caught up. */
static void hold_on_lag(struct ha_agent *a, const struct ha_probe_sample *s)
{
	struct ha_bkrun *b = a->bk;
	unsigned limit = a->cfg.backup_lag_pause_ms;
	bool lag = limit && s->db == HA_DB_UP && s->lag_seconds >= 0 &&
	           (uint64_t)s->lag_seconds * 1000 > limit;
	if (lag != (atomic_load(&b->hold) != 0))
		ha_info(lag ? "backup-hold" : "backup-resume", "id=%llu lag_seconds=%lld",
		        (unsigned long long)b->id, (long long)s->lag_seconds);
	atomic_store(&b->hold, lag);
}

/* The running job is no longer running in the catalog: cancel it and kill its child. */
static void cancel_job(struct ha_bkrun *b)
{
	if (!atomic_load(&b->cancel))
		ha_warn("backup-cancel", "id=%llu why=\"no longer running in the catalog\"",
		        (unsigned long long)b->id);
	atomic_store(&b->cancel, 1);
	int pid = atomic_load(&b->child);
	if (pid > 0)
		kill(pid, SIGKILL);
}

/* The coordinator's agent removes what the catalog says should not exist, on the sweep thread:
 * the backups retention deleted, and whatever a failed or abandoned job left committed (a job
 * abandoned by the coordinator while its agent was committing: the rename can land after the
 * abandon), and its staging area (its agent died or was cut off midway). Each is swept once
 * by this agent, whatever its age; a failed or abandoned one is looked at again, every
 * SWEEP_EVERY_MS, until SWEEP_LATE_MS after it ended, since a late commit lands within that
 * time (the agent checks its cancel flag just before committing). */
#define SWEEP_EVERY_MS 5000
#define SWEEP_LATE_MS  600000
static void start_sweep(struct ha_bkrun *b, const struct ha_fsm_state *st, uint64_t unix_ms)
{
	if (b->sweeping || unix_ms - b->swept_ms < SWEEP_EVERY_MS)
		return;
	b->swept_ms = unix_ms;
	b->n_sweep = 0;
	for (unsigned i = 0; i < st->n_backups && b->n_sweep < HA_FSM_MAX_BACKUPS; i++) {
		const struct ha_backup_rec *r = &st->backups[i];
		bool done = false;
		for (unsigned k = 0; k < b->n_swept; k++)
			done = done || b->swept[k] == r->id;
		bool ended = r->state == HA_BK_FAILED || r->state == HA_BK_ABANDONED;
		bool recent = ended && r->finished_ms + SWEEP_LATE_MS > unix_ms;
		if (!(r->state == HA_BK_DELETED || ended) || (done && !recent))
			continue;
		b->sweep_late[b->n_sweep] = ended;
		b->sweep_again[b->n_sweep] = recent;
		const struct ha_member *owner = ha_fsm_member(st, r->node);
		snprintf(b->sweep_nodes[b->n_sweep], sizeof(b->sweep_nodes[0]), "%s",
		         owner ? owner->name : "");
		b->sweep_ids[b->n_sweep] = r->id;
		snprintf(b->sweep_names[b->n_sweep++], sizeof(b->sweep_names[0]), "%s", r->name);
	}
	if (b->n_sweep && b->n_swept + b->n_sweep <= HA_FSM_MAX_BACKUPS &&
	    pthread_create(&b->sweep_thread, NULL, sweep, b) == 0)
		b->sweeping = true;
	if (b->n_swept + b->n_sweep > HA_FSM_MAX_BACKUPS)
		b->n_swept = 0; /* forget: deleting twice is harmless */
}

/* The job's manifest as far as it is known before the backup: its names, its parent, this
 * node and the sample it starts from. */
static void fill_manifest(struct ha_agent *a, const struct ha_probe_sample *s,
                          const struct ha_backup_rec *job, const struct ha_backup_rec *parent)
{
	struct ha_manifest *m = &a->bk->m;
	memset(m, 0, sizeof(*m));
	m->server_id = s->server_id;
	snprintf(m->instance, sizeof(m->instance), "%s", s->instance);
	m->id = job->id;
	snprintf(m->name, sizeof(m->name), "%s", job->name);
	snprintf(m->type, sizeof(m->type), "%s", job->type);
	m->parent = job->parent;
	if (parent)
		snprintf(m->parent_name, sizeof(m->parent_name), "%s", parent->name);
	snprintf(m->node, sizeof(m->node), "%s", a->self->name);
	m->lag_seconds = s->lag_seconds;
	m->load = s->loadavg1;
}

/* The pipeline's spec: the store, the tool and the local server, the incremental start from
 * the parent, and the [backup] limits. */
static void fill_spec(struct ha_agent *a, const struct ha_backup_rec *parent)
{
	struct ha_bkrun *b = a->bk;
	struct ha_backup_spec *sp = &b->spec;
	memset(sp, 0, sizeof(*sp));
	sp->store = &b->store;
	sp->work_dir = b->work;
	sp->master_key = b->master;
	sp->tool = b->tool;
	sp->host = b->host;
	sp->port = a->self->db_port;
	sp->user = b->user;
	sp->password = b->password;
	sp->incremental_lsn = parent ? parent->to_lsn : 0;
	sp->throttle = a->cfg.backup_throttle;
	sp->hold = &b->hold;
	sp->hold_max_ms = a->cfg.backup_lag_pause_max_ms;
	atomic_store(&b->hold, 0);
	sp->level = (int)a->cfg.backup_compress_level;
	sp->chunk_bytes = a->cfg.backup_chunk_kb * 1024;
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	sp->workers =
	    a->cfg.backup_workers ? a->cfg.backup_workers : (unsigned)(cores > 0 ? cores : 2);
	sp->cancel = &b->cancel;
	sp->child_pid = &b->child;
	sp->m = &b->m;
	sp->before_commit = record_sums;
	sp->arg = b;
}

/* A new job for this node: failed at once when this node has no repository or key or the
 * parent is not available, else started on the backup thread. Its state is published. */
static void start_job(struct ha_agent *a, const struct ha_probe_sample *s,
                      const struct ha_fsm_state *st, const struct ha_backup_rec *job)
{
	struct ha_bkrun *b = a->bk;
	b->id = job->id;
	memset(&b->res, 0, sizeof(b->res));
	if (!b->have_repo || !b->have_key) {
		b->state = HA_BK_FAILED;
		snprintf(b->detail, sizeof(b->detail), "%s",
		         b->repo_error[0] ? b->repo_error
		         : !b->have_repo  ? "no repository configured on this node"
		                          : b->key_error);
		publish(a);
		return;
	}
	const struct ha_backup_rec *parent = job->parent ? ha_fsm_backup(st, job->parent) : NULL;
	if (job->parent && (parent == NULL || parent->state != HA_BK_DONE)) {
		b->state = HA_BK_FAILED;
		snprintf(b->detail, sizeof(b->detail), "its parent backup %llu is not available",
		         (unsigned long long)job->parent);
		publish(a);
		return;
	}
	/* an incremental or differential copies the pages above its parent's LSN: only from the
	 * datadir its chain's full backup was taken from (the coordinator placed it so; this
	 * checks it again where the datadir is seen) */
	if (parent && (!s->instance[0] || strcmp(parent->instance, s->instance) != 0 ||
	               parent->server_id != s->server_id)) {
		b->state = HA_BK_FAILED;
		snprintf(b->detail, sizeof(b->detail),
		         "its parent backup %llu was taken from another server or datadir "
		         "(server_id %u, instance %.12s; this one: %u, %.12s); take a full backup",
		         (unsigned long long)job->parent, parent->server_id,
		         parent->instance[0] ? parent->instance : "unknown", s->server_id,
		         s->instance[0] ? s->instance : "unknown");
		publish(a);
		return;
	}
	fill_manifest(a, s, job, parent);
	fill_spec(a, parent);
	atomic_store(&b->cancel, 0);
	atomic_store(&b->child, 0);
	b->state = HA_BK_RUNNING;
	snprintf(b->detail, sizeof(b->detail), "running");
	if (pthread_create(&b->thread, NULL, run, b) != 0) {
		b->state = HA_BK_FAILED;
		snprintf(b->detail, sizeof(b->detail), "cannot start the backup thread");
	} else {
		b->busy = true;
		ha_info("backup-start", "id=%llu name=%s type=%s incremental_lsn=%llu",
		        (unsigned long long)job->id, job->name, job->type,
		        (unsigned long long)b->spec.incremental_lsn);
	}
	publish(a);
}

/* Called on every tick: start the job the catalog gives this node, cancel one it no longer
 * does. */
void ha_bkrun_tick(struct ha_agent *a, const struct ha_probe_sample *s)
{
	struct ha_bkrun *b = a->bk;
	bk_report(a, &a->bk_report);
	const struct ha_fsm_state *st = ha_raft_fsm(a->raft);
	const struct ha_backup_rec *job = ha_fsm_backup_running(st);
	if (b->busy)
		hold_on_lag(a, s);
	if (b->busy) {
		if (job == NULL || job->id != b->id)
			cancel_job(b);
		return;
	}
	if (job == NULL && b->have_repo && ha_raft_ready(a->raft)) {
		start_sweep(b, st, ha_unix_ms());
		return;
	}
	if (job == NULL || job->node != a->self->id || job->id == b->id)
		return;
	start_job(a, s, st, job);
}

static void bk_report(struct ha_agent *a, Haagent__BackupReport *r)
{
	struct ha_bkrun *b = a->bk;
	haagent__backup_report__init(r);
	r->id = b->id;
	r->state = (uint32_t)b->state;
	r->detail = b->detail;
	r->gtid = b->res.gtid;
	if (b->state == HA_BK_DONE) {
		r->from_lsn = b->res.from_lsn;
		r->to_lsn = b->res.to_lsn;
		r->bytes_in = b->res.bytes_in;
		r->bytes_stored = b->res.bytes_stored;
		r->chunks = b->res.chunks;
		r->started_unix_ms = b->res.started_ms;
		r->finished_unix_ms = b->res.finished_ms;
		r->server_id = b->res.server_id;
		r->instance = b->res.instance;
		r->manifest_sha = b->res.manifest_sha;
		r->repository = b->res.repos;
	}
}

void ha_bkrun_stop(struct ha_agent *a)
{
	struct ha_bkrun *b = a->bk;
	if (b == NULL)
		return;
	atomic_store(&b->cancel, 1);
	int pid = atomic_load(&b->child);
	if (pid > 0)
		kill(pid, SIGKILL);
	uv_close((uv_handle_t *)&b->async, NULL);
}

void ha_bkrun_free(struct ha_agent *a)
{
	struct ha_bkrun *b = a->bk;
	if (b == NULL)
		return;
	if (b->busy)
		pthread_join(b->thread, NULL);
	if (b->sweeping)
		pthread_join(b->sweep_thread, NULL);
	ha_manifest_free(&b->m);
	ha_wipe(b->password, sizeof(b->password));
	ha_wipe(b->master, sizeof(b->master));
	ha_repos_close(&b->repos);
	pthread_mutex_destroy(&b->mu);
	free(b);
	a->bk = NULL;
}
