"""The one shared helper module of the CLI: every command module imports only this, the CLI
context (``mynakit.cli.context``) and the library, never another command module.

What lives here:
- ``lazy_group``: command groups whose subcommands are imported only when run;
- errors: ``FileAccessError`` and ``VerificationFailedError``, the one way verify commands fail;
- output: results on stdout (JSON with ``--json``, text otherwise), notes on stderr, and the one
  writer of files and binary output (``write_output``), which turns ``OSError`` into
  "cannot write PATH: reason";
- input: ``read_input`` reads a file the user named, at most a stated number of bytes;
- secrets: PINs and passwords from the environment, ``--pin-stdin`` or a hidden prompt, never
  from the command line, and the guarded VERIFY of what was read;
- shared options (``--pin-stdin``, ``--force``, ``--credential``, ``--sandbox``, ``--ocsp`` /
  ``--crl``) and the relying side's trust: the sandbox issuer, opened one way for every command.

Imports beyond the standard library happen inside the functions that need them, so that
importing this module costs nothing on ``mynakit --help``; click too, because the fast path
(``mynakit.cli.fast_path``) runs ``jpki cert`` and ``jpki pkey sign`` through these helpers
without importing click (docs/architecture.md §10).
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from collections.abc import Mapping, Sequence

from mynakit.errors import UsageError, VerificationError

TYPE_CHECKING = False  # mypy treats this name as True (no ``typing`` import at run time)
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path
    from typing import Any, TypeVar

    import click

    from mynakit.card.base import ApplicationSession
    from mynakit.card.jpki import JpkiAp, KeyKind
    from mynakit.cli.context import Invocation
    from mynakit.emulator.issuer import SandboxIssuer
    from mynakit.jpki.inputs import InputKind
    from mynakit.jpki.revocation import RevocationChecker
    from mynakit.jpki.trust import TrustStore
    from mynakit.jpki.validation import CertificateValidationError

    _Command = TypeVar("_Command", bound=Callable[..., Any])

# -- errors -------------------------------------------------------------------------------------


class FileAccessError(UsageError):
    """A file the user named cannot be read or written (missing folder, a directory, no
    permission, too large). Exit code 2, as for any other bad argument."""


class VerificationFailedError(VerificationError):
    """A verify command's negative answer: the one way every verify command fails (``cert``,
    ``cms``, ``pdf``, ``pkey``, ``text verify``). ``main`` prints ``message`` as the one error
    line and, with ``--json``, ``result`` (what was checked and found) inside the error object."""

    def __init__(
        self, message: str, *, result: Mapping[str, Any], exit_code: int | None = None
    ) -> None:
        super().__init__(message)
        self.result = dict(result)
        if exit_code is not None:
            self.exit_code = exit_code


# -- command groups ---------------------------------------------------------------------------


def lazy_group(
    lazy_commands: dict[str, tuple[str, str, str]], **attributes: Any
) -> Callable[[Callable[..., Any]], click.Group]:
    """``@click.group`` for a group whose subcommands (name -> module, attribute, one-line help)
    are imported only when run, so ``--help`` lists every command without importing any."""
    import click

    from mynakit.cli.lazy_group import LazyGroup

    return click.group(cls=LazyGroup, lazy_commands=lazy_commands, **attributes)


# -- output -------------------------------------------------------------------------------------


def _json_default(value: object) -> object:
    if isinstance(value, bytes):
        return value.hex().upper()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def to_json(data: Mapping[str, Any], *, indent: int | None = 2) -> str:
    import json

    return json.dumps(data, ensure_ascii=False, indent=indent, default=_json_default)


def render_text(data: Any, indent: int = 0) -> str:
    """A plain ``key: value`` rendering of nested dicts and lists."""
    pad = "  " * indent
    lines: list[str] = []
    if isinstance(data, Mapping):
        for key, value in data.items():
            label = str(key).replace("_", " ")
            if isinstance(value, Mapping | list | tuple) and value:
                lines.append(f"{pad}{label}:")
                lines.append(render_text(value, indent + 1))
            else:
                lines.append(f"{pad}{label}: {_scalar(value)}")
    elif isinstance(data, Sequence) and not isinstance(data, str | bytes):
        for item in data:
            if isinstance(item, Mapping):
                rendered = render_text(item, indent + 1).lstrip()
                lines.append(f"{pad}- {rendered}")
            else:
                lines.append(f"{pad}- {_scalar(item)}")
    else:
        lines.append(f"{pad}{_scalar(data)}")
    return "\n".join(lines)


def _scalar(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, bytes):
        return value.hex(" ").upper()
    if isinstance(value, list | tuple) and not value:
        return "none"
    return str(_json_default(value)) if not isinstance(value, str | int | float) else str(value)


def wants_json(ctx: Invocation) -> bool:
    """Whether ``--json`` was given (anywhere on the command line: ``main`` hoists it)."""
    return bool(ctx.find_root().params.get("as_json"))


def emit(ctx: Invocation, data: Mapping[str, Any], text: str | None = None) -> None:
    """Print a command's result: JSON with ``--json``, else ``text`` or a rendering of ``data``."""
    echo(to_json(data) if wants_json(ctx) else text if text is not None else render_text(data))


def note(message: str) -> None:
    """Progress or a warning for a person: stderr, never mixed into results."""
    echo(message, err=True)


def echo(message: str, *, err: bool = False) -> None:
    """One line on stdout (``err``: stderr), flushed: what ``click.echo`` does with text, written
    here so that the fast path and the click path print through the same code."""
    stream = sys.stderr if err else sys.stdout
    stream.write(message + "\n")
    stream.flush()


def configure_logging(verbose: int) -> None:
    """Log records on stderr from WARNING (``-v`` INFO, ``-vv`` DEBUG), as ``LEVEL name: text``."""
    import logging  # only when a command sets logging up: transports log only where it is

    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )


STDOUT = "-"


def write_output(
    ctx: Invocation, output: str | os.PathLike[str], data: bytes, *, private: bool = False
) -> None:
    """The one writer of every command's files and binary output.

    ``-`` is standard output: refused on a terminal (binary garbage) and with ``--json`` (stdout
    then carries JSON only). A file is replaced whole; with ``private`` (personal data: card face
    images, the signature certificate with the basic-4 information) it is created 0600, an
    existing one is narrowed to 0600 before the data goes in. Any ``OSError`` becomes one line,
    "cannot write PATH: reason".
    """
    target = os.fspath(output)
    if target == STDOUT:
        check_output(ctx, target)
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    try:
        descriptor = os.open(
            target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o666
        )
        with os.fdopen(descriptor, "wb") as stream:
            if private:
                os.fchmod(stream.fileno(), 0o600)
            stream.write(data)
    except OSError as error:
        raise FileAccessError(f"cannot write {target}: {_reason(error)}") from error


def check_output(ctx: Invocation, output: str | os.PathLike[str] | None) -> None:
    """Refuse, before the card is touched, an output that ``write_output`` would refuse: so a
    typo in ``-o`` costs no PIN entry and no signature. The write itself still reports
    anything that goes wrong later."""
    if output is None:
        return
    target = os.fspath(output)
    if target == STDOUT:
        if wants_json(ctx):
            raise UsageError("with --json, standard output carries JSON only: use -o FILE")
        if sys.stdout.isatty():
            raise UsageError("refusing to write binary data to a terminal; use -o FILE")
        return
    # os.path, not pathlib: this runs on the fast path, which pathlib's import would slow.
    folder = os.path.dirname(target) or os.curdir
    if os.path.isdir(target):
        problem = errno.EISDIR
    elif not os.path.isdir(folder):
        problem = errno.ENOENT
    elif not os.access(folder, os.W_OK | os.X_OK) or (
        os.path.exists(target) and not os.access(target, os.W_OK)
    ):
        problem = errno.EACCES
    else:
        return
    raise FileAccessError(f"cannot write {target}: {os.strerror(problem)}")


def write_into_directory(
    ctx: Invocation, directory: str, files: Mapping[str, bytes], *, private: bool
) -> None:
    """Write ``files`` (name -> content) into ``directory``, created 0700 when ``private``."""
    from pathlib import Path

    try:
        Path(directory).mkdir(mode=0o700 if private else 0o777, parents=True, exist_ok=True)
    except OSError as error:
        raise FileAccessError(f"cannot write {directory}: {_reason(error)}") from error
    for name, content in files.items():
        write_output(ctx, Path(directory) / name, content, private=private)


def _reason(error: OSError) -> str:
    return error.strerror or str(error)


# -- input --------------------------------------------------------------------------------------


def read_input(path: str, kind: InputKind) -> bytes:
    """The bytes of ``path`` (``-``: standard input), never more than the library's cap for
    ``kind`` (:data:`mynakit.jpki.inputs.SIZE_LIMITS`): ``jpki verify-cert /dev/zero`` is one
    line, not a process that reads until memory runs out."""
    from mynakit.jpki.inputs import read_bounded

    if path == STDOUT:
        return read_bounded(sys.stdin.buffer, kind, origin="standard input")
    return read_bounded(path, kind)


def pem_armor(label: str, der: bytes) -> bytes:
    """``der`` in the PEM textual encoding of RFC 7468 §2 (base64 lines of 64 characters
    between BEGIN and END lines). Written here so that saving a certificate as the card holds
    it imports no ASN.1 or X.509 library."""
    import base64

    body = base64.b64encode(der)
    lines = [body[index : index + 64] for index in range(0, len(body), 64)]
    return b"\n".join(
        [f"-----BEGIN {label}-----".encode(), *lines, f"-----END {label}-----".encode(), b""]
    )


#: The hash algorithms whose DigestInfo the card's signature takes (``mynakit.card.jpki``'s
#: ``DIGEST_INFO_PREFIXES``; a test keeps the two equal). Spelt out here so that building the
#: ``--digest`` option imports no card module.
HASH_ALGORITHMS = ("sha1", "sha256", "sha384", "sha512")


# -- secrets ------------------------------------------------------------------------------------

# One environment variable per secret, so a script can hold several without confusion.
ENVIRONMENT_VARIABLES = {
    "auth_pin": "MYNAKIT_AUTH_PIN",
    "sign_password": "MYNAKIT_SIGN_PASSWORD",
    "text_pin": "MYNAKIT_TEXT_PIN",
    "check_code_a": "MYNAKIT_CHECK_CODE_A",
    "check_code_b": "MYNAKIT_CHECK_CODE_B",
    "card_pin": "MYNAKIT_CARD_PIN",
    "birth_date_code": "MYNAKIT_BIRTH_DATE_CODE",
    "new_pin": "MYNAKIT_NEW_PIN",
}


def _flag_option(name: str, help_text: str) -> Callable[[_Command], _Command]:
    """A click flag option ``name``, built when a command is decorated with it."""

    def add(command: _Command) -> _Command:
        import click  # options are built by the click path only; the fast path never builds them

        return click.option(name, is_flag=True, help=help_text)(command)

    return add


pin_stdin_option = _flag_option(
    "--pin-stdin", "Read the PIN/password from the first line of standard input."
)
force_option = _flag_option(
    "--force", "Allow spending the last PIN try (a wrong entry then blocks the PIN)."
)


def read_secret(key_name: str, label: str, *, from_stdin: bool = False) -> str:
    """The secret for ``key_name``; raises ``UsageError`` when none can be had (no stdin) or
    when it is not typed in printable ASCII (full-width ``１２３４`` is refused here, before
    any card command; the card layer checks each key's own format)."""
    variable = ENVIRONMENT_VARIABLES.get(key_name)
    if variable and os.environ.get(variable):
        return _ascii_secret(os.environ[variable], label)
    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise UsageError(f"--pin-stdin given but standard input had no {label}")
        return _ascii_secret(line, label)
    if not sys.stdin.isatty():
        hint = f" or set {variable}" if variable else ""
        raise UsageError(f"the {label} is needed: use --pin-stdin{hint} (no terminal to prompt)")
    import click  # for its hidden prompt: a terminal user is not counting milliseconds

    value = click.prompt(label, hide_input=True, err=True)
    assert isinstance(value, str)
    return _ascii_secret(value, label)


def _ascii_secret(secret: str, label: str) -> str:
    # The message never repeats the secret: it may be a real PIN typed in the wrong mode.
    if not (secret.isascii() and secret.isprintable()):
        raise UsageError(
            f"the {label} must be typed in half-width (ASCII) characters; full-width or other "
            "Unicode digits are not accepted. Nothing was sent to the card"
        )
    return secret


def read_new_secret(label: str, *, from_stdin: bool) -> str:
    """A new PIN or password; typed twice when it comes from a terminal prompt."""
    prompting = (
        not from_stdin
        and not os.environ.get(ENVIRONMENT_VARIABLES["new_pin"])
        and sys.stdin.isatty()
    )
    new = read_secret("new_pin", f"new {label}", from_stdin=from_stdin)
    if prompting:
        import click  # for its hidden prompt (see read_secret)

        again = click.prompt(f"new {label} again", hide_input=True, err=True)
        if again != new:
            raise UsageError(f"the two entries of the new {label} differ; nothing was changed")
    return new


def verify_from_user(
    session: ApplicationSession, key_name: str, *, from_stdin: bool, force: bool
) -> None:
    """Ask for the secret of ``key_name`` (env, stdin or hidden prompt) and verify it through
    the guarded ``ApplicationSession.verify``, or have it typed on the reader's keypad when the
    reader has one and no script gave the secret. The secret is not kept."""
    key = session.application.key(key_name)
    pin_pad = getattr(session.protocol.connection, "pin_pad", None)
    variable = ENVIRONMENT_VARIABLES.get(key_name)
    scripted = from_stdin or bool(variable and os.environ.get(variable))
    if pin_pad is not None and key.charset == "digits" and not scripted:
        # PC/SC part 10 FEATURE_VERIFY_PIN_DIRECT: the PIN goes from the keypad to the card and
        # never through this process; the counter guard still runs first.
        note(f"Enter the {key.label or key.name} on the reader's keypad.")
        session.verify_on_pin_pad(key_name, pin_pad, force=force)
        return
    secret = read_secret(key_name, key.label or key.name, from_stdin=from_stdin)
    session.verify(key_name, secret, force=force)


#: What each ``--credential`` choice means (text and visual APs; docs/card.md §3.2).
CREDENTIAL_HELP = {
    "pin": "the text PIN (4 digits)",
    "a": "check code A (the My Number, 12 digits)",
    "b": "check code B (era birth date YYMMDD + expiry year + security code, 14 digits)",
}
#: The key each ``--credential`` choice verifies.
CREDENTIAL_KEYS = {"pin": "text_pin", "a": "check_code_a", "b": "check_code_b"}


def credential_option(
    choices: tuple[str, ...], *, pin_means: str = CREDENTIAL_HELP["pin"]
) -> Callable[[_Command], _Command]:
    """``-c/--credential`` with ``choices`` (the first is the default)."""
    import click  # the click path only (see _flag_option)

    meanings = {**CREDENTIAL_HELP, "pin": pin_means}
    return click.option(
        "-c",
        "--credential",
        type=click.Choice(choices),
        default=choices[0],
        show_default=True,
        help="; ".join(f"{choice}: {meanings[choice]}" for choice in choices) + ".",
    )


# -- the card's JPKI AP -------------------------------------------------------------------------


def open_certificate(
    ctx: Invocation, kind: str, *, pin_stdin: bool, force: bool
) -> tuple[JpkiAp, bytes]:
    """Open the JPKI AP, verify what the certificate file needs (sign password; a smartphone
    token's auth PIN), and read certificate ``kind`` (auth, sign, auth_ca, sign_ca)."""
    from mynakit.card.jpki import JpkiAp
    from mynakit.cli.context import get_context

    session = JpkiAp.open(get_context(ctx).protocol())
    file = session.application.file(f"{kind}_certificate")
    if file.read_keys:
        key = session.application.keys[file.read_keys[0]]
        verify_from_user(session, key.name, from_stdin=pin_stdin, force=force)
    return session, session.read_certificate(kind)  # type: ignore[arg-type]


def open_card_signer(
    ctx: click.Context, key: KeyKind, *, pin_stdin: bool, force: bool
) -> tuple[JpkiAp, bytes, list[bytes]]:
    """Open the JPKI AP, verify the key's PIN (guarded: counter first, never the last try
    without ``force``), read the signer's certificate and, when the card has it, the CA's."""
    from mynakit.card.jpki import PIN_OF_KEY, JpkiAp
    from mynakit.cli.context import get_context
    from mynakit.errors import CardError

    session = JpkiAp.open(get_context(ctx).protocol())
    verify_from_user(session, PIN_OF_KEY[key], from_stdin=pin_stdin, force=force)
    certificate = session.read_certificate(key)
    ca_certificates: list[bytes] = []
    try:
        ca_certificates.append(session.read_certificate("auth_ca" if key == "auth" else "sign_ca"))
    except CardError:
        note("the card holds no CA certificate; the signature carries only the signer's")
    return session, certificate, ca_certificates


def certificate_facts(certificate: Any) -> dict[str, Any]:
    """What identifies a certificate, without personal data (never the basic-4 information)."""
    facts: dict[str, Any] = {
        "kind": certificate.kind.value,
        "serial": certificate.serial_number,
        "serial_hex": f"{certificate.serial_number:X}",
        "not_before": certificate.not_before.isoformat(),
        "not_after": certificate.not_after.isoformat(),
    }
    if certificate.kind.value == "auth":
        facts["random_string"] = certificate.random_string
        facts["terminal_code"] = certificate.terminal_code
    return facts


# -- jpki cert and jpki pkey sign ----------------------------------------------------------------
#
# The bodies of the two commands the fast path runs (``mynakit.cli.fast_path``): here, outside
# the click command module, so that the click commands (``mynakit.cli.jpki_cert``) and the fast
# path run the same code (docs/architecture.md §10).

CERTIFICATE_KINDS = ("auth", "sign", "auth_ca", "sign_ca")
# jpki/myna accepts these spellings for the signature certificate (docs/card.md §10.1, §11).
CERTIFICATE_KIND_ALIASES = {
    "signature": "sign",
    "digital_signature": "sign",
    "auth-ca": "auth_ca",
    "sign-ca": "sign_ca",
}


def certificate_kind(value: str) -> str:
    """The certificate kind ``-t/--type`` names, its jpki/myna spellings included."""
    kind = CERTIFICATE_KIND_ALIASES.get(value, value)
    if kind not in CERTIFICATE_KINDS:
        raise UsageError(
            f"invalid value {value!r} for -t/--type: choose from {', '.join(CERTIFICATE_KINDS)}"
        )
    return kind


def certificate_summary(certificate: Any, *, show_personal: bool) -> dict[str, object]:
    """``certificate_facts`` plus subject, issuer and whether it is a sandbox certificate; the
    basic-4 information of a signature certificate only with ``show_personal``."""
    summary: dict[str, object] = {
        **certificate_facts(certificate),
        "subject": certificate.subject_name.rfc4514_string(),
        "issuer": certificate.issuer_name.rfc4514_string(),
        "sandbox": certificate.is_sandbox,
    }
    if certificate.kind.value == "sign" and show_personal:
        info = certificate.basic_info
        summary["basic_info"] = {
            "name": info.name,
            "address": info.address,
            "birth_date": info.birth_date.isoformat(),
            "birth_date_era": str(certificate.birth_era_date),
            "sex": info.sex.value,
        }
    return summary


def read_certificate_command(
    ctx: Invocation,
    kind: str,
    output_format: str,
    output: str | None,
    *,
    show_personal: bool,
    pin_stdin: bool,
    force: bool,
) -> None:
    """``jpki cert``. DER and PEM are written as the card holds them, without parsing: only
    the text summary needs an X.509 parser (and its import time)."""
    kind = certificate_kind(kind)
    if output is None and output_format == "der":
        output = STDOUT
    check_output(ctx, output)
    _, der = open_certificate(ctx, kind, pin_stdin=pin_stdin, force=force)
    # The signature certificate holds the basic-4 information: its file is the holder's only.
    private = kind == "sign"
    if output_format == "text":
        from mynakit.jpki.certificates import parse_certificate

        summary = certificate_summary(parse_certificate(der), show_personal=show_personal)
        if output is not None:
            text = "\n".join(f"{key}: {value}" for key, value in summary.items()) + "\n"
            write_output(ctx, output, text.encode("utf-8"), private=private)
        emit(ctx, summary)
        return
    encoded = der if output_format == "der" else pem_armor("CERTIFICATE", der)
    if output is None:
        data: dict[str, object] = {"kind": kind, "format": "pem", "pem": encoded.decode("ascii")}
        emit(ctx, data, encoded.decode("ascii").rstrip("\n"))
        return
    write_output(ctx, output, encoded, private=private)
    if output != STDOUT:
        emit(ctx, {"kind": kind, "format": output_format, "written": output, "bytes": len(encoded)})


def sign_command(
    ctx: Invocation,
    key: KeyKind,
    input_file: str,
    output: str | None,
    digest: str,
    *,
    raw: bool,
    pin_stdin: bool,
    force: bool,
) -> None:
    """``jpki pkey sign``: sign INPUT with the card, the DigestInfo of its hash or, with
    ``raw``, its bytes as given."""
    import hashlib

    from mynakit.card.jpki import PIN_OF_KEY, JpkiAp, digest_info
    from mynakit.cli.context import get_context
    from mynakit.jpki.inputs import InputKind

    if pin_stdin and input_file == STDOUT:
        raise UsageError("INPUT and --pin-stdin cannot both use standard input")
    content = read_input(input_file, InputKind.DOCUMENT)
    block = content if raw else digest_info(digest, hashlib.new(digest, content).digest())
    check_output(ctx, output)
    session = JpkiAp.open(get_context(ctx).protocol())
    verify_from_user(session, PIN_OF_KEY[key], from_stdin=pin_stdin, force=force)
    signature = session.sign(key, block)
    result: dict[str, object] = {
        "key": key,
        "digest": None if raw else digest,
        "signature": signature.hex().upper(),
        "bytes": len(signature),
    }
    if output is not None:
        write_output(ctx, output, signature)
        if output == STDOUT:
            return
        result["written"] = output
        note(f"signature written to {output}")
    emit(ctx, result)


# -- the relying side's trust -------------------------------------------------------------------
#
# Trust, for every verifying command (``verify-cert``, ``cms verify``, ``pdf verify``): the
# bundled J-LIS roots always; the sandbox issuer's roots (``$MYNAKIT_HOME/issuer``) and the
# transcript CAs of virtual cards made from transcripts only with ``--sandbox``. Trusting the
# sandbox because its directory happens to exist would let anything the sandbox signed pass as
# valid on any machine that once ran the demo, so it takes an explicit flag; the output always
# says whether the root is a production or a sandbox one.

ISSUER_FOLDER = "issuer"
_ISSUER_KEY = "mynakit.sandbox_issuer"
_TRANSCRIPT_CA = "mynakit transcript CA"  # in every transcript CA's name (emulator.transcripts)


sandbox_option = _flag_option(
    "--sandbox",
    "Also trust the sandbox issuer's roots ($MYNAKIT_HOME/issuer). "
    "Without it only the J-LIS roots are trusted.",
)


def issuer_directory(ctx: click.Context) -> Path:
    """Where the sandbox issuer lives: ``$MYNAKIT_HOME/issuer``."""
    from mynakit.cli.context import get_context

    return get_context(ctx).home / ISSUER_FOLDER


def open_sandbox_issuer(ctx: click.Context) -> SandboxIssuer:
    """The sandbox issuer under ``$MYNAKIT_HOME``, opened once per command (loading its root
    keys is the slow part); a missing one is a one-line error saying how to make it."""
    from mynakit.emulator.issuer import STATE_FILE, SandboxIssuer

    meta = ctx.find_root().meta
    cached = meta.get(_ISSUER_KEY)
    if isinstance(cached, SandboxIssuer):
        return cached
    directory = issuer_directory(ctx)
    if not (directory / STATE_FILE).exists():
        raise UsageError(
            f"no sandbox issuer in {directory}; create a virtual card first "
            "(mynakit emulator create NAME), which creates the issuer too"
        )
    issuer = SandboxIssuer.open(directory)
    meta[_ISSUER_KEY] = issuer
    return issuer


def trust_store(ctx: click.Context, *, sandbox: bool) -> TrustStore:
    """J-LIS roots, plus the sandbox roots when asked."""
    from mynakit.jpki.trust import TrustStore

    store = TrustStore.jlis()
    return with_sandbox_roots(ctx, store) if sandbox else store


def with_sandbox_roots(ctx: click.Context, store: TrustStore) -> TrustStore:
    """``store`` plus the sandbox issuer's roots and the transcript CAs of the virtual cards
    made from transcripts (their certificates are signed by those)."""
    from mynakit.cli.context import get_context
    from mynakit.emulator.transcripts import replayed_card_authorities

    store = store.with_sandbox(open_sandbox_issuer(ctx))
    authorities = replayed_card_authorities(get_context(ctx).cards_directory)
    return store.with_sandbox(authorities) if authorities else store


@contextlib.contextmanager
def sandbox_responder(ctx: click.Context, needed: bool) -> Iterator[None]:
    """Serve the sandbox issuer's OCSP and CRLs on its loopback port while a check runs.

    If the port is taken, a responder is taken to be running already (``mynakit issuer
    ocsp``); if it is not, the revocation check itself fails with a clear message.
    """
    if not needed:
        yield
        return
    from mynakit.emulator.ocsp_server import OcspServer
    from mynakit.errors import TransportError

    server = OcspServer(open_sandbox_issuer(ctx))
    try:
        server.start()
    except TransportError:
        note(f"using the sandbox responder already listening on port {server.port}")
        yield
        return
    try:
        yield
    finally:
        server.stop()


def with_sandbox_hint(error: CertificateValidationError, *, sandbox: bool) -> str:
    """The error message, plus a hint when a sandbox certificate was checked without
    ``--sandbox`` (the usual cause of "unknown issuer" during development)."""
    from mynakit.jpki.validation import ValidationFailure

    message = str(error)
    if sandbox or error.reason is not ValidationFailure.UNKNOWN_ISSUER:
        return message
    if "SANDBOX" in message:
        message += " (signed by the sandbox issuer? add --sandbox to trust it)"
    elif _TRANSCRIPT_CA in message:
        message += " (a card made from a transcript? add --sandbox to trust its transcript CA)"
    return message


def revocation_checker(mode: str | None) -> RevocationChecker | None:
    """The checker for ``--ocsp`` / ``--crl``; None for no revocation check."""
    from mynakit.jpki.revocation import crl_checker, ocsp_checker

    if mode == "ocsp":
        return ocsp_checker()
    if mode == "crl":
        return crl_checker()
    return None


def revocation_options(command: _Command) -> _Command:
    """``--ocsp`` / ``--crl`` (default: no revocation check)."""
    import click  # the click path only (see _flag_option)

    return click.option(
        "--ocsp",
        "revocation",
        flag_value="ocsp",
        help="Check revocation with the OCSP responder the certificate names.",
    )(
        click.option(
            "--crl",
            "revocation",
            flag_value="crl",
            help="Check revocation with the CRL the certificate names.",
        )(command)
    )


sandbox_card_ca_option = _flag_option(
    "--sandbox",
    "Trust the sandbox card-CA keys of the virtual cards in $MYNAKIT_HOME (for a virtual "
    "card served through pcscd). A virtual:NAME reader trusts its own card's key anyway.",
)
