#!/usr/bin/env bash
# Install the system tools the test suite or the benchmarks run, when missing, from Debian's packages:
#   promtool (package prometheus) - `promtool check/test rules` in tests/monitoring
#   wrk                           - the monitoring API load benchmark
#   prometheus, prometheus-alertmanager (package prometheus-alertmanager) - tests/aiops' Alertmanager integration
#   docker-compose                - `docker-compose config -q` validates docker-compose.yml (no engine needed)
#   chromium                      - the console's end-to-end tests (Playwright drives /usr/bin/chromium)
# Usage: scripts/install_system_tools.sh promtool [wrk] [prometheus prometheus-alertmanager] [docker-compose] [chromium]
set -euo pipefail
declare -A package=([promtool]=prometheus [wrk]=wrk [prometheus]=prometheus [prometheus-alertmanager]=prometheus-alertmanager [docker-compose]=docker-compose [chromium]=chromium)
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
# Other installs may hold dpkg's lock (parallel engineers, CI): wait for it instead of failing.
apt-get -o DPkg::Lock::Timeout=600 update -qq
# --no-install-recommends: only the binaries, not an exporter service; policy-rc.d keeps services from starting.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
trap 'rm -f /usr/sbin/policy-rc.d' EXIT
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
