#!/usr/bin/env bash
# Set up and run the main job: a virtual card through the whole flow, no reader needed.
# Arguments go to `mynakit demo` (--pcsc puts the card inside pcscd, --home DIR keeps it).
set -euo pipefail
cd "$(dirname "$0")/.."
setup_arguments=()
for argument in "$@"; do
  [ "$argument" = "--pcsc" ] && setup_arguments=(--pcsc)
done
tools/setup.sh "${setup_arguments[@]}"
exec .venv/bin/mynakit demo "$@"
