#!/usr/bin/env bash
# CPU time per full trust verification of two clusters (bundles + chains, no probe), release
# build. Target: median under 10 ms. Usage: bench/trust.sh [iterations]
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product SwitchoverBench >&2
"$(swift build -c release --show-bin-path)/SwitchoverBench" "${1:-2000}"
