#!/usr/bin/env bash
# Set up mynakit from a fresh clone: Debian packages (when root), a virtualenv, the package.
#   tools/setup.sh            what the CLI and the in-process virtual card need
#   tools/setup.sh --pcsc     also pcscd, the vpcd driver and OpenSC (the PC/SC test tier)
#   tools/setup.sh --services also PostgreSQL's server binaries (the services tier starts a
#                             throwaway cluster of its own; no system service is used)
#   tools/setup.sh --e2e      also Chromium, its WebDriver and Japanese fonts (the kiosk page's
#                             end-to-end tier drives Debian's chromium headless; no download)
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

want_pcsc=0
want_services=0
want_e2e=0
for argument in "$@"; do
  case "$argument" in
    --pcsc) want_pcsc=1 ;;
    --services) want_services=1 ;;
    --e2e) want_e2e=1 ;;
    *) echo "usage: tools/setup.sh [--pcsc] [--services] [--e2e]" >&2; exit 2 ;;
  esac
done

# pyscard compiles from source on Linux: it needs swig and libpcsclite-dev (docs/testing.md).
# nfcpy (the nfc:usb transport and its tests) loads libusb-1.0 when imported.
packages=(swig libpcsclite-dev libpcsclite1 openssl libusb-1.0-0)
# The venv is made from Debian's python3, built with profile-guided and link-time optimisation:
# a source build found first on PATH (pyenv's, say) usually is not, and starts and runs about a
# third slower here (tools/bench/README.md). python3-dev for pyscard's extension.
if [ -z "${PYTHON:-}" ]; then
  packages+=(python3 python3-venv python3-dev)
fi
if [ "$want_pcsc" = 1 ]; then
  packages+=(pcscd vsmartcard-vpcd opensc)
fi
if [ "$want_services" = 1 ]; then
  packages+=(postgresql)
fi
if [ "$want_e2e" = 1 ]; then
  packages+=(chromium chromium-driver fonts-noto-cjk)
fi

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: missing Debian packages: ${missing[*]}" >&2
    echo "setup: run as root, or: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi

python=${PYTHON:-/usr/bin/python3}
# A venv made from another interpreter (an older set-up, or PYTHON changed) is made anew.
if [ -x .venv/bin/python ] && [ "$(.venv/bin/python -c 'import os, sys; print(os.path.realpath(sys._base_executable))')" \
    != "$("$python" -c 'import os, sys; print(os.path.realpath(sys.executable))')" ]; then
  echo "setup: .venv was made from another python; making it anew from $python" >&2
  rm -rf .venv
fi
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv from $python" >&2
  "$python" -m venv .venv
fi
stamp=.venv/.mynakit-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing mynakit and its test tools into .venv" >&2
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[test]'
  touch "$stamp"
fi
