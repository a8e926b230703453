// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * HTTP requests to `vmprobe serve` (core/server.c): the input is sent as
 * raw bytes on a connection to the real server (libmicrohttpd on
 * 127.0.0.1) with basic authentication on, so that each request goes
 * through libmicrohttpd's parsing into vmprobe's: method and URL, the
 * Authorization header (core/auth.c, bcrypt cost 4 to keep it fast),
 * Accept and Accept-Encoding (core/negotiate.c), then the rendering of
 * /metrics in the format chosen. The user is prometheus, password secret.
 *
 * The input is sent with an empty line after it and a request for
 * /healthz after that, then the connection is half-closed and what comes
 * back read to its end: libmicrohttpd closes on end of input once a
 * request's header section is complete, but waits (its idle timeout) on
 * an unfinished one, and lines before a request that are empty to it (or
 * begin with a NUL) do not begin one: the /healthz request does then.
 *
 * Where it may (root), the target runs in a network namespace of its own,
 * its loopback up: the server closes first, and thousands of connections
 * a second leave their TIME_WAIT sockets there, not in the host's.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <crypt.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz.h"

#include "core/config.h"
#include "core/discovery.h"
#include "core/server.h"
#include "core/util.h"
#include "core/webconfig.h"

static struct sockaddr_in addr = { .sin_family = AF_INET };

/* A port no one listens on now, 0 if none. */
static unsigned short free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	unsigned short port = 0;

	if (fd >= 0 && !bind(fd, (struct sockaddr *)&a, sizeof(a)) &&
	    !getsockname(fd, (struct sockaddr *)&a, &len))
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

/* A network namespace of the process's own with its loopback up; else the current one. */
static void own_netns(void)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	int fd;

	if (unshare(CLONE_NEWNET))
		return;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &ifr))
		abort();
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr))
		abort();
	close(fd);
}

static void start(void)
{
	static struct config cfg;
	static struct discovery d;
	static struct web_config wc;
	static struct crypt_data cd;
	struct server_opts o = { .web = &wc, .max_connections = 16 };
	char salt[64], yaml[512], listen[32];
	const char *hash;
	int n;

	log_max_level = LOG_ERROR;
	own_netns();
	if (!crypt_gensalt_rn("$2y$", 4, NULL, 0, salt, sizeof(salt)) ||
	    !(hash = crypt_r("secret", salt, &cd)) || hash[0] == '*')
		abort();
	n = snprintf(yaml, sizeof(yaml), "basic_auth_users:\n  prometheus: %s\n"
		     "http_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n", hash);
	if (web_config_load_string(&wc, "/etc/web.yml", yaml, (size_t)n, stderr) ||
	    config_load_default(&cfg) || discovery_init(&d, &cfg, NULL))
		abort();
	/* The port found free may be taken before the server binds it: try again. */
	for (int i = 0; i < 20; i++) {
		unsigned short port = free_port();

		snprintf(listen, sizeof(listen), "127.0.0.1:%u", port);
		o.listen = listen;
		if (port && server_start(&o, &d)) {
			addr.sin_port = htons(port);
			addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
			return;
		}
	}
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct linger reset = { .l_onoff = 1, .l_linger = 0 };
	static const char tail[] = "\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n";
	char head[16], buf[4096], *req;
	size_t got = 0, sent = 0, len = size + sizeof(tail) - 1;
	ssize_t n;
	int fd;

	if (!addr.sin_port)
		start();
	/*
	 * libFuzzer's SIGALRM (-timeout) may interrupt any call below: an
	 * interrupted connect() goes on (send() waits for it), the others are
	 * made again.
	 */
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset)) ||
	    (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) && errno != EINTR))
		abort();
	/* In one piece (Nagle would hold a second back for the server's delayed ACK). */
	req = malloc(len);
	if (!req)
		abort();
	memcpy(req, data, size);
	memcpy(req + size, tail, sizeof(tail) - 1);
	/* The server may answer (400, 431) and close before reading it all. */
	while (sent < len) {
		n = send(fd, req + sent, len - sent, MSG_NOSIGNAL);
		if (n < 0 && errno != EINTR)
			break;
		sent += n > 0 ? (size_t)n : 0;
	}
	free(req);
	shutdown(fd, SHUT_WR);
	/* Read to the end: the request is then handled, its response sent. */
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int ready;

		/* Generous: a niced fuzzer on a busy host may wait long for a CPU. */
		while ((ready = poll(&p, 1, 25000)) < 0 && errno == EINTR)
			;
		if (ready != 1) {
			fprintf(stderr, "the server neither answered nor closed in 25 s\n");
			abort();
		}
		n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (got < sizeof(head))
			memcpy(head + got, buf,
			       (size_t)n < sizeof(head) - got ? (size_t)n : sizeof(head) - got);
		got += (size_t)n;
	}
	fuzz_assert(n == 0 || errno == ECONNRESET);
	/* Whatever came, if anything, is an HTTP response, and no server error. */
	fuzz_assert(got == 0 || (got >= 12 && !memcmp(head, "HTTP/1.", 7)));
	fuzz_assert(got == 0 || memcmp(head + 9, "500", 3));
	close(fd);
	return 0;
}
