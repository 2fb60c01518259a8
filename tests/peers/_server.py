"""The small HTTP server under every REST peer: records requests, picks a behaviour per destination."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass(frozen=True)
class Behaviour:
    """What a peer does with a send.

    ``accept``: take it (and post ``receipts``, in order, to its callback; with ``receipts_lost``
    the message goes through them at the provider but no callback is posted). ``fail``: answer
    ``status`` with the provider's error ``code``. ``timeout``: sleep ``seconds`` before answering
    (past the client's timeout). ``error_code`` goes on undelivered/failed receipts.
    """

    kind: str = "accept"
    status: int = 200
    code: str | None = None
    seconds: float = 0.0
    receipts: tuple[str, ...] = ()
    error_code: str | None = None
    retry_after: str | None = None
    receipts_lost: bool = False


ACCEPT = Behaviour()


def accept(*receipts: str, error_code: str | None = None, lost: bool = False) -> Behaviour:
    return Behaviour("accept", receipts=receipts, error_code=error_code, receipts_lost=lost)


def fail(
    status: int, code: str | int | None = None, *, retry_after: str | None = None
) -> Behaviour:
    return Behaviour(
        "fail", status=status, code=None if code is None else str(code), retry_after=retry_after
    )


def timeout(seconds: float = 3.0) -> Behaviour:
    return Behaviour("timeout", seconds=seconds)


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    form: dict[str, str] = field(default_factory=dict)
    json: Any = None


@dataclass
class Reply:
    status: int
    body: Any = None  # JSON-serializable, or bytes
    headers: dict[str, str] = field(default_factory=dict)


class HttpPeer:
    """Subclasses implement ``handle``; tests call ``behave`` and read ``requests``."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.receipt_responses: list[int] = []  # status codes our callbacks answered
        self._default = ACCEPT
        self._by_destination: dict[str, Behaviour] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []

    # -- control --------------------------------------------------------------------------------

    def behave(self, behaviour: Behaviour, to: str | None = None) -> None:
        """For one destination, or for every destination without its own behaviour."""
        if to is None:
            self._default = behaviour
        else:
            self._by_destination[to] = behaviour

    def behaviour_for(self, to: str) -> Behaviour:
        return self._by_destination.get(to, self._default)

    @property
    def url(self) -> str:
        assert self._server is not None, "not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._serve()

            def do_POST(self) -> None:
                self._serve()

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                recorded = Recorded(
                    method=self.command,
                    path=parts.path,
                    query=dict(parse_qsl(parts.query)),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                content_type = recorded.headers.get("content-type", "")
                if content_type.startswith("application/x-www-form-urlencoded"):
                    recorded.form = dict(parse_qsl(body.decode(), keep_blank_values=True))
                elif content_type.startswith("application/json") and body:
                    recorded.json = json.loads(body)
                with peer._lock:
                    peer.requests.append(recorded)
                reply = peer.handle(recorded)
                payload = (
                    reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
                )
                try:
                    self.send_response(reply.status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for thread in self._threads:
            thread.join(5)

    # -- for subclasses ---------------------------------------------------------------------------

    def handle(self, request: Recorded) -> Reply:
        raise NotImplementedError

    def wait_out(self, behaviour: Behaviour) -> None:
        time.sleep(behaviour.seconds)

    def later(self, work: Any) -> None:
        """Run ``work`` after the current response has gone out (receipts come after the accept)."""

        def run() -> None:
            time.sleep(0.05)
            work()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self._threads.append(thread)

    def settle(self, timeout: float = 5.0) -> None:
        """Wait until every receipt scheduled so far has been posted."""
        for thread in list(self._threads[1:]):
            thread.join(timeout)
