"""``mynakit demo``: the main job end to end on one laptop, no reader and no plastic.

A virtual card for a generated holder goes into a reader (in-process, or through pcscd with
``--pcsc``); the terminal identifies it, reads the user-authentication certificate, checks the
PIN counter before spending a try, has the card sign the relying party's nonce, and the relying
party verifies signature, chain, validity and revocation (OCSP from the sandbox issuer on
loopback). Then the issuer revokes the certificate and the same card is refused, as a counter
would see it (ARCHITECTURE.md, "The main job, end to end").
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from pathlib import Path
from typing import Any

import click

from mynakit.cli.util import emit, note


@click.command()
@click.option(
    "--pcsc",
    "through_pcscd",
    is_flag=True,
    help="Put the virtual card into pcscd's 'Virtual PCD 00 00' reader (needs pcscd + vpcd).",
)
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep the issuer and the card in this folder (default: a fresh temporary one).",
)
@click.option("--seed", default="demo", show_default=True, help="Seed of the generated holder.")
@click.pass_context
def demo(ctx: click.Context, through_pcscd: bool, home: Path | None, seed: str) -> None:
    """Run a virtual card through a full JPKI authentication, then a revocation."""
    with contextlib.ExitStack() as stack:
        if home is None:
            home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mynakit-demo-")))
        result = _run(stack, home, through_pcscd=through_pcscd, seed=seed)
    emit(ctx, result, _render(result))


def _run(
    stack: contextlib.ExitStack, home: Path, *, through_pcscd: bool, seed: str
) -> dict[str, Any]:
    from mynakit.card.jpki import JpkiAp
    from mynakit.emulator.issuer import SandboxIssuer
    from mynakit.emulator.ocsp_server import OcspServer
    from mynakit.emulator.state import create_card, load_card_state
    from mynakit.iso7816.protocol import ApduProtocol
    from mynakit.jpki.authentication import Authenticator, card_respond
    from mynakit.jpki.trust import TrustStore
    from mynakit.transport.trace import TracingConnection

    steps: list[dict[str, Any]] = []
    started = time.perf_counter()

    note("1. The sandbox issuer (playing J-LIS) starts its OCSP responder on loopback.")
    issuer = SandboxIssuer.open_or_create(home / "issuer")
    stack.enter_context(OcspServer(issuer))
    cards = home / "cards"
    if not (cards / "holder").exists():
        create_card(cards, "holder", seed=seed, issuer=issuer)
    holder = load_card_state(cards, "holder").persona

    connection = TracingConnection(_insert_card(stack, cards, through_pcscd))
    protocol = ApduProtocol(connection, extended_length=connection.extended_length)
    note(f"2. A virtual card is in '{connection.reader_name}'; the terminal identifies it.")

    def step(name: str, **details: Any) -> None:
        steps.append({"step": name, "apdus": len(connection.counter), **details})
        connection.counter.clear()

    # SELECT the JPKI AP and read its token: what the card is, in two APDUs (§7.1).
    session = JpkiAp.open(protocol)
    step("identify card", card=session.token().kind.description)
    certificate_der = session.read_certificate("auth")
    step("read authentication certificate", bytes=len(certificate_der))

    note("3. The holder is asked for the 4-digit PIN; the counter is checked first.")
    tries = {status.key_name: status.tries_left for status in session.pin_status()}
    step("PIN status (no try spent)", tries_left=tries)
    authenticator = Authenticator(TrustStore.jlis().with_sandbox(issuer), revocation="ocsp")
    challenge = authenticator.begin()
    response = card_respond(session, challenge, holder.auth_pin)
    step("verify PIN, sign the nonce (80 2A), read certificate")

    note("4. The relying party verifies signature, chain, validity and revocation (OCSP).")
    verified = authenticator.complete(
        challenge.challenge_id, response.signature, response.certificate_der
    )
    step(
        "relying party verified",
        serial=verified.serial,
        random_string=verified.random_string,
        terminal_code=verified.terminal_code,
        revocation=verified.revocation,
        root="production" if verified.production else "sandbox",
    )

    note("5. The issuer revokes the certificate; the same card is now refused.")
    from cryptography import x509

    from mynakit.jpki.authentication import RevokedCertificateError

    issuer.revoke(verified.serial, x509.ReasonFlags.key_compromise)
    challenge = authenticator.begin()
    response = card_respond(session, challenge, holder.auth_pin)
    try:
        authenticator.complete(challenge.challenge_id, response.signature, response.certificate_der)
        refused = "accepted (unexpected)"
    except RevokedCertificateError as error:
        refused = str(error)
    step("after revocation", result=refused)

    return {
        "reader": connection.reader_name,
        "authenticated": True,
        "serial": verified.serial,
        "revoked_card_refused": refused != "accepted (unexpected)",
        "steps": steps,
        "seconds": round(time.perf_counter() - started, 3),
    }


def _insert_card(stack: contextlib.ExitStack, cards: Path, through_pcscd: bool) -> Any:
    from mynakit.emulator.state import load_card

    card = load_card(cards, "holder")
    if not through_pcscd:
        from mynakit.transport.in_process import InProcessConnection

        return InProcessConnection(card, reader_name="mynakit virtual reader (in-process)")
    from mynakit.emulator.pcscd import card_in_virtual_reader, ensure_pcscd
    from mynakit.transport.pcsc import PcscConnection

    # Reuse a pcscd that has vpcd loaded, or start one and stop it at the end (measured.md).
    pcscd = ensure_pcscd(cards.parent / "pcscd")
    stack.callback(pcscd.stop)
    bridge = stack.enter_context(card_in_virtual_reader(card))
    connection = PcscConnection.open(bridge.reader_name)
    stack.callback(connection.close)
    return connection


def _render(result: dict[str, Any]) -> str:
    lines = [f"Reader: {result['reader']}"]
    for number, step in enumerate(result["steps"], start=1):
        details = ", ".join(
            f"{key.replace('_', ' ')} {value}"
            for key, value in step.items()
            if key not in ("step", "apdus")
        )
        lines.append(
            f"{number}. {step['step']} ({step['apdus']} APDUs){': ' + details if details else ''}"
        )
    lines.append(
        f"Authenticated certificate serial {result['serial']}; "
        f"revoked card refused: {'yes' if result['revoked_card_refused'] else 'NO'}; "
        f"{result['seconds']} s in all."
    )
    return "\n".join(lines)
