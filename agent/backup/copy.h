/* Copies between repositories (repos.h): how a repository that was down, or was added later,
 * catches up. An object (a backup or an archive slice) is copied as stored — chunks still
 * compressed and encrypted, the manifest byte for byte — after its manifest authenticates
 * with the master key (and, for a backup, is the one the catalog recorded) and each chunk
 * matches its SHA-256; a damaged chunk in one repository is taken from the next. The copy is
 * staged and committed like a backup, so a copy cut off midway is never listed. Blocking;
 * the copier's thread (agent/copier.c). */
#ifndef HA_BACKUP_COPY_H
#define HA_BACKUP_COPY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "repos.h"

struct ha_repo_copied {
	uint64_t chunks, bytes;
};

/* Does repository r hold name, whole? 1 yes, 0 no (or not reachable: e says), or an error when
 * it holds one whose manifest is not want_sha (never overwritten: an operator looks). */
int ha_repo_has(struct ha_repos *rs, bool archive, size_t r, const char *name, const char *want_sha,
                struct ha_err *e);

/* The staging identity a copy by node is made under: "NODE.copy" (NODE cut to fit a name).
 * Never NODE itself: a backup job of that node cleans NODE's staging area when it starts
 * (store.h clean), which would abort a copy under way there. */
void ha_repo_copy_stager(const char *node, char out[HA_NAME_MAX]);

/* Copies name into repository dst from the others (staged under node's copy identity,
 * ha_repo_copy_stager). want_sha: the
 * manifest's SHA-256 the catalog recorded ("" or NULL: any that authenticates). cancel (may
 * be NULL) is looked at before each chunk: once set, the copy stops, is aborted and fails. */
int ha_repo_copy(struct ha_repos *rs, bool archive, size_t dst, const char *name, const char *node,
                 const uint8_t *master, const char *want_sha, atomic_int *cancel,
                 struct ha_repo_copied *out, struct ha_err *e);

#endif
