"""pytest fixtures for the in-process virtual card (entry point ``mynakit`` in pyproject.toml).

Any project that installs mynakit gets them::

    def test_reads_token(virtual_card_connection):
        ...

The persona and its keys are built once per session (RSA key generation is the slow part); each
test gets a fresh ``VirtualCard`` over a fork of that state, so PIN counters never leak between
tests. Imports are inside the fixtures so that loading the plugin costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from mynakit.emulator.card_os import VirtualCard
    from mynakit.emulator.issuer import SandboxIssuer
    from mynakit.emulator.personas import Persona
    from mynakit.emulator.state import CardState
    from mynakit.transport.in_process import InProcessConnection

# The persona of the session card: fixed, so a failing test can be replayed.
SESSION_PERSONA_SEED = "mynakit-pytest"


@pytest.fixture(scope="session")
def sandbox_issuer(tmp_path_factory: pytest.TempPathFactory) -> SandboxIssuer:
    """A sandbox issuer (CAs, CRL, OCSP) in a temporary directory, shared by the session."""
    from mynakit.emulator.issuer import SandboxIssuer

    return SandboxIssuer.create(tmp_path_factory.mktemp("sandbox-issuer"))


@pytest.fixture(scope="session")
def virtual_card_template(sandbox_issuer: SandboxIssuer) -> CardState:
    """The session's card state (keys, certificates, files); tests use forks of it."""
    from mynakit.emulator.personas import generate_persona
    from mynakit.emulator.state import build_card_state
    from mynakit.profiles import load_profile

    return build_card_state(
        load_profile(), generate_persona(SESSION_PERSONA_SEED), sandbox_issuer, name="pytest"
    )


@pytest.fixture
def persona(virtual_card_template: CardState) -> Persona:
    """The holder of ``virtual_card``, with the PINs it was issued with."""
    return virtual_card_template.persona


@pytest.fixture
def make_virtual_card(
    virtual_card_template: CardState,
) -> Callable[..., VirtualCard]:
    """Build a fresh card over the session state, with faults or a changed profile:
    ``make_virtual_card(faults=Faults(t0=True), profile=with_choices(...))``."""
    from mynakit.emulator.card_os import VirtualCard

    def make(**options: Any) -> VirtualCard:
        profile = options.pop("profile", None) or virtual_card_template.card_profile()
        return VirtualCard(profile, virtual_card_template.fork(), **options)

    return make


@pytest.fixture
def virtual_card(make_virtual_card: Callable[..., VirtualCard]) -> VirtualCard:
    """A fresh in-process virtual My Number card, powered up, counters at their maximum."""
    return make_virtual_card()


@pytest.fixture
def virtual_card_connection(virtual_card: VirtualCard) -> Iterator[InProcessConnection]:
    """An ``InProcessConnection`` to ``virtual_card``."""
    from mynakit.transport.in_process import InProcessConnection

    connection = InProcessConnection(virtual_card)
    yield connection
    connection.close()
