/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * One YAML document loaded from a file or a string (libyaml), and errors
 * about its nodes as "name:line:column: what": shared by the configuration
 * and the web configuration.
 */
#ifndef VMPROBE_YAMLDOC_H
#define VMPROBE_YAMLDOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <yaml.h>

struct yamldoc {
	yaml_document_t doc;
	const char *name; /* in messages */
	FILE *err;
};

/*
 * Loads exactly one document (a second one is an error); 0, or -EINVAL
 * after saying where the syntax is wrong. yamldoc_free() after 0.
 */
int yamldoc_load_string(struct yamldoc *y, const char *name, const char *text, size_t len,
			FILE *err);
/* The same from a file of at most 1 MiB; -errno (said) if it cannot be read. */
int yamldoc_load_file(struct yamldoc *y, const char *path, FILE *err);
void yamldoc_free(struct yamldoc *y);

/* The root node, NULL for an empty document. */
yaml_node_t *yamldoc_root(struct yamldoc *y);
yaml_node_t *yamldoc_node(struct yamldoc *y, int index);

/* Says "name:line:column: " and the message about `node`; returns -EINVAL. */
int yamldoc_fail(const struct yamldoc *y, const yaml_node_t *node, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Calls fn(arg, key, key node, value node) for every key of a mapping in
 * order, stopping at the first non-zero return. A null value (a key with
 * nothing under it) is an empty mapping; anything else that is not a
 * mapping, a key that is not a plain scalar, and a key given twice are
 * errors about `what`. 0 or the first error.
 */
typedef int (*yamldoc_key_fn)(void *arg, const char *key, yaml_node_t *k, yaml_node_t *v);
int yamldoc_each_key(struct yamldoc *y, yaml_node_t *map, const char *what, yamldoc_key_fn fn,
		     void *arg);

/* A scalar's text. */
static inline const char *yamldoc_scalar(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

/* Whether a scalar is YAML's null ("", "~", "null"). */
bool yamldoc_is_null(const char *s);

#endif
