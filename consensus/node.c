#include "node.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../agent/common/clock.h"
#include "../agent/common/log.h"
#include "../agent/common/proc.h"
#include "raftconf.h"
#include "transport.h"

struct ha_raft {
	uv_loop_t *loop;
	struct raft raft;
	struct raft_io io;
	struct raft_uv_transport transport;
	bool tls; /* transport.h's; else libraft's plain TCP */
	struct raft_fsm fsm;
	struct ha_fsm_state state;
	uv_timer_t watch;
	int lock_fd;
	char dir[PATH_MAX + 8];
	char address[96];

	/* leader readiness */
	raft_term barrier_term; /* term in which a barrier was issued */
	bool barrier_pending;
	bool ready;
	uint64_t ready_since_ms;
	uint64_t barrier_at_ms; /* when the barrier of barrier_term was issued */
	uint64_t lease_since_ms;
	enum raft_state last_state;
	raft_id last_leader;

	ha_raft_applied_cb applied_cb;
	void *applied_data;
	unsigned election_timeout;

	ha_raft_closed_cb closed_cb;
	void *closed_data;
	int pending_closes;
	bool changing;        /* a raft_add/assign/remove in flight */
	uint64_t changing_ms; /* since then (monotonic) */
	bool unchecked_said;  /* raftconf could not check the record: said once */
	struct ha_log_limit ghost_log;
};

struct propose_req {
	struct raft_apply req;
	struct ha_raft *n;
	ha_raft_propose_cb cb;
	void *data;
};

/* ---- FSM glue ---- */

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
	struct ha_raft *n = fsm->data;
	struct ha_err e = {0};
	int rc = ha_fsm_apply(&n->state, buf->base, buf->len, &e);
	if (rc < 0) {
		/* Same on every node: the entry is skipped. Do not fail raft over it. */
		ha_error("fsm-reject", "error=\"%s\"", e.msg);
		*result = (void *)(intptr_t)rc;
		return 0;
	}
	if (rc == HA_FSM_APPLIED && n->applied_cb)
		n->applied_cb(n->applied_data);
	if (rc == HA_FSM_APPLIED)
		ha_info("fsm-applied", "epoch=%llu primary=%u members=%u",
		        (unsigned long long)n->state.epoch, n->state.primary_id,
		        n->state.n_members);
	*result = (void *)(intptr_t)rc;
	return 0;
}

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
	struct ha_raft *n = fsm->data;
	uint8_t *p;
	size_t len;
	if (ha_fsm_snapshot(&n->state, raft_malloc, &p, &len) != 0)
		return RAFT_NOMEM;
	*bufs = raft_malloc(sizeof(**bufs));
	if (*bufs == NULL) {
		raft_free(p);
		return RAFT_NOMEM;
	}
	(*bufs)[0].base = p;
	(*bufs)[0].len = len;
	*n_bufs = 1;
	return 0;
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
	struct ha_raft *n = fsm->data;
	struct ha_err e = {0};
	int rc = ha_fsm_restore(&n->state, buf->base, buf->len, &e);
	if (rc != 0) {
		ha_error("fsm-restore-failed", "error=\"%s\"", e.msg);
		return RAFT_CORRUPT;
	}
	raft_free(buf->base); /* on success the FSM owns the buffer */
	ha_info("fsm-restored", "epoch=%llu primary=%u", (unsigned long long)n->state.epoch,
	        n->state.primary_id);
	return 0;
}

/* ---- leader readiness ---- */

static void barrier_cb(struct raft_barrier *req, int status)
{
	struct ha_raft *n = req->data;
	raft_term term = n->barrier_term;
	free(req);
	n->barrier_pending = false;
	if (status == 0 && raft_state(&n->raft) == RAFT_LEADER &&
	    raft_current_term(&n->raft) == term) {
		n->ready = true;
		n->ready_since_ms = ha_now_ms();
		/* the write lease counts from the barrier's issue: a majority accepted this term
		 * after that instant (acked the barrier), however late this callback runs */
		n->lease_since_ms = n->barrier_at_ms;
		ha_info("raft-leader-ready", "term=%llu", (unsigned long long)term);
	} else if (status != 0) {
		ha_warn("raft-barrier-failed", "term=%llu error=\"%s\"", (unsigned long long)term,
		        raft_strerror(status));
	}
}

static void watch_cb(uv_timer_t *t)
{
	struct ha_raft *n = t->data;
	enum raft_state st = raft_state(&n->raft);
	raft_term term = raft_current_term(&n->raft);
	raft_id lid;
	const char *laddr;
	raft_leader(&n->raft, &lid, &laddr);

	if (st != n->last_state || lid != n->last_leader) {
		ha_info("raft-state", "state=%s term=%llu leader=%llu", raft_state_name(st),
		        (unsigned long long)term, (unsigned long long)lid);
		n->last_state = st;
		n->last_leader = lid;
	}
	if (st != RAFT_LEADER) {
		n->ready = false;
		return;
	}
	if (n->ready && n->barrier_term != term)
		n->ready = false;
	if (!n->ready && !n->barrier_pending && n->barrier_term != term) {
		struct raft_barrier *req = calloc(1, sizeof(*req));
		if (req == NULL)
			return;
		req->data = n;
		n->barrier_term = term;
		n->barrier_at_ms = ha_now_ms();
		int rc = raft_barrier(&n->raft, req, barrier_cb);
		if (rc != 0) {
			free(req);
			n->barrier_term = 0;
			ha_warn("raft-barrier-failed", "error=\"%s\"", raft_strerror(rc));
			return;
		}
		n->barrier_pending = true;
	}
}

/* ---- start / stop ---- */

static int lock_dir(struct ha_raft *n, const char *data_dir, struct ha_err *e)
{
	char path[PATH_MAX + 16], pid[32];
	snprintf(path, sizeof(path), "%s/haagent.lock", data_dir);
	int rc = ha_proc_lock_pidfile(path, &n->lock_fd, pid, sizeof(pid));
	if (rc == HA_EBUSY)
		return ha_err_set(
		    e, HA_EIO,
		    "%s is locked by another agent (pid %s); HINT: stop it first or use "
		    "another data_dir",
		    data_dir, pid);
	if (rc != 0)
		return ha_err_set(e, HA_EIO, "lock %s: %s", path, strerror(errno));
	return 0;
}

static int mkdir_p(const char *dir, struct ha_err *e)
{
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s", dir);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
			return ha_err_set(e, HA_EIO, "mkdir %s: %s", tmp, strerror(errno));
		*p = '/';
	}
	if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
		return ha_err_set(e, HA_EIO, "mkdir %s: %s", tmp, strerror(errno));
	return 0;
}

static void transport_release(struct ha_raft *n)
{
	if (n->tls)
		ha_transport_close(&n->transport);
	else
		raft_uv_tcp_close(&n->transport);
}

static int transport_init(struct ha_raft *n, uv_loop_t *loop, const struct ha_config *c,
                          SSL_CTX *tls_server, SSL_CTX *tls_client, struct ha_err *e)
{
	if (tls_server && tls_client) {
		n->tls = true;
		return ha_transport_init(&n->transport, loop, c, tls_server, tls_client, e);
	}
	n->transport.version = 1; /* required by 0.22 before raft_uv_tcp_init */
	n->transport.data = NULL;
	int rc = raft_uv_tcp_init(&n->transport, loop);
	if (rc != 0)
		return ha_err_set(e, HA_ERAFT, "raft transport: %s", raft_strerror(rc));
	if ((rc = raft_uv_tcp_set_bind_address(&n->transport, n->address)) != 0) {
		raft_uv_tcp_close(&n->transport);
		return ha_err_set(e, HA_ERAFT, "raft bind %s: %s", n->address, raft_strerror(rc));
	}
	return 0;
}

void ha_raft_set_tls(struct ha_raft *n, SSL_CTX *tls_server, SSL_CTX *tls_client)
{
	if (n->tls && tls_server && tls_client)
		ha_transport_set_tls(&n->transport, tls_server, tls_client);
}

/* Long on purpose: libraft's start-up steps in their required order, each undone on a
 * failure of a later one. */
int ha_raft_start(uv_loop_t *loop, const struct ha_config *c, SSL_CTX *tls_server,
                  SSL_CTX *tls_client, struct ha_raft **out, struct ha_err *e)
{
	struct ha_raft *n = calloc(1, sizeof(*n));
	if (n == NULL)
		return ha_err_set(e, HA_ENOMEM, "out of memory");
	n->loop = loop;
	n->lock_fd = -1;
	ha_fsm_init(&n->state);
	const struct ha_node_conf *self = &c->nodes[c->self];
	int rc;

	if ((rc = mkdir_p(c->data_dir, e)) != 0 || (rc = lock_dir(n, c->data_dir, e)) != 0)
		goto err_free;
	snprintf(n->dir, sizeof(n->dir), "%s/raft", c->data_dir);
	if ((rc = mkdir_p(n->dir, e)) != 0)
		goto err_unlock;
	snprintf(n->address, sizeof(n->address), "%s:%u", self->address, self->raft_port);

	if ((rc = transport_init(n, loop, c, tls_server, tls_client, e)) != 0)
		goto err_unlock;
	if ((rc = raft_uv_init(&n->io, loop, n->dir, &n->transport)) != 0) {
		rc = ha_err_set(e, HA_ERAFT, "raft io on %s: %s", n->dir, raft_strerror(rc));
		goto err_transport;
	}
	n->fsm.version = 1;
	n->fsm.data = n;
	n->fsm.apply = fsm_apply;
	n->fsm.snapshot = fsm_snapshot;
	n->fsm.restore = fsm_restore;
	if ((rc = raft_init(&n->raft, &n->io, &n->fsm, self->id, n->address)) != 0) {
		rc = ha_err_set(e, HA_ERAFT, "raft init: %s", raft_strerror(rc));
		goto err_io;
	}
	raft_set_election_timeout(&n->raft, c->election_timeout_ms);
	n->election_timeout = c->election_timeout_ms;
	raft_set_heartbeat_timeout(&n->raft, c->heartbeat_timeout_ms);
	raft_set_pre_vote(&n->raft, true);
	raft_set_snapshot_threshold(&n->raft, c->snapshot_threshold);
	raft_set_snapshot_trailing(&n->raft, c->snapshot_trailing);

	if (c->join) {
		/* joining a running cluster: the leader sends the log (haadm node add) */
		ha_info("raft-join", "dir=%s waiting to be added by the leader", n->dir);
		goto start;
	}
	struct raft_configuration conf;
	raft_configuration_init(&conf);
	for (unsigned i = 0; i < c->n_nodes; i++) {
		char addr[96];
		snprintf(addr, sizeof(addr), "%s:%u", c->nodes[i].address, c->nodes[i].raft_port);
		rc = raft_configuration_add(&conf, c->nodes[i].id, addr, RAFT_VOTER);
		if (rc != 0) {
			raft_configuration_close(&conf);
			rc = ha_err_set(e, HA_ERAFT, "raft configuration: %s", raft_strerror(rc));
			goto err_raft;
		}
	}
	rc = raft_bootstrap(&n->raft, &conf);
	raft_configuration_close(&conf);
	if (rc == 0)
		ha_info("raft-bootstrap", "dir=%s voters=%u", n->dir, c->n_nodes);
	else if (rc != RAFT_CANTBOOTSTRAP) {
		rc = ha_err_set(e, HA_ERAFT, "raft bootstrap: %s", raft_strerror(rc));
		goto err_raft;
	}
start:
	if ((rc = raft_start(&n->raft)) != 0) {
		rc = ha_err_set(e, HA_ERAFT, "raft start on %s: %s (%s)", n->address,
		                raft_strerror(rc), raft_errmsg(&n->raft));
		goto err_raft;
	}
	uv_timer_init(loop, &n->watch);
	n->watch.data = n;
	uv_timer_start(&n->watch, watch_cb, 20, 20);
	n->last_state = RAFT_UNAVAILABLE;
	*out = n;
	return 0;

err_raft:
	/* raft_init succeeded: raft_close is the only way to release it, and it is asynchronous.
	 * The agent exits on this error, so leak the instance rather than block. */
	close(n->lock_fd);
	return rc;
err_io:
	raft_uv_close(&n->io);
err_transport:
	transport_release(n);
err_unlock:
	close(n->lock_fd);
err_free:
	free(n);
	return rc;
}

static void finish_close(struct ha_raft *n)
{
	if (--n->pending_closes > 0)
		return;
	raft_uv_close(&n->io);
	transport_release(n);
	if (n->lock_fd >= 0)
		close(n->lock_fd);
	ha_raft_closed_cb cb = n->closed_cb;
	void *data = n->closed_data;
	free(n);
	if (cb)
		cb(data);
}

static void raft_closed(struct raft *r)
{
	finish_close(r->data);
}

static void watch_closed(uv_handle_t *h)
{
	finish_close(h->data);
}

void ha_raft_close(struct ha_raft *n, ha_raft_closed_cb cb, void *data)
{
	n->closed_cb = cb;
	n->closed_data = data;
	n->pending_closes = 2;
	n->raft.data = n;
	uv_close((uv_handle_t *)&n->watch, watch_closed);
	raft_close(&n->raft, raft_closed);
}

static void nudge_cb(struct raft_barrier *req, int status)
{
	(void)status;
	free(req);
}

/* Followers learn that an entry is committed from the next AppendEntries, which otherwise waits
 * for the heartbeat (50 ms): a barrier entry sends one now, carrying the new commit index, so
 * the agents act on a decision within a round trip. (A barrier never reaches the FSM.) */
static void nudge(struct ha_raft *n)
{
	if (raft_state(&n->raft) != RAFT_LEADER)
		return;
	struct raft_barrier *req = calloc(1, sizeof(*req));
	if (req && raft_barrier(&n->raft, req, nudge_cb) != 0)
		free(req);
}

static void apply_cb(struct raft_apply *req, int status, void *result)
{
	struct propose_req *p = (struct propose_req *)req;
	if (status == 0)
		nudge(p->n);
	if (p->cb)
		p->cb(p->data, status, status == 0 ? (int)(intptr_t)result : 0);
	free(p);
}

int ha_raft_propose(struct ha_raft *n, uint8_t *buf, size_t len, ha_raft_propose_cb cb, void *data)
{
	struct propose_req *p = calloc(1, sizeof(*p));
	if (p == NULL) {
		raft_free(buf);
		return HA_ENOMEM;
	}
	p->cb = cb;
	p->data = data;
	struct raft_buffer b = {.base = buf, .len = len};
	p->n = n;
	int rc = raft_apply(&n->raft, &p->req, &b, 1, apply_cb);
	if (rc != 0) {
		/* libraft 0.22 may already have put the entry in its in-memory log before a later
		 * step failed, and then frees it itself: freeing it here too was seen to
		 * double-free. Leak it instead (a rare error path; the propose is retried from
		 * fresh state). */
		ha_warn("raft-propose-failed", "error=\"%s\" detail=\"%s\"", raft_strerror(rc),
		        raft_errmsg(&n->raft));
		free(p);
		return HA_ERAFT;
	}
	return 0;
}

void ha_raft_on_applied(struct ha_raft *n, ha_raft_applied_cb cb, void *data)
{
	n->applied_cb = cb;
	n->applied_data = data;
}

unsigned ha_raft_election_timeout(struct ha_raft *n)
{
	return n->election_timeout;
}

bool ha_raft_ready(struct ha_raft *n)
{
	return n->ready && raft_state(&n->raft) == RAFT_LEADER;
}

bool ha_raft_is_leader(struct ha_raft *n)
{
	return raft_state(&n->raft) == RAFT_LEADER;
}

uint32_t ha_raft_leader_id(struct ha_raft *n)
{
	raft_id id;
	const char *addr;
	raft_leader(&n->raft, &id, &addr);
	return (uint32_t)id;
}

uint64_t ha_raft_ready_since(struct ha_raft *n)
{
	return ha_raft_ready(n) ? n->ready_since_ms : 0;
}

uint64_t ha_raft_lease_since(struct ha_raft *n)
{
	return ha_raft_ready(n) ? n->lease_since_ms : 0;
}

uint64_t ha_raft_term(struct ha_raft *n)
{
	return raft_current_term(&n->raft);
}

uint64_t ha_raft_commit_index(struct ha_raft *n)
{
	return raft_commit_index(&n->raft);
}

uint64_t ha_raft_applied_index(struct ha_raft *n)
{
	return raft_last_applied(&n->raft);
}

const struct ha_fsm_state *ha_raft_fsm(struct ha_raft *n)
{
	return &n->state;
}

/* ---- membership (docs/membership.md) ---- */

unsigned ha_raft_servers(struct ha_raft *n, struct ha_raft_server *out, unsigned max)
{
	const struct raft_configuration *c = &n->raft.configuration;
	unsigned k = 0;
	for (unsigned i = 0; i < c->n && k < max; i++) {
		out[k].id = (uint32_t)c->servers[i].id;
		out[k].role = c->servers[i].role;
		k++;
	}
	return k;
}

bool ha_raft_changing(struct ha_raft *n)
{
	return n->changing || n->raft.configuration_uncommitted_index != 0;
}

static void transfer_cb(struct raft_transfer *req);

/* hands leadership to raft id `to` (0: libraft's choice) */
static int transfer_to(struct ha_raft *n, raft_id to, struct ha_err *e)
{
	struct raft_transfer *req = calloc(1, sizeof(*req));
	if (req == NULL)
		return ha_err_set(e, HA_ENOMEM, "out of memory");
	int rc = raft_transfer(&n->raft, req, to, transfer_cb);
	if (rc != 0) {
		free(req);
		return ha_err_set(e, HA_ERAFT, "raft transfer: %s", raft_strerror(rc));
	}
	return 0;
}

/* consensus/raftconf.h: libraft 0.22's stale "uncommitted" configuration, put right from its log */
static void repair_config(struct ha_raft *n)
{
	struct ha_raftconf_fix fix;
	enum ha_raftconf_result rc = ha_raftconf_repair(&n->raft, n->changing, &fix);
	switch (rc) {
	case HA_RAFTCONF_NONE:
		n->unchecked_said = false;
		return;
	case HA_RAFTCONF_REPAIRED:
	case HA_RAFTCONF_REPLACED:
		ha_log(rc == HA_RAFTCONF_REPAIRED ? HA_LOG_INFO : HA_LOG_WARN,
		       "raft-config-repaired",
		       "record=%llu entry=%llu servers=%u action=\"%s\" why=\"libraft 0.22 "
		       "recorded a follower's configuration at its batch's first index\"",
		       (unsigned long long)fix.record, (unsigned long long)fix.index, fix.servers,
		       rc == HA_RAFTCONF_REPAIRED
		           ? "the committed configuration set from the log"
		           : "a configuration in no log replaced by the log's last one");
		return;
	case HA_RAFTCONF_LEADER_GHOST: {
		unsigned long long k;
		struct ha_err e = {0};
		if (ha_log_due(&n->ghost_log, &k))
			ha_error("raft-config-ghost",
			         "entry=%llu servers=%u action=\"hand leadership over\" "
			         "why=\"this leader's configuration is in no log (libraft 0.22)\" "
			         "count=%llu",
			         (unsigned long long)fix.index, fix.servers, k);
		transfer_to(n, fix.voter, &e);
		return;
	}
	case HA_RAFTCONF_UNCHECKED:
		if (!n->unchecked_said) {
			n->unchecked_said = true;
			ha_warn("raft-config-unchecked",
			        "record=%llu why=\"a configuration recorded as uncommitted could "
			        "not be checked against raft's log (libraft %d.%d)\"",
			        (unsigned long long)fix.record, RAFT_VERSION_MAJOR,
			        RAFT_VERSION_MINOR);
		}
		return;
	}
}

void ha_raft_tick(struct ha_raft *n)
{
	repair_config(n);
}

void ha_raft_change_state(struct ha_raft *n, char *out, size_t size)
{
	if (!ha_raft_changing(n)) {
		snprintf(out, size, "%s", "");
		return;
	}
	char flight[64] = "";
	if (n->changing)
		snprintf(flight, sizeof(flight), "a change in flight for %llu ms; ",
		         (unsigned long long)(ha_now_ms() - n->changing_ms));
	snprintf(out, size,
	         "%suncommitted configuration entry %llu, commit index %llu, last index %llu",
	         flight, (unsigned long long)n->raft.configuration_uncommitted_index,
	         (unsigned long long)raft_commit_index(&n->raft),
	         (unsigned long long)raft_last_index(&n->raft));
}

static void change_cb(struct raft_change *req, int status)
{
	struct ha_raft *n = req->data;
	free(req);
	n->changing = false;
	if (status != 0)
		ha_warn("raft-change-failed", "error=\"%s\"", raft_strerror(status));
	else
		ha_info("raft-change-done", "servers=%u", n->raft.configuration.n);
	if (n->applied_cb)
		n->applied_cb(n->applied_data);
}

int ha_raft_change(struct ha_raft *n, enum ha_raft_op op, uint32_t id, const char *address,
                   int role, struct ha_err *e)
{
	if (n->changing)
		return ha_err_set(e, HA_EBUSY, "a raft configuration change is under way");
	struct raft_change *req = calloc(1, sizeof(*req));
	if (req == NULL)
		return ha_err_set(e, HA_ENOMEM, "out of memory");
	req->data = n;
	int rc;
	switch (op) {
	case HA_RAFT_ADD:
		rc = raft_add(&n->raft, req, id, address, change_cb);
		break;
	case HA_RAFT_ASSIGN:
		rc = raft_assign(&n->raft, req, id, role, change_cb);
		break;
	default:
		rc = raft_remove(&n->raft, req, id, change_cb);
		break;
	}
	if (rc != 0 && op == HA_RAFT_ASSIGN && rc != RAFT_NOTLEADER && rc != RAFT_BADROLE &&
	    rc != RAFT_CANTCHANGE && rc != RAFT_NOTFOUND) {
		/* libraft 0.22's raft_assign takes the request before its last steps and keeps it
		 * when one of them fails: freeing it here would leave raft a dangling pointer. It
		 * ends through change_cb (at the latest when this leadership ends); until then no
		 * other change starts. */
		n->changing = true;
		n->changing_ms = ha_now_ms();
		return ha_err_set(e, HA_ERAFT,
		                  "raft assign of %u: %s (%s); held until raft ends it", id,
		                  raft_strerror(rc), raft_errmsg(&n->raft));
	}
	if (rc != 0) {
		free(req);
		return ha_err_set(e, HA_ERAFT, "raft %s of %u: %s (%s)",
		                  op == HA_RAFT_ADD      ? "add"
		                  : op == HA_RAFT_ASSIGN ? "assign"
		                                         : "remove",
		                  id, raft_strerror(rc), raft_errmsg(&n->raft));
	}
	n->changing = true;
	n->changing_ms = ha_now_ms();
	ha_info("raft-change", "op=%s id=%u role=%d",
	        op == HA_RAFT_ADD      ? "add"
	        : op == HA_RAFT_ASSIGN ? "assign"
	                               : "remove",
	        id, role);
	return 0;
}

static void transfer_cb(struct raft_transfer *req)
{
	free(req);
}

int ha_raft_transfer(struct ha_raft *n, struct ha_err *e)
{
	return transfer_to(n, 0, e);
}

void ha_raft_set_peers(struct ha_raft *n, const struct ha_config *c)
{
	if (n->tls)
		ha_transport_set_peers(&n->transport, c, false);
}
