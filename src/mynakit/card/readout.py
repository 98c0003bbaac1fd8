"""The standard read-out of a card: every AP, everything that opens without a PIN, and what the
holder's PINs open when they are given. ``mynakit record`` runs it to make a transcript, and the
reader tests run it to count APDUs per reader (docs/readers.md §2).

It reads and verifies, never signs or changes anything. Every VERIFY goes through the guarded
session verify (counter first, never the last try), and a check code is used only as the holder's
own credential: the My Number read with the text PIN opens the visual AP (docs/card.md §7.11).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from mynakit.card.common import CommonAp
from mynakit.card.errors import FileNotFoundOnCardError
from mynakit.card.jpki import JpkiAp
from mynakit.card.text import TextAp, parse_my_number
from mynakit.card.visual import VisualAp
from mynakit.iso7816.protocol import ApduProtocol
from mynakit.profiles import CardProfile

SessionT = TypeVar("SessionT", TextAp, VisualAp)


@dataclass(frozen=True)
class ReadoutSecrets:
    """The PINs the holder chose to give; each ``None`` leaves what it guards unread."""

    auth_pin: str | None = field(default=None, repr=False)
    sign_password: str | None = field(default=None, repr=False)
    text_pin: str | None = field(default=None, repr=False)


@dataclass
class Readout:
    """What the read-out read: file sizes (never contents) and every key's tries left."""

    files: dict[str, int] = field(default_factory=dict)
    tries_left: dict[str, int | None] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {"files": self.files, "tries_left": self.tries_left, "skipped": self.skipped}


Progress = Callable[[str], None]


def standard_readout(
    protocol: ApduProtocol,
    secrets: ReadoutSecrets | None = None,
    *,
    progress: Progress | None = None,
) -> Readout:
    """Read every AP of the card in ``protocol`` (docs/card.md §7.1-§7.14)."""
    given = secrets or ReadoutSecrets()
    result = Readout()
    say = progress or (lambda _message: None)

    say("JPKI AP: token and certificates")
    jpki = JpkiAp.open(protocol)  # reads the token (docs/card.md §7.1)
    for kind in ("auth", "auth_ca", "sign_ca"):
        _note_file(result, "jpki", f"{kind}_certificate", jpki.read_certificate(kind))
    for status in jpki.pin_status():
        result.tries_left[f"jpki/{status.key_name}"] = status.tries_left
    if given.sign_password is not None:
        jpki.verify_sign_password(given.sign_password)
        _note_file(result, "jpki", "sign_certificate", jpki.read_certificate("sign"))
    else:
        result.skipped.append("jpki/sign_certificate (needs the signature password)")
    if given.auth_pin is not None:
        jpki.verify_auth_pin(given.auth_pin)
    if "text" not in jpki.profile.applications:
        return result  # a smartphone token has the JPKI AP only (docs/card.md §7.2)

    my_number: str | None = None
    say("text AP")
    text = _open_card_face_ap(TextAp, protocol, jpki.profile, result)
    if text is not None:
        if given.text_pin is not None:
            text.unlock(given.text_pin, key="text_pin")
            for name in ("my_number", "basic_info", "integrity_record"):
                content = text.read_file(name)
                _note_file(result, "text", name, content)
                if name == "my_number":
                    my_number = parse_my_number(content)
        else:
            result.skipped.append("text/my_number, basic_info (need the text PIN)")

    say("visual AP")
    visual = _open_card_face_ap(VisualAp, protocol, jpki.profile, result)
    if visual is not None:
        if my_number is not None:
            visual.unlock(my_number, key="check_code_a")
            for name in ("card_face", "my_number_image"):
                _note_file(result, "visual", name, visual.read_file(name))
        else:
            result.skipped.append("visual/card_face, my_number_image (need check code A)")

    say("common AP")
    try:
        common = CommonAp(protocol, jpki.profile)
    except FileNotFoundOnCardError:
        result.skipped.append("common AP (not on this card)")
    else:
        result.files["common/card_info"] = len(common.read_record(1))
        result.tries_left["common/card_pin"] = common.key_status("card_pin").tries_left
    return result


def _open_card_face_ap(
    session_class: type[SessionT], protocol: ApduProtocol, profile: CardProfile, result: Readout
) -> SessionT | None:
    """Select a card-face AP, note its counters and its credential-free files
    (docs/card.md §3.2, §3.3)."""
    try:
        session = session_class(protocol, profile)
    except FileNotFoundOnCardError:
        result.skipped.append(f"{session_class.application_name} AP (not on this card)")
        return None
    name = session.application.name
    for status in session.pin_status():
        result.tries_left[f"{name}/{status.key_name}"] = status.tries_left
    for file_name in ("ap_certificate", "ap_basic_info"):
        _note_file(result, name, file_name, session.read_file(file_name))
    return session


def _note_file(result: Readout, application: str, name: str, content: bytes) -> None:
    result.files[f"{application}/{name}"] = len(content)
