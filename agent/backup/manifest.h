/* The manifest of one backup in the repository: a line-oriented text file (docs/backup.md),
 * written last and atomically (the backup directory is renamed into place after it), so a
 * backup without a complete manifest does not exist. Pure; parsing treats input as hostile. */
#ifndef HA_BACKUP_MANIFEST_H
#define HA_BACKUP_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "../common/buf.h"
#include "../common/err.h"
#include "../common/gtid.h"

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

struct ha_manifest {
	uint64_t id;
	char name[96];
	char type[16]; /* full, differential, incremental */
	uint64_t parent;
	char parent_name[96];
	char node[64];
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
int ha_manifest_parse(const char *text, size_t len, struct ha_manifest *m, struct ha_err *e);
void ha_manifest_free(struct ha_manifest *m);

#endif
