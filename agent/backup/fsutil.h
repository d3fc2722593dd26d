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
/* A private (0600) option file "[group]\npassword=\"...\"" for a MariaDB tool, the password
 * quoted and escaped (a quote, a backslash, '#' or a newline in it stays the password), never in
 * argv. The text is wiped from memory after. 0, or -1 with errno. */
int ha_write_password_cnf(const char *path, const char *group, const char *password);
/* fsync of a directory (its entries durable). Returns 0 or -1 with errno. */
int ha_fsync_dir(const char *path);

#endif
