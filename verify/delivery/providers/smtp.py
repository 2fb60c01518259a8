"""The ``smtp`` provider: email as multipart text + HTML through the tenant's mail server.

The server's name goes through the SSRF guard like any provider URL (verify/delivery/providers/
guard.py): resolved and judged before every connection, and the connection made to the address
that was judged; STARTTLS and implicit TLS still verify the certificate against the name.

SMTP has no delivery receipts a server could post back; the attempt ends at ``sent`` (accepted by
the relay). Reply codes decide the outcome: 4xx is transient, 5xx on a recipient is permanent, 5xx
elsewhere (authentication, sender) is this server's problem, so another provider may still deliver.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from collections.abc import Callable
from email.errors import MessageError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from typing import Any, ClassVar

from verify.delivery.providers import _common as r
from verify.delivery.providers.base import (
    InvalidSignature,
    OutboundMessage,
    Outcome,
    Receipt,
    ReceiptRequest,
    SendResult,
)
from verify.events.ssrf import UnsafeURL

SECURITY = ("starttls", "tls", "none")


class SmtpProvider:
    type: ClassVar[str] = "smtp"

    def __init__(
        self,
        *,
        host: str,
        port: int,
        from_address: str,
        from_name: str | None = None,
        security: str = "starttls",
        username: str | None = None,
        password: str | None = None,
        timeout: float = 5.0,
        ssl_context: ssl.SSLContext | None = None,
        guard: Callable[[str, int], str] | None = None,
    ) -> None:
        """``guard(host, port)``: the address to connect to, or UnsafeURL (None: by name)."""
        if security not in SECURITY:
            raise ValueError(f"security must be one of {', '.join(SECURITY)}")
        self._host = host
        self._port = port
        self._from = formataddr((from_name or "", from_address))
        self._from_domain = from_address.rpartition("@")[2] or None
        self._security = security
        self._username = username
        self._password = password
        self._timeout = timeout
        self._ssl = ssl_context or ssl.create_default_context()
        self._guard = guard

    def send(self, message: OutboundMessage) -> SendResult:
        if message.channel != "email":
            return SendResult(
                Outcome.PERMANENT, reason=r.UNSUPPORTED_CHANNEL, raw_code=message.channel
            )
        try:
            email = self._compose(message)
        except (MessageError, ValueError, IndexError) as exc:  # an address it cannot write
            return SendResult(
                Outcome.PERMANENT, reason=r.INVALID_DESTINATION, raw_code=type(exc).__name__
            )
        try:
            with self._connect() as client:
                if self._security == "starttls":
                    client.starttls(context=self._ssl)
                if self._username is not None:
                    client.login(self._username, self._password or "")
                client.send_message(email)
        except UnsafeURL:
            return SendResult(
                Outcome.FAILOVER, reason=r.PROVIDER_MISCONFIGURED, raw_code="blocked_address"
            )
        except smtplib.SMTPRecipientsRefused as exc:
            return _refused(exc.recipients)
        except smtplib.SMTPAuthenticationError as exc:
            return SendResult(
                Outcome.FAILOVER, reason=r.PROVIDER_AUTH_FAILED, raw_code=str(exc.smtp_code)
            )
        except smtplib.SMTPNotSupportedError:
            return SendResult(
                Outcome.FAILOVER, reason=r.PROVIDER_MISCONFIGURED, raw_code="not_supported"
            )
        except smtplib.SMTPResponseException as exc:
            return _reply(exc.smtp_code)
        except TimeoutError:
            return SendResult(Outcome.RETRY, reason=r.TIMEOUT, raw_code="timeout")
        except smtplib.SMTPServerDisconnected as exc:
            # smtplib turns a read timeout into "disconnected"; the timeout is its context.
            if isinstance(exc.__context__, TimeoutError):
                return SendResult(Outcome.RETRY, reason=r.TIMEOUT, raw_code="timeout")
            return SendResult(
                Outcome.FAILOVER, reason=r.PROVIDER_UNAVAILABLE, raw_code="disconnected"
            )
        except ssl.SSLError as exc:
            return SendResult(
                Outcome.FAILOVER, reason=r.PROVIDER_MISCONFIGURED, raw_code=type(exc).__name__
            )
        except (OSError, smtplib.SMTPException) as exc:
            return SendResult(
                Outcome.FAILOVER, reason=r.PROVIDER_UNAVAILABLE, raw_code=type(exc).__name__
            )
        return SendResult(Outcome.ACCEPTED, provider_message_id=email["Message-ID"].strip("<>"))

    def parse_receipt(self, request: ReceiptRequest) -> list[Receipt]:
        raise InvalidSignature("SMTP has no delivery receipts")

    def _connect(self) -> smtplib.SMTP:
        address = self._guard(self._host, self._port) if self._guard else self._host
        if self._security == "tls":
            return _PinnedSMTPSSL(
                address, self._host, self._port, timeout=self._timeout, context=self._ssl
            )
        return _PinnedSMTP(address, self._host, self._port, timeout=self._timeout)

    def _compose(self, message: OutboundMessage) -> EmailMessage:
        email = EmailMessage()
        email["From"] = self._from
        email["To"] = Address(addr_spec=message.to)
        email["Subject"] = message.subject or ""
        email["Message-ID"] = make_msgid(idstring=message.attempt_sid, domain=self._from_domain)
        # One-time codes: no auto-replies back to the sending address.
        email["Auto-Submitted"] = "auto-generated"
        email.set_content(message.text)
        if message.html is not None:
            email.add_alternative(message.html, subtype="html")
        email["Content-Language"] = message.locale  # after set_content, which drops Content-*
        return email


class _PinnedSMTP(smtplib.SMTP):
    """Connects to ``address``; the name stays the server's (EHLO, STARTTLS's certificate check)."""

    def __init__(self, address: str, host: str, port: int, **kwargs: Any) -> None:
        self._address = address
        super().__init__(host, port, **kwargs)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return socket.create_connection((self._address, port), timeout, self.source_address)


class _PinnedSMTPSSL(smtplib.SMTP_SSL):
    """Implicit TLS to ``address``, the certificate checked against the server's name."""

    def __init__(self, address: str, host: str, port: int, **kwargs: Any) -> None:
        self._address = address
        super().__init__(host, port, **kwargs)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        raw = socket.create_connection((self._address, port), timeout, self.source_address)
        return self.context.wrap_socket(raw, server_hostname=host)


def _refused(recipients: dict[str, tuple[int, bytes]]) -> SendResult:
    code = next(iter(recipients.values()))[0] if recipients else 550
    if 400 <= code < 500:
        return SendResult(Outcome.RETRY, reason=r.UNREACHABLE_DESTINATION, raw_code=str(code))
    return SendResult(Outcome.PERMANENT, reason=r.INVALID_DESTINATION, raw_code=str(code))


def _reply(code: int) -> SendResult:
    if 400 <= code < 500:
        return SendResult(Outcome.RETRY, reason=r.PROVIDER_UNAVAILABLE, raw_code=str(code))
    if code in (530, 535):
        return SendResult(Outcome.FAILOVER, reason=r.PROVIDER_AUTH_FAILED, raw_code=str(code))
    if code == 554:
        return SendResult(Outcome.FAILOVER, reason=r.BLOCKED_BY_PROVIDER, raw_code=str(code))
    return SendResult(Outcome.FAILOVER, reason=r.REJECTED, raw_code=str(code))
