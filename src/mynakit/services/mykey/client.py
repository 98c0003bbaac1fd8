"""The MyKey platform's HTTP client and the card's part of each call, for the CLI, counter
software and tests. Any ``httpx.Client`` may be passed (a FastAPI ``TestClient`` is one)."""

from __future__ import annotations

import base64
from typing import Any

import httpx

from mynakit.card.jpki import JpkiAp
from mynakit.card.presence import PresenceProof, prove_presence
from mynakit.card.visual import VisualAp
from mynakit.iso7816.protocol import ApduProtocol
from mynakit.jpki.authentication import Challenge, ChallengeResponse, card_respond
from mynakit.services.errors import InvalidRequestError, UpstreamError, error_for_status

DEFAULT_TIMEOUT = 30.0


class MyKeyClient:
    def __init__(
        self,
        base_url: str | None = None,
        *,
        http: httpx.Client | None = None,
        credential: str | None = None,
        admin_token: str | None = None,
    ) -> None:
        if http is None:
            if base_url is None:
                raise InvalidRequestError("give the platform's URL")
            http = httpx.Client(base_url=base_url, timeout=DEFAULT_TIMEOUT)
        self._http = http
        self._credential = credential
        self._admin_token = admin_token

    def close(self) -> None:
        self._http.close()

    def acting_as(
        self, *, credential: str | None = None, admin_token: str | None = None
    ) -> MyKeyClient:
        """Another client over the same connection with other (or no) credentials."""
        return MyKeyClient(http=self._http, credential=credential, admin_token=admin_token)

    # -- challenges ----------------------------------------------------------------------------

    def challenge(self) -> Challenge:
        return Challenge.from_dict(self._call("GET", "/v1/challenge"))

    def tap_challenge(self) -> Challenge:
        return Challenge.from_dict(self._call("GET", "/v1/tap/challenge"))

    # -- holders ------------------------------------------------------------------------------

    def register(
        self,
        authentication: ChallengeResponse,
        *,
        consent_serial_link: bool = True,
        presence: tuple[str, PresenceProof] | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "authentication": authentication.to_dict(),
            "consent_serial_link": consent_serial_link,
        }
        if presence is not None:
            body["presence"] = _presence_body(*presence)
        return self._call("POST", "/v1/holders/register", body)

    def show(self, authentication: ChallengeResponse) -> dict[str, Any]:
        return self._call("POST", "/v1/holders/me", {"authentication": authentication.to_dict()})

    def change(self, authentication: ChallengeResponse, new_id: str | None) -> dict[str, Any]:
        body = {"authentication": authentication.to_dict(), "new_id": new_id}
        return self._call("POST", "/v1/holders/me/change", body)

    def revoke(self, authentication: ChallengeResponse) -> dict[str, Any]:
        body = {"authentication": authentication.to_dict()}
        return self._call("POST", "/v1/holders/me/revoke", body)

    def unlink(self, authentication: ChallengeResponse, client_id: str) -> dict[str, Any]:
        body = {"authentication": authentication.to_dict(), "client_id": client_id}
        return self._call("POST", "/v1/holders/me/unlink", body)

    def history(self, authentication: ChallengeResponse) -> list[dict[str, Any]]:
        body = {"authentication": authentication.to_dict()}
        records: list[dict[str, Any]] = self._call("POST", "/v1/holders/me/history", body)[
            "records"
        ]
        return records

    # -- services -----------------------------------------------------------------------------

    def resolve(self, authentication: ChallengeResponse) -> dict[str, Any]:
        body = {"authentication": authentication.to_dict()}
        return self._call("POST", "/v1/services/resolve", body, service=True)

    def resolve_tap(
        self, certificate_der: bytes, challenge_id: str, proof: PresenceProof
    ) -> dict[str, Any]:
        body = {
            "certificate": base64.b64encode(certificate_der).decode("ascii"),
            "presence": _presence_body(challenge_id, proof),
        }
        return self._call("POST", "/v1/services/resolve-tap", body, service=True)

    def link(self, authentication: ChallengeResponse, service_user_id: str) -> dict[str, Any]:
        body = {"authentication": authentication.to_dict(), "service_user_id": service_user_id}
        return self._call("POST", "/v1/services/links", body, service=True)

    def service_links(self) -> list[dict[str, Any]]:
        links: list[dict[str, Any]] = self._call("GET", "/v1/services/links", service=True)["links"]
        return links

    def add_service(
        self, name: str, *, require_pin: bool = False, lifetime_days: int | None = None
    ) -> dict[str, Any]:
        body = {"name": name, "require_pin": require_pin, "lifetime_days": lifetime_days}
        return self._call("POST", "/v1/admin/services", body, admin=True)

    def verify_audit(self) -> dict[str, Any]:
        return self._call("GET", "/v1/admin/audit/verify", admin=True)

    # -- plumbing ------------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        service: bool = False,
        admin: bool = False,
    ) -> dict[str, Any]:
        headers = {}
        token = self._credential if service else self._admin_token if admin else None
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            response = self._http.request(method, path, json=body, headers=headers)
        except httpx.HTTPError as error:
            raise UpstreamError(f"cannot reach the MyKey platform: {error}") from error
        try:
            payload = response.json()
        except ValueError:
            payload = {}
        if response.status_code >= 400:
            message = payload.get("message") if isinstance(payload, dict) else None
            refusal = error_for_status(response.status_code, str(message or ""))
            if isinstance(payload, dict) and isinstance(payload.get("error"), str):
                refusal.code = payload["error"]
            raise refusal
        if not isinstance(payload, dict):
            raise UpstreamError("the MyKey platform's answer is not a JSON object")
        return payload


def _presence_body(challenge_id: str, proof: PresenceProof) -> dict[str, Any]:
    return {"challenge_id": challenge_id, **proof.to_dict()}


def card_authentication(jpki: JpkiAp, challenge: Challenge, pin: str) -> ChallengeResponse:
    """The card's PIN answer (auth key; the session checks the retry counter first)."""
    return card_respond(jpki, challenge, pin)


def card_tap(
    protocol: ApduProtocol, challenge: Challenge, birth_date_code: str
) -> tuple[bytes, PresenceProof]:
    """Tap mode on the card: the auth certificate read without PIN (JPKI AP), then the
    visual AP's presence proof; each session selects its AP when it is made."""
    certificate = JpkiAp(protocol).read_certificate("auth")
    return certificate, prove_presence(VisualAp(protocol), challenge.nonce, birth_date_code)
