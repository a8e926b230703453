/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* /metrics: the VM table and the probes' maps as exposition text. */
#ifndef VMPROBE_METRICS_H
#define VMPROBE_METRICS_H

#include "discovery.h"
#include "util.h"

/* Renders every family into sb (reset first); 0 or -ENOMEM. */
int metrics_render(struct discovery *d, struct strbuf *sb);

#endif
