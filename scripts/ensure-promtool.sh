#!/usr/bin/env bash
# ensure-promtool.sh: make sure `promtool` (Prometheus' config and rule checker) is on PATH;
# deploy/deploy_test.go and `make deploy-check` use it on deploy/prometheus/*.yml.
#
# Idempotent and non-interactive (works with CI=true and no stdin): does nothing when promtool
# is there already. Otherwise (needs root) installs Debian's `prometheus` package, which ships
# /usr/bin/promtool, with apt-get (apt-get update only if the first attempt fails).
#
# The package also contains a Prometheus server that its postinst would start and enable. We
# only want the tool, so the service start is blocked with a policy-rc.d for the duration of
# the install (Docker images usually have one already), and afterwards the service is stopped
# and disabled when systemd runs, and any server the install started anyway is stopped.
# Without systemd (containers) those steps do nothing.
set -euo pipefail

log() { echo "ensure-promtool: $*" >&2; }
die() {
	log "ERROR: $*"
	exit 1
}

if command -v promtool >/dev/null 2>&1; then
	exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
	die "promtool is missing and installing it needs root (run: sudo $0, or install Debian's prometheus package, or put promtool from a Prometheus release on PATH)"
fi

export DEBIAN_FRONTEND=noninteractive

# Keep the package from starting its server: invoke-rc.d and deb-systemd-invoke ask
# /usr/sbin/policy-rc.d, and exit code 101 means "action not allowed".
POLICY=/usr/sbin/policy-rc.d
if [[ ! -e $POLICY ]]; then
	printf '#!/bin/sh\n# written by ensure-promtool.sh during apt-get install; removed afterwards\nexit 101\n' >"$POLICY"
	chmod 0755 "$POLICY"
	trap 'rm -f "$POLICY"' EXIT
fi

log "installing Debian's prometheus package for promtool (its server is not started)"
apt_install() { apt-get install -y --no-install-recommends prometheus </dev/null; }
if ! apt_install; then
	log "apt-get install failed; running apt-get update and trying again"
	apt-get update </dev/null
	apt_install
fi

# Whatever the postinst did, leave no Prometheus server running or enabled.
# `systemctl disable` works without a running systemd too (it only removes the symlinks).
if command -v systemctl >/dev/null 2>&1; then
	if [[ -d /run/systemd/system ]]; then
		systemctl disable --now prometheus.service >/dev/null 2>&1 || true
	else
		systemctl disable prometheus.service >/dev/null 2>&1 || true
	fi
fi
if command -v start-stop-daemon >/dev/null 2>&1; then
	start-stop-daemon --stop --quiet --oknodo --retry 10 --exec /usr/bin/prometheus >/dev/null 2>&1 || true
fi

command -v promtool >/dev/null 2>&1 || die "promtool is still missing after installing the prometheus package"
log "$(promtool --version 2>&1 | head -n 1)"
