/* The binlog archiver's shell (backup/archive.h does the work): the ready Raft leader's agent
 * keeps one archive thread streaming the current primary's binary log, and records each
 * slice it commits in the replicated state (CmdArchiveSlice), where the next archiver — after a
 * failover, or on another leader — picks up. The thread is stopped when this agent stops
 * leading, when the primary changes, or while a failover runs, and started again (after a
 * pause when it failed). The loop only decides; the thread does the blocking work. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <raft.h>

#include "agent_int.h"
#include "backup/archive.h"
#include "backup/repos.h"
#include "common/clock.h"
#include "common/gtid.h"
#include "common/log.h"
#include "common/secret.h"

#define QUEUE_MAX    32
#define RETRY_MS     5000  /* after a failed run */
#define RETRY_MAX_MS 60000 /* doubled per failure up to this */
#define STALL_MS     30000

struct queued {
	struct ha_slice_rec r;
	char prev[HA_SLICE_NAME_MAX], name[HA_SLICE_NAME_MAX], node[64];
	char start[HA_GTID_TEXT_MAX], end[HA_GTID_TEXT_MAX];
	char gap[HA_SLICE_NOTE_MAX], errant[HA_SLICE_NOTE_MAX];
};

struct ha_arch {
	uv_async_t async;
	pthread_t thread;
	bool busy; /* loop side: a thread runs */
	atomic_int cancel;
	atomic_int child;
	pthread_mutex_t mu;
	pthread_cond_t room;
	struct queued q[QUEUE_MAX]; /* under mu: committed slices for the loop to record */
	unsigned nq;
	bool finished; /* under mu */
	int rc;
	char err[1024];
	/* the thread's inputs */
	struct ha_archive_spec spec;
	struct ha_repos repos;
	struct ha_store store;
	uint8_t master[HA_KEY_LEN];
	bool have_key;
	char work[PATH_MAX], tool[PATH_MAX], host[HA_ADDR_MAX], user[HA_NAME_MAX], password[256];
	char head[HA_SLICE_NAME_MAX];
	char keep_from[HA_GTID_TEXT_MAX]; /* under mu: the oldest kept backup's position */
	bool keep_valid;                  /* loop side: keep_from was computed at */
	uint64_t keep_applied;            /* this many applied commands */
	/* loop side */
	uint32_t source; /* the primary it streams from */
	uint64_t epoch;  /* the primary's epoch then */
	uint64_t retry_ms;
	unsigned failures;
	unsigned in_flight; /* proposals not yet answered */
	bool restart; /* a slice was not recorded: the run restarts from the replicated head */
	atomic_int sealed_any;    /* this run committed a slice */
	_Atomic uint64_t read_ms; /* the stream last brought bytes (set by the thread) */
	uint64_t started_ms;
	char last_error[512];
};

static void sealed(void *arg, const struct ha_slice *s)
{
	struct ha_arch *ar = arg;
	atomic_store(&ar->sealed_any, 1);
	pthread_mutex_lock(&ar->mu);
	while (ar->nq == QUEUE_MAX && !atomic_load(&ar->cancel))
		pthread_cond_wait(&ar->room, &ar->mu);
	if (ar->nq < QUEUE_MAX) {
		struct queued *q = &ar->q[ar->nq++];
		snprintf(q->prev, sizeof(q->prev), "%s", s->prev);
		snprintf(q->name, sizeof(q->name), "%s", s->name);
		snprintf(q->node, sizeof(q->node), "%s", s->node);
		snprintf(q->start, sizeof(q->start), "%s", s->start);
		snprintf(q->end, sizeof(q->end), "%s", s->end);
		snprintf(q->gap, sizeof(q->gap), "%s", s->gap);
		snprintf(q->errant, sizeof(q->errant), "%s", s->errant);
		q->r = (struct ha_slice_rec){.prev = q->prev,
		                             .name = q->name,
		                             .node = q->node,
		                             .seq = s->seq,
		                             .server_id = s->server_id,
		                             .start_gtid = q->start,
		                             .end_gtid = q->end,
		                             .first_ts = s->first_ts,
		                             .last_ts = s->last_ts,
		                             .txns = s->txns,
		                             .bytes = s->bytes_stored,
		                             .gap = q->gap,
		                             .errant = q->errant};
	}
	pthread_mutex_unlock(&ar->mu);
	uv_async_send(&ar->async);
}

static void keep_from(void *arg, char *out, size_t size)
{
	struct ha_arch *ar = arg;
	pthread_mutex_lock(&ar->mu);
	snprintf(out, size, "%s", ar->keep_from);
	pthread_mutex_unlock(&ar->mu);
}

/* The position of the oldest finished backup the catalog keeps ("" none): the archive before
 * it serves no restore. */
static void update_keep_from(struct ha_arch *ar, const struct ha_fsm_state *st)
{
	/* the catalog changes only with an applied command: not every tick */
	if (ar->keep_valid && ar->keep_applied == st->applied_commands)
		return;
	ar->keep_valid = true;
	ar->keep_applied = st->applied_commands;
	/* per domain the lowest of every kept backup: one taken on a lagging replica may stand
	 * before an older one */
	struct ha_gtid_pos keep = {0}, p;
	bool any = false, ok = true;
	for (unsigned i = 0; i < st->n_backups && ok; i++) {
		if (st->backups[i].state != HA_BK_DONE)
			continue;
		ok = ha_gtid_parse(st->backups[i].gtid, &p, NULL) == 0;
		if (ok && any)
			ha_gtid_min(&keep, &p, &keep);
		else if (ok)
			keep = p;
		any = true;
	}
	char text[HA_GTID_TEXT_MAX] = "";
	if (any && ok)
		ha_gtid_format(&keep, text, sizeof(text));
	pthread_mutex_lock(&ar->mu);
	snprintf(ar->keep_from, sizeof(ar->keep_from), "%s", text);
	pthread_mutex_unlock(&ar->mu);
}

static void *run(void *arg)
{
	struct ha_arch *ar = arg;
	struct ha_err e = {0};
	int rc = ha_archive_run(&ar->spec, &e);
	pthread_mutex_lock(&ar->mu);
	ar->rc = rc;
	snprintf(ar->err, sizeof(ar->err), "%s", rc ? e.msg : "");
	ar->finished = true;
	pthread_mutex_unlock(&ar->mu);
	uv_async_send(&ar->async);
	return NULL;
}

static void proposed(void *data, int status, int fsm_result)
{
	struct ha_agent *a = data;
	struct ha_arch *ar = a->ar;
	if (ar->in_flight)
		ar->in_flight--;
	if (status != 0 || fsm_result == HA_FSM_NOOP) {
		/* the thread's head is no longer the replicated one: every later slice would be
		 * refused; it starts again from the replicated head */
		ar->restart = true;
		if (status != 0)
			ha_warn("archive-record-failed", "status=%d", status);
		else
			ha_warn("archive-record-stale",
			        "why=\"another archiver's slice is the head\"");
	}
}

/* Records the committed slices, in order. */
static void record(struct ha_agent *a)
{
	struct ha_arch *ar = a->ar;
	struct queued q[QUEUE_MAX];
	pthread_mutex_lock(&ar->mu);
	unsigned n = ar->nq;
	memcpy(q, ar->q, n * sizeof(q[0]));
	for (unsigned i = 0; i < n; i++) {
		/* the copies' pointers into the queue's own texts */
		q[i].r.prev = q[i].prev;
		q[i].r.name = q[i].name;
		q[i].r.node = q[i].node;
		q[i].r.start_gtid = q[i].start;
		q[i].r.end_gtid = q[i].end;
		q[i].r.gap = q[i].gap;
		q[i].r.errant = q[i].errant;
	}
	ar->nq = 0;
	pthread_cond_broadcast(&ar->room);
	pthread_mutex_unlock(&ar->mu);
	for (unsigned i = 0; i < n; i++) {
		uint8_t *buf;
		size_t len;
		if (q[i].r.gap[0])
			ha_warn("archive-gap", "slice=%s %s", q[i].name, q[i].gap);
		if (!ha_raft_ready(a->raft) ||
		    ha_fsm_cmd_archive_slice(&q[i].r, ha_unix_ms(), raft_malloc, &buf, &len) != 0) {
			ar->restart = true; /* an orphan: start again from the replicated head */
			continue;
		}
		if (ha_raft_propose(a->raft, buf, len, proposed, a) == 0)
			ar->in_flight++;
		else
			ar->restart = true;
	}
}

static void on_async(uv_async_t *h)
{
	struct ha_agent *a = h->data;
	struct ha_arch *ar = a->ar;
	record(a);
	pthread_mutex_lock(&ar->mu);
	bool finished = ar->finished;
	ar->finished = false;
	pthread_mutex_unlock(&ar->mu);
	if (!finished || !ar->busy)
		return;
	pthread_join(ar->thread, NULL);
	record(a); /* anything queued at the very end */
	ar->busy = false;
	bool cancelled = atomic_load(&ar->cancel);
	if (atomic_load(&ar->sealed_any) || ha_now_ms() - ar->started_ms > RETRY_MAX_MS)
		ar->failures = 0; /* it worked for a while: the next pause is short again */
	if (ar->rc != 0 && !cancelled) {
		ar->failures++;
		uint64_t pause = RETRY_MS << (ar->failures < 4 ? ar->failures - 1 : 3);
		ar->retry_ms = ha_now_ms() + (pause < RETRY_MAX_MS ? pause : RETRY_MAX_MS);
		snprintf(ar->last_error, sizeof(ar->last_error), "%s", ar->err);
		ha_warn("archive-stopped", "error=\"%s\" retry_s=%llu", ar->err,
		        (unsigned long long)(pause / 1000));
	} else {
		ar->retry_ms = 0;
	}
}

/* What the archiver should stream from now: the primary's id, or 0 (nothing). */
static uint32_t wanted_source(struct ha_agent *a)
{
	struct ha_arch *ar = a->ar;
	const struct ha_fsm_state *st = ha_raft_fsm(a->raft);
	if (!ar->have_key || !a->cfg.backup_archive || !ha_raft_ready(a->raft) ||
	    st->primary_id == 0 || ha_fsm_failover_active(st))
		return 0;
	return st->primary_id;
}

static void stop_thread(struct ha_arch *ar)
{
	if (!ar->busy)
		return;
	atomic_store(&ar->cancel, 1);
	pthread_mutex_lock(&ar->mu);
	pthread_cond_broadcast(&ar->room);
	pthread_mutex_unlock(&ar->mu);
	int pid = atomic_load(&ar->child);
	if (pid > 0)
		kill(-pid, SIGTERM); /* the thread reaps it */
}

/* mariadb-binlog has no read timeout: a path to the primary that drops packets leaves it
 * waiting for ever. The run starts again when the primary has logged transactions the archive
 * lacks and the stream brought no byte for the stall time (at least twice the seal interval).
 * A long transaction still streams bytes: it is never taken for a stall. */
static bool stalled(struct ha_agent *a, struct ha_arch *ar, const struct ha_fsm_state *st)
{
	uint64_t now = ha_now_ms(), stall = 2ull * a->cfg.backup_archive_seal_ms;
	if (stall < STALL_MS)
		stall = STALL_MS;
	uint64_t last = atomic_load(&ar->read_ms);
	if (now - ar->started_ms < stall || now - last < stall)
		return false;
	int i = ha_agent_node_index(a, st->primary_id);
	struct ha_gtid_pos p, h = {0};
	if (i < 0 || !a->health[i].last_binlog[0] ||
	    ha_gtid_parse(a->health[i].last_binlog, &p, NULL) != 0 ||
	    (st->archive.end_gtid[0] && ha_gtid_parse(st->archive.end_gtid, &h, NULL) != 0) ||
	    ha_gtid_count_missing(&p, &h) == 0)
		return false;
	ha_warn("archive-stalled",
	        "why=\"the primary is ahead and the stream brought nothing for "
	        "%llu s\"",
	        (unsigned long long)(stall / 1000));
	return true;
}

void ha_arch_tick(struct ha_agent *a)
{
	struct ha_arch *ar = a->ar;
	if (ar == NULL)
		return;
	uint32_t want = wanted_source(a);
	const struct ha_fsm_state *st = ha_raft_fsm(a->raft);
	update_keep_from(ar, st);
	if (ar->busy) {
		if (want != ar->source || st->epoch != ar->epoch || ar->restart)
			stop_thread(ar);
		else if (stalled(a, ar, st))
			stop_thread(ar);
		return;
	}
	ar->restart = false;
	if (want != 0 && want != ar->source) {
		ar->failures = 0; /* a new primary: no reason to wait out the old one's pause */
		ar->retry_ms = 0;
		ar->last_error[0] = '\0';
	}
	if (want == 0 || ar->in_flight > 0 || ha_now_ms() < ar->retry_ms)
		return;
	const struct ha_node_conf *src = ha_config_node_by_id(&a->cfg, want);
	if (src == NULL)
		return;
	ar->source = want;
	ar->epoch = st->epoch;
	snprintf(ar->host, sizeof(ar->host), "%s", src->address);
	snprintf(ar->head, sizeof(ar->head), "%s", st->archive.head);
	struct ha_archive_spec *sp = &ar->spec;
	*sp = (struct ha_archive_spec){.store = &ar->store,
	                               .master_key = ar->master,
	                               .work_dir = ar->work,
	                               .tool = ar->tool,
	                               .host = ar->host,
	                               .port = src->db_port,
	                               .user = ar->user,
	                               .password = ar->password,
	                               .node = a->self->name,
	                               .dump_server_id = 0x7f000000u + a->self->id,
	                               .head = ar->head,
	                               .head_seq = st->archive.seq,
	                               .seal_ms = a->cfg.backup_archive_seal_ms,
	                               .level = (int)a->cfg.backup_compress_level,
	                               .cancel = &ar->cancel,
	                               .child_pid = &ar->child,
	                               .read_ms = &ar->read_ms,
	                               .sealed = sealed,
	                               .keep_from = keep_from,
	                               .prune_ms = a->cfg.backup_archive_prune_ms,
	                               .arg = ar};
	atomic_store(&ar->cancel, 0);
	atomic_store(&ar->child, 0);
	atomic_store(&ar->sealed_any, 0);
	ar->started_ms = ha_now_ms();
	atomic_store(&ar->read_ms, ar->started_ms);
	ar->finished = false;
	if (pthread_create(&ar->thread, NULL, run, ar) != 0) {
		ha_warn("archive-thread", "cannot start the archive thread");
		ar->retry_ms = ha_now_ms() + RETRY_MS;
		return;
	}
	ar->busy = true;
	ha_info("archive-start", "source=%s:%u head=%s", ar->host, src->db_port,
	        ar->head[0] ? ar->head : "none");
}

const char *ha_arch_state(struct ha_agent *a, char *buf, size_t size)
{
	struct ha_arch *ar = a->ar;
	if (ar == NULL || !a->cfg.backup_archive)
		return "off";
	if (!ar->have_key)
		return "off (no repository key)";
	if (ar->busy) {
		const struct ha_node_conf *n = ha_config_node_by_id(&a->cfg, ar->source);
		snprintf(buf, size, "streaming from %s", n ? n->name : "?");
		return buf;
	}
	if (ar->last_error[0] && ar->retry_ms) {
		snprintf(buf, size, "stopped: %s", ar->last_error);
		return buf;
	}
	return "idle";
}

bool ha_arch_fill(struct ha_agent *a, bool leading, Haagent__ArchiveState *pb, char *buf,
                  size_t size)
{
	const struct ha_fsm_state *st = ha_raft_fsm(a->raft);
	if (!st->archive.head[0] && !(leading && a->ar))
		return false;
	ha_fsm_archive_to_pb(&st->archive, pb);
	pb->state = (char *)(leading ? ha_arch_state(a, buf, size) : "");
	return true;
}

int ha_arch_start(struct ha_agent *a, struct ha_err *e)
{
	if (!a->cfg.n_repos)
		return 0;
	struct ha_arch *ar = calloc(1, sizeof(*ar));
	if (ar == NULL)
		return ha_err_set(e, HA_ENOMEM, "out of memory");
	struct ha_err re = {0};
	if (ha_repos_open(&ar->repos, &a->cfg, &re) != 0) {
		/* a backup setting never keeps the agent (failover) from starting: said, and off */
		ha_error("archive-off", "error=\"%s\"", re.msg);
		free(ar);
		return 0;
	}
	pthread_mutex_init(&ar->mu, NULL);
	pthread_cond_init(&ar->room, NULL);
	uv_async_init(a->loop, &ar->async, on_async);
	ar->async.data = a;
	ar->store = ar->repos.all_archive; /* the first repository that takes a slice */
	snprintf(ar->work, sizeof(ar->work), "%s/archive-work", a->cfg.data_dir);
	snprintf(ar->tool, sizeof(ar->tool), "%s", a->cfg.backup_binlog_tool);
	snprintf(ar->user, sizeof(ar->user), "%s", a->cfg.db_user);
	snprintf(ar->password, sizeof(ar->password), "%s", a->cfg.db_password);
	struct ha_err ke = {0};
	ar->have_key = ha_key_load(a->cfg.backup_key_file, ar->master, &ke) == 0;
	a->ar = ar;
	return 0;
}

void ha_arch_stop(struct ha_agent *a)
{
	struct ha_arch *ar = a->ar;
	if (ar == NULL)
		return;
	stop_thread(ar);
	uv_close((uv_handle_t *)&ar->async, NULL);
}

void ha_arch_free(struct ha_agent *a)
{
	struct ha_arch *ar = a->ar;
	if (ar == NULL)
		return;
	if (ar->busy)
		pthread_join(ar->thread, NULL);
	ha_wipe(ar->master, sizeof(ar->master));
	ha_wipe(ar->password, sizeof(ar->password));
	ha_repos_close(&ar->repos);
	pthread_mutex_destroy(&ar->mu);
	pthread_cond_destroy(&ar->room);
	free(ar);
	a->ar = NULL;
}
