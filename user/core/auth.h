/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * HTTP basic authentication against basic_auth_users' bcrypt hashes
 * (libxcrypt). bcrypt is slow on purpose (tens of ms): a user and password
 * that passed are remembered (by SHA-256 of both, never the password), so
 * a scrape every few seconds does not pay it each time.
 */
#ifndef VMPROBE_AUTH_H
#define VMPROBE_AUTH_H

#include <stdbool.h>

#include "core/webconfig.h"

/*
 * Whether `user` with `password` is allowed. An unknown user costs a bcrypt
 * of a known user's hash too: as long as a wrong password.
 */
bool auth_check(const struct web_config *wc, const char *user, const char *password);

#endif
