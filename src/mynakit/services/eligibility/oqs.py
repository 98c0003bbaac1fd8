"""The receipt computer's file interface (連携アプリケーション): ``req`` in, ``res``/``face`` out.

Receipt computers (レセコン) and electronic charts drop a request XML into a shared ``req`` folder
and read the answer from ``res``; checks a patient starts at the card reader land in ``face``
(docs/services.md §A.2 item 6, docs/services.md §A.4). This module is that folder protocol for the
sandbox:

* requests are named ``<kind>req_<stamp>.xml`` (``OQSsiquc01req_20261201093000.xml`` for the
  single qualification query) and answered as ``<kind>res_<stamp>.xml`` in ``res``;
* a request is UTF-8 or Shift_JIS as its XML declaration says; the answer uses the same encoding
  and says so in ``CharacterCodeIdentifier`` (0 UTF-8, 1 Shift_JIS; docs/services.md §A.4);
* element names and code values are the public ones, produced by the eligibility models
  (``CheckResult.to_message``); one result per file;
* every file is written under a hidden temporary name, flushed to disk, then linked to its final
  name, which is never overwritten: a reader never sees half a file, and a crash between
  writing and renaming leaves only a hidden temporary, removed at the next start;
* a malformed or unknown request gets an error response (SegmentOfResult 9, ErrorCode and
  ErrorMessage) and the request itself is moved to ``rejected`` (kept, not lost); answered
  requests move to ``done``.

XML is parsed with defusedxml with DTDs forbidden, so no entity of a request can expand or reach
outside the file.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import secrets

# Writing only; every parse goes through defusedxml.
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import defusedxml.ElementTree as SafeElementTree
from defusedxml import DefusedXmlException

from mynakit.errors import MynakitError
from mynakit.services.eligibility.codes import (
    ERROR_MESSAGES,
    CharacterCodeIdentifier,
    ProcessingResultStatus,
    ReferenceClassification,
    ResultErrorCode,
    SegmentOfResult,
)
from mynakit.services.eligibility.models import (
    CheckResult,
    InsuranceCardCheckRequest,
    InsuranceCardQuery,
    InvalidRecordError,
    MessageBody,
    MessageHeader,
    parse_date,
)

logger = logging.getLogger("mynakit.services.eligibility.oqs")

#: The single qualification query by insurance-card data (docs/services.md §A.4).
SINGLE_QUALIFICATION = "OQSsiquc01"
#: ``<kind>req_<stamp>.xml``: "OQS"/"YZK"/"TKK", si/mu, a function, a 2-digit step
#: (docs/services.md §A.4).
REQUEST_NAME = re.compile(r"^(?P<kind>[A-Z]{3}[a-z]{5}\d{2})req_(?P<stamp>[\w.-]+)\.xml$")
#: Requests larger than this are not XML a receipt computer writes for one query.
MAX_REQUEST_BYTES = 1 << 20
TEMPORARY_SUFFIX = ".tmp"
_DECLARATION = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"'][^>]*\?>")
_DECLARATION_TEXT = re.compile(r"^\s*<\?xml[^>]*\?>")
_SHIFT_JIS_NAMES = {"shift_jis", "shift-jis", "sjis", "x-sjis", "windows-31j", "cp932", "ms932"}
_UTF8_NAMES = {"utf-8", "utf8"}


class BridgeRequestError(MynakitError):
    """A request file the bridge cannot answer with a qualification result."""

    def __init__(
        self,
        message: str,
        *,
        institution_code: str = "",
        day: dt.date | None = None,
        file_identifier: str | None = None,
    ) -> None:
        super().__init__(message)
        self.institution_code = institution_code
        self.day = day
        self.file_identifier = file_identifier


class InsuranceCardChecker(Protocol):
    """The part of the eligibility service the bridge calls (an ``EligibilityClient`` has it)."""

    def check_by_insurance_card(self, request: InsuranceCardCheckRequest) -> CheckResult: ...


@dataclass(frozen=True)
class OqsFolders:
    """The shared folders: ``req`` (in), ``res`` and ``face`` (out), and where handled requests
    go (``done``) or are kept aside (``rejected``)."""

    root: Path

    @property
    def req(self) -> Path:
        return self.root / "req"

    @property
    def res(self) -> Path:
        return self.root / "res"

    @property
    def face(self) -> Path:
        return self.root / "face"

    @property
    def done(self) -> Path:
        return self.root / "done"

    @property
    def rejected(self) -> Path:
        return self.root / "rejected"

    def create(self) -> OqsFolders:
        for folder in (self.req, self.res, self.face, self.done, self.rejected):
            folder.mkdir(parents=True, exist_ok=True)
        return self


@dataclass(frozen=True)
class BridgeOutcome:
    """What happened to one request file."""

    request: str
    response: str
    accepted: bool
    error_code: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "request": self.request,
            "response": self.response,
            "accepted": self.accepted,
            "error_code": self.error_code,
        }


class OqsBridge:
    """Answers request files with the eligibility service; writes card results to ``face``."""

    def __init__(
        self,
        folders: OqsFolders,
        service: InsuranceCardChecker,
        *,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.folders = folders.create()
        self.service = service
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        remove_temporaries(folders.res)
        remove_temporaries(folders.face)

    def pending(self) -> list[Path]:
        """Request files waiting in ``req``, oldest name first (hidden and temporary skipped)."""
        return sorted(
            path
            for path in self.folders.req.iterdir()
            if path.is_file() and not path.name.startswith(".") and path.suffix.lower() == ".xml"
        )

    def process_pending(self) -> list[BridgeOutcome]:
        return [self.process(path) for path in self.pending()]

    def process(self, path: Path) -> BridgeOutcome:
        """Answer one request file and move it out of ``req``."""
        match = REQUEST_NAME.match(path.name)
        kind = match.group("kind") if match else SINGLE_QUALIFICATION
        stamp = match.group("stamp") if match else path.stem
        encoding = CharacterCodeIdentifier.UTF_8
        try:
            raw = _read_limited(path)
            encoding, root = parse_request(raw)
            if match is None:
                raise BridgeRequestError(
                    f"file name {path.name!r} is not <kind>req_<stamp>.xml",
                    **_header_context(root),
                )
            if kind != SINGLE_QUALIFICATION:
                raise BridgeRequestError(
                    f"request kind {kind!r} is not supported by this bridge "
                    f"(only {SINGLE_QUALIFICATION})",
                    **_header_context(root),
                )
            request = insurance_card_request(root)
            result = self.service.check_by_insurance_card(request)
        except BridgeRequestError as error:
            result = error_result(
                str(error),
                institution_code=error.institution_code,
                day=error.day,
                file_identifier=error.file_identifier,
                now=self._clock(),
            )
            response = self._write_response(kind, stamp, result, encoding)
            _move_aside(path, self.folders.rejected)
            logger.warning("request %s refused: %s", path.name, error)
            return BridgeOutcome(
                path.name, response.name, False, ResultErrorCode.MALFORMED_REQUEST.value
            )
        response = self._write_response(kind, stamp, result, encoding)
        _move_aside(path, self.folders.done)
        error_code = result.header.error_code.value if result.header.error_code else None
        return BridgeOutcome(path.name, response.name, result.accepted, error_code)

    def write_face(self, result: CheckResult) -> str:
        """A check started at the card reader, for the receipt computer (``face``,
        docs/services.md §A.2 item 6).
        Returns the file's name."""
        stamp = self._clock().astimezone(_JAPAN).strftime("%Y%m%d%H%M%S%f")[:17]
        path = write_new_file(
            self.folders.face,
            f"{SINGLE_QUALIFICATION}res_{stamp}.xml",
            render_result(result, CharacterCodeIdentifier.UTF_8),
        )
        return path.name

    def _write_response(
        self, kind: str, stamp: str, result: CheckResult, encoding: CharacterCodeIdentifier
    ) -> Path:
        return write_new_file(
            self.folders.res, f"{kind}res_{stamp}.xml", render_result(result, encoding)
        )


_JAPAN = dt.timezone(dt.timedelta(hours=9))
_REQUIRED_SEARCH_FIELDS = (
    "InsurerNumber",
    "InsuredCardSymbol",
    "InsuredIdentificationNumber",
    "InsuredBranchNumber",
    "Birthdate",
)


# -- parsing -----------------------------------------------------------------------------------


def parse_request(raw: bytes) -> tuple[CharacterCodeIdentifier, ElementTree.Element]:
    """Decode a request as its XML declaration says (UTF-8 when it says nothing) and parse it
    with DTDs and entities refused. Raises :class:`BridgeRequestError`."""
    declared = _DECLARATION.match(raw)
    name = declared.group(1).decode("ascii").lower() if declared else "utf-8"
    if name in _SHIFT_JIS_NAMES:
        # cp932 is the Windows form of Shift_JIS that receipt computers write (NEC and IBM
        # extensions included); plain Shift_JIS text decodes the same.
        codec, encoding = "cp932", CharacterCodeIdentifier.SHIFT_JIS
    elif name in _UTF8_NAMES:
        codec, encoding = "utf-8", CharacterCodeIdentifier.UTF_8
    else:
        raise BridgeRequestError(f"encoding {name!r} is neither UTF-8 nor Shift_JIS")
    try:
        text = raw.decode(codec)
    except UnicodeDecodeError as error:
        raise BridgeRequestError(f"the file is not valid {name}: {error.reason}") from None
    # The text is decoded already; expat must not decode it again by the declaration.
    text = _DECLARATION_TEXT.sub("", text.lstrip("\ufeff"), count=1)
    try:
        root = SafeElementTree.fromstring(text, forbid_dtd=True)
    except DefusedXmlException as error:
        raise BridgeRequestError(f"the request uses a forbidden XML feature: {error}") from None
    except ElementTree.ParseError as error:
        raise BridgeRequestError(f"the request is not well-formed XML: {error}") from None
    if root.tag != "XmlMsg":
        raise BridgeRequestError(f"the root element is {root.tag!r}, not 'XmlMsg'")
    return encoding, root


def element_to_message(element: ElementTree.Element) -> Any:
    """Elements as the models' message dicts: text for leaves, dicts for branches, lists for
    repeated children."""
    children = list(element)
    if not children:
        return (element.text or "").strip()
    message: dict[str, Any] = {}
    for child in children:
        value = element_to_message(child)
        if child.tag in message:
            existing = message[child.tag]
            if not isinstance(existing, list):
                message[child.tag] = [existing]
            message[child.tag].append(value)
        else:
            message[child.tag] = value
    return message


def _header_context(root: ElementTree.Element) -> dict[str, Any]:
    header = root.find("MessageHeader")
    context: dict[str, Any] = {}
    if header is None:
        return context
    context["institution_code"] = (header.findtext("MedicalInstitutionCode") or "").strip()[:10]
    context["file_identifier"] = (header.findtext("ArbitraryFileIdentifier") or "").strip() or None
    date_text = (header.findtext("QualificationConfirmationDate") or "").strip()
    try:
        context["day"] = parse_date(date_text) if date_text else None
    except InvalidRecordError:
        context["day"] = None
    return context


def insurance_card_request(root: ElementTree.Element) -> InsuranceCardCheckRequest:
    """The single qualification query of docs/services.md §A.4 as a service request."""
    context = _header_context(root)
    header = root.find("MessageHeader")
    search = root.find("MessageBody/QualificationConfirmSearchInfo")
    if header is None:
        raise BridgeRequestError("the request has no MessageHeader", **context)
    if search is None:
        raise BridgeRequestError(
            "the request has no MessageBody/QualificationConfirmSearchInfo", **context
        )
    if not context.get("institution_code"):
        raise BridgeRequestError("MessageHeader lacks MedicalInstitutionCode", **context)
    date_text = (header.findtext("QualificationConfirmationDate") or "").strip()
    if not date_text:
        raise BridgeRequestError("MessageHeader lacks QualificationConfirmationDate", **context)
    if context.get("day") is None:
        raise BridgeRequestError(
            f"QualificationConfirmationDate {date_text!r} is not a date (yyyyMMdd)", **context
        )
    fields = element_to_message(search)
    if not isinstance(fields, Mapping):
        raise BridgeRequestError("QualificationConfirmSearchInfo is empty", **context)
    for required in _REQUIRED_SEARCH_FIELDS:
        if not fields.get(required):
            raise BridgeRequestError(f"QualificationConfirmSearchInfo lacks {required}", **context)
    try:
        query = InsuranceCardQuery.from_message(fields)
    except InvalidRecordError as error:
        raise BridgeRequestError(str(error), **context) from None
    return InsuranceCardCheckRequest(
        institution_code=str(context["institution_code"]),
        query=query,
        confirmation_date=context["day"],
        arbitrary_file_identifier=context.get("file_identifier"),
    )


# -- writing ---------------------------------------------------------------------------------


def error_result(
    message: str,
    *,
    institution_code: str = "",
    day: dt.date | None = None,
    file_identifier: str | None = None,
    now: dt.datetime,
    code: ResultErrorCode = ResultErrorCode.MALFORMED_REQUEST,
) -> CheckResult:
    """SegmentOfResult 9 with ErrorCode and ErrorMessage for a request the bridge could not
    pass on (docs/services.md §A.4, §A.8)."""
    return CheckResult(
        header=MessageHeader(
            process_execution_time=now,
            qualification_confirmation_date=day or now.astimezone(_JAPAN).date(),
            medical_institution_code=institution_code,
            arbitrary_file_identifier=file_identifier,
            reference_classification=ReferenceClassification.INSURANCE_CARD_DATA,
            segment_of_result=SegmentOfResult.ABNORMAL_END,
            error_code=code,
            error_message=f"{ERROR_MESSAGES[code]}: {message}",
        ),
        body=MessageBody(
            processing_result_status=ProcessingResultStatus.ERROR,
            processing_result_code=code.value,
            processing_result_message=ERROR_MESSAGES[code],
        ),
    )


def render_result(result: CheckResult, encoding: CharacterCodeIdentifier) -> bytes:
    """The response XML in ``encoding``, declared in its header and its XML declaration."""
    message = result.to_message()
    header = message["XmlMsg"]["MessageHeader"]
    header["CharacterCodeIdentifier"] = encoding.value
    root = ElementTree.Element("XmlMsg")
    _append(root, message["XmlMsg"])
    ElementTree.indent(root, space=" ")
    body = ElementTree.tostring(root, encoding="unicode")
    if encoding is CharacterCodeIdentifier.SHIFT_JIS:
        declaration = '<?xml version="1.0" encoding="Shift_JIS" standalone="no"?>\n'
        # A character Shift_JIS lacks becomes a character reference, which XML reads back.
        return (declaration + body + "\n").encode("cp932", errors="xmlcharrefreplace")
    declaration = '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
    return (declaration + body + "\n").encode("utf-8")


def _append(parent: ElementTree.Element, message: Mapping[str, Any]) -> None:
    for name, value in message.items():
        if isinstance(value, list):
            # A repeated item: ResultList holds ResultOfQualificationConfirmation entries.
            holder = ElementTree.SubElement(parent, name)
            for item in value:
                _append(holder, item)
        elif isinstance(value, Mapping):
            _append(ElementTree.SubElement(parent, name), value)
        elif value is not None:
            ElementTree.SubElement(parent, name).text = str(value)


def write_new_file(folder: Path, name: str, data: bytes) -> Path:
    """Write ``data`` as ``folder/name`` atomically and without overwriting: a hidden temporary
    is written and flushed to disk, then hard-linked to the final name (which fails if the
    name exists, so a numbered name is taken instead) and removed. Returns the final path."""
    temporary = folder / f".{name}.{secrets.token_hex(4)}{TEMPORARY_SUFFIX}"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        stem, suffix = name.rsplit(".", 1)
        for attempt in range(1000):
            final = folder / (name if attempt == 0 else f"{stem}_{attempt}.{suffix}")
            try:
                _link_no_overwrite(temporary, final)
            except FileExistsError:
                continue
            _sync_folder(folder)
            return final
        raise BridgeRequestError(f"no free name for {name} in {folder}")
    finally:
        temporary.unlink(missing_ok=True)


def _link_no_overwrite(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except FileExistsError:
        raise
    except OSError:
        # Shares without hard links (some SMB mounts): a rename after a check. The check and
        # the rename are not atomic together, but only this bridge writes here.
        if target.exists():
            raise FileExistsError(target) from None
        os.replace(source, target)


def _sync_folder(folder: Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def remove_temporaries(folder: Path) -> list[str]:
    """Remove what a crash left between writing and renaming (never a complete file)."""
    removed: list[str] = []
    if not folder.is_dir():
        return removed
    for path in folder.iterdir():
        if path.name.startswith(".") and path.name.endswith(TEMPORARY_SUFFIX):
            path.unlink(missing_ok=True)
            removed.append(path.name)
    return removed


def _read_limited(path: Path) -> bytes:
    with path.open("rb") as handle:
        data = handle.read(MAX_REQUEST_BYTES + 1)
    if len(data) > MAX_REQUEST_BYTES:
        raise BridgeRequestError(f"the request is larger than {MAX_REQUEST_BYTES} bytes")
    return data


def _move_aside(path: Path, folder: Path) -> None:
    """Move a handled request out of ``req`` without overwriting an earlier one."""
    target = folder / path.name
    counter = 1
    while target.exists():
        target = folder / f"{path.stem}_{counter}{path.suffix}"
        counter += 1
    os.replace(path, target)
