"""``mynakit eligibility``: the online eligibility check sandbox (オンライン資格確認).

Service side: ``serve`` (HTTP API), ``credential`` (for institutions and insurers), ``load`` and
``generate`` (insured records), ``insurers``. Counter and holder side, with the card in the
reader: ``register`` (初回登録), ``check`` (or ``check --insurer ...`` by insurance-card data),
``consents``, ``history``. Each works on the embedded database (``--database``, default the
SQLite file under the mynakit home) or against a running service (``--url`` with a
credential). The sandbox issuer under ``$MYNAKIT_HOME/issuer`` is trusted and its responder
(OCSP, CRL, serial link) started on loopback when needed. docs/services.md §A.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import click

from mynakit.cli.context import get_context
from mynakit.cli.util import emit, force_option, note, pin_stdin_option, read_secret
from mynakit.errors import UsageError

if TYPE_CHECKING:
    from mynakit.card.cv_certificate import CardCaKeys
    from mynakit.card.presence import PresenceProof
    from mynakit.jpki.authentication import ChallengeResponse
    from mynakit.services.eligibility.core import EligibilityClient, EligibilityService
    from mynakit.services.eligibility.models import CheckResult, InsuranceCardQuery
    from mynakit.services.store import Database

_Command = TypeVar("_Command", bound=Callable[..., Any])
CREDENTIAL_VARIABLE = "MYNAKIT_ELIGIBILITY_CREDENTIAL"
SCOPE_NAMES = (
    "limit_certificate",
    "medication",
    "specific_health_checkups",
    "clinical",
    "operation",
)
format_option = click.option(
    "--format",
    "record_format",
    type=click.Choice(["jsonl", "csv"]),
    help="Record format (default: .csv names are CSV, others JSON lines).",
)


def database_option(command: _Command) -> _Command:
    return click.option(
        "--database",
        envvar="MYNAKIT_DATABASE_URL",
        help="Database URL (sqlite:///FILE or postgresql://...); default: the embedded SQLite.",
    )(command)


def remote_options(command: _Command) -> _Command:
    command = click.option(
        "--credential",
        envvar=CREDENTIAL_VARIABLE,
        help=f"Institution credential for --url (or ${CREDENTIAL_VARIABLE}).",
    )(command)
    command = click.option("--url", help="A running eligibility service instead of the database.")(
        command
    )
    return database_option(command)


@click.group()
def eligibility() -> None:
    """Online insurance eligibility check sandbox (オンライン資格確認)."""


# -- wiring ---------------------------------------------------------------------------------------


def _open_database(url: str | None) -> Database:
    from mynakit.services.store import Database

    return Database.open(url, chains=["eligibility"])


def _sandbox_card_ca(ctx: click.Context) -> CardCaKeys | None:
    """The virtual cards' card-CA keys, for face/visual confirmation (the real J-LIS card-CA
    keys are not public); None when there are no virtual cards, and face mode is refused."""
    return get_context(ctx).trusted_card_ca_keys(sandbox=True)


@contextlib.contextmanager
def _embedded_service(ctx: click.Context, database_url: str | None) -> Iterator[EligibilityService]:
    """The service on the embedded database, trusting the sandbox issuer, its responder up."""
    from mynakit.cli.util import open_sandbox_issuer, sandbox_responder
    from mynakit.jpki.trust import TrustStore
    from mynakit.services.eligibility.assembly import build_service
    from mynakit.services.issuer_link.http import HttpIssuerLink

    issuer = open_sandbox_issuer(ctx)
    database = _open_database(database_url)
    link = HttpIssuerLink(f"http://127.0.0.1:{issuer.ocsp_port}")
    try:
        with sandbox_responder(ctx, True):
            yield build_service(
                database,
                TrustStore.jlis().with_sandbox(issuer.directory),
                revocation="ocsp",
                serial_link=link,
                card_ca=_sandbox_card_ca(ctx),
            )
    finally:
        link.close()
        database.dispose()


@contextlib.contextmanager
def _client(
    ctx: click.Context, database_url: str | None, url: str | None, credential: str | None
) -> Iterator[EligibilityClient]:
    if url is not None:
        from mynakit.services.eligibility.client import HttpEligibilityClient

        with HttpEligibilityClient(url, credential) as remote:
            yield remote
        return
    with _embedded_service(ctx, database_url) as service:
        yield service


def _card_answer(
    ctx: click.Context, client: EligibilityClient, pin_stdin: bool, force: bool
) -> ChallengeResponse:
    """The card in the reader answers the service's nonce (PIN counter checked first; the last
    try is spent only with --force; the PIN is dropped once VERIFY is sent)."""
    from mynakit.card.jpki import JpkiAp
    from mynakit.jpki.authentication import card_respond

    cli_context = get_context(ctx)
    session = JpkiAp.open(cli_context.protocol())
    challenge = client.begin_authentication()
    pin = read_secret(
        "auth_pin", "auth PIN (利用者証明用パスワード, 4 digits)", from_stdin=pin_stdin
    )
    try:
        return card_respond(session, challenge, pin, force=force)
    finally:
        del pin


def _card_presence(
    ctx: click.Context, client: EligibilityClient, pin_stdin: bool
) -> tuple[str, bytes, PresenceProof]:
    """Face/visual mode on the card in the reader: the service's presence challenge answered by
    the visual AP's own key (birth-date code, no PIN), and the auth certificate read without
    PIN (docs/card.md §7.13). Returns (challenge id, certificate, proof)."""
    from mynakit.services.mykey.client import card_tap

    challenge = client.begin_presence()
    code = read_secret("birth_date_code", "birth-date code (era YYMMDD)", from_stdin=pin_stdin)
    try:
        certificate, proof = card_tap(get_context(ctx).protocol(), challenge, code)
    finally:
        del code
    return challenge.challenge_id, certificate, proof


def _query_options(command: _Command) -> _Command:
    for name, help_text in reversed(
        (
            ("--insurer", "Insurer number (保険者番号, 6-8 digits)."),
            ("--symbol", "Card symbol (記号) as printed; empty if none."),
            ("--number", "Card number (番号) as printed."),
            ("--branch", "Branch number (枝番, 2 digits)."),
            ("--birth", "Birth date (YYYY-MM-DD or YYYYMMDD)."),
        )
    ):
        command = click.option(name, help=help_text)(command)
    return command


def _query(
    insurer: str | None,
    symbol: str | None,
    number: str | None,
    branch: str | None,
    birth: str | None,
    *,
    limit_consent: bool = False,
) -> InsuranceCardQuery:
    from mynakit.services.eligibility.models import InsuranceCardQuery, parse_date

    if insurer is None or number is None or branch is None or birth is None:
        raise UsageError("give --insurer, --number, --branch and --birth (and --symbol if printed)")
    return InsuranceCardQuery(
        insurer, symbol or "", number, branch, parse_date(birth, "--birth"), limit_consent
    ).normalized()


def _date(text: str | None) -> dt.date | None:
    from mynakit.services.eligibility.models import parse_date

    return parse_date(text, "--date") if text else None


# -- service side -------------------------------------------------------------------------------


@eligibility.command()
@database_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Bind address.")
@click.option("--port", default=8710, show_default=True, type=int, help="Port.")
@click.option(
    "--revocation",
    type=click.Choice(["crl-cached", "ocsp", "crl"]),
    default="crl-cached",
    show_default=True,
    help="How every check asks the issuer about revocation.",
)
@click.option(
    "--issuer-url",
    help="Issuer link base URL (serial link); default: the sandbox issuer's responder.",
)
@click.pass_context
def serve(
    ctx: click.Context,
    database: str | None,
    host: str,
    port: int,
    revocation: str,
    issuer_url: str | None,
) -> None:
    """Serve the HTTP API (OpenAPI at /openapi.json) until interrupted."""
    from mynakit.cli.util import open_sandbox_issuer, sandbox_responder
    from mynakit.jpki.trust import TrustStore
    from mynakit.services.eligibility.assembly import build_service
    from mynakit.services.eligibility.http import create_eligibility_app
    from mynakit.services.http import serve as serve_app
    from mynakit.services.issuer_link.http import HttpIssuerLink

    issuer = open_sandbox_issuer(ctx)
    opened = _open_database(database)
    link = HttpIssuerLink(issuer_url or f"http://127.0.0.1:{issuer.ocsp_port}")
    service = build_service(
        opened,
        TrustStore.jlis().with_sandbox(issuer.directory),
        revocation=revocation,  # type: ignore[arg-type]  # click.Choice gives the literal
        serial_link=link,
        card_ca=_sandbox_card_ca(ctx),
    )
    note(f"eligibility service on http://{host}:{port} (database {opened.describe()})")
    with sandbox_responder(ctx, issuer_url is None):
        serve_app(create_eligibility_app(service, opened), host=host, port=port)


@eligibility.command()
@database_option
@click.argument("kind", type=click.Choice(["institution", "insurer"]))
@click.argument("name")
@click.pass_context
def credential(ctx: click.Context, database: str | None, kind: str, name: str) -> None:
    """Issue a credential: KIND institution with NAME its 10-digit code, or insurer."""
    from mynakit.services.auth.store import CredentialStore
    from mynakit.services.eligibility.http import INSTITUTION_SERVICE, INSURER_SERVICE
    from mynakit.services.eligibility.models import normalize_institution_code

    if kind == "institution":
        name = normalize_institution_code(name)
    opened = _open_database(database)
    try:
        service = INSTITUTION_SERVICE if kind == "institution" else INSURER_SERVICE
        issued = CredentialStore(opened, service).issue(name)
    finally:
        opened.dispose()
    # The secret is shown once, on stdout only (it is the result of this command).
    emit(
        ctx,
        {
            "kind": kind,
            "name": name,
            "client_id": issued.client_id,
            "credential": issued.credential,
        },
        f"{kind} {name}: credential {issued.credential}\n(shown once; keep it secret)",
    )


@eligibility.command()
@database_option
@click.pass_context
def insurers(ctx: click.Context, database: str | None) -> None:
    """Insurers with records loaded, and how many."""
    from mynakit.services.eligibility.store import SqlEligibilityRepository

    opened = _open_database(database)
    try:
        summaries = SqlEligibilityRepository(opened).insurers()
    finally:
        opened.dispose()
    rows = [
        {"insurer_number": s.insurer_number, "insurer_name": s.insurer_name, "records": s.records}
        for s in summaries
    ]
    text = "\n".join(f"{r['insurer_number']}  {r['records']:>9}  {r['insurer_name']}" for r in rows)
    emit(ctx, {"insurers": rows}, text or "no insured records loaded")


def _progress(label: str) -> Callable[[int], None]:
    last = [0]

    def report(count: int) -> None:
        if count - last[0] >= 50_000 or count < last[0]:
            last[0] = count
            note(f"{label}: {count:,} records")

    return report


@eligibility.command()
@database_option
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@format_option
@click.pass_context
def load(ctx: click.Context, database: str | None, file: str, record_format: str | None) -> None:
    """Load insured records from FILE (JSON lines or CSV; '-' for stdin) in one transaction:
    all of them or, on the first bad line, none (the error names the line)."""
    import time

    from mynakit.services.eligibility.population import format_of, read_records
    from mynakit.services.eligibility.store import bulk_load

    chosen = record_format or format_of(file)
    opened = _open_database(database)
    started = time.monotonic()
    try:
        with _open_text(file) as stream:
            count = bulk_load(
                opened,
                read_records(stream, chosen),  # type: ignore[arg-type]  # click.Choice
                progress=_progress("loaded"),
            )
    finally:
        opened.dispose()
    seconds = time.monotonic() - started
    emit(
        ctx,
        {"loaded": count, "seconds": round(seconds, 2), "database": opened.describe()},
        f"loaded {count:,} insured records in {seconds:.1f} s",
    )


@contextlib.contextmanager
def _open_text(file: str) -> Iterator[Any]:
    if file == "-":
        yield sys.stdin
        return
    try:
        with open(file, encoding="utf-8", newline="") as stream:
            yield stream
    except OSError as error:
        raise UsageError(f"cannot read {file}: {error.strerror or error}") from error


@eligibility.command()
@click.argument("count", type=click.IntRange(1, 50_000_000))
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True), default="-")
@format_option
@click.option("--seed", default="sandbox", show_default=True, help="Same seed, same population.")
@click.option("--day", help="Reference day the dates are spread around (default today).")
@click.pass_context
def generate(
    ctx: click.Context,
    count: int,
    output: str,
    record_format: str | None,
    seed: str,
    day: str | None,
) -> None:
    """Write COUNT realistic sandbox insured records (households, several insurers, job
    changes, losses, elderly, limit certificates) to OUTPUT (default stdout)."""
    from mynakit.services.eligibility.population import (
        format_of,
        generate_population,
        write_records,
    )

    chosen = record_format or format_of(output)
    records = generate_population(count, seed=seed, reference_day=_date(day))
    progress = _progress("generated")

    def counted() -> Iterator[Any]:
        for index, record in enumerate(records, start=1):
            if index % 50_000 == 0:
                progress(index)
            yield record

    if output == "-":
        written = write_records(counted(), sys.stdout, chosen)  # type: ignore[arg-type]
    else:
        try:
            with open(output, "w", encoding="utf-8", newline="") as stream:
                written = write_records(counted(), stream, chosen)  # type: ignore[arg-type]
        except OSError as error:
            raise UsageError(f"cannot write {output}: {error.strerror or error}") from error
    summary = {"generated": written, "format": chosen, "output": output, "seed": seed}
    if output == "-":
        note(f"generated {written:,} records")
    else:
        emit(ctx, summary, f"generated {written:,} records into {output}")


# -- counter and holder side ----------------------------------------------------------------------


@eligibility.command()
@remote_options
@_query_options
@click.option(
    "--enable-face",
    is_flag=True,
    help="Also enrol the card for face/visual confirmation (birth-date code).",
)
@pin_stdin_option
@force_option
@click.pass_context
def register(
    ctx: click.Context,
    database: str | None,
    url: str | None,
    credential: str | None,
    insurer: str | None,
    symbol: str | None,
    number: str | None,
    branch: str | None,
    birth: str | None,
    enable_face: bool,
    pin_stdin: bool,
    force: bool,
) -> None:
    """初回登録: register the card in the reader for insurance use, matched by the insurance
    data you confirm (never by My Number)."""
    from mynakit.services.eligibility.models import RegistrationRequest

    query = _query(insurer, symbol, number, branch, birth)
    with _client(ctx, database, url, credential) as client:
        presence = None
        if enable_face:
            challenge_id, _, proof = _card_presence(ctx, client, pin_stdin)
            presence = (challenge_id, proof)
        answer = _card_answer(ctx, client, pin_stdin, force)
        registration = client.register(RegistrationRequest(answer, query, presence))
    data = registration.to_dict()
    text = (
        "already registered for insurance use"
        if registration.already_registered
        else f"registered for insurance use (certificate {registration.serial:X})"
    )
    emit(ctx, data, text)


@eligibility.command()
@remote_options
@click.option("--institution", default="1312345678", show_default=True, help="10-digit code.")
@click.option("--date", "day", help="Qualification confirmation date (default today in Japan).")
@click.option(
    "--consent",
    "consents",
    multiple=True,
    type=click.Choice(SCOPE_NAMES),
    help="Consents the holder gives at the reader (repeatable).",
)
@_query_options
@click.option("--limit-consent", is_flag=True, help="By card data: the holder consented to 限度額.")
@click.option("--visual", "visual_by", help="No PIN: STAFF confirmed the face by eye (目視).")
@click.option("--face", "face_by", help="No PIN: face recognition by DEVICE.")
@pin_stdin_option
@force_option
@click.pass_context
def check(
    ctx: click.Context,
    database: str | None,
    url: str | None,
    credential: str | None,
    institution: str,
    day: str | None,
    consents: tuple[str, ...],
    insurer: str | None,
    symbol: str | None,
    number: str | None,
    branch: str | None,
    birth: str | None,
    limit_consent: bool,
    visual_by: str | None,
    face_by: str | None,
    pin_stdin: bool,
    force: bool,
) -> None:
    """Check eligibility with the card in the reader (PIN; or --visual/--face without PIN,
    with the card-presence proof), or by insurance-card data when --insurer ... are given
    (ReferenceClassification 2)."""
    from mynakit.services.eligibility.codes import ConsentScope, IdentityConfirmationMethod
    from mynakit.services.eligibility.models import (
        CardCheckRequest,
        CardIdentification,
        FaceConfirmation,
        InsuranceCardCheckRequest,
        PinAuthentication,
    )

    if visual_by is not None and face_by is not None:
        raise UsageError("give --visual or --face, not both")

    by_data = any(value is not None for value in (insurer, number, branch, birth))
    with _client(ctx, database, url, credential) as client:
        if by_data:
            query = _query(insurer, symbol, number, branch, birth, limit_consent=limit_consent)
            result = client.check_by_insurance_card(
                InsuranceCardCheckRequest(institution, query, confirmation_date=_date(day))
            )
        else:
            identification: CardIdentification
            if visual_by is not None or face_by is not None:
                challenge_id, certificate, proof = _card_presence(ctx, client, pin_stdin)
                identification = FaceConfirmation(
                    method=IdentityConfirmationMethod.VISUAL
                    if visual_by is not None
                    else IdentityConfirmationMethod.FACE,
                    certificate_der=certificate,
                    presence_challenge_id=challenge_id,
                    presence=proof,
                    confirmed_by=visual_by
                    if visual_by is not None
                    else f"face-recognition:{face_by}",
                )
            else:
                identification = PinAuthentication(_card_answer(ctx, client, pin_stdin, force))
            result = client.check_by_card(
                CardCheckRequest(
                    institution_code=institution,
                    identification=identification,
                    confirmation_date=_date(day),
                    consents=frozenset(ConsentScope[name.upper()] for name in consents),
                )
            )
    emit(ctx, result.to_dict(), describe_result(result))
    if not result.accepted:
        ctx.exit(9)


def describe_result(result: CheckResult) -> str:
    """A counter's reading of a result: validity, then each qualification."""
    from mynakit.services.eligibility.codes import QualificationValidity

    words = {
        QualificationValidity.VALID: "有効 (valid)",
        QualificationValidity.INVALID: "無効 (invalid)",
        QualificationValidity.INVALID_NEWER_EXISTS: "無効・新しい資格あり (a newer one exists)",
        QualificationValidity.NO_QUALIFICATION: "該当資格なし (no qualification)",
        QualificationValidity.SEVERAL: "複数該当 (several qualifications)",
    }
    if not result.accepted:
        return f"refused: {result.header.error_code} {result.header.error_message}"
    assert result.validity is not None
    lines = [f"資格: {words[result.validity]}  (check {result.check_id})"]
    for entry in result.body.results:
        record = entry.record
        lines.append(
            f"  {record.insurer_number} {record.insurer_name}  記号 {record.card_symbol or '-'}"
            f" 番号 {record.card_number} 枝番 {record.branch_number}"
            f"  取得 {record.qualification_date}"
            + (f" 喪失 {record.disqualification_date}" if record.disqualification_date else "")
        )
        if entry.limit_certificate is not None:
            lines.append(f"    限度額: {entry.limit_certificate.classification_flag.value}")
    return "\n".join(lines)


@eligibility.command()
@remote_options
@click.argument("check_id", required=False)
@click.argument("scopes", nargs=-1, type=click.Choice(SCOPE_NAMES))
@click.option("--institution", default="1312345678", show_default=True, help="10-digit code.")
@click.option("--mine", is_flag=True, help="List your own consents (card in the reader).")
@pin_stdin_option
@force_option
@click.pass_context
def consents(
    ctx: click.Context,
    database: str | None,
    url: str | None,
    credential: str | None,
    check_id: str | None,
    scopes: tuple[str, ...],
    institution: str,
    mine: bool,
    pin_stdin: bool,
    force: bool,
) -> None:
    """Record consents given after the result (CHECK_ID SCOPE...), or list yours (--mine)."""
    from mynakit.services.eligibility.codes import ConsentScope

    with _client(ctx, database, url, credential) as client:
        if mine:
            answer = _card_answer(ctx, client, pin_stdin, force)
            given = client.holder_consents(answer)
            rows = [c.to_dict() for c in given]
            text = "\n".join(
                f"{r['institution_code']}  {r['scope']:<25} {r['given_at']} -> {r['expires_at']}"
                for r in rows
            )
            emit(ctx, {"consents": rows}, text or "no consents")
            return
        if check_id is None or not scopes:
            raise UsageError("give CHECK_ID and at least one SCOPE, or --mine")
        result = client.give_consents(
            institution, check_id, {ConsentScope[name.upper()] for name in scopes}
        )
    emit(ctx, result.to_dict(), describe_result(result))


@eligibility.command()
@remote_options
@pin_stdin_option
@force_option
@click.pass_context
def history(
    ctx: click.Context,
    database: str | None,
    url: str | None,
    credential: str | None,
    pin_stdin: bool,
    force: bool,
) -> None:
    """Every access to your insurance records (card in the reader): who, when, why, what."""
    with _client(ctx, database, url, credential) as client:
        answer = _card_answer(ctx, client, pin_stdin, force)
        views = client.history(answer)
    rows = [view.to_dict() for view in views]
    text = "\n".join(
        f"{r['accessed_at']}  {r['institution_code']}  {r['purpose']:<20} {r['method']:<8}"
        f" {','.join(r['items'])}"
        for r in rows
    )
    emit(ctx, {"access_records": rows}, text or "no access records")
