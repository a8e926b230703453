// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Opening and closing the registered probes as a set; serve's down probes, tried again. */
#include "core/probe.h"

#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/caps.h"
#include "core/config.h"
#include "core/fault.h"
#include "core/pin.h"
#include "core/util.h"

_Static_assert(PROBE_MAX >= 2, "room for the probes");

/* A down probe is tried again after this long, then twice as long each time, up to the max. */
#define RETRY_FIRST_S 10
#define RETRY_MAX_S 320

#define VMLINUX_BTF "/sys/kernel/btf/vmlinux"

int probe_log_libbpf(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	enum log_level lvl = level == LIBBPF_WARN && !log_demoted ? LOG_WARN : LOG_DEBUG;

	if (lvl > log_max_level)
		return 0;
	/*
	 * libbpf's guess for any EPERM as root; since Linux 5.11 BPF memory is
	 * the memory cgroup's, and the probe's own error names what is lacking.
	 */
	if (strstr(fmt, "try raising 'ulimit -l'"))
		return 0;
	if (log_format != LOG_PLAIN) {
		/* A structured line each, as vmprobe's own. */
		log_va(lvl, "", fmt, ap);
		return 0;
	}
	fputs("vmprobe: libbpf: ", stderr);
	return vfprintf(stderr, fmt, ap);
}

/*
 * CO-RE relocates every probe against the kernel's BTF: without it none
 * loads, which is said here once rather than by libbpf for each. 0, or
 * -errno with what is wrong in `why`.
 */
static int vmlinux_btf_check(char *why, size_t size)
{
	libbpf_print_fn_t print = libbpf_set_print(NULL);
	struct btf *btf = btf__load_vmlinux_btf();
	int err = btf ? 0 : -errno;
	struct stat st;

	libbpf_set_print(print);
	btf__free(btf);
	if (!err)
		return 0;
	if (stat(VMLINUX_BTF, &st) || access(VMLINUX_BTF, R_OK))
		snprintf(why, size, "%s: %s", VMLINUX_BTF, strerror(errno));
	else
		snprintf(why, size, "%s: not valid BTF", VMLINUX_BTF);
	return err;
}

/* Opens `ops` into p; 0, or -errno with nothing left. */
static int probe_open_one(struct probe *p, const struct probe_ops *ops, const struct config *cfg,
			  enum probe_mode mode)
{
	int err;

	p->ops = ops;
	caps_load_note(NULL);
	p->priv = calloc(1, ops->priv_size);
	/* serve's probes pin their maps, with persist their links, and adopt an earlier serve's. */
	p->pins = mode == PROBE_SERVE ? calloc(1, sizeof(*p->pins)) : NULL;
	if (p->pins)
		p->pins->persist = cfg->persist;
	err = p->priv && (p->pins || mode != PROBE_SERVE) ? ops->open(p, cfg, mode) : -ENOMEM;
	if (err) {
		free(p->priv);
		free(p->pins);
		p->priv = NULL;
		p->pins = NULL;
	}
	return err;
}

/* What to do about a probe's open failing with -err, in buf (CAPS_HINT_MAX bytes). */
static const char *open_hint(char *buf, int err)
{
	if (err == -EPERM || err == -EACCES)
		return caps_load_hint(buf, CAPS_HINT_MAX, -err);
	if (err == -ENOMEM)
		return ": its maps do not fit in the memory vmprobe may use (its memory cgroup's "
		       "limit): lower max_vms (or the probe's own sizes) or raise the limit";
	return "";
}

/* serve: a failure that may pass sets the probe down (true); said and counted. */
static bool probe_set_down(struct probe_set *s, const struct probe_ops *ops, int err,
			   const char *btf_why)
{
	struct probe_down *d = &s->down[s->nr_down];
	char hint[CAPS_HINT_MAX];

	if (err != -ENOMEM && !btf_why)
		return false;
	memset(d, 0, sizeof(*d));
	d->ops = ops;
	d->err = err;
	snprintf(d->why, sizeof(d->why), "%s", btf_why ? "no kernel BTF" : strerror(-err));
	d->next_try = now_seconds() + RETRY_FIRST_S;
	s->nr_down++;
	/* No BTF is one fault, said and counted once for all the probes (probes_open). */
	if (btf_why)
		return true;
	fault_count(FAULT_MAP_MEMORY);
	log_error("loading the %s probe failed (%s)%s; the other probes run, and it is tried "
		  "again in %d s", ops->title, strerror(-err), open_hint(hint, err), RETRY_FIRST_S);
	return true;
}

int probes_open(struct probe_set *s, const struct config *cfg, enum probe_mode mode)
{
	char btf_why[160] = "", hint[CAPS_HINT_MAX];
	int btf_err = vmlinux_btf_check(btf_why, sizeof(btf_why));
	bool no_btf = btf_err != 0;
	unsigned wanted = 0;

	memset(s, 0, sizeof(*s));
	s->no_btf = no_btf;
	for (size_t i = 0; i < probe_registry_len; i++) {
		const struct probe_ops *ops = probe_registry[i];
		struct probe *p = &s->probes[s->nr];
		int err = btf_err;

		if (!ops->wanted(cfg, mode))
			continue;
		wanted++;
		if (s->nr == PROBE_MAX) {
			log_error("more probes than PROBE_MAX (%d)", PROBE_MAX);
			probes_close(s);
			return -E2BIG;
		}
		p->id = s->nr;
		if (!no_btf)
			err = probe_open_one(p, ops, cfg, mode);
		if (!err) {
			s->nr++;
			continue;
		}
		if (mode == PROBE_SERVE && probe_set_down(s, ops, err, no_btf ? btf_why : NULL))
			continue;
		if (no_btf)
			log_error("no kernel BTF (%s): vmprobe needs a kernel built with "
				  "CONFIG_DEBUG_INFO_BTF", btf_why);
		else
			log_error("loading the %s probe failed (%s)%s", ops->title, strerror(-err),
				  open_hint(hint, err));
		probes_close(s);
		return err;
	}
	if (no_btf && wanted) {
		fault_count(FAULT_BTF);
		log_error("no kernel BTF (%s): no probe loads (vmprobe needs a kernel built with "
			  "CONFIG_DEBUG_INFO_BTF); VMs are listed and nothing of them is measured, "
			  "tried again in %d s", btf_why, RETRY_FIRST_S);
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

bool probes_pinned(const struct probe_set *s, bool persist)
{
	for (unsigned i = 0; i < s->nr; i++)
		if (persist ? pins_persist(s->probes[i].pins) : pins_on(s->probes[i].pins))
			return true;
	return false;
}

int probes_pin_late(struct probe_set *s)
{
	int ret = 0;

	for (unsigned i = 0; i < s->nr; i++) {
		struct probe *p = &s->probes[i];
		int err = p->ops->object ? pins_late(p->pins, p->ops->object(p)) : 0;

		if (err)
			ret = err;
	}
	return ret;
}

void probes_keep(struct probe_set *s)
{
	for (unsigned i = 0; i < s->nr; i++)
		if (pins_persist(s->probes[i].pins))
			s->probes[i].pins->keep = true;
		else /* pinned late, without its links: nothing of it can be adopted */
			pins_drop(s->probes[i].pins);
}

unsigned probes_retry(struct probe_set *s, const struct config *cfg, struct probe *out)
{
	double now = now_seconds();
	char btf_why[160], hint[CAPS_HINT_MAX];
	unsigned n = 0, kept = 0;
	int btf_err = -1; /* not looked at yet */
	bool btf_said = false;

	for (unsigned i = 0; i < s->nr_down; i++) {
		struct probe_down *d = &s->down[i];
		int err;

		if (now < d->next_try) {
			s->down[kept++] = *d;
			continue;
		}
		if (btf_err == -1)
			btf_err = vmlinux_btf_check(btf_why, sizeof(btf_why));
		memset(&out[n], 0, sizeof(out[n]));
		/* The probe's own lines would repeat at every try: said at debug level. */
		log_demoted = true;
		err = btf_err ? btf_err : probe_open_one(&out[n], d->ops, cfg, PROBE_SERVE);
		log_demoted = false;
		d->tries++;
		if (!err) {
			/* Joined like one opened at start: pinned, and what it adopts claimed at its first sync. */
			log_info("the %s probe loaded (try %u): %s", d->ops->title, d->tries + 1,
				 out[n].pins && out[n].pins->adopting
				 ? "it adopts the programs and counters an earlier serve left, which go on"
				 : "what it measures is counted from now");
			n++;
			continue;
		}
		/* A new failure is said and counted; no BTF once for all. */
		if (err != d->err && !btf_said) {
			fault_count(btf_err ? FAULT_BTF : err == -ENOMEM ? FAULT_MAP_MEMORY
								   : FAULT_PROBE_LOAD);
			log_error("loading the %s probe failed again, now with %s%s", d->ops->title,
				  btf_err ? "no kernel BTF" : strerror(-err), btf_err ? "" : open_hint(hint, err));
		}
		btf_said |= btf_err != 0 && err != d->err;
		d->err = err;
		snprintf(d->why, sizeof(d->why), "%s", btf_err ? "no kernel BTF" : strerror(-err));
		d->next_try = now + (RETRY_FIRST_S << (d->tries < 5 ? d->tries : 5));
		if (d->next_try > now + RETRY_MAX_S)
			d->next_try = now + RETRY_MAX_S;
		s->down[kept++] = *d;
	}
	s->nr_down = kept;
	if (btf_err != -1)
		s->no_btf = btf_err != 0;
	return n;
}

double probes_retry_in(const struct probe_set *s)
{
	double now = now_seconds(), in = -1;

	for (unsigned i = 0; i < s->nr_down; i++) {
		double t = s->down[i].next_try - now;

		if (in < 0 || t < in)
			in = t > 0 ? t : 0;
	}
	return in;
}

struct probe *probes_join(struct probe_set *s, const struct probe *p)
{
	struct probe *at = &s->probes[s->nr];

	*at = *p;
	at->id = s->nr++;
	return at;
}

const char *probes_down_why(const struct probe_set *s, const char *name)
{
	for (unsigned i = 0; s && i < s->nr_down; i++)
		if (!strcmp(s->down[i].ops->name, name))
			return s->down[i].why;
	return NULL;
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
