#!/usr/bin/env bash
# Install the system tools the test suite or the benchmarks run, when missing, from Debian's packages:
#   promtool (package prometheus) - `promtool check/test rules` in tests/monitoring
#   wrk                           - the monitoring API load benchmark
# Usage: scripts/install_system_tools.sh promtool [wrk]
set -euo pipefail
declare -A package=([promtool]=prometheus [wrk]=wrk)
missing=()
for tool in "$@"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${package[$tool]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "missing tools (${missing[*]}): install them with your package manager (Debian: apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "installing ${missing[*]} from Debian's packages" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# --no-install-recommends: only the binaries, not an exporter service; policy-rc.d keeps services from starting.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
trap 'rm -f /usr/sbin/policy-rc.d' EXIT
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
