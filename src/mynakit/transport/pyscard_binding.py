"""pyscard's PC/SC binding, loaded without the rest of pyscard.

mynakit calls PC/SC through pyscard's compiled extension ``smartcard.scard._scard`` (the
``SCard*`` functions and ``SCARD_*`` constants). The usual import,
``from smartcard import scard``, first runs ``smartcard/__init__.py`` (which imports pyscard's
object layer: sessions, reader factories, observers, threading) and the generated wrapper
``smartcard/scard/scard.py`` (which imports ``typing`` and wraps each function in a Python
function that only forwards its arguments). On a one-shot CLI command that is several
milliseconds of a run OpenSC's C tools finish in about twenty (docs/architecture.md §10), so
the extension is loaded from its file by the standard library's documented recipe
(``importlib.util.spec_from_file_location``) and registered under its own name, where the
wrapper finds it if something imports the wrapper later.

If pyscard is laid out differently (another version, a zip, a frozen build) or the direct load
fails, the usual import is used: slower, never different. ``tests/unit/test_pyscard_binding.py``
checks that the direct binding offers every name ``transport/pcsc.py`` and
``transport/readers.py`` use, with the wrapper's values.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # mypy treats this name as True (no ``typing`` import at run time)
if TYPE_CHECKING:
    from types import ModuleType

EXTENSION_NAME = "smartcard.scard._scard"
WRAPPER_NAME = "smartcard.scard"


def load_binding() -> ModuleType:
    """The module holding pyscard's ``SCard*`` functions and ``SCARD_*`` constants."""
    for name in (WRAPPER_NAME, EXTENSION_NAME):
        # Whatever is already loaded costs nothing more; both offer the same names.
        loaded = sys.modules.get(name)
        if loaded is not None:
            return loaded
    try:
        return _load_extension_alone()
    except (ImportError, OSError):
        from smartcard import scard as wrapper  # untyped: annotated as the module it is

        module: ModuleType = wrapper
        return module


def _load_extension_alone() -> ModuleType:
    import importlib.machinery
    import importlib.util

    package = importlib.machinery.PathFinder.find_spec("smartcard")
    locations = package.submodule_search_locations if package is not None else None
    for location in locations or ():
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = os.path.join(location, "scard", f"_scard{suffix}")
            if not os.path.isfile(path):
                continue
            spec = importlib.util.spec_from_file_location(EXTENSION_NAME, path)
            if spec is None or spec.loader is None:
                break
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            sys.modules[EXTENSION_NAME] = module
            return module
    raise ImportError(f"no {EXTENSION_NAME} extension found beside pyscard")


#: The binding every PC/SC call goes through.
scard = load_binding()
