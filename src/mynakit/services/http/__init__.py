"""FastAPI pieces every service app shares: the app factory with JSON error mapping, the
relying-service credentials dependency, documented error responses, uvicorn serving.

Errors: a :class:`mynakit.services.errors.ServiceError` answers its ``status`` with
``{"error": code, "message": text}``; JPKI authentication failures answer 401 (nonce, signature)
or 403 (certificate refused, with the reason, e.g. ``revoked``); other expected failures 422.
Unexpected exceptions are logged without the request body (it may hold a credential) and
answer 500.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ValidationError

from mynakit.errors import DataError, MynakitError, UsageError
from mynakit.jpki.authentication import AuthenticationError, CertificateRejectedError
from mynakit.services.auth import ServiceClient
from mynakit.services.auth.store import CredentialStore
from mynakit.services.errors import ServiceError

logger = logging.getLogger(__name__)


class ErrorBody(BaseModel):
    error: str
    message: str


_DESCRIPTIONS = {
    400: "Bad request",
    401: "Missing or refused credentials, or a refused card authentication",
    403: "Not allowed for this caller (or the certificate was refused)",
    404: "Not found",
    409: "Conflict",
    422: "Invalid request",
    503: "The issuer could not be asked",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for a route's error statuses (all with :class:`ErrorBody`)."""
    chosen = statuses or tuple(_DESCRIPTIONS)
    return {
        status: {"model": ErrorBody, "description": _DESCRIPTIONS.get(status, "Error")}
        for status in chosen
    }


def error_status(error: MynakitError) -> tuple[int, str]:
    """HTTP status and stable code of an expected failure."""
    if isinstance(error, ServiceError):
        return error.status, error.code
    if isinstance(error, CertificateRejectedError):
        return 403, f"certificate_{error.reason.value}"
    if isinstance(error, AuthenticationError):
        return 401, _snake(type(error).__name__.removesuffix("Error"))
    if isinstance(error, UsageError | DataError):
        return 422, "invalid_request"
    return 400, "refused"


# Threads per server process that run the blocking (database) handlers of the routes that are
# not async (the hot routes submit to a GroupCommit, which has threads of its own). Enough for
# several transactions to wait on their commits at once (PostgreSQL flushes concurrent commits
# together), few enough that the threads do not spend the CPU handing the GIL to each other.
# Overridable by MYNAKIT_SERVICE_THREADS; tools/bench/README.md has the measurements.
DEFAULT_HANDLER_THREADS = 4


@dataclass(frozen=True)
class DirectRequest:
    """What a direct route sees of a request: its headers (names in lower case) and body."""

    headers: dict[str, str]
    body: bytes

    def bearer(self) -> str | None:
        """The ``Authorization: Bearer`` token, None when there is none."""
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        token = token.strip()
        return token if scheme.lower() == "bearer" and token else None

    @property
    def is_json(self) -> bool:
        media_type = self.headers.get("content-type", "").partition(";")[0].strip().lower()
        return media_type == "application/json"


# A direct route answers with the JSON body of a 200, or None: "not mine, let FastAPI answer"
# (FastAPI then gives its own answer to whatever was unusual: a validation error, a missing
# credential). Expected failures raise a MynakitError, answered as the app's handler does.
DirectHandler = Callable[[DirectRequest], Awaitable[bytes | None]]
BodyT = TypeVar("BodyT", bound=BaseModel)
# Bodies larger than this are left to FastAPI (and its own body limit).
DIRECT_BODY_LIMIT = 64 * 1024


class ServiceApp(FastAPI):
    """A FastAPI app whose hottest routes can also be served directly.

    A direct route (:meth:`direct_route`) is a documented FastAPI route too, with the same
    request and response models, so the OpenAPI schema is unchanged; the direct handler serves
    the well-formed requests without the middleware stack, routing, dependency solving and
    response re-validation (tools/bench/README.md, bench_mykey.py: about a third of a worker's
    CPU per request), and hands anything else to FastAPI with the body it read.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._direct: dict[tuple[str, str], DirectHandler] = {}

    def direct_route(self, method: str, path: str, handler: DirectHandler) -> None:
        self._direct[(method.upper(), path)] = handler

    def direct_json_post(
        self,
        path: str,
        model: type[BodyT],
        authenticate: Callable[[str], ServiceClient],
        answer: Callable[[ServiceClient, BodyT], Awaitable[bytes]],
    ) -> None:
        """A direct ``POST`` route for a JSON body of ``model`` from a bearer-authenticated
        client; anything unusual (no bearer credential, not JSON, a body that does not
        validate) is left to the documented FastAPI route, which answers it."""

        async def handler(request: DirectRequest) -> bytes | None:
            credential = request.bearer()
            if credential is None or not request.is_json:
                return None
            try:
                body = model.model_validate_json(request.body)
            except ValidationError:
                return None
            return await answer(authenticate(credential), body)

        self.direct_route("POST", path, handler)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self._direct:
            handler = self._direct.get((scope["method"], scope["path"]))
            if handler is not None:
                await self._serve_direct(handler, scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    async def _serve_direct(
        self, handler: DirectHandler, scope: Any, receive: Any, send: Any
    ) -> None:
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            more = message.get("more_body", False)
            if size > DIRECT_BODY_LIMIT:
                break
        body = b"".join(chunks)
        answer: bytes | None = None
        status = 200
        if not more:
            headers = {
                name.decode("latin-1").lower(): value.decode("latin-1")
                for name, value in scope["headers"]
            }
            try:
                answer = await handler(DirectRequest(headers, body))
            except Exception as error:
                status, answer = _failure(error, scope["method"], scope["path"])
        if answer is None:
            await super().__call__(scope, _replaying(body, more, receive), send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(answer)).encode("ascii")),
                ],
            }
        )
        await send({"type": "http.response.body", "body": answer})


def _replaying(body: bytes, more: bool, receive: Any) -> Callable[[], Awaitable[Any]]:
    """A ``receive`` that gives the body already read first, then the rest from ``receive``."""
    pending = [{"type": "http.request", "body": body, "more_body": more}]

    async def replay() -> Any:
        if pending:
            return pending.pop()
        return await receive()

    return replay


def _error_body(code: str, message: str) -> bytes:
    return json_bytes({"error": code, "message": message})


def _failure(error: Exception, method: str, path: str) -> tuple[int, bytes]:
    """The status and body that answer a failed request: an expected failure (a
    :class:`MynakitError`) with its status and code, anything else 500 and logged."""
    if isinstance(error, MynakitError):
        status, code = error_status(error)
        return status, _error_body(code, str(error))
    # Never the request body: it may hold a credential.
    logger.error("unexpected %s on %s %s", type(error).__name__, method, path)
    return 500, _error_body("internal_error", "internal error")


def create_app(
    title: str,
    *,
    version: str = "1",
    description: str = "",
    on_shutdown: Sequence[Callable[[], None]] = (),
) -> ServiceApp:
    """A FastAPI app with the shared error mapping; ``on_shutdown`` runs when the server stops
    (after the last request), e.g. closing a :class:`~mynakit.services.group_commit.GroupCommit`.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        import anyio.to_thread

        # The routes that are not async run in this many threads per process.
        threads = int(os.environ.get("MYNAKIT_SERVICE_THREADS") or DEFAULT_HANDLER_THREADS)
        anyio.to_thread.current_default_thread_limiter().total_tokens = max(1, threads)
        try:
            yield
        finally:
            for close in on_shutdown:
                close()

    app = ServiceApp(title=title, version=version, description=description, lifespan=lifespan)

    # Both handlers answer as the direct routes do (one _failure for every route).
    @app.exception_handler(MynakitError)
    @app.exception_handler(Exception)
    async def failure(request: Request, error: Exception) -> Response:
        status, body = _failure(error, request.method, request.url.path)
        return json_response_bytes(body, status)

    return app


_bearer = HTTPBearer(auto_error=False, description="Service credential: <client id>.<secret>")


def json_bytes(payload: dict[str, Any]) -> bytes:
    """``payload`` as compact UTF-8 JSON (as FastAPI's JSON responses are written)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def json_response_bytes(body: bytes, status_code: int = 200) -> Response:
    """JSON bytes returned as they are: a route that already built exactly its documented
    response model's fields skips FastAPI's re-validation and serialisation (the route keeps
    its ``response_model``, so the OpenAPI schema is unchanged)."""
    return Response(body, status_code=status_code, media_type="application/json")


def service_client_dependency(
    store: CredentialStore,
) -> Callable[..., Awaitable[ServiceClient]]:
    """A FastAPI dependency returning the authenticated relying service (401 otherwise)."""

    # async: the check runs on the event loop instead of a threadpool hop of its own. It reads
    # the credential row from the store's short cache (CREDENTIAL_CACHE_SECONDS); on a miss
    # one primary-key read blocks the loop briefly, once per client and bound.
    async def authenticated(
        credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),  # noqa: B008
    ) -> ServiceClient:
        return store.authenticate(credentials.credentials if credentials is not None else None)

    return authenticated


# A worker that dies is replaced, unless workers died this many times within this window.
WORKER_RESTART_LIMIT = 5
WORKER_RESTART_WINDOW_SECONDS = 60.0


def serve_factory(
    factory: str,
    *,
    workers: int,
    host: str = "127.0.0.1",
    port: int = 8700,
    log_level: str = "info",
) -> None:
    """Run ``module:function`` (an app factory) in ``workers`` uvicorn worker processes.

    Each worker listens on a socket of its own bound with ``SO_REUSEPORT``, so the kernel
    spreads new connections over the workers (socket(7)). With one socket shared by all
    workers, the first worker to wake accepts every pending connection: a few long-lived
    keep-alive clients (counters, a load balancer) would all land on one process and leave the
    others idle. A worker that dies is replaced by a new one (its connections are lost, the
    other workers' are not); a worker that keeps dying (more than ``WORKER_RESTART_LIMIT``
    times within ``WORKER_RESTART_WINDOW_SECONDS``: a database that is gone, say) stops the
    server with an error instead of restarting it forever.
    """
    import multiprocessing
    import signal
    import socket
    from multiprocessing.connection import wait

    if not hasattr(socket, "SO_REUSEPORT"):  # not on Windows: uvicorn's shared socket
        import uvicorn

        uvicorn.run(
            factory,
            factory=True,
            workers=workers,
            host=host,
            port=port,
            log_level=log_level,
            access_log=False,
        )
        return
    context = multiprocessing.get_context("spawn")

    def new_worker(number: int) -> multiprocessing.process.BaseProcess:
        worker = context.Process(
            target=_serve_worker,
            args=(factory, host, port, log_level),
            name=f"mynakit-worker-{number}",
        )
        worker.start()
        return worker

    processes: list[multiprocessing.process.BaseProcess] = []
    restarts: list[float] = []
    stopping = False

    def stop(signal_number: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for process in processes:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)

    previous = {
        signal_number: signal.signal(signal_number, stop)
        for signal_number in (signal.SIGINT, signal.SIGTERM)
    }
    failed = False
    try:
        processes.extend(new_worker(number) for number in range(workers))
        while not stopping:
            wait([process.sentinel for process in processes], timeout=None)
            for number, process in enumerate(processes):
                if stopping or process.is_alive():
                    continue
                now = time.monotonic()
                restarts[:] = [
                    moment for moment in restarts if now - moment < WORKER_RESTART_WINDOW_SECONDS
                ]
                if len(restarts) >= WORKER_RESTART_LIMIT:
                    logger.error("workers keep stopping; stopping the server")
                    failed = True
                    stop(signal.SIGTERM, None)
                    break
                logger.error(
                    "worker %d stopped (exit code %s); starting a new one", number, process.exitcode
                )
                restarts.append(now)
                processes[number] = new_worker(number)
        for process in processes:
            process.join()
    finally:
        for signal_number, handler in previous.items():
            signal.signal(signal_number, handler)
    if failed:
        raise UsageError(f"the workers of the server on {host}:{port} keep stopping (see the log)")


def _serve_worker(factory: str, host: str, port: int, log_level: str) -> None:
    """One worker process of :func:`serve_factory`: its own listening socket, one uvicorn."""
    import socket

    import uvicorn

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.bind((host, port))
    listener.set_inheritable(True)
    config = uvicorn.Config(
        factory, factory=True, host=host, port=port, log_level=log_level, access_log=False
    )
    uvicorn.Server(config).run(sockets=[listener])


def serve(
    app: FastAPI, *, host: str = "127.0.0.1", port: int = 8700, log_level: str = "info"
) -> None:
    """Run ``app`` with uvicorn until interrupted (one process; run more behind a balancer)."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)


def _snake(name: str) -> str:
    out = [f"_{c.lower()}" if c.isupper() else c for c in name]
    return "".join(out).lstrip("_")
