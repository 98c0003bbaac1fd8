"""``mynakit visual``: the visual AP (券面事項確認AP) — the card face as images and text
(docs/card.md §6.8, §6.9, §7.11).

The card face opens with check code A or B. By default, as jpki/myna does, the text PIN reads
the My Number from the text AP, which then serves as check code A (docs/card.md §4);
``--credential a`` or ``b`` asks for a check code directly.
"""

from __future__ import annotations

import click

from mynakit.card.text import TextAp
from mynakit.card.visual import CardFace, VisualAp, image_format
from mynakit.cli.context import get_context
from mynakit.cli.util import (
    check_output,
    credential_option,
    emit,
    force_option,
    pin_stdin_option,
    read_secret,
    sandbox_card_ca_option,
    verify_from_user,
    write_into_directory,
    write_output,
)
from mynakit.personal import EraDate

visual_credential_option = credential_option(
    ("pin", "a", "b"), pin_means="the text PIN, to read the My Number as check code A"
)
output_option = click.option(
    "-o", "--output", required=True, help="Write the image to FILE, or - for standard output."
)


def read_face(
    ctx: click.Context, credential: str, *, pin_stdin: bool, force: bool
) -> tuple[VisualAp, CardFace]:
    protocol = get_context(ctx).protocol()
    if credential == "pin":
        text_session = TextAp(protocol)
        verify_from_user(text_session, "text_pin", from_stdin=pin_stdin, force=force)
        code = text_session.my_number()
        # Selecting the visual AP drops the text PIN's verified state (docs/card.md §12).
        session = VisualAp(protocol)
        return session, session.entries(code, force=force)
    key_name = "check_code_a" if credential == "a" else "check_code_b"
    session = VisualAp(protocol)
    secret = read_secret(key_name, session.application.key(key_name).label, from_stdin=pin_stdin)
    session.unlock(secret, key=key_name, force=force)
    return session, session.entries()


@click.group()
def visual() -> None:
    """Visual AP (券面事項確認AP): card face entries and photo."""


@visual.command()
@click.pass_context
def info(ctx: click.Context) -> None:
    """Visual AP basic info (EF 0003): AP id, version, municipality code; no PIN needed."""
    emit(ctx, VisualAp(get_context(ctx).protocol()).ap_basic_info().to_dict())


@visual.command()
@visual_credential_option
@click.option(
    "-o",
    "--output",
    "directory",
    type=click.Path(file_okay=False),
    help="Also save every image into this directory.",
)
@sandbox_card_ca_option
@pin_stdin_option
@force_option
@click.pass_context
def entries(
    ctx: click.Context,
    credential: str,
    directory: str | None,
    sandbox: bool,
    pin_stdin: bool,
    force: bool,
) -> None:
    """Every card-face entry, and whether the face signature (DF28) verifies."""
    session, face = read_face(ctx, credential, pin_stdin=pin_stdin, force=force)
    check = session.verify_face_signature(
        face, trusted_card_ca=get_context(ctx).trusted_card_ca_keys(sandbox=sandbox)
    )
    images = {
        "name.png": face.name_image,
        "address.png": face.address_image,
        "photo.jp2": face.photo,
        "security_code.png": face.security_code_image,
    }
    data: dict[str, object] = {
        "birth_date": face.birth_date.isoformat(),
        "birth_date_era": str(EraDate.from_date(face.birth_date)),
        "sex": face.sex.value,
        "expiry_date": face.expiry_date.isoformat(),
        "images": {
            name: {"format": image_format(content), "bytes": len(content)}
            for name, content in images.items()
        },
        "signature": check.to_dict(),
    }
    if directory is not None:
        # The card face is personal data: a 0700 folder of 0600 files.
        write_into_directory(ctx, directory, images, private=True)
        data["written"] = directory
    emit(ctx, data)


def _image_command(name: str, attribute: str, what: str) -> click.Command:
    @click.command(name, help=f"Write the {what} to FILE (or - for stdout).")
    @visual_credential_option
    @output_option
    @pin_stdin_option
    @force_option
    @click.pass_context
    def command(
        ctx: click.Context, credential: str, output: str, pin_stdin: bool, force: bool
    ) -> None:
        check_output(ctx, output)
        _, face = read_face(ctx, credential, pin_stdin=pin_stdin, force=force)
        content: bytes = getattr(face, attribute)
        write_output(ctx, output, content, private=True)  # the card face: personal data
        if output != "-":
            emit(ctx, {"written": output, "format": image_format(content), "bytes": len(content)})

    return command


visual.add_command(_image_command("name", "name_image", "name image (PNG)"))
visual.add_command(_image_command("address", "address_image", "address image (PNG)"))
visual.add_command(_image_command("photo", "photo", "face photo (JPEG 2000, .jp2)"))
visual.add_command(
    _image_command("security-code", "security_code_image", "security code image (PNG)")
)
# jpki/myna's name for the address image (docs/card.md §10.1).
visual.add_command(_image_command("addr", "address_image", "address image (PNG)"))


@visual.command()
@visual_credential_option
@pin_stdin_option
@force_option
@click.pass_context
def birth(ctx: click.Context, credential: str, pin_stdin: bool, force: bool) -> None:
    """The birth date on the card face (DF22)."""
    _, face = read_face(ctx, credential, pin_stdin=pin_stdin, force=force)
    era = str(EraDate.from_date(face.birth_date))
    emit(
        ctx,
        {"birth_date": face.birth_date.isoformat(), "birth_date_era": era},
        f"{face.birth_date.isoformat()} ({era})",
    )


@visual.command()
@visual_credential_option
@pin_stdin_option
@force_option
@click.pass_context
def sex(ctx: click.Context, credential: str, pin_stdin: bool, force: bool) -> None:
    """The sex on the card face (DF23)."""
    _, face = read_face(ctx, credential, pin_stdin=pin_stdin, force=force)
    emit(ctx, {"sex": face.sex.value}, face.sex.value)
