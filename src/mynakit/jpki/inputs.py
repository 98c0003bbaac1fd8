"""Bounded input for the relying side: size caps for certificates, CMS and PDF, and a linear
PEM decoder.

Every relying-side parser reads its input whole, so an unbounded input (``/dev/zero``, a
mistaken multi-gigabyte file) would be read until memory runs out. The caps below are far
above any real input (a JPKI certificate is under 2 KiB, docs/card.md §9.1) and below what
hurts; an input over its cap is refused with :class:`InputTooLargeError`, naming the cap,
before it is parsed. :func:`read_bounded` reads at most one byte more than the cap, so it stops
on endless sources too.

PEM (RFC 7468) is decoded here in one pass over the text: marker search with ``bytes.find`` and
one base64 decode per block, so the work grows linearly with the input.
"""

from __future__ import annotations

import binascii
import enum
import io
import os

from mynakit.errors import DataError, UsageError
from mynakit.value_object import ValueObject

TYPE_CHECKING = False  # mypy treats this name as True (no ``typing`` import at run time)
if TYPE_CHECKING:
    from typing import BinaryIO, Final


class InputKind(enum.Enum):
    """What an input holds; each kind has its own size cap (:data:`SIZE_LIMITS`)."""

    CERTIFICATE = "certificate"
    CMS = "CMS signature"
    PDF = "PDF"
    DOCUMENT = "document"


KIB = 1024
MIB = 1024 * KIB

#: The largest input accepted per kind, in bytes. Certificates: a PEM bundle of a few dozen
#: certificates fits in 1 MiB many times over. CMS: attached content is the only large part.
#: PDF: signed documents, read whole by the PDF library. Document: the content a signature covers
#: (what ``cms sign`` and ``pkey sign`` read).
SIZE_LIMITS: dict[InputKind, int] = {
    InputKind.CERTIFICATE: 1 * MIB,
    InputKind.CMS: 64 * MIB,
    InputKind.PDF: 256 * MIB,
    InputKind.DOCUMENT: 64 * MIB,
}


class InputTooLargeError(UsageError):
    """An input is larger than the cap for its kind; nothing of it was parsed."""

    def __init__(self, kind: InputKind, origin: str, limit: int) -> None:
        self.kind = kind
        self.limit = limit
        super().__init__(
            f"{origin} is too large for a {kind.value} input (more than the "
            f"{_size_text(limit)} limit); it was not read further"
        )


def check_input_size(data: bytes, kind: InputKind, origin: str = "the input") -> bytes:
    """Return ``data`` if it is within the cap for ``kind``, else raise
    :class:`InputTooLargeError`. Library parsers call this on bytes handed to them."""
    limit = SIZE_LIMITS[kind]
    if len(data) > limit:
        raise InputTooLargeError(kind, origin, limit)
    return data


def read_bounded(
    source: str | os.PathLike[str] | BinaryIO, kind: InputKind, origin: str | None = None
) -> bytes:
    """Read a whole input of ``kind`` from a path or a binary stream, never more than its cap.

    At most cap + 1 bytes are read, so ``/dev/zero`` or a pipe that never ends is refused with
    :class:`InputTooLargeError` instead of exhausting memory. A path that cannot be read is a
    ``UsageError`` naming the path (no traceback for a missing file or a directory).
    """
    limit = SIZE_LIMITS[kind]
    if isinstance(source, str | os.PathLike):
        name = origin or str(source)
        try:
            with open(source, "rb") as stream:
                data = stream.read(limit + 1)
        except OSError as error:
            raise UsageError(f"cannot read {name}: {error.strerror or error}") from error
    else:
        name = origin or getattr(source, "name", None) or "the input"
        data = _read_stream(source, limit + 1)
    if len(data) > limit:
        raise InputTooLargeError(kind, str(name), limit)
    return data


def _read_stream(stream: BinaryIO, most: int) -> bytes:
    buffer = io.BytesIO()
    while buffer.tell() < most:
        chunk = stream.read(min(MIB, most - buffer.tell()))
        if not chunk:
            break
        buffer.write(chunk)
    return buffer.getvalue()


# -- PEM (RFC 7468) ---------------------------------------------------------------------------

_BEGIN = b"-----BEGIN "
_END = b"-----END "
_DASHES = b"-----"


class PemBlock(ValueObject):
    __slots__ = ("der", "label")

    def __init__(self, label: str, der: bytes) -> None:
        self.label: Final = label
        self.der: Final = der


def is_pem(data: bytes) -> bool:
    """True when ``data`` starts (after whitespace) with a PEM BEGIN line."""
    return data.lstrip()[: len(_BEGIN)] == _BEGIN


def decode_pem(data: bytes, origin: str = "the input") -> list[PemBlock]:
    """Every PEM block of ``data`` in order (RFC 7468 §2), in time linear in ``len(data)``.

    Text between blocks is ignored (RFC 7468 §5.2 explanatory text). A BEGIN without its END,
    a label that does not match, or a body that is not base64 is a ``DataError``; no block at
    all is a ``DataError`` too. Headers (RFC 1421 ``Proc-Type:``) are not supported.
    """
    blocks: list[PemBlock] = []
    position = data.find(_BEGIN)
    while position != -1:
        label_start = position + len(_BEGIN)
        label_end = data.find(_DASHES, label_start)
        line_end = data.find(b"\n", label_start)
        if label_end == -1 or (line_end != -1 and label_end > line_end):
            raise DataError(f"{origin}: a PEM BEGIN line is not closed by -----")
        label = data[label_start:label_end]
        end_marker = _END + label + _DASHES
        body_start = label_end + len(_DASHES)
        body_end = data.find(end_marker, body_start)
        if body_end == -1:
            shown = label.decode("ascii", "replace")
            raise DataError(f"{origin}: the PEM block {shown!r} has no matching END line")
        body = b"".join(data[body_start:body_end].split())
        try:
            der = binascii.a2b_base64(body, strict_mode=True)
        except binascii.Error as error:
            raise DataError(f"{origin}: a PEM body is not base64 ({error})") from error
        try:
            text_label = label.decode("ascii")
        except UnicodeDecodeError as error:
            raise DataError(f"{origin}: a PEM label is not ASCII") from error
        blocks.append(PemBlock(text_label, der))
        position = data.find(_BEGIN, body_end + len(end_marker))
    if not blocks:
        raise DataError(f"{origin} holds no PEM block")
    return blocks


def pem_or_der(data: bytes, labels: tuple[str, ...], origin: str = "the input") -> list[bytes]:
    """The DER objects of an input that is DER (one object) or PEM (blocks with one of
    ``labels``); a PEM block with another label is a ``DataError`` naming it."""
    if not is_pem(data):
        return [data]
    objects: list[bytes] = []
    for block in decode_pem(data, origin):
        if block.label not in labels:
            raise DataError(f"{origin}: PEM block is {block.label!r}, not {' or '.join(labels)}")
        objects.append(block.der)
    return objects


def _size_text(size: int) -> str:
    if size % MIB == 0:
        return f"{size // MIB} MiB"
    if size % KIB == 0:
        return f"{size // KIB} KiB"
    return f"{size} bytes"
