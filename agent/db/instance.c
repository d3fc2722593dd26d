#include "instance.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../backup/chunk.h" /* ha_sha256_hex */

/* "ino.btime" of datadir/name into out, or "-" when it is not there. */
static void identity(const char *datadir, size_t len, const char *name, char *out, size_t size)
{
	snprintf(out, size, "-");
	char *path = malloc(len + strlen(name) + 2);
	if (path == NULL)
		return;
	memcpy(path, datadir, len);
	path[len] = '/';
	memcpy(path + len + 1, name, strlen(name) + 1);
	struct statx sx;
	/* AT_STATX_DONT_SYNC: a network file system's cached attributes are enough */
	int rc = statx(AT_FDCWD, path, AT_STATX_DONT_SYNC, STATX_INO | STATX_BTIME, &sx);
	free(path);
	if (rc != 0 || !(sx.stx_mask & STATX_INO))
		return;
	snprintf(out, size, "%llu.%lld.%u", (unsigned long long)sx.stx_ino,
	         (sx.stx_mask & STATX_BTIME) ? (long long)sx.stx_btime.tv_sec : -1LL,
	         (sx.stx_mask & STATX_BTIME) ? sx.stx_btime.tv_nsec : 0u);
}

int ha_db_instance(const char *datadir, char out[HA_INSTANCE_MAX])
{
	out[0] = '\0';
	if (datadir == NULL || datadir[0] == '\0')
		return -1;
	size_t len = strlen(datadir);
	while (len > 1 && datadir[len - 1] == '/')
		len--;
	/* the mysql directory (mariadb-install-db, a restore, a reclone), the system tablespace
	 * and the redo log (a copy-back or rsync writes new files): any of them new, a new
	 * instance. No device numbers: those may change across reboots (LVM, NVMe, NFS). */
	char a[64], b[64], c[64];
	identity(datadir, len, "mysql", a, sizeof(a));
	if (!strcmp(a, "-"))
		return -1;
	identity(datadir, len, "ibdata1", b, sizeof(b));
	identity(datadir, len, "ib_logfile0", c, sizeof(c));
	char id[200];
	int n = snprintf(id, sizeof(id), "%s:%s:%s", a, b, c);
	char sha[65];
	ha_sha256_hex((const uint8_t *)id, (size_t)n, sha);
	memcpy(out, sha, HA_INSTANCE_MAX - 1);
	out[HA_INSTANCE_MAX - 1] = '\0';
	return 0;
}
