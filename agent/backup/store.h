/* Where backups are kept. The pipeline talks only to a store: a staging area per backup that
 * readers never see, chunks written into it, and a commit that makes the backup appear whole
 * (with its manifest) or not at all. Two kinds: a directory (store_dir.c: local disk or a
 * mounted share) and an S3 bucket (store_s3.c: staging marked by an object, commit by
 * writing the manifest last). Blocking; any thread but the event loop. */
#ifndef HA_BACKUP_STORE_H
#define HA_BACKUP_STORE_H

#include <limits.h>
#include <stdatomic.h>
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
	/* the manifest of copy number `copy` (*text malloc'd, free it; *from as above) */
	int (*get_manifest_copy)(struct ha_store *s, size_t copy, const char *name, char **text,
	                         size_t *len, const char **from, struct ha_err *e);
	/* releases impl (NULL when the kind keeps no state of its own): ha_store_free */
	void (*destroy)(struct ha_store *s);
};

void ha_store_names_free(char **names, size_t n);

/* The order to ask the n copies of s in (n at most 32): those that have not failed a read
 * first, in their order, then those that have. Returns how many are in order. */
struct ha_store;
size_t ha_store_copy_order(struct ha_store *s, size_t n, unsigned order[32]);
/* Copy k failed a read (missing, damaged, unreachable): asked last from now on. */
void ha_store_copy_failed(struct ha_store *s, size_t k);

struct ha_store {
	const struct ha_store_ops *ops;
	/* A store over several repositories: the copies (bit k: copy k) that failed a read, asked
	 * last by every later read through this store (ha_store_copy_order), so that a repository
	 * that is down costs its timeouts once, not once per backup of a chain, slice or chunk. */
	atomic_uint failing;
	char root[PATH_MAX]; /* the directory, or "s3://bucket/prefix" (for messages) */
	char kind[16];       /* what it holds: "backups", "archive" */
	char staging[32];    /* where it stages them */
	void *impl;          /* the kind of store's own state (S3: its client); NULL for a dir */
};

/* Releases what the store holds (an S3 store's client and connections); nothing for a
 * directory store. No operation may be under way. The store may be initialised again. */
void ha_store_free(struct ha_store *s);

/* The directory store: ROOT/backups/NAME/{manifest,chunks/NNNNNNNN}, staging under
 * ROOT/.partial/NODE/NAME, committed by rename. NODE and NAME become paths: an operation on a
 * name that ha_name_valid (config.h) refuses fails with HA_EINVAL (abort and clean do nothing),
 * a path that would not fit PATH_MAX likewise, and list() leaves such names out. _kind: the same
 * for another kind of object (the binlog archive's slices: ROOT/archive/NAME, staged under
 * ROOT/.partial-archive). */
void ha_store_dir_init(struct ha_store *s, const char *root);
void ha_store_dir_init_kind(struct ha_store *s, const char *root, const char *kind);

/* The S3 store (store_s3.c), under the bucket and PREFIX of c, for KIND ("backups",
 * "archive"):
 *   PREFIX/KIND/NAME.manifest                 a committed object: list() shows exactly these
 *   PREFIX/KIND-data/NAME/chunks/NNNNNNNN     its chunks, one object each (a single PUT)
 *   PREFIX/KIND-partial/NODE/NAME             NODE is staging NAME (an empty marker)
 * begin writes the marker, chunks go straight to their place, commit writes the manifest
 * last (refused when one exists: never overwritten) and then deletes the marker; a name is
 * listed once its manifest exists and no marker names it. abort deletes a staged name's
 * manifest (a failed commit's), chunks and marker, in that order, only when NODE's marker is
 * there; clean(NODE) aborts every name NODE has staged. Names are checked like the
 * directory store's (HA_EINVAL); a missing object is HA_EIO, a chunk larger than cap
 * HA_EPROTO, as there. Any thread; get_chunk from several at once. The client's
 * connections are released by ha_store_free. 0, or HA_ECONFIG (credentials) with e set; no
 * request is made. */
struct ha_s3_conf;
int ha_store_s3_init(struct ha_store *s, const struct ha_s3_conf *c, const char *kind,
                     struct ha_err *e);
/* An S3 store's client (its counters: ha_s3_get_stats); NULL for another kind of store. */
struct ha_s3;
struct ha_s3 *ha_store_s3_client(struct ha_store *s);

#endif
