"""HTTP client of the issuer link, as the sandbox issuer serves it beside its OCSP responder:

GET <base>/serial-link/<serial>   200 {"serial", "previous_serial"} | 403 no consent | 404
GET <base>/status/<serial>        200 {"serial", "state", "reason", "revocation_time"}
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx

from mynakit.services.issuer_link import IssuerLinkError, SerialLinkConsentError, SerialStatus

DEFAULT_TIMEOUT = 5.0


class HttpIssuerLink:
    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport)

    def previous_serial(self, serial: int) -> int | None:
        body = self._get(f"/serial-link/{serial}", serial)
        previous = body.get("previous_serial")
        if previous is None:
            return None
        if not isinstance(previous, int):
            raise IssuerLinkError("the issuer's serial link answer is malformed")
        return previous

    def status(self, serial: int) -> SerialStatus:
        body = self._get(f"/status/{serial}", serial)
        state = body.get("state")
        if state not in ("good", "revoked", "unknown"):
            raise IssuerLinkError("the issuer's status answer is malformed")
        when = body.get("revocation_time")
        return SerialStatus(
            serial=serial,
            state=state,
            reason=body.get("reason"),
            revoked_at=dt.datetime.fromisoformat(when) if isinstance(when, str) else None,
        )

    def close(self) -> None:
        self._client.close()

    def _get(self, path: str, serial: int) -> dict[str, Any]:
        try:
            response = self._client.get(path)
        except httpx.HTTPError as error:
            raise IssuerLinkError(f"cannot reach the issuer at {self.base_url}: {error}") from error
        if response.status_code == 403:
            raise SerialLinkConsentError(
                f"the issuer links certificate {serial} to no earlier serial: the holder did "
                "not consent to the serial link"
            )
        if response.status_code == 404:
            return {"serial": serial, "previous_serial": None, "state": "unknown"}
        if response.status_code != 200:
            raise IssuerLinkError(f"the issuer answered HTTP {response.status_code} for {path}")
        try:
            body = response.json()
        except ValueError as error:
            raise IssuerLinkError(f"the issuer's answer for {path} is not JSON") from error
        if not isinstance(body, dict):
            raise IssuerLinkError(f"the issuer's answer for {path} is not an object")
        return body
