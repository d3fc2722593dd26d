/* Where backups are kept. The pipeline talks only to a store: a staging area per backup that
 * readers never see, chunks written into it, and a commit that makes the backup appear whole
 * (with its manifest) or not at all. The directory store (store_dir.c: local disk or a mounted
 * share) is the one there is; an object store implements the same operations (staging under a
 * prefix, commit by writing the manifest last). Blocking; any thread but the event loop. */
#ifndef HA_BACKUP_STORE_H
#define HA_BACKUP_STORE_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/err.h"

struct ha_store;

struct ha_store_ops {
	/* a fresh staging area for backup name, written by node */
	int (*begin)(struct ha_store *s, const char *node, const char *name, struct ha_err *e);
	int (*put_chunk)(struct ha_store *s, const char *node, const char *name, uint64_t index,
	                 const uint8_t *data, size_t len, struct ha_err *e);
	/* every chunk durable, then the manifest, then the backup visible: atomic */
	int (*commit)(struct ha_store *s, const char *node, const char *name, const char *manifest,
	              size_t len, struct ha_err *e);
	void (*abort)(struct ha_store *s, const char *node, const char *name);
	/* *text malloc'd (free it) */
	int (*get_manifest)(struct ha_store *s, const char *name, char **text, size_t *len,
	                    struct ha_err *e);
	/* a chunk larger than cap is an error (damage) */
	int (*get_chunk)(struct ha_store *s, const char *name, uint64_t index, uint8_t *buf,
	                 size_t cap, size_t *len, struct ha_err *e);
	int (*remove)(struct ha_store *s, const char *name, struct ha_err *e);
	/* drops whatever node left staged (a crash midway) */
	void (*clean)(struct ha_store *s, const char *node);
	/* the names there are, sorted (*names malloc'd: ha_store_names_free) */
	int (*list)(struct ha_store *s, char ***names, size_t *n, struct ha_err *e);
	/* A store over several repositories (repos.h): how many copies a chunk may have, and
	 * copy number `copy` of it (*from: the repository's name). NULL in a store of one. */
	size_t (*copies)(struct ha_store *s);
	int (*get_chunk_copy)(struct ha_store *s, size_t copy, const char *name, uint64_t index,
	                      uint8_t *buf, size_t cap, size_t *len, const char **from,
	                      struct ha_err *e);
};

void ha_store_names_free(char **names, size_t n);

struct ha_store {
	const struct ha_store_ops *ops;
	char root[PATH_MAX];
	char kind[16];    /* what it holds: "backups", "archive" */
	char staging[32]; /* where it stages them */
	void *impl;       /* the kind's own state (the union store's, repos.h) */
};

/* The directory store: ROOT/backups/NAME/{manifest,chunks/NNNNNNNN}, staging under
 * ROOT/.partial/NODE/NAME, committed by rename. NODE and NAME become paths: an operation on a
 * name that ha_name_valid (config.h) refuses fails with HA_EINVAL (abort and clean do nothing),
 * a path that would not fit PATH_MAX likewise, and list() leaves such names out. _kind: the same
 * for another kind of object (the binlog archive's slices: ROOT/archive/NAME, staged under
 * ROOT/.partial-archive). */
void ha_store_dir_init(struct ha_store *s, const char *root);
void ha_store_dir_init_kind(struct ha_store *s, const char *root, const char *kind);

#endif
