/* Several repositories (docs/backup.md, "Several repositories"): the [repository NAME]
 * sections of the configuration opened as stores, and one store over all of them.
 *
 * The union store is what the pipeline, the archive and haadm see. A backup or an archive slice
 * is written whole to the first repository that takes it (in the file's order: one that is
 * down or refuses the staging area is passed over at once, so it never blocks the others);
 * the copier (agent/copier.c) brings it to the others later, which is how a repository that
 * was down catches up. Reading takes the first copy there is; a manifest or a chunk whose hash
 * or authentication fails in one repository is taken from the next (pipeline.c and archive.c
 * ask the copies one by one). Listing is the union of the names; removing touches every
 * repository; cleaning a node's leftovers is done in each repository just before that repository
 * is asked to take the node's next write (one down and passed over is not waited for twice).
 * Blocking; any thread but the event loop. */
#ifndef HA_BACKUP_REPOS_H
#define HA_BACKUP_REPOS_H

#include "../config.h"
#include "store.h"

struct ha_repo {
	char name[HA_NAME_MAX];
	char type[8];
	char where[PATH_MAX + 80]; /* for messages: its path, or s3://bucket/prefix at endpoint */
	struct ha_store backups, archive;
	bool down; /* copy.h leaves it out as a source (the copier's mark, for one pass) */
};

struct ha_repos {
	size_t n;
	struct ha_repo r[HA_REPOS_MAX];
	struct ha_store all_backups, all_archive; /* the union stores */
	struct ha_union {
		struct ha_repos *rs;
		bool archive;
		int wrote;        /* the repository the current write went to, -1 none */
		char passed[512]; /* why the ones before it were passed over ("" none; cut) */
		/* clean(node) is deferred to the next begin of node, repository by repository:
		 * a repository is cleaned only when it is asked to take the write, so one that is
		 * down and passed over costs the job nothing more ("" none pending) */
		char clean_node[HA_NAME_MAX];
	} u_backups, u_archive;
};

/* Opens every repository of c (none: rs->n == 0). An S3 repository's keys are checked here,
 * with the file and line of the one at fault. rs must stay where it is while in use (its union
 * stores point into it). */
int ha_repos_open(struct ha_repos *rs, const struct ha_config *c, struct ha_err *e);
void ha_repos_close(struct ha_repos *rs);

/* Live check of repository i of cfg for `haadm config check`: a directory exists and is
 * writable; an S3 bucket answers a signed listing and a small write, read and delete (the
 * error says what to fix: credentials, bucket, clock, endpoint). */
int ha_repo_probe(const struct ha_config *cfg, size_t i, struct ha_err *e);

/* The index of the repository called name, or -1. */
int ha_repos_index(const struct ha_repos *rs, const char *name);

/* The repository the last begin of the union store s wrote to (its name), or NULL; and why
 * the repositories before it were passed over ("" none: a message, cut at 511 bytes). */
const char *ha_repos_written(const struct ha_store *s);
const char *ha_repos_passed(const struct ha_store *s);

#endif
