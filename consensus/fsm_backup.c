/* The replicated state: the backup catalog and the backup policy. */
#include "fsm_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int fsm_apply_backup_policy(struct ha_fsm_state *s, const Haagent__CmdSetBackupPolicy *c,
                            struct ha_err *e)
{
	struct ha_backup_policy p;
	if (fsm_policy_from_pb(c, &p, e))
		return HA_EINVAL;
	if (s->backup_policy.set && !memcmp(&p, &s->backup_policy, sizeof(p)))
		return HA_FSM_NOOP;
	s->backup_policy = p;
	char d[300];
	snprintf(d, sizeof(d),
	         "full '%s', differential '%s', incremental '%s', keep %u full, %u days", p.full,
	         p.differential, p.incremental, p.keep_full, p.keep_days);
	fsm_add_event(s, "backup-policy", "", d, c->unix_ms);
	return HA_FSM_APPLIED;
}

/* ---- backup catalog ---- */

const char *ha_backup_state_name(enum ha_backup_state st)
{
	switch (st) {
	case HA_BK_RUNNING:
		return "running";
	case HA_BK_DONE:
		return "done";
	case HA_BK_FAILED:
		return "failed";
	case HA_BK_ABANDONED:
		return "abandoned";
	case HA_BK_DELETED:
		return "deleted";
	}
	return "?";
}

/* The catalog is in ascending id order (appended in order, evicted in place, checked on
 * restore): a binary search. */
void ha_fsm_backup_gtid(char *out, size_t size, const char *gtid)
{
	if (ha_gtid_copy_text(out, size, gtid) != 0)
		snprintf(out, size, "(over %zu bytes: see the manifest)", size - 1);
}

const struct ha_backup_rec *ha_fsm_backup(const struct ha_fsm_state *s, uint64_t id)
{
	unsigned lo = 0, hi = s->n_backups;
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		if (s->backups[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < s->n_backups && s->backups[lo].id == id ? &s->backups[lo] : NULL;
}

const struct ha_backup_rec *ha_fsm_backup_running(const struct ha_fsm_state *s)
{
	for (unsigned i = 0; i < s->n_backups; i++)
		if (s->backups[i].state == HA_BK_RUNNING)
			return &s->backups[i];
	return NULL;
}

/* The oldest record nothing needs (failed, abandoned, or deleted and no recorded backup's
 * parent, so that retention can still find what a deleted full backup anchored), or -1. */
static int fsm_evictable(const struct ha_fsm_state *s)
{
	for (unsigned i = 0; i < s->n_backups; i++) {
		enum ha_backup_state st = s->backups[i].state;
		if (st == HA_BK_FAILED || st == HA_BK_ABANDONED)
			return (int)i;
		if (st != HA_BK_DELETED)
			continue;
		bool parent = false;
		for (unsigned k = i + 1; k < s->n_backups && !parent; k++)
			parent = s->backups[k].parent == s->backups[i].id &&
			         s->backups[k].state != HA_BK_DELETED;
		if (!parent)
			return (int)i;
	}
	return -1;
}

bool ha_fsm_backup_room(const struct ha_fsm_state *s)
{
	return s->n_backups < HA_FSM_MAX_BACKUPS || fsm_evictable(s) >= 0;
}

/* Makes room for one more record by dropping the oldest that nothing needs. Returns false
 * when every slot holds a backup that exists or is needed. */
static bool fsm_backup_room(struct ha_fsm_state *s)
{
	if (s->n_backups < HA_FSM_MAX_BACKUPS)
		return true;
	int i = fsm_evictable(s);
	if (i < 0)
		return false;
	memmove(&s->backups[i], &s->backups[i + 1],
	        sizeof(s->backups[0]) * (s->n_backups - (unsigned)i - 1));
	s->n_backups--;
	return true;
}

static bool fsm_valid_type(const char *t)
{
	return !strcmp(t, "full") || !strcmp(t, "differential") || !strcmp(t, "incremental");
}

int fsm_apply_backup_begin(struct ha_fsm_state *s, const Haagent__CmdBackupBegin *c,
                           struct ha_err *e)
{
	struct ha_backup_rec r;
	memset(&r, 0, sizeof(r));
	if (fsm_copy_str(r.name, sizeof(r.name), c->name, "backup name", e) ||
	    fsm_copy_str(r.type, sizeof(r.type), c->type, "backup type", e) ||
	    fsm_copy_opt(r.detail, sizeof(r.detail), c->detail, "backup detail", e))
		return HA_EINVAL;
	if (!fsm_valid_type(r.type) || ha_fsm_member(s, c->node) == NULL ||
	    !ha_name_valid(r.name)) /* it becomes a path in the repository */
		return ha_err_set(e, HA_EINVAL, "backup begin: bad type, node or name");
	if ((strcmp(r.type, "full") != 0) != (c->parent != 0))
		return ha_err_set(e, HA_EINVAL,
		                  "backup begin: a full backup has no parent, others do");
	if (c->expected_id != s->next_backup_id + 1 || ha_fsm_backup_running(s))
		return HA_FSM_NOOP;
	if (c->parent) {
		const struct ha_backup_rec *p = ha_fsm_backup(s, c->parent);
		if (p == NULL || p->state != HA_BK_DONE)
			return HA_FSM_NOOP;
	}
	if (!fsm_backup_room(s))
		return HA_FSM_NOOP;
	r.id = ++s->next_backup_id;
	r.parent = c->parent;
	r.node = c->node;
	r.on_primary = c->on_primary;
	r.state = HA_BK_RUNNING;
	r.requested_ms = c->unix_ms;
	s->backups[s->n_backups++] = r;
	fsm_add_event(s, "backup-begin", fsm_member_name(s, c->node), r.name, c->unix_ms);
	return HA_FSM_APPLIED;
}

bool ha_fsm_backup_in(const struct ha_backup_rec *r, const char *name)
{
	return ha_fsm_repos_has(r->repos, name);
}

bool ha_fsm_repos_has(const char *repos, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = repos; *p;) {
		const char *end = strchr(p, ',');
		size_t k = end ? (size_t)(end - p) : strlen(p);
		if (k == n && !strncmp(p, name, n))
			return true;
		if (!end)
			break;
		p = end + 1;
	}
	return false;
}

/* name appended to the record's list; an invalid name or one that would not fit is refused
 * (never cut). */
static int add_repo(struct ha_backup_rec *r, const char *name, struct ha_err *e)
{
	if (!ha_name_valid(name))
		return ha_err_set(e, HA_EINVAL, "backup copied: bad repository name");
	if (ha_fsm_backup_in(r, name))
		return HA_FSM_NOOP;
	size_t len = strlen(r->repos);
	if (len + strlen(name) + 2 > sizeof(r->repos))
		return ha_err_set(e, HA_EINVAL, "backup copied: too many repositories");
	snprintf(r->repos + len, sizeof(r->repos) - len, "%s%s", len ? "," : "", name);
	return HA_FSM_APPLIED;
}

int fsm_apply_backup_end(struct ha_fsm_state *s, const Haagent__CmdBackupEnd *c, struct ha_err *e)
{
	struct ha_backup_rec *r = (struct ha_backup_rec *)ha_fsm_backup(s, c->id);
	char detail[256], gtid[HA_FSM_TEXT_MAX], instance[HA_INSTANCE_MAX], sha[65];
	if (fsm_copy_opt(detail, sizeof(detail), c->detail, "detail", e) ||
	    fsm_copy_opt(gtid, sizeof(gtid), c->gtid, "gtid", e) ||
	    fsm_copy_opt(instance, sizeof(instance), c->instance, "instance", e) ||
	    fsm_copy_opt(sha, sizeof(sha), c->manifest_sha, "manifest hash", e))
		return HA_EINVAL;
	if (c->state != HA_BK_DONE && c->state != HA_BK_FAILED && c->state != HA_BK_ABANDONED)
		return ha_err_set(e, HA_EINVAL, "backup end: bad state %u", c->state);
	if (r == NULL || r->state != HA_BK_RUNNING)
		return HA_FSM_NOOP;
	r->state = (enum ha_backup_state)c->state;
	memcpy(r->detail, detail, sizeof(detail));
	r->finished_ms = c->finished_unix_ms;
	r->started_ms = c->started_unix_ms;
	if (r->state == HA_BK_DONE) {
		r->from_lsn = c->from_lsn;
		r->to_lsn = c->to_lsn;
		memcpy(r->gtid, gtid, sizeof(gtid));
		r->bytes_in = c->bytes_in;
		r->bytes_stored = c->bytes_stored;
		r->chunks = c->chunks;
		r->server_id = c->server_id;
		memcpy(r->instance, instance, sizeof(instance));
		memcpy(r->manifest_sha, sha, sizeof(sha));
		r->repos[0] = '\0';
		struct ha_err ae = {
		    0}; /* a bad name: none recorded, the copier finds where it is */
		if (c->repository && c->repository[0])
			add_repo(r, c->repository, &ae);
	}
	fsm_add_event(s,
	              r->state == HA_BK_DONE     ? "backup-done"
	              : r->state == HA_BK_FAILED ? "backup-failed"
	                                         : "backup-abandoned",
	              fsm_member_name(s, r->node), r->state == HA_BK_DONE ? r->name : detail,
	              c->finished_unix_ms);
	return HA_FSM_APPLIED;
}

/* name taken out of the record's list (the others keep their order). */
static int drop_repo(struct ha_backup_rec *r, const char *name)
{
	if (!ha_fsm_backup_in(r, name))
		return HA_FSM_NOOP;
	char kept[sizeof(r->repos)] = "";
	size_t n = strlen(name), len = 0;
	for (const char *p = r->repos; *p;) {
		const char *end = strchr(p, ',');
		size_t k = end ? (size_t)(end - p) : strlen(p);
		if (!(k == n && !strncmp(p, name, n)))
			len += (size_t)snprintf(kept + len, sizeof(kept) - len, "%s%.*s",
			                        len ? "," : "", (int)k, p);
		p += k + (end != NULL);
	}
	memcpy(r->repos, kept, sizeof(kept));
	return HA_FSM_APPLIED;
}

int fsm_apply_backup_copied(struct ha_fsm_state *s, const Haagent__CmdBackupCopied *c,
                            struct ha_err *e)
{
	struct ha_backup_rec *r = (struct ha_backup_rec *)ha_fsm_backup(s, c->id);
	if (c->repository == NULL || c->repository[0] == '\0')
		return ha_err_set(e, HA_EINVAL, "backup copied: no repository");
	if (r == NULL || r->state != HA_BK_DONE)
		return HA_FSM_NOOP;
	return c->removed ? drop_repo(r, c->repository) : add_repo(r, c->repository, e);
}

int ha_fsm_cmd_backup_copied(uint64_t id, const char *repository, bool removed, ha_alloc_fn alloc,
                             uint8_t **out, size_t *len)
{
	Haagent__CmdBackupCopied c = HAAGENT__CMD_BACKUP_COPIED__INIT;
	c.id = id;
	c.repository = (char *)repository;
	c.removed = removed;
	Haagent__FsmCommand cmd = HAAGENT__FSM_COMMAND__INIT;
	cmd.cmd_case = HAAGENT__FSM_COMMAND__CMD_BACKUP_COPIED;
	cmd.backup_copied = &c;
	return fsm_pack_cmd(&cmd, alloc, out, len);
}

int fsm_apply_backup_hold(struct ha_fsm_state *s, const Haagent__CmdBackupHold *c)
{
	struct ha_backup_rec *r = (struct ha_backup_rec *)ha_fsm_backup(s, c->id);
	if (r == NULL || r->state != HA_BK_DONE || c->until_unix_ms <= r->held_until_ms)
		return HA_FSM_NOOP;
	r->held_until_ms = c->until_unix_ms;
	return HA_FSM_APPLIED;
}

int ha_fsm_cmd_backup_hold(uint64_t id, uint64_t until_unix_ms, ha_alloc_fn alloc, uint8_t **out,
                           size_t *len)
{
	Haagent__CmdBackupHold c = HAAGENT__CMD_BACKUP_HOLD__INIT;
	c.id = id;
	c.until_unix_ms = until_unix_ms;
	Haagent__FsmCommand cmd = HAAGENT__FSM_COMMAND__INIT;
	cmd.cmd_case = HAAGENT__FSM_COMMAND__CMD_BACKUP_HOLD;
	cmd.backup_hold = &c;
	return fsm_pack_cmd(&cmd, alloc, out, len);
}

int fsm_apply_backup_verified(struct ha_fsm_state *s, const Haagent__CmdBackupVerified *c,
                              struct ha_err *e)
{
	struct ha_backup_rec *r = (struct ha_backup_rec *)ha_fsm_backup(s, c->id);
	char detail[256];
	if (fsm_copy_opt(detail, sizeof(detail), c->detail, "detail", e))
		return HA_EINVAL;
	if (r == NULL || r->state != HA_BK_DONE)
		return HA_FSM_NOOP;
	r->verified = c->ok ? 1 : -1;
	r->verified_ms = c->unix_ms;
	r->drilled = c->drill;
	r->drill_ms = c->drill_ms;
	memcpy(r->verify_detail, detail, sizeof(detail));
	fsm_add_event(s, c->ok ? "backup-verified" : "backup-verify-failed", "", r->name,
	              c->unix_ms);
	return HA_FSM_APPLIED;
}

/* Whether backup id, or a backup whose chain goes through it, is held at unix_ms: a reader's
 * hold committed between retention's decision and its command wins. */
static bool held(const struct ha_fsm_state *s, uint64_t id, uint64_t unix_ms)
{
	for (unsigned i = 0; i < s->n_backups; i++) {
		const struct ha_backup_rec *x = &s->backups[i];
		if (x->held_until_ms <= unix_ms)
			continue;
		for (unsigned hops = 0; x && hops <= s->n_backups; hops++) {
			if (x->id == id)
				return true;
			x = x->parent ? ha_fsm_backup(s, x->parent) : NULL;
		}
	}
	return false;
}

int fsm_apply_backup_deleted(struct ha_fsm_state *s, const Haagent__CmdBackupDeleted *c)
{
	struct ha_backup_rec *r = (struct ha_backup_rec *)ha_fsm_backup(s, c->id);
	if (r == NULL || r->state == HA_BK_RUNNING || r->state == HA_BK_DELETED ||
	    held(s, c->id, c->unix_ms))
		return HA_FSM_NOOP;
	r->state = HA_BK_DELETED;
	fsm_add_event(s, "backup-deleted", "", r->name, c->unix_ms);
	return HA_FSM_APPLIED;
}

int ha_fsm_cmd_backup_begin(const struct ha_bk_begin *b, ha_alloc_fn alloc, uint8_t **out,
                            size_t *len)
{
	Haagent__CmdBackupBegin c = HAAGENT__CMD_BACKUP_BEGIN__INIT;
	c.expected_id = b->expected_id;
	c.name = (char *)b->name;
	c.type = (char *)b->type;
	c.parent = b->parent;
	c.node = b->node;
	c.detail = (char *)(b->detail ? b->detail : "");
	c.unix_ms = b->unix_ms;
	c.on_primary = b->on_primary;
	Haagent__FsmCommand cmd = HAAGENT__FSM_COMMAND__INIT;
	cmd.cmd_case = HAAGENT__FSM_COMMAND__CMD_BACKUP_BEGIN;
	cmd.backup_begin = &c;
	return fsm_pack_cmd(&cmd, alloc, out, len);
}

int ha_fsm_cmd_backup_end(uint64_t id, enum ha_backup_state state, const char *detail,
                          const struct ha_backup_rec *res, uint64_t unix_ms, ha_alloc_fn alloc,
                          uint8_t **out, size_t *len)
{
	Haagent__CmdBackupEnd c = HAAGENT__CMD_BACKUP_END__INIT;
	c.id = id;
	c.state = state;
	c.detail = (char *)(detail ? detail : "");
	c.finished_unix_ms = unix_ms;
	c.gtid = "";
	c.instance = "";
	c.manifest_sha = "";
	c.repository = "";
	if (res) {
		c.started_unix_ms = res->started_ms;
		if (res->finished_ms)
			c.finished_unix_ms = res->finished_ms;
		c.from_lsn = res->from_lsn;
		c.to_lsn = res->to_lsn;
		c.gtid = (char *)res->gtid;
		c.bytes_in = res->bytes_in;
		c.bytes_stored = res->bytes_stored;
		c.chunks = res->chunks;
		c.server_id = res->server_id;
		c.instance = (char *)res->instance;
		c.manifest_sha = (char *)res->manifest_sha;
		c.repository = (char *)res->repos;
	}
	Haagent__FsmCommand cmd = HAAGENT__FSM_COMMAND__INIT;
	cmd.cmd_case = HAAGENT__FSM_COMMAND__CMD_BACKUP_END;
	cmd.backup_end = &c;
	return fsm_pack_cmd(&cmd, alloc, out, len);
}

int ha_fsm_cmd_backup_verified(uint64_t id, bool ok, bool drill, const char *detail,
                               uint64_t drill_ms, uint64_t unix_ms, ha_alloc_fn alloc,
                               uint8_t **out, size_t *len)
{
	Haagent__CmdBackupVerified c = HAAGENT__CMD_BACKUP_VERIFIED__INIT;
	c.id = id;
	c.ok = ok;
	c.drill = drill;
	c.detail = (char *)(detail ? detail : "");
	c.drill_ms = drill_ms;
	c.unix_ms = unix_ms;
	Haagent__FsmCommand cmd = HAAGENT__FSM_COMMAND__INIT;
	cmd.cmd_case = HAAGENT__FSM_COMMAND__CMD_BACKUP_VERIFIED;
	cmd.backup_verified = &c;
	return fsm_pack_cmd(&cmd, alloc, out, len);
}

int ha_fsm_cmd_backup_deleted(uint64_t id, uint64_t unix_ms, ha_alloc_fn alloc, uint8_t **out,
                              size_t *len)
{
	Haagent__CmdBackupDeleted c = HAAGENT__CMD_BACKUP_DELETED__INIT;
	c.id = id;
	c.unix_ms = unix_ms;
	Haagent__FsmCommand cmd = HAAGENT__FSM_COMMAND__INIT;
	cmd.cmd_case = HAAGENT__FSM_COMMAND__CMD_BACKUP_DELETED;
	cmd.backup_deleted = &c;
	return fsm_pack_cmd(&cmd, alloc, out, len);
}

void ha_fsm_backup_to_pb(const struct ha_backup_rec *r, Haagent__BackupRecord *pb)
{
	haagent__backup_record__init(pb);
	pb->id = r->id;
	pb->name = (char *)r->name;
	pb->type = (char *)r->type;
	pb->parent = r->parent;
	pb->node = r->node;
	pb->state = r->state;
	pb->requested_unix_ms = r->requested_ms;
	pb->started_unix_ms = r->started_ms;
	pb->finished_unix_ms = r->finished_ms;
	pb->from_lsn = r->from_lsn;
	pb->to_lsn = r->to_lsn;
	pb->gtid = (char *)r->gtid;
	pb->bytes_in = r->bytes_in;
	pb->bytes_stored = r->bytes_stored;
	pb->chunks = r->chunks;
	pb->detail = (char *)r->detail;
	pb->verified = r->verified;
	pb->verified_unix_ms = r->verified_ms;
	pb->verify_detail = (char *)r->verify_detail;
	pb->drill_ms = r->drill_ms;
	pb->drilled = r->drilled;
	pb->on_primary = r->on_primary;
	pb->server_id = r->server_id;
	pb->instance = (char *)r->instance;
	pb->manifest_sha = (char *)r->manifest_sha;
	pb->repositories = (char *)r->repos;
	pb->held_until_unix_ms = r->held_until_ms;
}

int fsm_backup_from_pb(const Haagent__BackupRecord *pb, struct ha_backup_rec *r, struct ha_err *e)
{
	memset(r, 0, sizeof(*r));
	if (fsm_copy_name(r->name, sizeof(r->name), pb->name, "backup name", e) ||
	    fsm_copy_str(r->type, sizeof(r->type), pb->type, "backup type", e) ||
	    fsm_copy_opt(r->gtid, sizeof(r->gtid), pb->gtid, "backup gtid", e) ||
	    fsm_copy_opt(r->detail, sizeof(r->detail), pb->detail, "backup detail", e) ||
	    fsm_copy_opt(r->verify_detail, sizeof(r->verify_detail), pb->verify_detail, "verify",
	                 e) ||
	    fsm_copy_opt(r->instance, sizeof(r->instance), pb->instance, "backup instance", e) ||
	    fsm_copy_opt(r->manifest_sha, sizeof(r->manifest_sha), pb->manifest_sha,
	                 "backup manifest hash", e) ||
	    fsm_copy_opt(r->repos, sizeof(r->repos), pb->repositories, "backup repositories", e))
		return HA_EINVAL;
	if (pb->state < HA_BK_RUNNING || pb->state > HA_BK_DELETED || !fsm_valid_type(r->type))
		return ha_err_set(e, HA_EINVAL, "snapshot: bad backup record %llu",
		                  (unsigned long long)pb->id);
	r->id = pb->id;
	r->parent = pb->parent;
	r->node = pb->node;
	r->state = (enum ha_backup_state)pb->state;
	r->requested_ms = pb->requested_unix_ms;
	r->started_ms = pb->started_unix_ms;
	r->finished_ms = pb->finished_unix_ms;
	r->from_lsn = pb->from_lsn;
	r->to_lsn = pb->to_lsn;
	r->bytes_in = pb->bytes_in;
	r->bytes_stored = pb->bytes_stored;
	r->chunks = pb->chunks;
	r->verified = pb->verified;
	r->verified_ms = pb->verified_unix_ms;
	r->drill_ms = pb->drill_ms;
	r->drilled = pb->drilled;
	r->server_id = pb->server_id;
	r->held_until_ms = pb->held_until_unix_ms;
	r->on_primary = pb->on_primary;
	return 0;
}

int fsm_policy_from_pb(const Haagent__CmdSetBackupPolicy *c, struct ha_backup_policy *p,
                       struct ha_err *e)
{
	memset(p, 0, sizeof(*p));
	if (fsm_copy_opt(p->full, sizeof(p->full), c->full, "full schedule", e) ||
	    fsm_copy_opt(p->differential, sizeof(p->differential), c->differential,
	                 "differential schedule", e) ||
	    fsm_copy_opt(p->incremental, sizeof(p->incremental), c->incremental,
	                 "incremental schedule", e))
		return HA_EINVAL;
	p->set = true;
	p->keep_full = c->keep_full;
	p->keep_days = c->keep_days;
	return 0;
}

int ha_fsm_cmd_set_backup_policy(const struct ha_backup_policy *p, uint64_t unix_ms,
                                 ha_alloc_fn alloc, uint8_t **out, size_t *len)
{
	Haagent__CmdSetBackupPolicy c = HAAGENT__CMD_SET_BACKUP_POLICY__INIT;
	c.full = (char *)p->full;
	c.differential = (char *)p->differential;
	c.incremental = (char *)p->incremental;
	c.keep_full = p->keep_full;
	c.keep_days = p->keep_days;
	c.unix_ms = unix_ms;
	Haagent__FsmCommand cmd = HAAGENT__FSM_COMMAND__INIT;
	cmd.cmd_case = HAAGENT__FSM_COMMAND__CMD_SET_BACKUP_POLICY;
	cmd.set_backup_policy = &c;
	return fsm_pack_cmd(&cmd, alloc, out, len);
}
