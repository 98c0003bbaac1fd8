"""Where mynakit keeps its files: one rule for the CLI, the virtual cards and the sandbox issuer.

``$MYNAKIT_HOME`` when set, else ``$XDG_DATA_HOME/mynakit`` (``~/.local/share/mynakit``).
Virtual cards live in ``<home>/cards``, the sandbox issuer in ``<home>/issuer``.
"""

from __future__ import annotations

import os
from pathlib import Path


def mynakit_home() -> Path:
    configured = os.environ.get("MYNAKIT_HOME")
    if configured:
        return Path(configured)
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "mynakit"
