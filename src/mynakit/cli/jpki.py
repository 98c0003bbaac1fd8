"""``mynakit jpki``: the JPKI AP and the relying side. Each subcommand lives in its own module
and is imported only when used."""

from __future__ import annotations

from mynakit.cli.util import lazy_group

JPKI_COMMANDS: dict[str, tuple[str, str, str]] = {
    "cert": ("mynakit.cli.jpki_cert", "cert", "Read a certificate (auth, sign, auth_ca, sign_ca)."),
    "pkey": ("mynakit.cli.jpki_cert", "pkey", "Raw signatures with the auth or sign key."),
    "cms": ("mynakit.cli.jpki_cms", "cms", "CMS SignedData: sign with the card, verify."),
    "pdf": ("mynakit.cli.jpki_pdf", "pdf", "PDF (PAdES): sign with the card, verify."),
    "auth": ("mynakit.cli.jpki_auth", "auth", "Challenge-response authentication (sandbox)."),
    "verify-cert": (
        "mynakit.cli.jpki_auth",
        "verify_cert",
        "Validate a certificate: chain, validity, revocation.",
    ),
}


@lazy_group(JPKI_COMMANDS)
def jpki() -> None:
    """JPKI AP (公的個人認証AP): certificates, signatures, authentication."""
