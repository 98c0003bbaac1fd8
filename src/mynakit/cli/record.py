"""``mynakit record``: the standard read-out of the card, written as a privacy-safe transcript.

Every AP is read; what a PIN guards is read only with the PINs the holder chooses to give
(``--with auth,sign,text``; each from its environment variable, stdin or a hidden prompt). The
transcript keeps status words, lengths, timings and the ATR, and replaces every personal item
with a generated persona's and removes every secret, so it can go into a bug report; ``mynakit
emulator create NAME --from-transcript FILE`` turns it back into a card.
"""

from __future__ import annotations

from pathlib import Path

import click

from mynakit.cli.context import get_context
from mynakit.cli.util import check_output, emit, note, pin_stdin_option, read_secret

# --with names -> (ReadoutSecrets field, key name for read_secret)
GIVABLE = {
    "auth": ("auth_pin", "auth_pin", "user-authentication PIN"),
    "sign": ("sign_password", "sign_password", "signature password"),
    "text": ("text_pin", "text_pin", "text PIN"),
}


@click.command()
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Transcript file to write (JSON).",
)
@click.option(
    "--with",
    "with_pins",
    default="",
    metavar="auth,sign,text",
    help="PINs you give to read what they guard (none by default).",
)
@click.option("--seed", default=None, help="Seed of the replacement persona.")
@pin_stdin_option
@click.pass_context
def record(
    ctx: click.Context, output: Path, with_pins: str, seed: str | None, pin_stdin: bool
) -> None:
    """Read the whole card and write a redacted transcript (no personal data, no PINs)."""
    from mynakit.card.readout import ReadoutSecrets, standard_readout
    from mynakit.emulator.issuer import SandboxIssuer
    from mynakit.emulator.state import default_issuer_directory
    from mynakit.emulator.transcripts import (
        RecordingConnection,
        make_transcript,
        persona_card_state,
        record_to_file,
    )
    from mynakit.errors import UsageError
    from mynakit.profiles import load_profile
    from mynakit.transport.limits import protocol_for

    wanted = [name.strip() for name in with_pins.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in GIVABLE]
    if unknown:
        raise UsageError(f"--with takes {', '.join(GIVABLE)}, not {', '.join(unknown)}")
    if output.exists():
        raise UsageError(f"{output} exists: choose another file, nothing was read")
    check_output(ctx, output)  # a missing folder is refused before the card is read
    given: dict[str, str] = {}
    for name in wanted:
        field_name, key_name, label = GIVABLE[name]
        given[field_name] = read_secret(key_name, label, from_stdin=pin_stdin)
    cli_context = get_context(ctx)
    recording = RecordingConnection(cli_context.connection())
    readout = standard_readout(protocol_for(recording), ReadoutSecrets(**given), progress=note)
    given.clear()  # the PINs are not needed any more
    note("Replacing personal data with a generated persona's...")
    profile = load_profile()
    issuer = SandboxIssuer.open_or_create(default_issuer_directory(cli_context.home / "cards"))
    transcript = make_transcript(
        recording.exchanges,
        atr=recording.atr,
        profile=profile,
        persona_state=persona_card_state(profile, issuer, seed),
    )
    record_to_file(transcript, output)
    emit(
        ctx,
        {
            "transcript": str(output),
            "exchanges": len(transcript["exchanges"]),
            "files": readout.files,
            "skipped": readout.skipped,
        },
        f"wrote {output}: {len(transcript['exchanges'])} exchanges, "
        f"{len(readout.files)} files (personal data replaced, PINs removed)",
    )
