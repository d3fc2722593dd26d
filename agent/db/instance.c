#include "instance.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../backup/chunk.h" /* ha_sha256_hex */

int ha_db_instance(const char *datadir, char out[HA_INSTANCE_MAX])
{
	out[0] = '\0';
	if (datadir == NULL || datadir[0] == '\0')
		return -1;
	size_t len = strlen(datadir);
	char *path = malloc(len + sizeof("/mysql"));
	if (path == NULL)
		return -1;
	memcpy(path, datadir, len);
	if (len && path[len - 1] == '/')
		len--;
	memcpy(path + len, "/mysql", sizeof("/mysql"));
	struct statx sx;
	int rc = statx(AT_FDCWD, path, 0, STATX_INO | STATX_BTIME, &sx);
	free(path);
	if (rc != 0 || !(sx.stx_mask & STATX_INO))
		return -1;
	/* without a birth time (file systems that keep none), the inode alone: a rebuilt datadir
	 * could reuse the number, which the backup job's LSN check then catches */
	char id[128];
	int n = snprintf(id, sizeof(id), "%u:%u:%llu:%lld.%u", sx.stx_dev_major, sx.stx_dev_minor,
	                 (unsigned long long)sx.stx_ino,
	                 (sx.stx_mask & STATX_BTIME) ? (long long)sx.stx_btime.tv_sec : -1LL,
	                 (sx.stx_mask & STATX_BTIME) ? sx.stx_btime.tv_nsec : 0u);
	char sha[65];
	ha_sha256_hex((const uint8_t *)id, (size_t)n, sha);
	memcpy(out, sha, HA_INSTANCE_MAX - 1);
	out[HA_INSTANCE_MAX - 1] = '\0';
	return 0;
}
