#!/usr/bin/env bash
# One cutover step (weights + read-back) on a real HAProxy backend of 1,000 and 10,000 servers
# through the HAProxy driver, release build; with the same runtime-API lines sent by a raw
# client and by socat for reference. Target: 1,000 servers under 100 ms.
# Usage: bench/fleet.sh [--servers 1000,10000] [--trials 20]
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product SwitchoverBench >&2
"$(swift build -c release --show-bin-path)/SwitchoverBench" fleet "$@"
