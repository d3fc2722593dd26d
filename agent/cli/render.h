/* Rendering of haadm's answers: a table for people, stable JSON for scripts (docs/json.md). */
#ifndef HA_CLI_RENDER_H
#define HA_CLI_RENDER_H

#include <stdbool.h>
#include <stdio.h>

#include "haagent.pb-c.h"

void ha_render_status_json(FILE *f, const Haagent__StatusResponse *s);
void ha_render_status_table(FILE *f, const Haagent__StatusResponse *s);
void ha_render_events(FILE *f, const Haagent__EventsResponse *r, bool json);

#endif
