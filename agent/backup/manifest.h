/* The manifest of one backup in the repository: a line-oriented text file (docs/backup.md),
 * written last and atomically (the backup directory is renamed into place after it), so a
 * backup without a complete manifest does not exist. Pure; parsing treats input as hostile.
 *
 * Format 3 ends with "mac HEX": HMAC-SHA-256 of everything before that line under a key
 * derived from the repository key (ha_key_derive, HA_MANIFEST_MAC_LABEL). Whoever can write the
 * repository but lacks the key cannot change a manifest (drop trailing chunks, swap a chunk's
 * hash, edit the recorded checksums, relabel the server) unnoticed. Formats 1 and 2 (older
 * backups) carry no mac and are read as unauthenticated; the catalog's copy of the manifest's
 * hash still guards them where it was recorded. */
#ifndef HA_BACKUP_MANIFEST_H
#define HA_BACKUP_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/buf.h"
#include "../common/err.h"
#include "../common/gtid.h"
#include "../db/instance.h"
#include "chunk.h"

#define HA_MANIFEST_MAX_CHUNKS (1u << 20)
#define HA_MANIFEST_MAX_SUMS   10000 /* tables with a recorded checksum */
#define HA_SUM_NAME_MAX        272   /* `schema`.`table`, quoted as in SQL */

struct ha_chunk_ref {
	uint32_t stored, plain;
	char sha[65];
};

/* CHECKSUM TABLE of one table at the backup's position (recorded on the source). */
struct ha_table_sum {
	uint64_t sum;
	char name[HA_SUM_NAME_MAX];
};

#define HA_MANIFEST_MAC_LABEL "haagent manifest mac v1"

struct ha_manifest {
	unsigned version;   /* of the format read (3 written) */
	bool authenticated; /* its mac was checked (format 3) */
	char file_sha[65];  /* SHA-256 of the whole manifest file as read, mac line included */
	uint64_t id;
	char name[96];
	char type[16]; /* full, differential, incremental */
	uint64_t parent;
	char parent_name[96];
	char node[64];
	/* the server it was taken from: its server_id and its datadir's label (db/instance.h);
	 * 0 and "" in formats before 3 */
	uint32_t server_id;
	char instance[HA_INSTANCE_MAX];
	char server_version[96];
	uint64_t from_lsn, to_lsn;
	char gtid[HA_GTID_TEXT_MAX];
	char binlog[160];
	uint64_t started_ms, finished_ms;
	int64_t lag_seconds;
	double load;
	uint64_t bytes_in, bytes_stored;
	char wrapped_key[128];
	size_t n_chunks;
	struct ha_chunk_ref *chunks; /* malloc'd; ha_manifest_free */
	size_t n_sums;
	struct ha_table_sum *sums; /* malloc'd; ha_manifest_free; may be none */
	char sums_note[200];       /* when there are none: why ("" when never tried) */
};

void ha_manifest_write(const struct ha_manifest *m, struct ha_buf *out);
/* Appends the mac line to a written manifest. */
void ha_manifest_seal(struct ha_buf *b, const uint8_t master[HA_KEY_LEN]);
/* Parses a manifest without authenticating it (the format's checks only). */
int ha_manifest_parse(const char *text, size_t len, struct ha_manifest *m, struct ha_err *e);
/* Authenticates (format 3: its mac must match; refused when it is missing or wrong) and
 * parses a manifest file. */
int ha_manifest_open(const char *text, size_t len, const uint8_t master[HA_KEY_LEN],
                     struct ha_manifest *m, struct ha_err *e);
void ha_manifest_free(struct ha_manifest *m);

/* Shared by the manifests of this repository (backups, archive slices): a value's checks, and
 * the mac line (HA_MANIFEST_MAC_LABEL's key). ha_mf_word: one word, "-" read as ""; ha_mf_text:
 * printable text to the end of the line; ha_mf_num: a decimal number. 0 or -1. */
int ha_mf_word(const char *v, char *out, size_t size);
int ha_mf_text(const char *v, char *out, size_t size);
int ha_mf_num(const char *v, uint64_t *out);
/* "INDEX STORED PLAIN SHA256" of chunk index. */
int ha_mf_chunk(const char *v, size_t index, struct ha_chunk_ref *c);
void ha_mf_seal(struct ha_buf *b, const uint8_t master[HA_KEY_LEN]);
/* The length of the text before its mac line (*mac: its 64 hex digits, NULL when none). */
size_t ha_mf_body(const char *text, size_t len, const char **mac);
bool ha_mf_mac_ok(const char *text, size_t body, const char *mac, const uint8_t master[HA_KEY_LEN]);

/* What the replicated catalog recorded of a backup when it finished. */
struct ha_manifest_expect {
	uint64_t id;
	const char *name, *type;
	uint64_t parent;
	uint32_t chunks;
	uint64_t bytes_stored;
	uint32_t server_id;
	const char *instance;     /* "" not recorded (older): not compared */
	const char *manifest_sha; /* "" not recorded (older): not compared */
};

/* Whether a manifest read from the repository is the one the catalog recorded: the same
 * backup, chunk count, stored bytes (also the sum of its chunks), server and file hash. A
 * repository can lose or gain files the catalog never saw; this refuses them by name. */
int ha_manifest_check(const struct ha_manifest *m, const struct ha_manifest_expect *x,
                      struct ha_err *e);

#endif
