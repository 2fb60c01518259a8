"""Per-request wiring: the session, the caller, and the domain services built from the Runtime.

Views call these helpers; they never build adapters themselves.
"""

from __future__ import annotations

import hmac
import secrets
import time

import flask
from sqlalchemy.orm import Session

from verify import abuse
from verify.domain.accounts import AccountService, CredentialCache, Principal
from verify.domain.checks import CheckService
from verify.domain.services import ServiceRegistry
from verify.domain.text import unstorable
from verify.domain.verifications import VerificationService
from verify.errors import Unauthenticated
from verify.idempotency import IdempotencyStore, StoredResponse, fingerprint
from verify.logs import request_id
from verify.runtime import Runtime


def runtime() -> Runtime:
    rt: Runtime = flask.current_app.extensions["verify"]
    return rt


def session() -> Session:
    if "db" not in flask.g:
        flask.g.db = runtime().sessions()
    db: Session = flask.g.db
    return db


def principal() -> Principal:
    p: Principal = flask.g.principal
    return p


def verifications() -> VerificationService:
    rt = runtime()
    return VerificationService(
        session(),
        clock=rt.clock,
        hasher=rt.hasher,
        sealer=rt.sealer,
        dispatcher=rt.dispatcher,
        limits=rt.settings.limits,
        services=rt.services,
        gate=send_gate(),
    )


def checks() -> CheckService:
    rt = runtime()
    return CheckService(
        session(),
        clock=rt.clock,
        hasher=rt.hasher,
        limits=rt.settings.limits,
        services=rt.services,
        gate=send_gate(),
    )


def send_gate() -> abuse.Gate:
    """The request's send gate (rate limits and fraud rules); its limits become RateLimit headers."""
    if "send_gate" not in flask.g:
        flask.g.send_gate = abuse.build_gate(runtime(), session())
    gate: abuse.Gate = flask.g.send_gate
    return gate


def client_ip() -> str | None:
    """The address the request came from: the peer, or with VERIFY_TRUSTED_PROXIES = N the address
    N hops from the right of X-Forwarded-For (what the nearest trusted proxy saw). Entries further
    left are the client's to write, so a forged header changes nothing."""
    hops = runtime().settings.trusted_proxies
    if hops:
        forwarded = [
            part.strip()
            for header in flask.request.headers.getlist("X-Forwarded-For")
            for part in header.split(",")
            if part.strip()
        ]
        if len(forwarded) >= hops:
            return forwarded[-hops]
    return flask.request.remote_addr


def rate_limit_headers(response: flask.Response) -> flask.Response:
    """RateLimit-* headers on a start's answer (201 or 429), from the counters it was charged to."""
    gate = flask.g.get("send_gate")
    if gate is not None and gate.limits:
        response.headers.update(gate.rate_limit_headers())
    return response


def services() -> ServiceRegistry:
    rt = runtime()
    return ServiceRegistry(session(), rt.clock, rt.sealer, rt.services)


def authenticate_tenant() -> None:
    """HTTP Basic with AccountSid:AuthToken or ApiKeySid:Secret (before every /v2 request)."""
    auth = flask.request.authorization
    if (
        auth is None
        or auth.type != "basic"
        or not auth.username
        or auth.password is None
        or unstorable(auth.username + auth.password)  # no stored credential holds one
    ):
        raise Unauthenticated(
            "Authenticate with HTTP Basic: AccountSid:AuthToken or ApiKeySid:Secret"
        )
    cache: CredentialCache = flask.current_app.extensions["verify.credentials"]
    now = time.monotonic()
    found = cache.get(auth.username, auth.password, now)
    if found is None:
        found = AccountService(session(), runtime().clock).authenticate(
            auth.username, auth.password
        )
        cache.put(auth.username, auth.password, found, now)
    flask.g.principal = found


def authenticate_operator() -> None:
    """The operator credential: ``Authorization: Bearer <VERIFY_OPERATOR_TOKEN>``."""
    header = flask.request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    expected = runtime().settings.operator_token
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), expected.encode()):
        raise Unauthenticated(
            "This endpoint takes the operator token: Authorization: Bearer <token>"
        )


def _idempotency() -> IdempotencyStore:
    limits = runtime().settings.limits
    return IdempotencyStore(
        runtime().redis, ttl=limits.idempotency_ttl, lock_ttl=limits.idempotency_lock_ttl
    )


def begin_idempotent() -> flask.Response | None:
    """For a POST with an Idempotency-Key: claim it, or return the stored response to replay."""
    key = flask.request.headers.get("Idempotency-Key")
    if flask.request.method != "POST" or key is None:
        return None
    req = flask.request
    fp = fingerprint(req.method, req.path, req.mimetype, req.get_data(cache=True))
    stored = _idempotency().begin(principal().account_sid, key, fp)
    if stored is None:
        flask.g.idempotency = (key, fp)
        return None
    response = flask.make_response(stored.body, stored.status)
    response.content_type = stored.content_type
    response.headers["Idempotent-Replayed"] = "true"
    return response


def finish_idempotent(response: flask.Response) -> flask.Response:
    claim = flask.g.pop("idempotency", None)
    if claim is not None:
        key, fp = claim
        stored = StoredResponse(
            response.status_code, response.get_data(), response.content_type or ""
        )
        _idempotency().finish(principal().account_sid, key, fp, stored)
    return response


def guard_tenant_blueprint(blp: flask.Blueprint) -> None:
    """Every request to ``blp`` authenticates the tenant and honours Idempotency-Key."""

    def before() -> flask.Response | None:
        authenticate_tenant()
        return begin_idempotent()

    blp.before_request(before)
    blp.after_request(finish_idempotent)


def start_request() -> None:
    incoming = flask.request.headers.get("X-Request-Id", "")
    rid = incoming if 8 <= len(incoming) <= 64 and incoming.isalnum() else secrets.token_hex(12)
    flask.g.request_id = rid
    flask.g.request_id_token = request_id.set(rid)


def end_request(response: flask.Response) -> flask.Response:
    response.headers["X-Request-Id"] = flask.g.get("request_id", "")
    return response


def close_session(_: BaseException | None = None) -> None:
    db = flask.g.pop("db", None)
    if db is not None:
        db.close()
    token = flask.g.pop("request_id_token", None)
    if token is not None:
        request_id.reset(token)
