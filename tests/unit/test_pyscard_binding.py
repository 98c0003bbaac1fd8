"""pyscard's binding loaded alone (``mynakit.transport.pyscard_binding``): it must offer every
name the PC/SC transport uses, with the values pyscard's own wrapper gives them, load none of
pyscard's object layer, and fall back to the usual import when the extension cannot be found.
Each case runs in a fresh interpreter, since a test process may have imported pyscard already."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

TRANSPORT = Path(__file__).parents[2] / "src" / "mynakit" / "transport"


def names_the_transport_uses() -> list[str]:
    source = "".join((TRANSPORT / name).read_text() for name in ("pcsc.py", "readers.py"))
    return sorted(set(re.findall(r"\bscard\.(\w+)", source)))


def run_probe(probe: str) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ),
    )
    loaded: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return loaded


def test_the_extension_alone_offers_what_the_transport_uses() -> None:
    names = names_the_transport_uses()
    assert "SCardTransmit" in names and "SCARD_SHARE_SHARED" in names
    probe = (
        "import json, sys\n"
        "from mynakit.transport.pyscard_binding import scard\n"
        "alone = {'module': scard.__name__,\n"
        "         'object_layer': sorted(m for m in sys.modules\n"
        "                               if m in ('smartcard', 'smartcard.scard', 'typing'))}\n"
        f"names = {names!r}\n"
        "alone['missing'] = [n for n in names if not hasattr(scard, n)]\n"
        "import smartcard.scard as wrapper\n"
        "alone['same_extension'] = sys.modules['smartcard.scard.scard']._scard is scard\n"
        "alone['different'] = [n for n in names if not callable(getattr(wrapper, n))\n"
        "                      and getattr(wrapper, n) != getattr(scard, n)]\n"
        "print(json.dumps(alone))\n"
    )
    found = run_probe(probe)
    assert found == {
        "module": "smartcard.scard._scard",
        "object_layer": [],
        "missing": [],
        "same_extension": True,
        "different": [],
    }


def test_without_the_extension_file_the_usual_import_is_used() -> None:
    probe = (
        "import importlib.machinery, json\n"
        "importlib.machinery.EXTENSION_SUFFIXES[:] = ['.not-an-extension']\n"
        "from mynakit.transport.pyscard_binding import scard\n"
        "print(json.dumps({'module': scard.__name__, 'has': hasattr(scard, 'SCardConnect')}))\n"
    )
    assert run_probe(probe) == {"module": "smartcard.scard", "has": True}


def test_an_already_imported_wrapper_is_reused() -> None:
    probe = (
        "import json\n"
        "import smartcard.scard as wrapper\n"
        "from mynakit.transport.pyscard_binding import scard\n"
        "print(json.dumps({'same': scard is wrapper}))\n"
    )
    assert run_probe(probe) == {"same": True}
