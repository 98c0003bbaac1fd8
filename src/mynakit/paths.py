"""Where mynakit keeps its files: one rule for the CLI, the virtual cards and the sandbox issuer.

``$MYNAKIT_HOME`` when set, else ``$XDG_DATA_HOME/mynakit`` (``~/.local/share/mynakit``).
Virtual cards live in ``<home>/cards``, the sandbox issuer in ``<home>/issuer``.

The one cache, of parsed card profiles, is under ``$MYNAKIT_CACHE_DIR``, else
``$XDG_CACHE_HOME/mynakit`` (``~/.cache/mynakit``). ``mynakit.profiles.profile_cache_directory``
finds it with ``os.path``: the pathlib this module imports is not on the CLI's start-up path
(docs/architecture.md §10).
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
