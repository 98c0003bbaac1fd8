"""``mynakit issuer``: the sandbox issuer (J-LIS stand-in) of ``<home>/issuer``: renew and
revoke certificates, publish CRLs, serve OCSP."""

from __future__ import annotations

import click

from mynakit.cli.context import get_context
from mynakit.cli.util import emit, note, open_sandbox_issuer, write_output

# x509.ReasonFlags values the sandbox accepts (JPKI has no hold/release, docs/card.md §9).
REASONS = (
    "unspecified",
    "keyCompromise",
    "cACompromise",
    "affiliationChanged",
    "superseded",
    "cessationOfOperation",
    "privilegeWithdrawn",
    "aACompromise",
)


@click.group()
def issuer() -> None:
    """Sandbox issuer (J-LIS stand-in): renewal, revocation, serial link, CRL, OCSP."""


def parse_serial(text: str) -> int:
    """A certificate serial as decimal digits or hexadecimal (with 0x, or with letters)."""
    from mynakit.errors import UsageError

    cleaned = text.strip().replace(":", "").lower()
    try:
        if cleaned.startswith("0x"):
            return int(cleaned, 16)
        if cleaned.isdigit():
            return int(cleaned)
        return int(cleaned, 16)
    except ValueError:
        raise UsageError(f"{text!r} is not a certificate serial (decimal or hex)") from None


@issuer.command()
@click.argument("serial")
@click.pass_context
def renew(ctx: click.Context, serial: str) -> None:
    """Renew the certificate SERIAL on the virtual card that holds it (new key pair)."""
    from mynakit.emulator.state import find_card_by_serial, renew_card_certificate
    from mynakit.errors import UsageError

    number = parse_serial(serial)
    cards = get_context(ctx).cards_directory
    found = find_card_by_serial(cards, number)
    if found is None:
        raise UsageError(
            f"no virtual card holds certificate {number}; renewal puts a new key on the card"
        )
    name, kind = found
    old_serial, certificate = renew_card_certificate(cards, name, kind, open_sandbox_issuer(ctx))
    emit(
        ctx,
        {
            "card": name,
            "kind": kind,
            "old_serial": old_serial,
            "new_serial": certificate.serial_number,
            "not_after": certificate.not_valid_after_utc,
            "old_certificate": "revoked (superseded)",
        },
    )


@issuer.command()
@click.argument("serial")
@click.pass_context
def previous(ctx: click.Context, serial: str) -> None:
    """The serial that certificate SERIAL replaced (新旧シリアル番号の紐付け).

    Answers only for holders who consented to the serial link at renewal; services use it to
    keep a person's records across renewals (docs/architecture.md §5).
    """
    number = parse_serial(serial)
    earlier = open_sandbox_issuer(ctx).previous_serial(number)
    text = (
        f"{number} replaced {earlier}"
        if earlier is not None
        else f"{number} is a first issuance (it replaced no certificate)"
    )
    emit(ctx, {"serial": number, "previous_serial": earlier}, text)


@issuer.command()
@click.argument("serial")
@click.option(
    "--reason",
    type=click.Choice(REASONS),
    default="unspecified",
    show_default=True,
    help="CRL reason code.",
)
@click.pass_context
def revoke(ctx: click.Context, serial: str, reason: str) -> None:
    """Revoke the certificate SERIAL (final, as in JPKI)."""
    from cryptography import x509

    number = parse_serial(serial)
    open_sandbox_issuer(ctx).revoke(number, x509.ReasonFlags(reason))
    emit(ctx, {"revoked": number, "reason": reason})


@issuer.command()
@click.option(
    "--kind",
    type=click.Choice(("auth", "sign")),
    default="auth",
    show_default=True,
    help="Which CA's CRL.",
)
@click.option("-o", "--output", help="Write the CRL (DER) to FILE instead of printing it as PEM.")
@click.pass_context
def crl(ctx: click.Context, kind: str, output: str | None) -> None:
    """Print or save the current CRL of the auth or sign CA."""
    from cryptography.hazmat.primitives import serialization

    from mynakit.jpki.certificates import CertificateKind

    revocation_list = open_sandbox_issuer(ctx).crl(CertificateKind(kind))
    summary: dict[str, object] = {
        "kind": kind,
        "issuer": revocation_list.issuer.rfc4514_string(),
        "last_update": revocation_list.last_update_utc,
        "next_update": revocation_list.next_update_utc,
        "revoked": len(revocation_list),
    }
    text = None
    if output is not None:
        # A CRL is a public artefact: written readable by all, as any CA publishes it.
        write_output(ctx, output, revocation_list.public_bytes(serialization.Encoding.DER))
        summary["file"] = output
    else:
        pem = revocation_list.public_bytes(serialization.Encoding.PEM).decode("ascii")
        summary["pem"] = pem
        text = pem.rstrip("\n")
    emit(ctx, summary, text)


@issuer.command()
@click.option("--port", type=int, default=None, help="Port (default: the one in the certificates).")
@click.pass_context
def ocsp(ctx: click.Context, port: int | None) -> None:
    """Serve OCSP and CRLs on loopback in the foreground until Ctrl-C."""
    import threading

    from mynakit.emulator.ocsp_server import OcspServer

    server = OcspServer(open_sandbox_issuer(ctx), "127.0.0.1", port).start()
    note(f"Sandbox OCSP/CRL responder at {server.url} (Ctrl-C stops it)")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    emit(ctx, {"stopped": server.url})
