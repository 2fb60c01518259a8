"""One-time codes: generation, the stored digest, and the sealed copy a worker may open to send it.

Stored form: argon2id over HMAC-SHA256(pepper, sid || code). The pepper never touches the database, so a
stolen table alone cannot be brute-forced even though the code space is small. Workers never get a
plaintext copy: they open an AES-GCM box bound to the verification sid with a key from settings.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MIN_LENGTH = 4
MAX_LENGTH = 10


def generate_code(length: int) -> str:
    """A code of ``length`` digits, uniform over all of them: one draw from the OS CSPRNG (one
    system call, where a draw per digit took ``length``), zero-padded."""
    if not MIN_LENGTH <= length <= MAX_LENGTH:
        raise ValueError(f"code length must be {MIN_LENGTH}-{MAX_LENGTH}")
    return f"{secrets.randbelow(10**length):0{length}d}"


def is_valid_code(code: str) -> bool:
    return MIN_LENGTH <= len(code) <= MAX_LENGTH and code.isascii() and code.isdigit()


class CodeHasher:
    """argon2id over a peppered HMAC; the first pepper hashes, every pepper is tried on verify."""

    def __init__(
        self, peppers: Sequence[bytes], *, time_cost: int, memory_cost_kib: int, parallelism: int
    ) -> None:
        if not peppers:
            raise ValueError("at least one pepper is required")
        self._peppers = tuple(peppers)
        self._argon2 = PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_cost_kib,
            parallelism=parallelism,
            hash_len=32,
            salt_len=16,
            type=Type.ID,
        )

    @staticmethod
    def _mac(pepper: bytes, sid: str, code: str) -> bytes:
        return hmac.new(pepper, f"{sid}\x00{code}".encode(), hashlib.sha256).digest()

    def hash(self, sid: str, code: str) -> str:
        return self._argon2.hash(self._mac(self._peppers[0], sid, code))

    def verify(self, sid: str, code: str, stored: str) -> bool:
        """Constant-time per pepper (argon2's own comparison); False rather than raising."""
        matched = False
        for pepper in self._peppers:
            try:
                matched = self._argon2.verify(stored, self._mac(pepper, sid, code)) or matched
            except (VerificationError, InvalidHashError):
                continue
        return matched


class CodeSealer:
    """Authenticated encryption of a code, bound to its verification sid (the AAD).

    The first key seals; a box names its key by a 4-byte fingerprint so old boxes still open during
    rotation.
    """

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ValueError("at least one key is required")
        self._keys = {self._kid(k): AESGCM(k) for k in keys}
        self._current = self._kid(keys[0])

    @staticmethod
    def _kid(key: bytes) -> bytes:
        return hashlib.sha256(b"verify-code-key" + key).digest()[:4]

    def seal(self, sid: str, code: str) -> bytes:
        nonce = secrets.token_bytes(12)
        box = self._keys[self._current].encrypt(nonce, code.encode(), sid.encode())
        return self._current + nonce + box

    def open(self, sid: str, sealed: bytes) -> str:
        kid, nonce, box = sealed[:4], sealed[4:16], sealed[16:]
        key = self._keys.get(kid)
        if key is None:
            raise LookupError("the key that sealed this code is no longer configured")
        try:
            return key.decrypt(nonce, box, sid.encode()).decode()
        except InvalidTag:
            raise LookupError("sealed code does not belong to this verification") from None
