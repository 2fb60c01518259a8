"""An SMTP peer: aiosmtpd on 127.0.0.1, recording every message; optionally STARTTLS or implicit TLS
with a throwaway certificate, AUTH with one username/password, and refusals per recipient."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import tempfile
import time
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.servers import free_port

USERNAME = "mailer"
PASSWORD = "peer-smtp-password"


@dataclass
class Received:
    mail_from: str
    recipients: list[str]
    message: EmailMessage


class _Handler:
    def __init__(self, peer: SmtpPeer) -> None:
        self.peer = peer

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        refusal = self.peer.refuse.get(address)
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.peer.delay:
            time.sleep(self.peer.delay)  # blocks the server loop: the client times out
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.peer.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 Message accepted"


def _authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        USERNAME.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 / localhost, and its key, written to ``directory``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class SmtpPeer:
    """``security``: none | starttls | tls. With ``auth``, AUTH LOGIN/PLAIN with USERNAME/PASSWORD."""

    def __init__(self, security: str = "none", *, auth: bool = False) -> None:
        self.security = security
        self.auth = auth
        self.messages: list[Received] = []
        self.refuse: dict[str, str] = {}  # recipient -> SMTP reply, e.g. "550 5.1.1 No such user"
        self.delay = 0.0
        self.port = free_port()
        self.host = "127.0.0.1"
        self._dir = Path(tempfile.mkdtemp(prefix="smtp-peer-"))
        self.cert, self._key = self_signed(self._dir)
        self._controller: Controller | None = None

    def client_context(self) -> ssl.SSLContext:
        """What a client must trust to talk TLS to this peer."""
        return ssl.create_default_context(cafile=str(self.cert))

    def start(self) -> None:
        server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_tls.load_cert_chain(self.cert, self._key)
        kwargs: dict[str, Any] = {
            "hostname": self.host,
            "port": self.port,
            "ready_timeout": 10,
        }
        if self.security == "starttls":
            kwargs.update(tls_context=server_tls, require_starttls=True)
        elif self.security == "tls":
            kwargs.update(ssl_context=server_tls)
        if self.auth:
            # Implicit TLS is encrypted before aiosmtpd sees it, so only STARTTLS can require it.
            starttls = self.security == "starttls"
            kwargs.update(
                authenticator=_authenticator, auth_require_tls=starttls, auth_required=starttls
            )
        self._controller = Controller(_Handler(self), **kwargs)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()


__all__ = ["PASSWORD", "USERNAME", "SmtpPeer"]
