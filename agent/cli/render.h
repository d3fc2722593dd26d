/* Rendering of haadm's answers: a table for people, stable JSON for scripts (docs/json.md). */
#ifndef HA_CLI_RENDER_H
#define HA_CLI_RENDER_H

#include <stdbool.h>
#include <stdio.h>

#include "../common/buf.h"
#include "haagent.pb-c.h"

void ha_render_status_json(FILE *f, const Haagent__StatusResponse *s);
void ha_render_status_table(FILE *f, const Haagent__StatusResponse *s);
/* A unix time as "YYYY-MM-DD HH:MM:SS" (UTC) in buf; "-" for 0. */
const char *ha_cli_utc(uint64_t unix_s, char *buf, size_t size);

/* The binlog archive (status, backup list): its head, its lag behind the primary's position
 * (NULL: not known), its gaps. */
void ha_archive_lag(const Haagent__ArchiveState *a, const char *primary_pos, uint64_t now_ms,
                    uint64_t *txns, double *seconds);
void ha_render_archive_json(struct ha_json *j, const Haagent__ArchiveState *a,
                            const char *primary_pos);
void ha_render_archive_line(FILE *f, const Haagent__ArchiveState *a, const char *primary_pos);
void ha_render_events(FILE *f, const Haagent__EventsResponse *r, bool json);

#endif
