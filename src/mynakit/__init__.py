"""mynakit: a toolkit for the Japanese My Number card (個人番号カード).

Layers, from the bottom: ``iso7816`` (bytes), ``transport`` (PC/SC and the in-process virtual
card), ``card`` (one session per card application), ``jpki`` (the relying side), ``emulator``
(virtual card and sandbox issuer), ``cli``. Imports stay lazy so that ``mynakit --help`` is fast.
"""

from __future__ import annotations

from mynakit.errors import MynakitError

__all__ = ["MynakitError", "__version__"]
__version__ = "0.1.0"
