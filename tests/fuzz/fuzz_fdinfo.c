// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * /proc/PID/fdinfo/N text (core/qemu.c): the tap a tun fd is attached to
 * (`iff:`), and the OFD locks QEMU takes on an image (`lock:` lines).
 */
#include <net/if.h>

#include "fuzz.h"

#include "core/qemu.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_text(data, size), ifname[IFNAMSIZ];

	if (!fdinfo_tap_name(text, ifname, sizeof(ifname)))
		fuzz_assert(ifname[0] && strlen(ifname) < IFNAMSIZ && !strchr(ifname, '\n'));
	fdinfo_qemu_image_lock(text);
	free(text);
	return 0;
}
