/* The replicated state machine: membership, the current primary and the epoch.
 *
 * Pure and deterministic: no I/O, no clock, no randomness. Commands and snapshots are protobuf
 * (proto/haagent.proto: FsmCommand, FsmSnapshot) and are decoded as hostile input: a command that
 * does not decode or does not validate leaves the state unchanged and returns an error, the same on
 * every node. Commands are idempotent, because RAFT_LEADERSHIPLOST does not mean that an entry was
 * not committed and a new coordinator may propose the same decision again.
 *
 * Loop thread only (raft calls apply/snapshot/restore there). */
#ifndef HA_FSM_H
#define HA_FSM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../agent/common/err.h"
#include "../agent/common/gtid.h"

#define HA_FSM_MAX_MEMBERS 9
#define HA_FSM_NAME_MAX    64
#define HA_FSM_MAX_EVENTS  64
#define HA_FSM_TEXT_MAX    512
/* a datadir instance label: 32 hexadecimal digits (agent/db/instance.h) */
#define HA_INSTANCE_MAX 33
#define HA_FSM_GTID_MAX HA_GTID_TEXT_MAX /* any GTID position that parses */

enum {
	HA_MEMBER_MAINTENANCE = 1 << 0,
	HA_MEMBER_NO_PROMOTE = 1 << 1,
	HA_MEMBER_DIVERGED = 1 << 2,
	/* added by haadm node add; a raft non-voter until its database replicates (CmdMemberJoined)
	 */
	HA_MEMBER_JOINING = 1 << 3,
};

/* One server of raft's configuration, as consensus/node.c reads it (the members above are what
 * it should be: agent/coord/members.h). */
struct ha_raft_server {
	uint32_t id;
	int role; /* RAFT_VOTER, RAFT_STANDBY, RAFT_SPARE */
};

struct ha_member {
	uint32_t id;
	char name[HA_FSM_NAME_MAX];
	char address[HA_FSM_NAME_MAX];
	unsigned raft_port, rpc_port, db_port;
	uint32_t flags;
	uint32_t priority;
	char errant_gtid[HA_FSM_GTID_MAX];
};

/* Failover phases. Forward only; DONE and ABORTED are final. */
enum ha_fo_phase {
	HA_FO_NONE = 0,
	HA_FO_BEGIN = 1,     /* epoch bumped, no primary: the old primary is being fenced */
	HA_FO_FENCED = 2,    /* the old primary cannot write: positions are being collected */
	HA_FO_PROMOTING = 3, /* the candidate is recorded as primary and is being made writable */
	HA_FO_DONE = 4,
	HA_FO_ABORTED = 5,
};

enum ha_fo_salvage {
	HA_SALVAGE_NONE = 0,
	HA_SALVAGE_WANTED = 1, /* the old primary's agent applies; the candidate waits */
	HA_SALVAGE_DONE = 2,
	HA_SALVAGE_FAILED = 3, /* or timed out, or the agent went silent: nothing more waited */
};

struct ha_failover {
	uint64_t id;
	enum ha_fo_phase phase;
	uint32_t old_primary;
	uint32_t candidate;
	uint64_t epoch;
	bool planned;
	char reason[256];
	uint64_t begin_ms, fenced_ms, promoting_ms,
	    done_ms; /* leader's wall clock, from commands */
	char fenced_by[256];
	char lost_gtid[HA_FSM_GTID_MAX];
	uint64_t lost_count;
	char detail[256];
	/* planned switchovers */
	uint32_t target;                   /* the node to promote */
	uint32_t timeout_ms;               /* fencing + catch-up budget before rolling back */
	uint32_t grace_ms;                 /* drain time on the old primary */
	char fenced_gtid[HA_FSM_GTID_MAX]; /* the old primary's final position */
	/* RPO 0 by default: the candidate applies its whole relay log before it turns writable.
	 * accept_loss: an operator (or the configured ceiling) gave up the rest; lost_gtid then
	 * holds what may be given up until DONE records what was. */
	bool accept_loss;
	char received_gtid[HA_FSM_GTID_MAX]; /* PROMOTING: the candidate applies all of it */
	char owed_gtid[HA_FSM_GTID_MAX];     /* from a superseded failover: its candidate's */
	/* Salvage: a crashed primary's binlog may hold transactions no replica received; its
	 * agent applies them to the candidate, which waits while salvage is WANTED. */
	enum ha_fo_salvage salvage;
	char salvaged_gtid[HA_FSM_GTID_MAX];
	uint64_t salvaged_count;
	char salvage_detail[256];
};

#define HA_FSM_REPOS_TEXT  260 /* four repository names of up to 63 characters, commas */
#define HA_FSM_MAX_BACKUPS 512 /* the catalog: every record fits one 1 MiB RPC frame */

enum ha_backup_state {
	HA_BK_RUNNING = 1,
	HA_BK_DONE = 2,
	HA_BK_FAILED = 3,
	HA_BK_ABANDONED = 4,
	HA_BK_DELETED = 5,
};

struct ha_backup_rec {
	uint64_t id;
	char name[96];
	char type[16];
	uint64_t parent;
	uint32_t node;
	enum ha_backup_state state;
	uint64_t requested_ms, started_ms, finished_ms;
	uint64_t from_lsn, to_lsn;
	char gtid[HA_FSM_TEXT_MAX];
	uint64_t bytes_in, bytes_stored;
	uint32_t chunks;
	char detail[256];
	int verified; /* 0 never, 1 passed, -1 failed */
	bool drilled;
	uint64_t verified_ms, drill_ms;
	char verify_detail[256];
	bool on_primary; /* placed on the primary (last resort): its being primary is no reason to
	                    abandon it */
	/* the server it was taken from: an incremental or differential comes from the same one */
	uint32_t server_id;
	char instance[HA_INSTANCE_MAX]; /* its datadir's label ("" unknown) */
	char manifest_sha[65];          /* SHA-256 of its manifest file ("" unknown) */
	uint64_t held_until_ms;         /* retention keeps it and its chain until then (a reader) */
	char repos[HA_FSM_REPOS_TEXT];  /* where it is complete: "name,name" ("" before 14) */
};

/* The binlog archive's head (docs/backup.md): the newest committed slice, and the unbroken run
 * of slices that ends there. Texts for display; the slices' manifests hold the exact
 * positions. */
struct ha_archive {
	char head[96]; /* "" never ran */
	uint64_t seq;
	uint32_t server_id;
	char end_gtid[HA_FSM_TEXT_MAX];
	uint64_t last_ts, sealed_ms;
	uint64_t slices, bytes, txns;
	uint64_t gaps, last_gap_ms;
	char last_gap[256];
	uint64_t errant;
	char last_errant[256];
	uint64_t run_seq, run_first_ts;
	char run_start_gtid[HA_FSM_TEXT_MAX];
	char node[HA_FSM_NAME_MAX]; /* the archiver's */
};

struct ha_event {
	uint64_t seq;
	uint64_t unix_ms;
	uint64_t epoch;
	char name[48];
	char node[HA_FSM_NAME_MAX];
	char detail[256];
};

struct ha_fsm_state {
	char cluster[HA_FSM_NAME_MAX];
	struct ha_member members[HA_FSM_MAX_MEMBERS];
	unsigned n_members;
	uint32_t
	    primary_id; /* 0: not established, or a failover is between fencing and promotion */
	uint64_t epoch; /* bumped by every change of primary; the fencing token */
	char primary_reason[256];
	/* the primary reported itself writable at this epoch (CmdPrimaryWritable, or a failover's
	 * done): its server read-only again at this epoch means it restarted */
	uint64_t primary_writable_epoch;
	uint64_t applied_commands;
	struct ha_failover failover; /* the current or the last one (id 0: never) */
	uint64_t next_failover_id;
	struct ha_event events[HA_FSM_MAX_EVENTS]; /* oldest first */
	unsigned n_events;
	uint64_t next_event_seq;
	bool paused; /* automatic failover paused by an operator */
	char pause_reason[256];
	uint64_t failovers_done, switchovers_done, aborted; /* counters, for metrics */
	struct ha_backup_rec backups[HA_FSM_MAX_BACKUPS];   /* the catalog, oldest first */
	unsigned n_backups;
	uint64_t next_backup_id;
	struct ha_backup_policy {
		bool set; /* false: the coordinator's configuration applies */
		char full[64], differential[64], incremental[64];
		unsigned keep_full, keep_days;
	} backup_policy;
	struct ha_archive archive;
};

/* A backup's GTID position for its catalog record, whole, or, when longer than the record keeps
 * (the whole catalog fits one RPC frame), a text that does not parse: whatever reads it (a
 * re-clone's checks) then refuses it instead of acting on a position with domains cut off. The
 * manifest keeps the whole position. */
void ha_fsm_backup_gtid(char *out, size_t size, const char *gtid);

const struct ha_backup_rec *ha_fsm_backup(const struct ha_fsm_state *s, uint64_t id);
/* Whether the catalog can take one more record (it is full only of backups that exist or
 * that an existing one builds on). */
bool ha_fsm_backup_room(const struct ha_fsm_state *s);
/* The running backup job, or NULL. */
const struct ha_backup_rec *ha_fsm_backup_running(const struct ha_fsm_state *s);
const char *ha_backup_state_name(enum ha_backup_state st);

/* True while a failover is between BEGIN and PROMOTING. */
bool ha_fsm_failover_active(const struct ha_fsm_state *s);
const char *ha_fo_phase_name(enum ha_fo_phase p);

enum ha_fsm_result {
	HA_FSM_APPLIED = 1, /* the state changed */
	HA_FSM_NOOP = 2,    /* valid but already applied or superseded (stale epoch) */
};

void ha_fsm_init(struct ha_fsm_state *s);

/* Applies one encoded command (an 8-byte header, an FsmCommand, padding to a multiple of 8).
 * Returns HA_FSM_APPLIED, HA_FSM_NOOP, or a negative HA_E... code (state unchanged). */
int ha_fsm_apply(struct ha_fsm_state *s, const uint8_t *buf, size_t len, struct ha_err *e);

/* Command encoders. On success *out is malloc'd (free() it) or, when alloc is given, allocated by
 * alloc (raft_malloc for raft_apply). */
typedef void *(*ha_alloc_fn)(size_t);
int ha_fsm_cmd_init_members(const char *cluster, const struct ha_member *m, unsigned n,
                            ha_alloc_fn alloc, uint8_t **out, size_t *len);
int ha_fsm_cmd_set_primary(uint64_t expected_epoch, uint32_t primary_id, const char *reason,
                           ha_alloc_fn alloc, uint8_t **out, size_t *len);

/* A failover (planned false) or a planned switchover to target, with its budget and drain time.
 * A failover whose candidate died while PROMOTING is superseded by a new one whose old primary
 * is that candidate (same compare-and-set on the epoch): the bounded exit of PROMOTING. */
struct ha_fo_begin {
	uint64_t expected_epoch;
	uint32_t old_primary;
	const char *reason;
	uint64_t unix_ms;
	bool planned;
	uint32_t target, timeout_ms, grace_ms; /* planned only */
};
int ha_fsm_cmd_failover_begin(const struct ha_fo_begin *b, ha_alloc_fn alloc, uint8_t **out,
                              size_t *len);
/* fields used per phase: FENCED fenced_by; PROMOTING candidate, lost_gtid, lost_count, detail;
 * DONE detail, and lost_gtid/lost_count when they are known only then (accept_loss);
 * ABORTED candidate (who is primary afterwards, 0 for none) and detail. With accept_loss set
 * and phase PROMOTING (the current phase): the candidate stops applying its relay log, and
 * lost_gtid/lost_count are what is given up at most. */
struct ha_fo_advance {
	uint64_t id;
	enum ha_fo_phase phase;
	uint32_t candidate;
	uint64_t unix_ms;
	const char *fenced_by, *lost_gtid, *detail;
	uint64_t lost_count;
	const char *fenced_gtid;   /* FENCED */
	const char *received_gtid; /* PROMOTING */
	bool accept_loss;
	/* PROMOTING: HA_SALVAGE_WANTED or 0. With phase = PROMOTING (current): DONE or FAILED,
	 * salvaged_gtid/count, detail, and lost_gtid/lost_count recomputed. */
	enum ha_fo_salvage salvage;
	const char *salvaged_gtid;
	uint64_t salvaged_count;
};
int ha_fsm_cmd_failover_advance(const struct ha_fo_advance *a, ha_alloc_fn alloc, uint8_t **out,
                                size_t *len);
int ha_fsm_cmd_node_diverged(uint32_t node, bool diverged, const char *errant, uint64_t unix_ms,
                             ha_alloc_fn alloc, uint8_t **out, size_t *len);
int ha_fsm_cmd_set_maintenance(uint32_t node, bool on, uint64_t unix_ms, ha_alloc_fn alloc,
                               uint8_t **out, size_t *len);
int ha_fsm_cmd_primary_writable(uint64_t epoch, uint32_t primary_id, ha_alloc_fn alloc,
                                uint8_t **out, size_t *len);
/* Membership changes (docs/membership.md). */
int ha_fsm_cmd_member_add(const struct ha_member *m, uint64_t unix_ms, ha_alloc_fn alloc,
                          uint8_t **out, size_t *len);
int ha_fsm_cmd_member_remove(uint32_t node, const char *reason, uint64_t unix_ms, ha_alloc_fn alloc,
                             uint8_t **out, size_t *len);
int ha_fsm_cmd_member_joined(uint32_t node, uint64_t unix_ms, ha_alloc_fn alloc, uint8_t **out,
                             size_t *len);
/* The member now joining (HA_MEMBER_JOINING), or NULL. */
const struct ha_member *ha_fsm_joining(const struct ha_fsm_state *s);
/* Members that vote in raft (every member but one joining). */
unsigned ha_fsm_voters(const struct ha_fsm_state *s);
int ha_fsm_cmd_set_paused(bool paused, const char *reason, uint64_t unix_ms, ha_alloc_fn alloc,
                          uint8_t **out, size_t *len);
struct ha_bk_begin {
	uint64_t expected_id;
	const char *name, *type, *detail;
	uint64_t parent;
	uint32_t node;
	bool on_primary; /* node is the primary (last resort) */
	uint64_t unix_ms;
};
int ha_fsm_cmd_backup_begin(const struct ha_bk_begin *b, ha_alloc_fn alloc, uint8_t **out,
                            size_t *len);
/* state DONE carries the results (from rec: started/finished, lsns, gtid, sizes, chunks) */
int ha_fsm_cmd_backup_end(uint64_t id, enum ha_backup_state state, const char *detail,
                          const struct ha_backup_rec *results, uint64_t unix_ms, ha_alloc_fn alloc,
                          uint8_t **out, size_t *len);
/* Backup id is complete in repository too (the copier's, agent/copier.c); removed: no longer
 * there (that repository's own retention). */
int ha_fsm_cmd_backup_copied(uint64_t id, const char *repository, bool removed, ha_alloc_fn alloc,
                             uint8_t **out, size_t *len);
/* Is the backup complete in repository name (its record's list)? _repos_has: the same
 * question of such a list ("a,b") held elsewhere. */
bool ha_fsm_backup_in(const struct ha_backup_rec *r, const char *name);
bool ha_fsm_repos_has(const char *repos, const char *name);
int ha_fsm_cmd_backup_hold(uint64_t id, uint64_t until_unix_ms, ha_alloc_fn alloc, uint8_t **out,
                           size_t *len);
int ha_fsm_cmd_backup_verified(uint64_t id, bool ok, bool drill, const char *detail,
                               uint64_t drill_ms, uint64_t unix_ms, ha_alloc_fn alloc,
                               uint8_t **out, size_t *len);
int ha_fsm_cmd_set_backup_policy(const struct ha_backup_policy *p, uint64_t unix_ms,
                                 ha_alloc_fn alloc, uint8_t **out, size_t *len);
int ha_fsm_cmd_backup_deleted(uint64_t id, uint64_t unix_ms, ha_alloc_fn alloc, uint8_t **out,
                              size_t *len);
struct ha_slice_rec {
	const char *prev, *name, *node;
	uint64_t seq;
	uint32_t server_id;
	const char *start_gtid, *end_gtid;
	uint64_t first_ts, last_ts, txns, bytes;
	const char *gap, *errant;
};
int ha_fsm_cmd_archive_slice(const struct ha_slice_rec *r, uint64_t unix_ms, ha_alloc_fn alloc,
                             uint8_t **out, size_t *len);
struct Haagent__ArchiveState;
void ha_fsm_archive_to_pb(const struct ha_archive *a, struct Haagent__ArchiveState *pb);

struct Haagent__BackupRecord;
void ha_fsm_backup_to_pb(const struct ha_backup_rec *r, struct Haagent__BackupRecord *pb);

int ha_fsm_cmd_event(const char *name, const char *node, const char *detail, uint64_t unix_ms,
                     ha_alloc_fn alloc, uint8_t **out, size_t *len);

/* Snapshot encode (allocated by alloc, or malloc when NULL) and restore (replaces *s only when
 * the whole snapshot decodes and validates). */
int ha_fsm_snapshot(const struct ha_fsm_state *s, ha_alloc_fn alloc, uint8_t **out, size_t *len);
int ha_fsm_restore(struct ha_fsm_state *s, const uint8_t *buf, size_t len, struct ha_err *e);

const struct ha_member *ha_fsm_member(const struct ha_fsm_state *s, uint32_t id);

/* Conversions for status answers; the protobuf points into the C struct (no copies). */
struct Haagent__Failover;
struct Haagent__Event;
void ha_fsm_failover_to_pb(const struct ha_failover *f, struct Haagent__Failover *pb);
void ha_fsm_event_to_pb(const struct ha_event *ev, struct Haagent__Event *pb);

#endif
