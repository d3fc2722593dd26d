/* The binlog archive's head in the replicated state (fsm.h, struct ha_archive). */
#include <stdio.h>
#include <string.h>

#include "fsm_int.h"

int fsm_apply_archive_slice(struct ha_fsm_state *s, const Haagent__CmdArchiveSlice *c,
                            struct ha_err *e)
{
	struct ha_archive *a = &s->archive;
	if (c->name == NULL || c->name[0] == '\0' || c->seq == 0)
		return ha_err_set(e, HA_EINVAL, "fsm: archive slice without a name or number");
	/* only the slice that follows the head: a racing archiver's is an orphan */
	if (c->seq != a->seq + 1 || strcmp(c->prev ? c->prev : "", a->head) != 0)
		return HA_FSM_NOOP;
	struct ha_archive n = *a;
	if (fsm_copy_name(n.head, sizeof(n.head), c->name, "slice name", e) ||
	    fsm_copy_opt(n.node, sizeof(n.node), c->node, "archiver node", e))
		return HA_EINVAL;
	n.seq = c->seq;
	n.server_id = c->server_id;
	ha_fsm_backup_gtid(n.end_gtid, sizeof(n.end_gtid), c->end_gtid ? c->end_gtid : "");
	n.last_ts = c->last_ts;
	n.sealed_ms = c->unix_ms;
	n.slices++;
	n.bytes += c->bytes;
	n.txns += c->txns;
	bool gap = c->gap && c->gap[0];
	if (gap || c->seq == 1) {
		n.run_seq = c->seq;
		n.run_first_ts = c->first_ts;
		ha_fsm_backup_gtid(n.run_start_gtid, sizeof(n.run_start_gtid),
		                   c->start_gtid ? c->start_gtid : "");
	}
	if (gap) {
		n.gaps++;
		n.last_gap_ms = c->unix_ms;
		char t[sizeof(n.last_gap)];
		snprintf(n.last_gap, sizeof(n.last_gap), "%s", fsm_prose(t, sizeof(t), c->gap));
		fsm_add_event(s, "archive-gap", n.node, c->gap, c->unix_ms);
	}
	if (c->errant && c->errant[0]) {
		n.errant++;
		char t[sizeof(n.last_errant)];
		snprintf(n.last_errant, sizeof(n.last_errant), "%s",
		         fsm_prose(t, sizeof(t), c->errant));
		fsm_add_event(s, "archive-errant", n.node, c->errant, c->unix_ms);
	}
	*a = n;
	return HA_FSM_APPLIED;
}

int ha_fsm_cmd_archive_slice(const struct ha_slice_rec *r, uint64_t unix_ms, ha_alloc_fn alloc,
                             uint8_t **out, size_t *len)
{
	Haagent__CmdArchiveSlice c = HAAGENT__CMD_ARCHIVE_SLICE__INIT;
	c.prev = (char *)(r->prev ? r->prev : "");
	c.name = (char *)r->name;
	c.node = (char *)(r->node ? r->node : "");
	c.seq = r->seq;
	c.server_id = r->server_id;
	c.start_gtid = (char *)(r->start_gtid ? r->start_gtid : "");
	c.end_gtid = (char *)(r->end_gtid ? r->end_gtid : "");
	c.first_ts = r->first_ts;
	c.last_ts = r->last_ts;
	c.txns = r->txns;
	c.bytes = r->bytes;
	c.gap = (char *)(r->gap ? r->gap : "");
	c.errant = (char *)(r->errant ? r->errant : "");
	c.unix_ms = unix_ms;
	Haagent__FsmCommand cmd = HAAGENT__FSM_COMMAND__INIT;
	cmd.cmd_case = HAAGENT__FSM_COMMAND__CMD_ARCHIVE_SLICE;
	cmd.archive_slice = &c;
	return fsm_pack_cmd(&cmd, alloc, out, len);
}

void ha_fsm_archive_to_pb(const struct ha_archive *a, Haagent__ArchiveState *pb)
{
	haagent__archive_state__init(pb);
	pb->head = (char *)a->head;
	pb->seq = a->seq;
	pb->server_id = a->server_id;
	pb->end_gtid = (char *)a->end_gtid;
	pb->last_ts = a->last_ts;
	pb->sealed_unix_ms = a->sealed_ms;
	pb->slices = a->slices;
	pb->bytes = a->bytes;
	pb->txns = a->txns;
	pb->gaps = a->gaps;
	pb->last_gap = (char *)a->last_gap;
	pb->last_gap_unix_ms = a->last_gap_ms;
	pb->errant = a->errant;
	pb->last_errant = (char *)a->last_errant;
	pb->run_seq = a->run_seq;
	pb->run_start_gtid = (char *)a->run_start_gtid;
	pb->run_first_ts = a->run_first_ts;
	pb->node = (char *)a->node;
}

int fsm_archive_from_pb(const Haagent__ArchiveState *pb, struct ha_archive *a, struct ha_err *e)
{
	memset(a, 0, sizeof(*a));
	if (fsm_copy_opt(a->head, sizeof(a->head), pb->head, "archive head", e) ||
	    fsm_copy_opt(a->end_gtid, sizeof(a->end_gtid), pb->end_gtid, "archive end", e) ||
	    fsm_copy_opt(a->last_gap, sizeof(a->last_gap), pb->last_gap, "archive gap", e) ||
	    fsm_copy_opt(a->last_errant, sizeof(a->last_errant), pb->last_errant, "archive errant",
	                 e) ||
	    fsm_copy_opt(a->run_start_gtid, sizeof(a->run_start_gtid), pb->run_start_gtid,
	                 "archive run start", e) ||
	    fsm_copy_opt(a->node, sizeof(a->node), pb->node, "archive node", e))
		return HA_EINVAL;
	a->seq = pb->seq;
	a->server_id = pb->server_id;
	a->last_ts = pb->last_ts;
	a->sealed_ms = pb->sealed_unix_ms;
	a->slices = pb->slices;
	a->bytes = pb->bytes;
	a->txns = pb->txns;
	a->gaps = pb->gaps;
	a->last_gap_ms = pb->last_gap_unix_ms;
	a->errant = pb->errant;
	a->run_seq = pb->run_seq;
	a->run_first_ts = pb->run_first_ts;
	return 0;
}
