"""Operator sign-in for the console: the operator token once, then a signed session cookie.

The session holds a fingerprint of the token (rotating the token signs every session out), the
sign-in time (sessions end after ``SESSION_HOURS``) and a CSRF token that every form posts back.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

import flask
import redis

from verify.api import context

log = logging.getLogger(__name__)

SESSION_HOURS = 12
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRFToken"  # what the RQ dashboard's scripts send (see verify/console/rq.py)
CSRF_COOKIE = "_csrf_token"


class CsrfRejected(Exception):
    """A state-changing request without this session's CSRF token."""


class TooManyAttempts(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__("too many failed sign-ins")
        self.retry_after = retry_after


def _fingerprint(token: str) -> str:
    """Names the operator token in the session without storing it (the cookie is signed, not secret)."""
    key = context.runtime().settings.secret_key
    return hmac.new(key, b"console-operator\x00" + token.encode(), hashlib.sha256).hexdigest()


def token_matches(candidate: str) -> bool:
    expected = context.runtime().settings.operator_token
    return hmac.compare_digest(candidate.encode(), expected.encode())


def signed_in() -> bool:
    session = flask.session
    fingerprint = session.get("op")
    started = session.get("at")
    if not isinstance(fingerprint, str) or not isinstance(started, int | float):
        return False
    expected = _fingerprint(context.runtime().settings.operator_token)
    if not hmac.compare_digest(fingerprint, expected):
        return False
    age = context.runtime().clock.now().timestamp() - started
    return 0 <= age < SESSION_HOURS * 3600


def sign_in() -> None:
    # A fresh session: nothing from before sign-in (a planted CSRF token, say) survives it.
    flask.session.clear()
    flask.session["op"] = _fingerprint(context.runtime().settings.operator_token)
    flask.session["at"] = int(context.runtime().clock.now().timestamp())
    flask.session["csrf"] = secrets.token_urlsafe(32)
    flask.session.permanent = True


def sign_out() -> None:
    flask.session.clear()


def csrf_token() -> str:
    """This session's CSRF token (made on first use, so the sign-in form has one too)."""
    token = flask.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        flask.session["csrf"] = token
    return token


def check_csrf() -> None:
    """Refuse a state-changing request that does not carry this session's token."""
    expected = flask.session.get("csrf")
    sent = flask.request.form.get(CSRF_FIELD) or flask.request.headers.get(CSRF_HEADER) or ""
    if not isinstance(expected, str) or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise CsrfRejected()


def safe_next(target: str | None) -> str | None:
    """A post-sign-in destination, only if it is a path inside the console (no open redirect)."""
    if not target:
        return None
    try:
        parts = urlsplit(target)
    except ValueError:  # e.g. an unclosed IPv6 bracket: not a console path either way
        return None
    if parts.scheme or parts.netloc or not parts.path.startswith("/console"):
        return None
    if "\\" in target or target.startswith("//"):
        return None
    return target


@dataclass(frozen=True)
class LoginThrottle:
    """Failed sign-ins per client address in a fixed window, counted in Redis.

    The operator token has at least 24 random characters, so this is not what stops a guesser; it
    keeps a scanner from filling the logs. Without Redis it lets sign-ins through (and logs it):
    an outage is when the operator most needs the console.
    """

    client: redis.Redis
    limit: int = 10
    window: int = 900

    def _key(self, address: str) -> str:
        return f"verify:console:login-failures:{hashlib.sha256(address.encode()).hexdigest()[:32]}"

    def check(self, address: str) -> None:
        try:
            count = self.client.get(self._key(address))
            if count is not None and int(count) >= self.limit:
                raise TooManyAttempts(max(1, int(self.client.ttl(self._key(address)))))
        except redis.RedisError:
            log.warning("console sign-in throttle unavailable (Redis)")

    def failed(self, address: str) -> None:
        try:
            pipe = self.client.pipeline()
            pipe.set(self._key(address), 0, ex=self.window, nx=True)  # the window opens here
            pipe.incr(self._key(address))
            pipe.execute()
        except redis.RedisError:
            log.warning("console sign-in throttle unavailable (Redis)")

    def succeeded(self, address: str) -> None:
        try:
            self.client.delete(self._key(address))
        except redis.RedisError:
            log.warning("console sign-in throttle unavailable (Redis)")


def throttle() -> LoginThrottle:
    return LoginThrottle(context.runtime().redis)
