"""The ``console`` provider: development delivery into the sealed dev outbox (and, in ``verify dev``,
the terminal). Every channel; it accepts everything and posts no receipts."""

from __future__ import annotations

from typing import ClassVar, TextIO

from verify.delivery.console import DevOutbox
from verify.delivery.providers.base import (
    InvalidSignature,
    OutboundMessage,
    Outcome,
    Receipt,
    ReceiptRequest,
    SendResult,
)


class ConsoleProvider:
    type: ClassVar[str] = "console"

    def __init__(self, outbox: DevOutbox, stream: TextIO | None = None) -> None:
        self._outbox = outbox
        self._stream = stream

    def send(self, message: OutboundMessage) -> SendResult:
        self._outbox.append(message)
        if self._stream is not None:
            subject = f" [{message.subject}]" if message.subject else ""
            print(
                f"[console {message.channel} {message.locale} -> {message.to}]{subject} {message.text}",
                file=self._stream,
            )
            self._stream.flush()
        return SendResult(Outcome.ACCEPTED, provider_message_id=f"console-{message.attempt_sid}")

    def parse_receipt(self, request: ReceiptRequest) -> list[Receipt]:
        raise InvalidSignature("the console provider posts no delivery receipts")
