"""The provider of bench/bench_dispatch.py: an ``http`` gateway that accepts every message (after a
delay the benchmark sets), as an asyncio server in a process of its own. It parses just enough
HTTP/1.1 for kept-alive requests (the head, then ``content-length`` bytes of body) and does not check
signatures: its CPU is the outside world's, and should be as small as a local server's can be.
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.sharedctypes import Synchronized


class _Exchange(asyncio.Protocol):
    """One kept-alive connection: parses just enough HTTP/1.1 (the head, then ``content-length``
    bytes of body) and answers each request 200 with a JSON message id, in one write."""

    def __init__(self, delay: Synchronized[float], served: Iterator[int]) -> None:
        self._delay = delay
        self._served = served
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport  # asyncio sets TCP_NODELAY on it: answers go out at once
        self._socket = transport.get_extra_info("socket")

    def data_received(self, data: bytes) -> None:
        # The client writes a request's head and body separately, with Nagle on: its body waits
        # for our ACK of the head, which Linux would delay by up to 40 ms. ACK at once instead
        # (quick-ACK mode lapses, so it is asked for again on every read).
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        self._buffer += data
        while (end := self._buffer.find(b"\r\n\r\n")) >= 0:
            length = 0
            for line in self._buffer[:end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(self._buffer) < end + 4 + length:
                return
            self._buffer = self._buffer[end + 4 + length :]
            body = b'{"message_id":"m-%d"}' % next(self._served)
            answer = (
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\n\r\n%s" % (len(body), body)
            )
            delay = self._delay.value
            assert self._transport is not None
            if delay:
                asyncio.get_running_loop().call_later(delay, self._transport.write, answer)
            else:
                self._transport.write(answer)


def _serve(port: Synchronized[int], delay: Synchronized[float]) -> None:
    async def main() -> None:
        served = itertools.count(1)
        server = await asyncio.get_running_loop().create_server(
            lambda: _Exchange(delay, served), "127.0.0.1", 0
        )
        port.value = server.sockets[0].getsockname()[1]
        await server.serve_forever()

    asyncio.run(main())


class Receiver:
    """The provider: accepts every message after ``delay`` seconds (the ``http`` provider's
    protocol; the signature is not checked). An asyncio server in a process of its own, so its CPU
    is not counted as the worker's in ``--profile``, and it costs far less than a threaded
    ``http.server`` on the cores the workers share."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._port = context.Value("i", 0)
        self._delay = context.Value("d", 0.0)
        self.process = context.Process(target=_serve, args=(self._port, self._delay), daemon=True)

    @property
    def delay(self) -> float:
        return float(self._delay.value)

    @delay.setter
    def delay(self, seconds: float) -> None:
        self._delay.value = seconds

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port.value}/send"

    def start(self) -> None:
        self.process.start()
        deadline = time.monotonic() + 30
        while not self._port.value:
            if time.monotonic() > deadline or not self.process.is_alive():
                raise RuntimeError("the receiver did not start")
            time.sleep(0.01)


@contextmanager
def receiving() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.process.terminate()
        receiver.process.join(10)
