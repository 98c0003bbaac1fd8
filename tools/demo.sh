#!/usr/bin/env bash
# Set up and run the main job: a virtual card through the whole flow, no reader needed.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
exec .venv/bin/mynakit demo "$@"
