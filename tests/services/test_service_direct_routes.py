"""The direct route of MyKey resolutions (``ServiceApp.direct_route``) answers exactly as the
FastAPI route it shortcuts: the same statuses and bodies for refused credentials, bodies that
do not validate, bad base64 and unknown challenges; a good request resolves."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mynakit.emulator.issuer import SandboxIssuer
from mynakit.services.http import ServiceApp
from support.mykey import CounterCard, RunningPlatform, new_card, running_platform

pytestmark = pytest.mark.services

PATH = "/v1/services/resolve"


@pytest.fixture(scope="module")
def cards_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mykey-direct-cards")


@pytest.fixture(scope="module")
def dana(cards_dir: Path, sandbox_issuer: SandboxIssuer) -> CounterCard:
    return new_card(cards_dir, sandbox_issuer, "dana")


@pytest.fixture
def platform(
    database_url: str, sandbox_issuer: SandboxIssuer, cards_dir: Path, dana: CounterCard
) -> Iterator[RunningPlatform]:
    with running_platform(database_url, sandbox_issuer, cards_dir) as running:
        yield running


def _answers(app: ServiceApp, requests: list[dict[str, Any]]) -> list[tuple[int, Any]]:
    client = TestClient(app)
    return [
        (reply.status_code, reply.json())
        for reply in (client.post(PATH, **request) for request in requests)
    ]


def test_direct_and_fastapi_routes_answer_alike(
    platform: RunningPlatform, dana: CounterCard
) -> None:
    holder = platform.holder
    holder.register(dana.pin(holder))
    credential = platform.admin.add_service("Direct library")["credential"]
    good = dana.pin(holder).to_dict()
    authorised = {"Authorization": f"Bearer {credential}"}
    requests: list[dict[str, Any]] = [
        {"json": {"authentication": good}},  # no credential
        {"json": {"authentication": good}, "headers": {"Authorization": "Basic abc"}},
        {"json": {"authentication": good}, "headers": {"Authorization": "Bearer x.y"}},
        {"json": {"authentication": {"challenge_id": "x"}}, "headers": authorised},
        {"json": {"wrong": 1}, "headers": authorised},
        {"content": b"{not json", "headers": {**authorised, "Content-Type": "application/json"}},
        {"content": b"text", "headers": {**authorised, "Content-Type": "text/plain"}},
        {"json": {"authentication": {**good, "signature": "***"}}, "headers": authorised},
        {"json": {"authentication": {**good, "challenge_id": "unknown"}}, "headers": authorised},
    ]
    app = platform.app
    assert isinstance(app, ServiceApp)
    direct = _answers(app, requests)
    saved = dict(app._direct)
    app._direct.clear()
    try:
        through_fastapi = _answers(app, requests)
    finally:
        app._direct.update(saved)
    assert direct == through_fastapi
    assert [status for status, _ in direct] == [401, 401, 401, 422, 422, 422, 422, 422, 401]

    status, resolution = _answers(app, [{"json": {"authentication": good}, "headers": authorised}])[
        0
    ]
    assert status == 200
    assert set(resolution) == {"service_user_id", "ppid", "assurance", "resolved_at"}
    assert resolution["assurance"] == "pin" and resolution["service_user_id"] is None
    # The answer used its nonce: the same body again is a replay, through either route.
    replay = _answers(app, [{"json": {"authentication": good}, "headers": authorised}])[0]
    assert replay == (401, {"error": "replayed_nonce", "message": replay[1]["message"]})
    assert base64.b64decode(good["certificate"])  # the body really carried a certificate
