/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * /metrics: vmprobe's own families and the VMs', then each probe's
 * (probe_ops.render), in the format the scraper negotiated.
 */
#ifndef VMPROBE_METRICS_H
#define VMPROBE_METRICS_H

#include "core/discovery.h"
#include "core/expo.h"
#include "core/util.h"

/*
 * Renders every family into sb (reset first) in `format`; 0 or -ENOMEM.
 * `sink` (text formats; may be NULL) takes the response in segments while
 * it is written: sb then holds only the last.
 */
int metrics_render(struct discovery *d, enum expo_format format, struct strbuf *sb,
		   const struct expo_sink *sink);

/*
 * The labels of a per-VM series into lb (reset first): name, namespace
 * where known, then `extra`.
 */
void vm_labels(struct strbuf *lb, const struct vm *vm, const struct expo_label *extra, size_t n);
/*
 * The same appended to sb with its NUL, so that one buffer holds the
 * labels of many series: their offset in sb->buf.
 */
size_t vm_labels_add(struct strbuf *sb, const struct vm *vm, const struct expo_label *extra,
		     size_t n);

/* A family with one unlabelled sample. */
void metrics_single_u64(struct expo *e, const struct expo_family *f, __u64 v);

/* Each family vmprobe can expose: vmprobe's own, then every probe's. */
struct family_list {
	const char *owner; /* "vmprobe" or a probe's name */
	const struct expo_family *families;
	size_t nr;
};
/* Calls fn for every list in order; stops on non-zero. */
int metrics_families(int (*fn)(const struct family_list *l, void *arg), void *arg);
/* The family named `name`, or NULL. */
const struct expo_family *metrics_family_find(const char *name);

#endif
