"""The sandbox issuer's register: every issued certificate, its status, the CRL numbers and the
responder port, kept in ``state.json`` with the certificates under ``certificates/``.

Changes are read-modify-write under an exclusive ``fcntl.flock`` on the issuer's ``lock`` file
(and a thread lock), with ``state.json`` re-read inside, so two processes revoking or issuing at
once both land. Reads outside a change reload ``state.json`` when it changed on disk.
"""

from __future__ import annotations

import json
import secrets
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mynakit.atomic_files import (
    PRIVATE_FILE,
    PRIVATE_FOLDER,
    PUBLIC_FILE,
    FileLock,
    ensure_folder,
    parse_json_object,
    write_atomic,
)
from mynakit.emulator.issued_certificates import IssuedCertificate
from mynakit.errors import DataError, TransportError, UsageError
from mynakit.jpki.certificates import CertificateKind
from mynakit.jpki.revocation import RevocationState, RevocationStatus

STATE_FILE = "state.json"
CERTIFICATES_FOLDER = "certificates"
LOCK_FILE = "lock"
STATE_FORMAT = 1


class IssuerRegistry:
    """``state.json`` of one issuer folder, typed."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._thread_lock = threading.RLock()
        self._ocsp_port = 0
        self._crl_numbers: dict[str, int] = {}
        self._certificates: dict[int, IssuedCertificate] = {}
        self._signature: tuple[int, int, int] | None = None
        self._lock = FileLock(directory / LOCK_FILE, "the issuer's lock file")

    # -- construction ----------------------------------------------------------------------------

    @classmethod
    def create(cls, directory: Path, *, ocsp_port: int) -> IssuerRegistry:
        registry = cls(directory)
        registry._ocsp_port = ocsp_port
        registry._crl_numbers = {
            kind.value: 0 for kind in (CertificateKind.AUTH, CertificateKind.SIGN)
        }
        ensure_folder(directory / CERTIFICATES_FOLDER, mode=PRIVATE_FOLDER)
        registry.save()  # state.json last: its presence marks a complete issuer folder
        return registry

    @classmethod
    def open(cls, directory: Path) -> IssuerRegistry:
        registry = cls(directory)
        registry._load()
        return registry

    @property
    def state_path(self) -> Path:
        return self.directory / STATE_FILE

    @property
    def ocsp_port(self) -> int:
        return self._ocsp_port

    # -- reading ---------------------------------------------------------------------------------

    def get(self, serial: int) -> IssuedCertificate | None:
        with self._thread_lock:
            self._refresh()
            return self._certificates.get(serial)

    def require(self, serial: int) -> IssuedCertificate:
        record = self.get(serial)
        if record is None:
            raise UsageError(f"this sandbox issuer never issued serial {serial}")
        return record

    def records(self, kind: CertificateKind | None = None) -> list[IssuedCertificate]:
        with self._thread_lock:
            self._refresh()
            return [
                record
                for record in self._certificates.values()
                if kind is None or record.kind is kind
            ]

    def status(self, serial: int, kind: CertificateKind | None = None) -> RevocationStatus:
        """The register's answer for ``serial``; unknown if never issued (or, with ``kind``,
        issued under the other root)."""
        record = self.get(serial)
        if record is None or (kind is not None and record.kind is not kind):
            return RevocationStatus(state=RevocationState.UNKNOWN, source="issuer")
        return record.revocation_status()

    def certificate_path(self, serial: int) -> Path:
        return self.directory / CERTIFICATES_FOLDER / f"{serial:x}.pem"

    def read_certificate(self, serial: int) -> x509.Certificate:
        self.require(serial)
        path = self.certificate_path(serial)
        try:
            return x509.load_pem_x509_certificate(path.read_bytes())
        except (OSError, ValueError) as error:
            raise DataError(f"cannot read issued certificate {path}: {error}") from None

    # -- changing (inside ``change()``) ----------------------------------------------------------

    @contextmanager
    def change(self) -> Iterator[None]:
        """Hold the issuer's lock with the register fresh from disk; save before leaving.
        Re-entrant within a thread (a renewal issues inside its own change)."""
        with self._thread_lock, self._lock.held():
            self._load()
            yield

    def new_serial(self) -> int:
        # Random 32-bit serials, as long as real ones (docs/card.md §9.1: 0x012D57CA), unique
        # in this issuer.
        while True:
            serial = secrets.randbelow(2**32 - 2**24) + 2**24
            if serial not in self._certificates:
                return serial

    def add(self, record: IssuedCertificate, certificate: x509.Certificate) -> None:
        """Record a new certificate and write its PEM. A signature certificate carries basic-4
        information (docs/card.md §9.2): 0600. An authentication certificate carries none and
        goes to every relying party: 0644 (the folder stays 0700, so the set of serials does
        not leak)."""
        mode = PRIVATE_FILE if record.kind is CertificateKind.SIGN else PUBLIC_FILE
        folder = ensure_folder(self.directory / CERTIFICATES_FOLDER, mode=PRIVATE_FOLDER)
        write_atomic(
            folder / f"{record.serial:x}.pem",
            certificate.public_bytes(serialization.Encoding.PEM),
            mode=mode,
        )
        self._certificates[record.serial] = record
        self.save()

    def update(self, record: IssuedCertificate) -> None:
        self._certificates[record.serial] = record
        self.save()

    def withdraw(self, serial: int) -> None:
        """Forget a certificate that never reached a card (its card could not be made)."""
        if self._certificates.pop(serial, None) is not None:
            self.save()
        self.certificate_path(serial).unlink(missing_ok=True)

    def next_crl_number(self, kind: CertificateKind) -> int:
        self._crl_numbers[kind.value] = self._crl_numbers.get(kind.value, 0) + 1
        self.save()
        return self._crl_numbers[kind.value]

    def save(self) -> None:
        document = {
            "format": STATE_FORMAT,
            "ocsp_port": self._ocsp_port,
            "crl_numbers": dict(self._crl_numbers),
            "certificates": {
                str(serial): record.to_json() for serial, record in self._certificates.items()
            },
        }
        data = (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8")
        write_atomic(self.state_path, data, mode=PRIVATE_FILE)
        self._signature = _file_signature(self.state_path)

    # -- internals -------------------------------------------------------------------------------

    def _refresh(self) -> None:
        """Reload ``state.json`` if another process changed it."""
        if _file_signature(self.state_path) != self._signature:
            self._load()

    def _load(self) -> None:
        path = self.state_path
        signature = _file_signature(path)
        try:
            data = path.read_bytes()
        except OSError as error:
            raise DataError(f"cannot read sandbox issuer state {path}: {error.strerror}") from None
        document = parse_json_object(data, path)
        if document.get("format") != STATE_FORMAT:
            raise DataError(f"{path} is not a format-{STATE_FORMAT} sandbox issuer state")
        port, numbers = document.get("ocsp_port"), document.get("crl_numbers")
        certificates = document.get("certificates")
        if not isinstance(port, int) or not 1 <= port <= 65535:
            raise DataError(f"{path}: ocsp_port is not a port number")
        if not isinstance(numbers, dict) or not all(
            isinstance(number, int) and number >= 0 for number in numbers.values()
        ):
            raise DataError(f"{path}: crl_numbers is malformed")
        if not isinstance(certificates, dict):
            raise DataError(f"{path}: certificates is not a JSON object")
        self._ocsp_port = port
        self._crl_numbers = {str(kind): number for kind, number in numbers.items()}
        records = (
            IssuedCertificate.from_json(serial, record, str(path))
            for serial, record in certificates.items()
        )
        self._certificates = {record.serial: record for record in records}
        self._signature = signature


def _file_signature(path: Path) -> tuple[int, int, int]:
    # Every save replaces the file (new inode), so inode + mtime + size tells a change even
    # within the file system's timestamp granularity.
    try:
        status = path.stat()
    except OSError as error:
        raise DataError(f"sandbox issuer state {path} is unreadable: {error.strerror}") from None
    return (status.st_ino, status.st_mtime_ns, status.st_size)


LOOPBACK_HOST = "127.0.0.1"


# The responder's port is recorded in every certificate, so it must stay free for as long as the
# issuer lives. Ports the kernel hands out for outgoing connections (Linux's ephemeral range,
# 32768-60999) can be taken at any moment by any client socket, so the sandbox picks below it.
_SANDBOX_PORTS = range(20000, 32768)


def free_loopback_port() -> int:
    chooser = secrets.SystemRandom()
    for _ in range(100):
        port = chooser.choice(_SANDBOX_PORTS)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((LOOPBACK_HOST, port))
            except OSError:
                continue
            return port
    raise TransportError(
        f"no free loopback port between {_SANDBOX_PORTS.start} and {_SANDBOX_PORTS.stop - 1}"
    )


def checked_port(port: int) -> int:
    if not 1 <= port <= 65535:
        raise UsageError(f"port {port} is not between 1 and 65535")
    return port
