/* The coordinator core's part in a diverged node's rejoin (node/rejoin.h): what an agent reports
 * of it becomes an event in the replicated history, once — the errant transactions it saved
 * before discarding them (errant-saved: how many, which, the file), and why a node stays
 * diverged (rejoin-held). Pure; "once" is read from the history itself, so a new leader does not
 * say it again. */
#include <stdio.h>
#include <string.h>

#include "core_int.h"

/* Whether the history holds this event already (the detail as the FSM keeps it: cut to fit). */
static bool said(const struct ha_fsm_state *st, const char *name, const char *node,
                 const char *detail)
{
	for (unsigned i = 0; i < st->n_events; i++) {
		const struct ha_event *e = &st->events[i];
		if (!strcmp(e->name, name) && !strcmp(e->node, node) && !strcmp(e->detail, detail))
			return true;
	}
	return false;
}

static bool say(struct ha_core *k, const struct ha_fsm_state *st, const char *name,
                const char *node, const char *text)
{
	char detail[sizeof(st->events[0].detail)];
	snprintf(detail, sizeof(detail), "%s", text);
	if (said(st, name, node, detail))
		return false;
	uint8_t *buf;
	size_t len;
	if (ha_fsm_cmd_event(name, node, detail, k->unix_ms, k->in->alloc, &buf, &len) != 0)
		return false;
	LOGW(k, name, "node=%s detail=\"%s\"", node, text);
	return co_propose(k, buf, len, name) == 0;
}

bool co_rejoin_events(struct ha_core *k, const struct ha_fsm_state *st)
{
	for (unsigned i = 0; i < st->n_members; i++) {
		const struct ha_member *m = &st->members[i];
		bool fresh;
		const Haagent__Health *h = health_of(k->in, m->id, &fresh);
		if (!h || !fresh || h->epoch_seen != st->epoch || m->id == st->primary_id)
			continue;
		if (h->errant_saved && h->errant_saved[0] &&
		    say(k, st, "errant-saved", m->name, h->errant_saved))
			return true;
		if ((m->flags & HA_MEMBER_DIVERGED) && h->rejoin &&
		    !strncmp(h->rejoin, "diverged:", 9) &&
		    say(k, st, "rejoin-held", m->name, h->rejoin))
			return true;
	}
	return false;
}
