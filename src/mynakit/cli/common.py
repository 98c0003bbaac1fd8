"""``mynakit common``: the common AP (共通カードAP) — card serial, municipality code and
expiry, read with no credential (docs/card.md §6.11, §7.14)."""

from __future__ import annotations

import click

from mynakit.card.common import CommonAp
from mynakit.cli.context import get_context
from mynakit.cli.util import emit


@click.group()
def common() -> None:
    """Common AP (共通カードAP): card serial, municipality, expiry."""


@common.command()
@click.pass_context
def info(ctx: click.Context) -> None:
    """Card serial, municipality code and expiry date (record 1 of EF 0001)."""
    emit(ctx, CommonAp(get_context(ctx).protocol()).card_info().to_dict())


@common.command()
@click.pass_context
def manufacture(ctx: click.Context) -> None:
    """jpki/myna's "manufacture number" (`unknown manufacture`): serial characters 2..15."""
    number = CommonAp(get_context(ctx).protocol()).card_info().manufacture_number
    emit(ctx, {"manufacture_number": number}, number)
