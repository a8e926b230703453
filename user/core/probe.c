// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Opening and closing the registered probes as a set. */
#include "core/probe.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/pin.h"
#include "core/util.h"

_Static_assert(PROBE_MAX >= 2, "room for the probes");

int probes_open(struct probe_set *s, const struct config *cfg, enum probe_mode mode)
{
	memset(s, 0, sizeof(*s));
	for (size_t i = 0; i < probe_registry_len; i++) {
		const struct probe_ops *ops = probe_registry[i];
		struct probe *p = &s->probes[s->nr];
		int err;

		if (!ops->wanted(cfg, mode))
			continue;
		if (s->nr == PROBE_MAX) {
			log_error("more probes than PROBE_MAX (%d)", PROBE_MAX);
			probes_close(s);
			return -E2BIG;
		}
		p->ops = ops;
		p->id = s->nr;
		p->priv = calloc(1, ops->priv_size);
		p->pins = mode == PROBE_SERVE ? calloc(1, sizeof(*p->pins)) : NULL;
		if (p->pins)
			p->pins->persist = cfg->persist;
		err = p->priv && (p->pins || mode != PROBE_SERVE) ? ops->open(p, cfg, mode) : -ENOMEM;
		if (err) {
			free(p->priv);
			free(p->pins);
			probes_close(s);
			return err;
		}
		s->nr++;
	}
	return 0;
}

void probes_adopted(struct probe_set *s, struct discovery *d)
{
	for (unsigned i = 0; i < s->nr; i++) {
		struct probe *p = &s->probes[i];

		if (!p->pins || !p->pins->adopting)
			continue;
		if (p->ops->adopted)
			p->ops->adopted(p, d);
		p->pins->adopting = false;
	}
}

void probes_keep(struct probe_set *s)
{
	for (unsigned i = 0; i < s->nr; i++)
		if (pins_persist(s->probes[i].pins))
			s->probes[i].pins->keep = true;
}

void probes_close(struct probe_set *s)
{
	while (s->nr > 0) {
		struct probe *p = &s->probes[--s->nr];

		p->ops->close(p);
		free(p->priv);
		free(p->pins);
		p->priv = NULL;
		p->pins = NULL;
	}
}

void probes_events(struct probe_set *s, struct discovery *d)
{
	for (unsigned i = 0; i < s->nr; i++)
		if (s->probes[i].ops->events)
			s->probes[i].ops->events(&s->probes[i], d);
}

struct probe *probes_find(const struct probe_set *s, const char *name)
{
	for (unsigned i = 0; i < s->nr; i++)
		if (!strcmp(s->probes[i].ops->name, name))
			return (struct probe *)&s->probes[i];
	return NULL;
}
