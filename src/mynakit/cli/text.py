"""``mynakit text``: the text AP (券面事項入力補助AP) — My Number, basic-4 information, AP basic
info and the integrity record (protocol reference §6.2-§6.6, §7.9-§7.10).

The credential is the text PIN by default; ``--credential a`` uses check code A (the My Number)
and ``--credential b`` check code B, each opening what §3.2 says it opens.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from mynakit.card.cv_certificate import CardCaKeys
from mynakit.card.text import TextAp
from mynakit.cli.context import VIRTUAL_PREFIX, CliContext, get_context
from mynakit.cli.output import emit
from mynakit.cli.secrets import force_option, pin_stdin_option, verify_from_user
from mynakit.errors import VerificationError
from mynakit.personal import BasicInfo, EraDate

F = TypeVar("F", bound=Callable[..., Any])

CREDENTIAL_KEYS = {"pin": "text_pin", "a": "check_code_a", "b": "check_code_b"}


def credential_option(choices: tuple[str, ...]) -> Callable[[F], F]:
    return click.option(
        "-c",
        "--credential",
        type=click.Choice(choices),
        default=choices[0],
        show_default=True,
        help="pin: the text PIN (4 digits); a: check code A (the My Number, 12 digits); "
        "b: check code B (era birth date YYMMDD + expiry year + security code, 14 digits).",
    )


def open_text_ap(ctx: click.Context, credential: str, *, pin_stdin: bool, force: bool) -> TextAp:
    session = TextAp(get_context(ctx).protocol())
    verify_from_user(session, CREDENTIAL_KEYS[credential], from_stdin=pin_stdin, force=force)
    return session


def basic_info_dict(info: BasicInfo) -> dict[str, object]:
    return {
        "name": info.name,
        "address": info.address,
        "birth_date": info.birth_date.isoformat(),
        "birth_date_era": str(EraDate.from_date(info.birth_date)),
        "sex": info.sex.value,
    }


sandbox_card_ca_option = click.option(
    "--sandbox",
    is_flag=True,
    help="Trust the sandbox card-CA keys of the virtual cards in $MYNAKIT_HOME (for a virtual "
    "card served through pcscd). A virtual:NAME reader trusts its own card's key anyway.",
)


def sandbox_card_ca_keys(cli_context: CliContext, *, sandbox: bool) -> CardCaKeys | None:
    """The card-CA keys to trust: real J-LIS card-CA keys are not bundled, so a real card's CV
    chain is reported as not verified. A ``virtual:NAME`` reader trusts that card's sandbox key;
    ``--sandbox`` trusts every virtual card's key under ``$MYNAKIT_HOME/cards`` (never implied,
    as for the sandbox JPKI roots: a card in a reader is not known to be virtual)."""
    reader = cli_context.reader or ""
    if not sandbox and not reader.startswith(VIRTUAL_PREFIX):
        return None
    from mynakit.emulator.card_files import (
        CARD_CA_TEXT_KEY_NUMBER,
        CARD_CA_VISUAL_KEY_NUMBER,
        key_id,
    )
    from mynakit.emulator.state import card_ca_public_keys, load_card_state

    cards = cli_context.home / "cards"
    if sandbox:
        keys = card_ca_public_keys(cards)
    else:
        own = load_card_state(cards, reader.removeprefix(VIRTUAL_PREFIX)).card_ca_public_key()
        keys = [own] if own is not None else []
    if not keys:
        return None
    return {key_id(CARD_CA_TEXT_KEY_NUMBER): keys, key_id(CARD_CA_VISUAL_KEY_NUMBER): keys}


@click.group()
def text() -> None:
    """Text AP (券面事項入力補助AP): My Number and basic-4 information."""


@text.command()
@credential_option(("pin", "a"))
@pin_stdin_option
@force_option
@click.pass_context
def mynumber(ctx: click.Context, credential: str, pin_stdin: bool, force: bool) -> None:
    """Print the My Number (個人番号). Needs the text PIN or check code A."""
    session = open_text_ap(ctx, credential, pin_stdin=pin_stdin, force=force)
    number = session.my_number()
    emit(ctx, {"my_number": number}, number)


@text.command("basic-info")
@credential_option(("pin", "b"))
@pin_stdin_option
@force_option
@click.pass_context
def basic_info(ctx: click.Context, credential: str, pin_stdin: bool, force: bool) -> None:
    """Print the basic-4 information (基本4情報). Needs the text PIN or check code B."""
    session = open_text_ap(ctx, credential, pin_stdin=pin_stdin, force=force)
    emit(ctx, basic_info_dict(session.basic_info()))


# jpki/myna calls it `text attrs` (§10.1, §11.9): the same command under that name.
text.add_command(basic_info, "attrs")


@text.command()
@click.pass_context
def info(ctx: click.Context) -> None:
    """Text AP basic info (EF 0005) and its CV certificate's key ids; no PIN needed."""
    session = TextAp(get_context(ctx).protocol())
    basic = session.ap_basic_info()
    certificate = session.ap_certificate()
    emit(
        ctx,
        {
            **basic.to_dict(),
            "certificate_issuer_key_id": certificate.issuer_key_id.hex().upper(),
            "certificate_subject_key_id": certificate.subject_key_id.hex().upper(),
        },
    )


@text.command()
@credential_option(("pin", "a", "b"))
@sandbox_card_ca_option
@pin_stdin_option
@force_option
@click.pass_context
def verify(
    ctx: click.Context, credential: str, sandbox: bool, pin_stdin: bool, force: bool
) -> None:
    """Check the integrity record (EF 0003): the digests of the My Number and basic-4 files,
    the AP's signature, and the CV certificate's chain where the card-CA key is known."""
    session = open_text_ap(ctx, credential, pin_stdin=pin_stdin, force=force)
    check = session.verify_integrity(
        trusted_card_ca=sandbox_card_ca_keys(get_context(ctx), sandbox=sandbox)
    )
    lines = [
        f"signature: {'valid' if check.signature_valid else 'INVALID'}",
        f"My Number digest: {_checked(check.my_number_digest_matches)}",
        f"basic-4 digest: {_checked(check.basic_info_digest_matches)}",
        f"chain: {check.note}",
    ]
    emit(ctx, check.to_dict(), "\n".join(lines))
    if not check.ok:
        raise VerificationError("the text AP's integrity record does not verify")


def _checked(matches: bool | None) -> str:
    if matches is None:
        return "not checked (the credential does not open that file)"
    return "matches" if matches else "DOES NOT MATCH"
