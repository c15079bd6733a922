#!/usr/bin/env bash
# Installs the Debian 12 packages bagnet-lens needs (only those missing). Needs root or sudo.
# chromium, chromium-driver, python3-selenium and a font: the browser test of the evidence browser;
# slurmd, slurmctld, slurm-client, munge: the Slurm example's test; clang: the fuzz targets and the
# sanitizer build (scripts/fuzz.sh, scripts/test-sanitized.sh).
set -euo pipefail
packages=(cmake g++ make ccache xz-utils libtorch-dev libopencv-dev nlohmann-json3-dev libcxxopts-dev doctest-dev zlib1g-dev
          dataset-fashion-mnist chromium chromium-driver python3-selenium fonts-liberation
          slurmd slurmctld slurm-client munge clang)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
as_root=()
[ "$(id -u)" -eq 0 ] || as_root=(sudo)
echo "installing: ${missing[*]}" >&2
"${as_root[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
