/* Small blocking file helpers for the backup code (never on the event loop). */
#ifndef HA_BACKUP_FSUTIL_H
#define HA_BACKUP_FSUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

int ha_mkdir_p(const char *path, mode_t mode);
int ha_rm_rf(const char *path);
int ha_write_all(int fd, const void *p, size_t n);
/* reads until n bytes or end of file; returns the count or -1 */
ssize_t ha_read_full(int fd, uint8_t *p, size_t n);
/* creates or truncates, writes, fsyncs */
int ha_write_file(const char *path, const void *data, size_t n, mode_t mode);
/* One line of an option file: key=value, the value quoted (ha_quote_option_value). */
struct ha_option {
	const char *key;
	const char *value;
};
/* A private option file "[group]\nkey=\"value\"\n..." for a MariaDB tool (passed with
 * --defaults-file or --defaults-extra-file): a password goes there, never into argv or the
 * environment. Every value is quoted and escaped so that the tool reads it back exactly (a quote,
 * a backslash, '#', spaces at either end, a newline, non-ASCII bytes). The file is created anew
 * with mode 0600 (an existing one, or a link in its place, is removed first, never written
 * through), written and synced; the text is wiped from memory after. 0, or -1 with errno
 * (EINVAL: a value longer than the tools read). */
int ha_write_option_file(const char *path, const char *group, const struct ha_option *opts,
                         size_t n);
/* ha_write_option_file with one line: password. */
int ha_write_password_cnf(const char *path, const char *group, const char *password);
/* fsync of a directory (its entries durable). Returns 0 or -1 with errno. */
int ha_fsync_dir(const char *path);

#endif
