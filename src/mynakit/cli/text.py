"""``mynakit text``: the text AP (券面事項入力補助AP) — My Number, basic-4 information, AP basic
info and the integrity record (docs/card.md §6.2-§6.6, §7.9-§7.10).

The credential is the text PIN by default; ``--credential a`` uses check code A (the My Number)
and ``--credential b`` check code B, each opening what docs/card.md §4 says it opens.
"""

from __future__ import annotations

import click

from mynakit.card.text import TextAp
from mynakit.cli.context import get_context
from mynakit.cli.util import (
    CREDENTIAL_KEYS,
    VerificationFailedError,
    credential_option,
    emit,
    force_option,
    pin_stdin_option,
    sandbox_card_ca_option,
    verify_from_user,
)
from mynakit.personal import BasicInfo, EraDate


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


# jpki/myna calls it `text attrs` (docs/card.md §10.1, §11): the same command under that name.
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
        trusted_card_ca=get_context(ctx).trusted_card_ca_keys(sandbox=sandbox)
    )
    lines = [
        f"signature: {'valid' if check.signature_valid else 'INVALID'}",
        f"My Number digest: {_checked(check.my_number_digest_matches)}",
        f"basic-4 digest: {_checked(check.basic_info_digest_matches)}",
        f"chain: {check.note}",
    ]
    if not check.ok:
        raise VerificationFailedError(
            "the text AP's integrity record does NOT verify: " + "; ".join(lines),
            result=check.to_dict(),
        )
    emit(ctx, check.to_dict(), "\n".join(lines))


def _checked(matches: bool | None) -> str:
    if matches is None:
        return "not checked (the credential does not open that file)"
    return "matches" if matches else "DOES NOT MATCH"
