"""The virtual reader's slot: which stored card ``emulator serve`` puts into pcscd.

One marker file, ``<cards folder>/inserted``, holds the name of the inserted card.
"""

from __future__ import annotations

import os
from pathlib import Path

from mynakit.atomic_files import PRIVATE_FILE, write_atomic
from mynakit.emulator.card_layout import CardLayout
from mynakit.errors import UsageError

INSERTED_FILE = "inserted"


def insert_card(base_dir: str | os.PathLike[str], name: str) -> None:
    """Record that card ``name`` is in the virtual reader (read by ``emulator serve``)."""
    if not CardLayout.of(base_dir, name).exists():
        raise UsageError(f"no virtual card named {name!r} in {base_dir}")
    write_atomic(Path(base_dir) / INSERTED_FILE, name.encode("utf-8") + b"\n", mode=PRIVATE_FILE)


def eject_card(base_dir: str | os.PathLike[str]) -> str | None:
    """Take the card out of the virtual reader; return the name of the card that was in it."""
    name = inserted_card(base_dir)
    if name is not None:
        (Path(base_dir) / INSERTED_FILE).unlink(missing_ok=True)
    return name


def inserted_card(base_dir: str | os.PathLike[str]) -> str | None:
    """The name of the card in the virtual reader, if any."""
    path = Path(base_dir) / INSERTED_FILE
    try:
        name = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError):
        return None  # an unreadable marker is an empty reader, not a broken command
    return name or None
