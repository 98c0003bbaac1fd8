"""``openssl cms -verify``: the independent check that mynakit's CMS signatures interoperate."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def openssl_cms_verify(
    signature: Path,
    root: bytes,
    tmp_path: Path,
    content: Path | None = None,
    *,
    pem: bool = False,
    any_purpose: bool = False,
) -> subprocess.CompletedProcess[bytes]:
    """``openssl cms -verify`` with the sandbox root as the only CA.

    Flags: ``-binary`` keeps the content byte-exact (no MIME canonicalisation of line ends);
    ``-content`` supplies the data of a detached signature. A signature certificate passes
    OpenSSL's default S/MIME purpose check as it is; an authentication certificate needs
    ``-purpose any``, because it carries the clientAuth EKU (docs/card.md §9.1) and OpenSSL's
    S/MIME purpose then demands emailProtection.
    """
    openssl = shutil.which("openssl")
    # tools/setup.sh installs openssl: its absence is a broken set-up, not a reason to skip.
    assert openssl is not None, "the openssl command is missing: run tools/setup.sh"
    root_file = tmp_path / "root.pem"
    root_file.write_bytes(root)
    command = [
        openssl,
        "cms",
        "-verify",
        "-CAfile",
        str(root_file),
        *(["-purpose", "any"] if any_purpose else []),
        "-binary",
        "-inform",
        "PEM" if pem else "DER",
        "-in",
        str(signature),
        "-out",
        str(tmp_path / "verified.out"),
    ]
    if content is not None:
        command += ["-content", str(content)]
    return subprocess.run(command, capture_output=True, check=False, timeout=30)
