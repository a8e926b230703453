// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The web configuration (core/webconfig.c, --web.config.file), as if it
 * were /etc/web.yml: relative paths in it are then under /etc, where some
 * exist (hostname, passwd), so that the checks across keys are reached.
 * What is taken must be what the server relies on.
 */
#include "fuzz.h"

#include "core/webconfig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct web_config wc;
	char prio[128];

	if (web_config_load_string(&wc, "/etc/web.yml", (const char *)data, size, fuzz_devnull())) {
		fuzz_assert(!wc.users && !wc.headers && !wc.cert_file && !wc.key_file);
		return 0;
	}
	fuzz_assert(!wc.tls || (wc.cert_file && wc.key_file));
	fuzz_assert(!wc.tls || wc.client_auth < CLIENT_AUTH_VERIFY_IF_GIVEN || wc.client_ca_file);
	for (size_t i = 0; i < wc.nr_users; i++)
		fuzz_assert(wc.users[i].name[0] && !strchr(wc.users[i].name, ':') &&
			    strlen(wc.users[i].value) == 60);
	for (size_t i = 0; i < wc.nr_headers; i++)
		fuzz_assert(wc.headers[i].name[0] && wc.headers[i].value[0] &&
			    !strpbrk(wc.headers[i].name, " :\r\n") &&
			    !strpbrk(wc.headers[i].value, "\r\n"));
	web_config_priorities(&wc, prio, sizeof(prio));
	fuzz_assert(!strncmp(prio, "NORMAL:-VERS-ALL", 16) && strlen(prio) < sizeof(prio));
	web_config_free(&wc);
	return 0;
}
