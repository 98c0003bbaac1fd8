"""Making and opening virtual cards: keys generated, certificates issued by the sandbox issuer,
every file built, and (for persistent cards) the folder written in one move.

``new_virtual_card`` makes a card in memory (tests, demos); ``create_card`` makes one on disk and
``load_card`` opens it as a :class:`VirtualCard`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mynakit.atomic_files import (
    PRIVATE_FILE,
    PRIVATE_FOLDER,
    check_writable,
    ensure_folder,
    write_atomic,
)
from mynakit.emulator.card_files import BuiltFiles, CertificateFiles, build_card_files
from mynakit.emulator.card_keys import CardKey
from mynakit.emulator.card_layout import CardLayout, load_card_state, save_card_state
from mynakit.emulator.card_os import VirtualCard
from mynakit.emulator.card_state import CardState
from mynakit.emulator.personas import Persona, generate_persona
from mynakit.emulator.pin_records import KeyRef, PinRecord
from mynakit.errors import DataError, UsageError
from mynakit.profiles import DEFAULT_PROFILE, CardProfile, load_profile

if TYPE_CHECKING:
    from mynakit.emulator.faults import Faults
    from mynakit.emulator.issuer import SandboxIssuer


def default_issuer_directory(base_dir: str | os.PathLike[str]) -> Path:
    """The sandbox issuer that goes with the cards in ``base_dir``: a sibling named ``issuer``."""
    return Path(base_dir).resolve().parent / "issuer"


def build_card_state(
    profile: CardProfile,
    persona: Persona,
    issuer: SandboxIssuer,
    *,
    name: str = "in-memory",
) -> CardState:
    """Generate keys, have ``issuer`` certify the JPKI ones, and fill every file (in memory)."""
    card_keys: dict[KeyRef, CardKey] = {}
    pins: dict[KeyRef, PinRecord] = {}
    for application in profile.applications.values():
        for key in application.keys.values():
            ref = (application.name, key.key_id)
            if key.kind == "private_key":
                card_keys[ref] = CardKey.generate()
            elif key.kind == "pin":
                pins[ref] = PinRecord(
                    _initial_reference(persona, key.name, key.tries, key.max_length),
                    key.tries,
                    key.tries,
                )
            else:
                raise DataError(f"card profile key {key.name} has unknown kind {key.kind!r}")
    card_face_aps = any(
        "ap_certificate" in (file.name for file in application.files.values())
        for application in profile.applications.values()
    )
    card_ca = CardKey.generate() if card_face_aps else None
    municipality_key = CardKey.generate() if card_face_aps else None
    certificates, serials = _issue_certificates(profile, persona, issuer, card_keys)
    state = CardState(
        name=name,
        profile_name=profile.kind,
        persona=persona,
        files={},
        records={},
        pins=pins,
        card_keys=card_keys,
        card_ca=card_ca,
        municipality_key=municipality_key,
        serials=serials,
    )
    try:
        _rebuild_files(state, profile, certificates)
    except BaseException:
        _withdraw_certificates(issuer, serials.values())
        raise
    return state


def _initial_reference(persona: Persona, key_name: str, tries: int, max_length: int) -> bytes:
    if tries == 0:
        # A key blocked from issuance (text 0012, docs/card.md §3.2): nothing can ever match it.
        return b"\x00" * max(max_length, 1)
    return persona.reference_data(key_name).encode("ascii")


def _issue_certificates(
    profile: CardProfile,
    persona: Persona,
    issuer: SandboxIssuer,
    card_keys: dict[KeyRef, CardKey],
) -> tuple[CertificateFiles, dict[str, int]]:
    jpki = profile.applications.get("jpki")
    file_names = {file.name for file in jpki.files.values()} if jpki else set()
    serials: dict[str, int] = {}
    auth = sign = None
    if "auth_certificate" in file_names:
        auth_key = card_keys[("jpki", profile.application("jpki").key("auth_key").key_id)]
        auth = issuer.issue_auth_certificate(auth_key.public_key())
        serials["auth"] = auth.serial_number
    if "sign_certificate" in file_names:
        sign_key = card_keys[("jpki", profile.application("jpki").key("sign_key").key_id)]
        try:
            sign = issuer.issue_sign_certificate(sign_key.public_key(), persona.basic_info)
        except BaseException:
            _withdraw_certificates(issuer, serials.values())
            raise
        serials["sign"] = sign.serial_number
    return (
        CertificateFiles(
            auth=_der(auth),
            sign=_der(sign),
            auth_ca=issuer.auth_root.public_bytes(serialization.Encoding.DER),
            sign_ca=issuer.sign_root.public_bytes(serialization.Encoding.DER),
        ),
        serials,
    )


def _der(certificate: x509.Certificate | None) -> bytes | None:
    return None if certificate is None else certificate.public_bytes(serialization.Encoding.DER)


class _StateKeys:
    """The ``CardKeys`` view of a state for the file builder."""

    def __init__(self, state: CardState, profile: CardProfile) -> None:
        self._state = state
        self._profile = profile

    def public_key(self, application: str, key_name: str) -> rsa.RSAPublicKey:
        key = self._profile.application(application).key(key_name)
        return self._state.card_keys[(application, key.key_id)].public_key()

    @property
    def card_ca(self) -> CardKey:
        if self._state.card_ca is None:
            raise DataError("this card has no card CA key")
        return self._state.card_ca

    @property
    def municipality(self) -> CardKey:
        if self._state.municipality_key is None:
            raise DataError("this card has no municipality key")
        return self._state.municipality_key


def _rebuild_files(state: CardState, profile: CardProfile, certificates: CertificateFiles) -> None:
    built: BuiltFiles = build_card_files(
        profile, state.persona, _StateKeys(state, profile), certificates
    )
    state.files = built.binary
    state.records = built.records


def new_virtual_card(
    issuer: SandboxIssuer,
    *,
    profile: str | CardProfile = DEFAULT_PROFILE,
    seed: int | str | None = None,
    persona: Persona | None = None,
    faults: Faults | None = None,
) -> VirtualCard:
    """A card in memory only (tests, demos): real keys, certificates from a real ``issuer``."""
    card_profile = load_profile(profile) if isinstance(profile, str) else profile
    holder = persona if persona is not None else generate_persona(seed)
    return VirtualCard(card_profile, build_card_state(card_profile, holder, issuer), faults=faults)


def create_card(
    base_dir: str | os.PathLike[str],
    name: str,
    *,
    profile: str = DEFAULT_PROFILE,
    seed: int | str | None = None,
    issuer: SandboxIssuer | None = None,
    blocked: tuple[tuple[str, str], ...] = (),
) -> Path:
    """Make a persistent card ``name``; return its folder. ``issuer`` defaults to the
    sandbox issuer beside ``base_dir`` (created if missing). ``blocked`` lists (AP, key name)
    pairs whose counter starts at 0.

    Everything that can be checked is checked before the issuer certifies a key; if writing the
    card fails after that, the certificates are withdrawn, so no orphan stays in the issuer.
    """
    layout = CardLayout.of(base_dir, name)
    if layout.directory.exists():
        raise UsageError(
            f"a virtual card named {name!r} already exists in {layout.directory.parent}"
        )
    card_profile = load_profile(profile)
    for application, key_name in blocked:
        if card_profile.application(application).key(key_name).kind != "pin":
            raise UsageError(f"{application} {key_name} is not a PIN key")
    base = ensure_folder(Path(base_dir), mode=PRIVATE_FOLDER)
    check_writable(base, "cards folder")
    if issuer is None:
        from mynakit.emulator.issuer import SandboxIssuer

        issuer = SandboxIssuer.open_or_create(default_issuer_directory(base_dir))
    state = build_card_state(card_profile, generate_persona(seed), issuer, name=name)
    try:
        if profile.endswith(".toml"):
            state.profile_source = str(Path(profile).resolve())
        for application, key_name in blocked:
            state.block(application, key_name, card_profile)
        return install_card_state(base, name, state, issuer_directory=issuer.directory)
    except BaseException:
        _withdraw_certificates(issuer, state.serials.values())
        raise


def install_card_state(
    base_dir: str | os.PathLike[str],
    name: str,
    state: CardState,
    *,
    issuer_directory: Path | None,
    extra_files: dict[str, bytes] | None = None,
) -> Path:
    """Save ``state`` as the new card ``name``: written in a staging folder (with
    ``extra_files`` beside it), then renamed into place, so a half-made card is never seen."""
    layout = CardLayout.of(base_dir, name)
    base = ensure_folder(Path(base_dir), mode=PRIVATE_FOLDER)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=base))
    try:
        for file_name, content in (extra_files or {}).items():
            write_atomic(staging / file_name, content, mode=PRIVATE_FILE)
        state.directory = staging
        save_card_state(state, issuer_directory=issuer_directory)
        os.replace(staging, layout.directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    state.directory = layout.directory
    return layout.directory


def load_card(
    base_dir: str | os.PathLike[str], name: str, *, faults: Faults | None = None
) -> VirtualCard:
    """The persistent card ``name`` as a ``VirtualCard``; every command runs under the card's
    lock with its PIN counters read from and saved to disk."""
    state = load_card_state(base_dir, name)
    return VirtualCard(state.card_profile(), state, faults=faults)


def _withdraw_certificates(issuer: SandboxIssuer, serials: Iterable[int]) -> None:
    for serial in list(serials):
        issuer.withdraw(serial)
