// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* HTTP content negotiation: Accept and Accept-Encoding with q-values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit.h"

#include "core/negotiate.h"
#include "core/util.h"

/* What /metrics offers, in order of preference: plain clients get the first. */
static const char *const offers[] = {
	"text/plain; version=0.0.4",
	"application/openmetrics-text; version=1.0.0",
	"application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited",
};
enum { TEXT, OM, PROTO, NONE = -1 };

struct accept_case {
	const char *what, *header;
	int want;
};

static void accept_cases(void **state)
{
	static const struct accept_case cases[] = {
		{ "no header: the default", NULL, TEXT },
		{ "empty header: the default", "  ", TEXT },
		{ "Prometheus 2.42 with native histograms",
		  "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
		  "encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3,*/*;q=0.2", PROTO },
		{ "Prometheus 2.42 by default",
		  "application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
		  "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1", OM },
		/* Prometheus 3.0 adds escaping=allow-utf-8 to every protocol it names. */
		{ "Prometheus 3.0 by default",
		  "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,"
		  "application/openmetrics-text;version=0.0.1;escaping=allow-utf-8;q=0.4,"
		  "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,"
		  "text/plain;version=0.0.4;escaping=allow-utf-8;q=0.2,*/*;q=0.1", OM },
		{ "Prometheus 3.0 with native histograms",
		  "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
		  "encoding=delimited;escaping=allow-utf-8;q=0.6,"
		  "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,"
		  "text/plain;version=0.0.4;escaping=allow-utf-8;q=0.2,*/*;q=0.1", PROTO },
		/* Later 3.x: escaping only on the 1.0.0 text formats, the scheme configured. */
		{ "Prometheus 3.x by default",
		  "application/openmetrics-text;version=1.0.0;escaping=underscores;q=0.5,"
		  "application/openmetrics-text;version=0.0.1;q=0.4,"
		  "text/plain;version=1.0.0;escaping=underscores;q=0.3,"
		  "text/plain;version=0.0.4;q=0.2,*/*;q=0.1", OM },
		{ "escaping does not make a range match another version",
		  "application/openmetrics-text;version=0.0.1;escaping=allow-utf-8,"
		  "text/plain;q=0.1",
		  TEXT },
		{ "curl", "*/*", TEXT },
		{ "a browser", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
		  TEXT },
		{ "plain text asked for", "text/plain", TEXT },
		{ "text/* picks text/plain", "text/*", TEXT },
		{ "the type is case-insensitive", "TEXT/Plain", TEXT },
		{ "a parameter must match: another version is not ours",
		  "application/openmetrics-text; version=0.0.1, text/plain;q=0.1", TEXT },
		{ "q=0 refuses the default", "text/plain;q=0,application/openmetrics-text;q=0.1", OM },
		{ "protobuf of another encoding is not ours",
		  "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;"
		  "encoding=text,text/plain;q=0.5", TEXT },
		{ "q=0 refuses, even under */*", "application/vnd.google.protobuf;q=0,"
		  "application/openmetrics-text;q=0,*/*;q=0.5", TEXT },
		{ "the most specific range gives the weight",
		  "text/plain;version=0.0.4;q=0.9,text/*;q=0.1,application/*;q=0.5", TEXT },
		{ "the highest weight wins", "text/plain;q=0.8,application/openmetrics-text;q=0.9",
		  OM },
		{ "ties go to the earlier offer", "application/openmetrics-text,text/plain", TEXT },
		{ "application/* picks the first application offer", "application/*", OM },
		{ "parameters after q are accept-ext, not the type's",
		  "application/openmetrics-text;q=0.5;version=9,text/plain;q=0.4", OM },
		{ "quoted parameter values", "application/openmetrics-text;version=\"1.0.0\"", OM },
		{ "spaces around everything", " text/plain ; version = 0.0.4 ; q = 0.5 ", TEXT },
		{ "nothing acceptable", "image/png", NONE },
		{ "all refused", "*/*;q=0", NONE },
		{ "a malformed weight drops its element", "text/plain;q=2,image/png", NONE },
		{ "q with more than three decimals is malformed", "text/plain;q=0.1234", NONE },
		{ "junk after an element drops it", "text/plain junk, image/png", NONE },
		{ "no subtype is no media range", "text, image/png", NONE },
		{ "*/plain is no media range", "*/plain", NONE },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		expect_int(cases[i].what, cases[i].want,
			   negotiate_accept(cases[i].header, offers, ARRAY_SIZE(offers)));
}

static void encoding_cases(void **state)
{
	static const struct accept_case cases[] = {
		{ "no header: identity", NULL, 0 },
		{ "empty header: identity only", "", 0 },
		{ "Prometheus", "gzip", 1 },
		{ "a browser", "gzip, deflate, br", 1 },
		{ "gzip;q=0 refuses gzip", "gzip;q=0", 0 },
		{ "gzip;q=0.000 too", "gzip;q=0.000", 0 },
		{ "* accepts gzip", "*", 1 },
		{ "*;q=0 refuses all but what is named", "gzip, *;q=0", 1 },
		{ "identity preferred", "identity;q=1, gzip;q=0.5", 0 },
		{ "gzip preferred over identity", "identity;q=0.5, gzip", 1 },
		{ "named gzip ranks above an unnamed identity", "gzip;q=0.1", 1 },
		{ "* below identity", "identity, *;q=0.5", 0 },
		{ "case-insensitive", "GZip", 1 },
		{ "only others", "br, deflate", 0 },
		{ "x-gzip is not gzip", "x-gzip", 0 },
		{ "a malformed weight drops the element", "gzip;q=x", 0 },
		{ "spaces and empty elements", " , gzip ; q=0.8 ,", 1 },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		expect_int(cases[i].what, cases[i].want, negotiate_encoding(cases[i].header, "gzip"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(accept_cases),
		cmocka_unit_test(encoding_cases),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
