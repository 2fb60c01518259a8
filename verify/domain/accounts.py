"""Accounts and API keys: creation, and authentication of ``sid:secret`` pairs.

Secrets are 256-bit random values shown once; only their SHA-256 digest is stored (a fast digest is right
here: the secret has full entropy and is checked on every request).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy.orm import Session

from verify.domain import sids
from verify.domain.clock import Clock
from verify.errors import InvalidParameter, NotFound, Unauthenticated
from verify.models import Account, ApiKey


@dataclass(frozen=True)
class Principal:
    """Who is calling: the account every lookup is scoped to, and the credential used."""

    account_sid: str
    credential_sid: str


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


# Compared against when the sid is unknown, so a miss costs the same as a wrong secret.
_DUMMY_DIGEST = _digest(secrets.token_hex(32))


def _check_name(friendly_name: str) -> str:
    name = friendly_name.strip()
    if not 1 <= len(name) <= 64:
        raise InvalidParameter("FriendlyName", "must be 1-64 characters")
    return name


class CredentialCache:
    """Credentials verified in the last few seconds, so a burst of requests costs one lookup.

    Keyed by a digest of the whole credential, never the secret itself. A revoked key or a suspended
    account stops working within ``ttl`` seconds.
    """

    def __init__(self, ttl: float = 5.0, size: int = 1024) -> None:
        self._ttl = ttl
        self._size = size
        self._entries: dict[bytes, tuple[float, Principal]] = {}

    @staticmethod
    def _key(username: str, password: str) -> bytes:
        return hashlib.sha256(f"{username}:{password}".encode()).digest()

    def get(self, username: str, password: str, now: float) -> Principal | None:
        hit = self._entries.get(self._key(username, password))
        if hit is None or hit[0] <= now:
            return None
        return hit[1]

    def put(self, username: str, password: str, principal: Principal, now: float) -> None:
        if len(self._entries) >= self._size:
            self._entries.clear()  # crude, bounded, and only ever costs a lookup
        self._entries[self._key(username, password)] = (now + self._ttl, principal)


class AccountService:
    def __init__(self, session: Session, clock: Clock) -> None:
        self._session = session
        self._clock = clock

    def create_account(self, friendly_name: str) -> tuple[Account, str]:
        """A new account and its auth token (returned once, stored as a digest)."""
        token = secrets.token_hex(32)
        now = self._clock.now()
        account = Account(
            sid=sids.new_sid(sids.ACCOUNT),
            friendly_name=_check_name(friendly_name),
            auth_token_digest=_digest(token),
            status="active",
            date_created=now,
            date_updated=now,
        )
        with self._session.begin():
            self._session.add(account)
        return account, token

    def create_api_key(self, account_sid: str, friendly_name: str) -> tuple[ApiKey, str]:
        secret = secrets.token_hex(32)
        now = self._clock.now()
        with self._session.begin():
            if self._session.get(Account, account_sid) is None:
                raise NotFound(f"The requested resource {account_sid} was not found")
            key = ApiKey(
                sid=sids.new_sid(sids.API_KEY),
                account_sid=account_sid,
                friendly_name=_check_name(friendly_name),
                secret_digest=_digest(secret),
                date_created=now,
                date_updated=now,
            )
            self._session.add(key)
        return key, secret

    def authenticate(self, username: str, password: str) -> Principal:
        """Resolve Basic credentials to a principal, or raise Unauthenticated."""
        with self._session.begin():
            if sids.is_sid(username, sids.ACCOUNT):
                account = self._session.get(Account, username)
                stored = account.auth_token_digest if account else _DUMMY_DIGEST
                ok = hmac.compare_digest(stored, _digest(password))
                if account is not None and ok and account.status == "active":
                    return Principal(account.sid, account.sid)
            elif sids.is_sid(username, sids.API_KEY):
                key = self._session.get(ApiKey, username)
                stored = key.secret_digest if key else _DUMMY_DIGEST
                ok = hmac.compare_digest(stored, _digest(password))
                if key is not None and ok:
                    owner = self._session.get(Account, key.account_sid)
                    if owner is not None and owner.status == "active":
                        return Principal(key.account_sid, key.sid)
            else:
                hmac.compare_digest(_DUMMY_DIGEST, _digest(password))
        raise Unauthenticated(
            "Authenticate with HTTP Basic: AccountSid:AuthToken or ApiKeySid:Secret"
        )
