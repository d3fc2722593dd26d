/* haadm backup run|list|show|policy|verify. The catalog is read from any agent (it is
 * replicated); verify (restore.c) reads the repository directly. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../consensus/fsm.h"
#include "../common/buf.h"
#include "../common/clock.h"
#include "../common/gtid.h"
#include "backup.h"
#include "render.h"
#include "haadm.h"

#define RECORD_WAIT_MS 15000 /* an accepted job must appear in the catalog within this */

static int bad(const char *cmd)
{
	fprintf(stderr, "haadm %s: bad arguments; see 'haadm help %s'\n", cmd, cmd);
	return HA_EUSAGE;
}

static void record_json(struct ha_json *j, const Haagent__BackupRecord *b, const char *node)
{
	ha_json_obj_begin(j, NULL);
	ha_json_uint(j, "id", b->id);
	ha_json_str(j, "name", b->name);
	ha_json_str(j, "type", b->type);
	if (b->parent)
		ha_json_uint(j, "parent", b->parent);
	else
		ha_json_null(j, "parent");
	ha_json_str(j, "node", node);
	ha_json_str(j, "state", ha_cli_state_name(b->state));
	ha_json_uint(j, "requested_unix_ms", b->requested_unix_ms);
	ha_json_uint(j, "started_unix_ms", b->started_unix_ms);
	ha_json_uint(j, "finished_unix_ms", b->finished_unix_ms);
	ha_json_uint(j, "from_lsn", b->from_lsn);
	ha_json_uint(j, "to_lsn", b->to_lsn);
	ha_json_str_or_null(j, "gtid", b->gtid);
	ha_json_uint(j, "bytes_in", b->bytes_in);
	ha_json_uint(j, "bytes_stored", b->bytes_stored);
	ha_json_uint(j, "chunks", b->chunks);
	ha_json_str_or_null(j, "detail", b->detail);
	ha_json_uint(j, "server_id", b->server_id);
	ha_json_str_or_null(j, "datadir_instance", b->instance);
	ha_json_str_or_null(j, "manifest_sha256", b->manifest_sha);
	/* where it is complete, in the order it got there (the copier adds the others) */
	ha_json_arr_begin(j, "repositories");
	for (const char *p = b->repositories ? b->repositories : ""; *p;) {
		const char *end = strchr(p, ',');
		size_t k = end ? (size_t)(end - p) : strlen(p);
		char name[HA_NAME_MAX];
		snprintf(name, sizeof(name), "%.*s", (int)(k < sizeof(name) ? k : 0), p);
		ha_json_str(j, NULL, name);
		p += k + (end != NULL);
	}
	ha_json_arr_end(j);
	if (b->held_until_unix_ms)
		ha_json_uint(j, "held_until_unix_ms", b->held_until_unix_ms);
	else
		ha_json_null(j, "held_until_unix_ms");
	ha_json_str(j, "verified",
	            b->verified > 0   ? "passed"
	            : b->verified < 0 ? "failed"
	                              : "never");
	ha_json_bool(j, "drilled", b->drilled);
	ha_json_uint(j, "drill_ms", b->drill_ms);
	ha_json_str_or_null(j, "verify_detail", b->verify_detail);
	ha_json_obj_end(j);
}

/* Node names by id, from the config (the catalog stores ids). */
static void node_name(const struct globals *g, uint32_t id, char *out, size_t size)
{
	snprintf(out, size, "%u", id);
	struct ha_config *c = calloc(1, sizeof(*c));
	struct ha_err e = {0};
	if (c && ha_config_load(ha_cli_conf_path(g), 0, c, &e) == 0) {
		const struct ha_node_conf *n = ha_config_node_by_id(c, id);
		if (n)
			snprintf(out, size, "%s", n->name);
	}
	free(c);
}

/* The window point-in-time recovery reaches: from the oldest finished backup taken since the
 * archive's unbroken run began (its position holds the run's start) to the archive's head.
 * NULL when there is none. */
static const Haagent__BackupRecord *window_from(const Haagent__BackupsResponse *r)
{
	const Haagent__ArchiveState *a = r->archive;
	struct ha_gtid_pos run, pos;
	if (a == NULL || !a->head[0] || ha_gtid_parse(a->run_start_gtid, &run, NULL) != 0)
		return NULL;
	for (size_t i = 0; i < r->n_backups; i++) {
		const Haagent__BackupRecord *b = r->backups[i];
		if (b->state == HA_BK_DONE && ha_gtid_parse(b->gtid, &pos, NULL) == 0 &&
		    ha_gtid_contains(&pos, &run))
			return b; /* the catalog is oldest first */
	}
	return NULL;
}

static void window_json(struct ha_json *j, const Haagent__BackupsResponse *r)
{
	if (r->archive)
		ha_render_archive_json(j, r->archive, NULL);
	else
		ha_json_null(j, "archive");
	const Haagent__BackupRecord *from = window_from(r);
	if (from == NULL) {
		ha_json_null(j, "recoverable");
		return;
	}
	ha_json_obj_begin(j, "recoverable");
	ha_json_uint(j, "from_backup", from->id);
	ha_json_uint(j, "from_unix", from->finished_unix_ms / 1000);
	ha_json_uint(j, "to_unix", r->archive->last_ts);
	ha_json_str(j, "to_gtid", r->archive->end_gtid);
	ha_json_obj_end(j);
}

static void window_text(const Haagent__BackupsResponse *r)
{
	if (r->archive == NULL) {
		printf("\npoint-in-time recovery: no binlog archive yet\n");
		return;
	}
	ha_render_archive_line(stdout, r->archive, NULL);
	const Haagent__BackupRecord *from = window_from(r);
	char t1[32], t2[32], brief[HA_GTID_BRIEF_MAX];
	if (from == NULL)
		printf(
		    "point-in-time recovery: no window yet (it opens with the first backup taken "
		    "while the archive runs%s)\n",
		    r->archive->gaps ? ", after its last gap" : "");
	else
		printf(
		    "point-in-time recovery: any point from %s (backup %llu) to %s UTC (%s)%s\n",
		    ha_cli_utc(from->finished_unix_ms / 1000, t1, sizeof(t1)),
		    (unsigned long long)from->id, ha_cli_utc(r->archive->last_ts, t2, sizeof(t2)),
		    ha_gtid_brief(r->archive->end_gtid, brief),
		    r->archive->gaps ? "; earlier windows end at a gap (haadm binlog list)" : "");
}

/* The catalog as a table, one backup a line. */
static void list_text(const struct globals *g, const Haagent__BackupsResponse *r)
{
	char nn[64];
	printf("%-4s %-40s %-12s %-6s %-9s %-10s %10s %10s %-8s %s\n", "ID", "NAME", "TYPE",
	       "PARENT", "STATE", "NODE", "READ MB", "STORED MB", "VERIFIED", "REPOSITORIES");
	for (size_t i = 0; i < r->n_backups; i++) {
		const Haagent__BackupRecord *b = r->backups[i];
		char parent[24] = "-";
		if (b->parent)
			snprintf(parent, sizeof(parent), "%llu", (unsigned long long)b->parent);
		node_name(g, b->node, nn, sizeof(nn));
		printf("%-4llu %-40s %-12s %-6s %-9s %-10s %10.1f %10.1f %-8s %s\n",
		       (unsigned long long)b->id, b->name, b->type, parent,
		       ha_cli_state_name(b->state), nn, b->bytes_in / 1048576.0,
		       b->bytes_stored / 1048576.0,
		       b->verified > 0   ? (b->drilled ? "drilled" : "ok")
		       : b->verified < 0 ? "FAILED"
		                         : "-",
		       b->repositories && b->repositories[0] ? b->repositories : "-");
	}
}

static int list(struct globals *g, const char *show_id)
{
	Haagent__BackupsResponse *r;
	struct ha_err e = {0};
	if (ha_cli_catalog(g, &r, &e) != 0) {
		fprintf(stderr, "haadm: backup: %s\n", e.msg);
		return HA_ECONNECT;
	}
	uint64_t want = show_id ? strtoull(show_id, NULL, 10) : 0;
	if (show_id && ha_cli_backup_find(r, want) == NULL) {
		fprintf(stderr, "haadm: backup show: no backup %s in the catalog\n", show_id);
		haagent__backups_response__free_unpacked(r, NULL);
		return HA_EINVAL;
	}
	char nn[64];
	if (g->json) {
		struct ha_buf b = HA_BUF_INIT;
		struct ha_json j;
		ha_json_init(&j, &b, true);
		if (!show_id) {
			ha_json_obj_begin(&j, NULL);
			ha_json_uint(&j, "format", 1);
			ha_json_arr_begin(&j, "backups");
		}
		for (size_t i = 0; i < r->n_backups; i++) {
			if (show_id && r->backups[i]->id != want)
				continue;
			node_name(g, r->backups[i]->node, nn, sizeof(nn));
			record_json(&j, r->backups[i], nn);
		}
		if (!show_id) {
			ha_json_arr_end(&j);
			window_json(&j, r);
			ha_json_obj_end(&j);
		}
		printf("%s\n", ha_buf_cstr(&b));
		ha_buf_free(&b);
	} else if (!show_id) {
		list_text(g, r);
		printf("\n");
		window_text(r);
	} else {
		const Haagent__BackupRecord *b = ha_cli_backup_find(r, want);
		node_name(g, b->node, nn, sizeof(nn));
		printf("backup %llu: %s\n  type %s, parent %llu, node %s, state %s\n  %s\n",
		       (unsigned long long)b->id, b->name, b->type, (unsigned long long)b->parent,
		       nn, ha_cli_state_name(b->state), b->detail);
		printf("  LSN %llu..%llu, GTID %s\n  %llu bytes read, %llu stored in %u chunks, "
		       "%.1f s\n",
		       (unsigned long long)b->from_lsn, (unsigned long long)b->to_lsn,
		       b->gtid[0] ? b->gtid : "-", (unsigned long long)b->bytes_in,
		       (unsigned long long)b->bytes_stored, b->chunks,
		       b->finished_unix_ms > b->started_unix_ms
		           ? (b->finished_unix_ms - b->started_unix_ms) / 1000.0
		           : 0.0);
		printf("  complete in: %s\n",
		       b->repositories && b->repositories[0] ? b->repositories : "-");
		printf("  verified: %s%s%s\n",
		       b->verified > 0   ? "passed"
		       : b->verified < 0 ? "FAILED"
		                         : "never",
		       b->verify_detail[0] ? ": " : "", b->verify_detail);
	}
	haagent__backups_response__free_unpacked(r, NULL);
	return 0;
}

static int run(struct globals *g, const char *type, const char *node, bool wait)
{
	Haagent__BackupRunRequest br = HAAGENT__BACKUP_RUN_REQUEST__INIT;
	br.type = (char *)(type ? type : "full");
	br.node = (char *)(node ? node : "");
	Haagent__AdminRequest req = HAAGENT__ADMIN_REQUEST__INIT;
	req.op_case = HAAGENT__ADMIN_REQUEST__OP_BACKUP_RUN;
	req.backup_run = &br;
	Haagent__AdminResponse *r;
	struct ha_err e = {0};
	if (ha_cli_admin(g, &req, &r, &e) != 0) {
		fprintf(stderr, "haadm: backup run: %s\n", e.msg);
		return HA_ECONNECT;
	}
	int rc = r->code;
	uint64_t id = r->backup_id;
	if (rc != 0 || !wait) {
		if (g->json)
			ha_cli_result_json(rc ? "refused" : "started", id, r->message, 0, NULL);
		else
			fprintf(rc ? stderr : stdout, "%s%s\n", rc ? "haadm: refused: " : "",
			        r->message);
		haagent__admin_response__free_unpacked(r, NULL);
		return rc;
	}
	if (!g->json)
		printf("%s\n", r->message);
	haagent__admin_response__free_unpacked(r, NULL);
	/* follow it in the catalog; a job that never shows up there was not committed (a change
	 * of leader between the answer and the commit) */
	uint64_t t0 = ha_now_ms();
	for (;;) {
		Haagent__BackupsResponse *cat;
		if (ha_cli_catalog(g, &cat, &e) == 0) {
			const Haagent__BackupRecord *b = ha_cli_backup_find(cat, id);
			if (b == NULL && ha_now_ms() - t0 > RECORD_WAIT_MS) {
				haagent__backups_response__free_unpacked(cat, NULL);
				char msg[160];
				snprintf(
				    msg, sizeof(msg),
				    "backup %llu was accepted but never recorded in the catalog "
				    "(leader changed?); see 'haadm backup list' and retry",
				    (unsigned long long)id);
				if (g->json)
					ha_cli_result_json("unrecorded", id, msg, ha_now_ms() - t0,
					                   NULL);
				else
					fprintf(stderr, "haadm: backup run: %s\n", msg);
				return HA_ETIMEOUT;
			}
			if (b && b->state != HA_BK_RUNNING) {
				rc = b->state == HA_BK_DONE ? 0 : HA_EDB;
				char detail[600];
				snprintf(detail, sizeof(detail), "%s: %s%s%s",
				         ha_cli_state_name(b->state), b->name,
				         b->state == HA_BK_DONE ? "" : ": ",
				         b->state == HA_BK_DONE ? "" : b->detail);
				if (g->json)
					ha_cli_result_json(ha_cli_state_name(b->state), id, detail,
					                   ha_now_ms() - t0, NULL);
				else
					fprintf(rc ? stderr : stdout, "backup %llu %s\n",
					        (unsigned long long)id, detail);
				haagent__backups_response__free_unpacked(cat, NULL);
				return rc;
			}
			haagent__backups_response__free_unpacked(cat, NULL);
		}
		usleep(200 * 1000);
	}
}

struct policy_args {
	const char *full, *differential, *incremental;
	long keep_full, keep_days;
};

static int policy(struct globals *g, const struct policy_args *pa)
{
	Haagent__BackupsResponse *cat;
	struct ha_err e = {0};
	if (ha_cli_catalog(g, &cat, &e) != 0) {
		fprintf(stderr, "haadm: backup policy: %s\n", e.msg);
		return HA_ECONNECT;
	}
	const Haagent__CmdSetBackupPolicy *cur = cat->policy;
	bool change = pa->full || pa->differential || pa->incremental || pa->keep_full >= 0 ||
	              pa->keep_days >= 0;
	int rc = 0;
	if (change && cur) {
		Haagent__CmdSetBackupPolicy p = HAAGENT__CMD_SET_BACKUP_POLICY__INIT;
		p.full = (char *)(pa->full ? pa->full : cur->full);
		p.differential = (char *)(pa->differential ? pa->differential : cur->differential);
		p.incremental = (char *)(pa->incremental ? pa->incremental : cur->incremental);
		p.keep_full = pa->keep_full >= 0 ? (uint32_t)pa->keep_full : cur->keep_full;
		p.keep_days = pa->keep_days >= 0 ? (uint32_t)pa->keep_days : cur->keep_days;
		Haagent__AdminRequest req = HAAGENT__ADMIN_REQUEST__INIT;
		req.op_case = HAAGENT__ADMIN_REQUEST__OP_BACKUP_POLICY;
		req.backup_policy = &p;
		Haagent__AdminResponse *r = NULL;
		if (ha_cli_admin(g, &req, &r, &e) != 0) {
			rc = HA_ECONNECT;
			fprintf(stderr, "haadm: backup policy: %s\n", e.msg);
		} else {
			rc = r->code;
			if (rc)
				fprintf(stderr, "haadm: refused: %s\n", r->message);
			haagent__admin_response__free_unpacked(r, NULL);
		}
		haagent__backups_response__free_unpacked(cat, NULL);
		if (rc)
			return rc;
		usleep(300 * 1000); /* committed by now, normally: show it */
		if (ha_cli_catalog(g, &cat, &e) != 0)
			return 0;
		cur = cat->policy;
	}
	if (cur && g->json) {
		printf(
		    "{\"format\": 1, \"full\": \"%s\", \"differential\": \"%s\", \"incremental\": "
		    "\"%s\", \"keep_full\": %u, \"keep_days\": %u, \"from_config\": %s}\n",
		    cur->full, cur->differential, cur->incremental, cur->keep_full, cur->keep_days,
		    cat->policy_from_config ? "true" : "false");
	} else if (cur) {
		printf(
		    "full:         %s\ndifferential: %s\nincremental:  %s\nretention:    keep %u "
		    "full backups%s, %u days%s\n%s",
		    cur->full[0] ? cur->full : "never",
		    cur->differential[0] ? cur->differential : "never",
		    cur->incremental[0] ? cur->incremental : "never", cur->keep_full,
		    cur->keep_full ? "" : " (no limit)", cur->keep_days,
		    cur->keep_days ? "" : " (no limit)",
		    cat->policy_from_config
		        ? "(from the configuration; 'haadm backup policy --...' "
		          "sets it cluster-wide)\n"
		        : "");
	}
	haagent__backups_response__free_unpacked(cat, NULL);
	return 0;
}

/* The subcommand in argv[0], its argument in argv[1]; options already read. */
static int subcommand(struct globals *g, int np, char **argv, const char *type, const char *node,
                      bool wait, bool drilling, const struct policy_args *pa)
{
	const char *sub = np > 0 ? argv[0] : "";
	uint64_t id = 0;
	if ((!strcmp(sub, "show") || !strcmp(sub, "verify")) && np == 2 &&
	    ha_cli_parse_id("backup", argv[1], &id) != 0)
		return HA_EUSAGE;
	if (!strcmp(sub, "run") && np == 1)
		return run(g, type, node, wait);
	if (!strcmp(sub, "policy") && np == 1)
		return policy(g, pa);
	if (!strcmp(sub, "list") && np == 1)
		return list(g, NULL);
	if (!strcmp(sub, "show") && np == 2)
		return list(g, argv[1]);
	if (!strcmp(sub, "verify") && np == 2)
		return ha_cli_backup_verify(g, id, drilling);
	return bad("backup");
}

int ha_cmd_backup(struct globals *g, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"type", required_argument, NULL, 't'},
	    {"node", required_argument, NULL, 'n'},
	    {"wait", no_argument, NULL, 'w'},
	    {"drill", no_argument, NULL, 'd'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {"full", required_argument, NULL, 'F'},
	    {"differential", required_argument, NULL, 'D'},
	    {"incremental", required_argument, NULL, 'I'},
	    {"keep-full", required_argument, NULL, 'K'},
	    {"keep-days", required_argument, NULL, 'Y'},
	    {"repository", required_argument, NULL, 'R'},
	    {NULL, 0, NULL, 0},
	};
	struct policy_args pa = {.keep_full = -1, .keep_days = -1};
	const char *type = NULL, *node = NULL;
	bool wait = false, drilling = false;
	int o;
	optind = 0; /* 0, not 1: glibc then re-reads the ordering from optstring */
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 't':
			type = optarg;
			break;
		case 'n':
			node = optarg;
			break;
		case 'w':
			wait = true;
			break;
		case 'd':
			drilling = true;
			break;
		case 'j':
			g->json = true;
			break;
		case 'F':
			pa.full = optarg;
			break;
		case 'R':
			g->repository = optarg;
			break;
		case 'D':
			pa.differential = optarg;
			break;
		case 'I':
			pa.incremental = optarg;
			break;
		case 'K':
		case 'Y': {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || v < 0 || v > 36500)
				return bad("backup");
			*(o == 'K' ? &pa.keep_full : &pa.keep_days) = v;
			break;
		}
		case 'h':
			ha_cli_help("backup");
			return 0;
		default:
			return bad("backup");
		}
	}
	if (node && ha_cli_check_name("backup", node) != 0)
		return HA_EUSAGE;
	return subcommand(g, argc - optind, argv + optind, type, node, wait, drilling, &pa);
}
