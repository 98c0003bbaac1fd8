#!/usr/bin/env bash
# Set up and run the main job: the whole counter flow on a virtual card, no reader needed.
#   tools/demo.sh            sandbox issuer, eligibility service on SQLite, the terminal: prints
#                            each state, the result and where the result files were written
#   tools/demo.sh --pcsc     the same with the card inside pcscd (set up first)
#   tools/demo.sh --kiosk    serve the terminal's kiosk page on 127.0.0.1 and print its address
#   tools/demo.sh --library  a library counter: the same card resolved through the MyKey platform
# Other arguments go to `mynakit demo` (--home DIR keeps everything in DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
setup_arguments=()
for argument in "$@"; do
  [ "$argument" = "--pcsc" ] && setup_arguments=(--pcsc)
done
tools/setup.sh "${setup_arguments[@]}"
exec .venv/bin/mynakit demo "$@"
