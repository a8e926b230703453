// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* One YAML document from a file or a string, and errors that say where. */
#include "core/yamldoc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_FILE (1 << 20)

bool yamldoc_is_null(const char *s)
{
	return !*s || !strcmp(s, "~") || !strcasecmp(s, "null");
}

int yamldoc_fail(const struct yamldoc *y, const yaml_node_t *node, const char *fmt, ...)
{
	va_list ap;

	fprintf(y->err, "%s:%zu:%zu: ", y->name, node->start_mark.line + 1,
		node->start_mark.column + 1);
	va_start(ap, fmt);
	vfprintf(y->err, fmt, ap);
	va_end(ap);
	fputc('\n', y->err);
	return -EINVAL;
}

int yamldoc_each_key(struct yamldoc *y, yaml_node_t *map, const char *what, yamldoc_key_fn fn,
		     void *arg)
{
	yaml_node_pair_t *p, *q;

	if (map->type == YAML_SCALAR_NODE && yamldoc_is_null(yamldoc_scalar(map)))
		return 0;
	if (map->type != YAML_MAPPING_NODE)
		return yamldoc_fail(y, map, "%s must be a mapping", what);
	for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yamldoc_node(y, p->key), *v = yamldoc_node(y, p->value);
		int err;

		if (k->type != YAML_SCALAR_NODE)
			return yamldoc_fail(y, k, "%s: keys must be plain names", what);
		for (q = map->data.mapping.pairs.start; q < p; q++) {
			yaml_node_t *prev = yamldoc_node(y, q->key);

			if (prev->type == YAML_SCALAR_NODE &&
			    !strcmp(yamldoc_scalar(prev), yamldoc_scalar(k)))
				return yamldoc_fail(y, k, "duplicate key '%s'", yamldoc_scalar(k));
		}
		err = fn(arg, yamldoc_scalar(k), k, v);
		if (err)
			return err;
	}
	return 0;
}

yaml_node_t *yamldoc_root(struct yamldoc *y)
{
	return yaml_document_get_root_node(&y->doc);
}

yaml_node_t *yamldoc_node(struct yamldoc *y, int index)
{
	return yaml_document_get_node(&y->doc, index);
}

int yamldoc_load_string(struct yamldoc *y, const char *name, const char *text, size_t len,
			FILE *err)
{
	yaml_parser_t parser;
	yaml_node_t *root;
	int ret = 0;

	y->name = name;
	y->err = err;
	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &y->doc)) {
		fprintf(err, "%s:%zu:%zu: %s%s%s\n", name, parser.problem_mark.line + 1,
			parser.problem_mark.column + 1, parser.problem ? parser.problem : "syntax error",
			parser.context ? " " : "", parser.context ? parser.context : "");
		yaml_parser_delete(&parser);
		return -EINVAL;
	}
	root = yamldoc_root(y);
	if (root) {
		/* A second document would be silently ignored: refuse it. */
		yaml_document_t next;

		if (!yaml_parser_load(&parser, &next)) {
			ret = yamldoc_fail(y, root, "YAML syntax error after the first document");
		} else {
			yaml_node_t *extra = yaml_document_get_root_node(&next);

			if (extra)
				ret = yamldoc_fail(y, extra, "only one YAML document is allowed");
			yaml_document_delete(&next);
		}
	}
	yaml_parser_delete(&parser);
	if (ret)
		yaml_document_delete(&y->doc);
	return ret;
}

int yamldoc_load_file(struct yamldoc *y, const char *path, FILE *err)
{
	size_t len;
	char *text;
	FILE *f;
	int ret;

	f = fopen(path, "re");
	if (!f) {
		ret = -errno;
		fprintf(err, "%s: cannot open: %s\n", path, strerror(errno));
		return ret;
	}
	text = malloc(MAX_FILE);
	if (!text) {
		fclose(f);
		return -ENOMEM;
	}
	len = fread(text, 1, MAX_FILE, f);
	if (ferror(f) || !feof(f)) {
		fprintf(err, "%s: cannot read (or larger than 1 MiB)\n", path);
		ret = -EIO;
	} else {
		ret = yamldoc_load_string(y, path, text, len, err);
	}
	free(text);
	fclose(f);
	return ret;
}

void yamldoc_free(struct yamldoc *y)
{
	yaml_document_delete(&y->doc);
}
