"""Load generators for bench_api.py: bounded closed-loop and open-loop runs against 127.0.0.1.

closed loop  N connections, each sends its next request as soon as the previous answer arrives, for
             a warm-up and then a fixed measured duration: the maximum throughput. wrk (C, if
             installed) or a Python asyncio client.
open loop    requests are scheduled at a fixed rate (evenly spaced); each latency is measured from
             the request's *scheduled* time, so a stalled server cannot hide queueing delay
             (no coordinated omission). Always the Python client (Debian's wrk has no rate mode).

Every run is bounded in time and in requests and stops by itself. Only 127.0.0.1 is ever targeted.
"""

from __future__ import annotations

import asyncio
import gc
import json
import math
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"
WRK_SCRIPT = Path(__file__).resolve().parent / "wrk_bodies.lua"
DRAIN_TIMEOUT = 30.0  # seconds to wait for in-flight requests after a run's end


# -- request bodies ---------------------------------------------------------------------------------


class Bodies:
    """A sequence of form bodies consumed in order; ``None`` from next() means it ran out."""

    def next(self) -> str | None:
        raise NotImplementedError

    def peek(self, n: int) -> list[str]:
        """The next ``n`` bodies (fewer if it runs out) without consuming them."""
        raise NotImplementedError

    def advance(self, n: int) -> None:
        raise NotImplementedError

    def remaining(self) -> int | None:
        return None


class ConstantBodies(Bodies):
    def __init__(self, body: str) -> None:
        self.body = body

    def next(self) -> str:
        return self.body

    def peek(self, n: int) -> list[str]:
        return [self.body]

    def advance(self, n: int) -> None:
        pass


class ListBodies(Bodies):
    def __init__(self, items: Sequence[str]) -> None:
        self.items = list(items)
        self.pos = 0

    def next(self) -> str | None:
        if self.pos >= len(self.items):
            return None
        self.pos += 1
        return self.items[self.pos - 1]

    def peek(self, n: int) -> list[str]:
        return self.items[self.pos : self.pos + n]

    def advance(self, n: int) -> None:
        self.pos = min(len(self.items), self.pos + n)

    def remaining(self) -> int:
        return len(self.items) - self.pos


class GeneratedBodies(Bodies):
    """Bodies made from a counter that only moves forward (e.g. a fresh phone number each time)."""

    def __init__(self, make, limit: int) -> None:  # type: ignore[no-untyped-def]
        self.make = make
        self.limit = limit
        self.pos = 0

    def next(self) -> str | None:
        if self.pos >= self.limit:
            return None
        self.pos += 1
        return str(self.make(self.pos - 1))

    def peek(self, n: int) -> list[str]:
        return [self.make(i) for i in range(self.pos, min(self.limit, self.pos + n))]

    def advance(self, n: int) -> None:
        self.pos = min(self.limit, self.pos + n)

    def remaining(self) -> int:
        return self.limit - self.pos


# -- results --------------------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    mode: str  # "closed" | "open"
    generator: str  # "wrk" | "python"
    connections: int
    duration: float
    target_rate: float | None = None
    completed: int = 0  # successful (expected status) requests in the measured window
    errors: int = 0  # unexpected statuses, transport errors and timeouts in the measured window
    statuses: dict[str, int] = field(default_factory=dict)
    rps: float = 0.0
    p50_ms: float = math.nan
    p99_ms: float = math.nan
    max_ms: float = math.nan
    mean_ms: float = math.nan
    exhausted: bool = False  # ran out of request bodies before the end
    note: str = ""
    latencies: list[float] = field(default_factory=list, repr=False)  # seconds; Python client only

    @property
    def error_rate(self) -> float:
        total = self.completed + self.errors
        return self.errors / total if total else 1.0


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending sequence."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def fill_latency(result: Result, latencies: list[float]) -> None:
    latencies.sort()
    result.latencies = latencies
    if latencies:
        result.p50_ms = percentile(latencies, 50) * 1000
        result.p99_ms = percentile(latencies, 99) * 1000
        result.max_ms = latencies[-1] * 1000
        result.mean_ms = sum(latencies) / len(latencies) * 1000


# -- the Python client ----------------------------------------------------------------------------


class _Connection:
    """One keep-alive HTTP/1.1 connection; minimal parsing (Content-Length or chunked bodies)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.used = False

    async def _connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
        self.used = False

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(self, data: bytes) -> int:
        if self.writer is None:
            await self._connect()
        try:
            return await self._exchange(data)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            # The server closed an idle keep-alive connection before reading this request (nothing
            # of a response arrived): it was never processed, so send it once more on a new one.
            reused = self.used
            self.close()
            if not reused or (isinstance(exc, asyncio.IncompleteReadError) and exc.partial):
                raise
            await self._connect()
            return await self._exchange(data)

    async def _exchange(self, data: bytes) -> int:
        assert self.reader is not None
        assert self.writer is not None
        self.writer.write(data)
        head = await self.reader.readuntil(b"\r\n\r\n")
        self.used = True
        status = int(head[9:12])
        length = 0
        chunked = close = False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        if chunked:
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        elif length:
            await self.reader.readexactly(length)
        if close:
            self.close()
        return status


class RequestFactory:
    def __init__(self, port: int, path: str, headers: dict[str, str]) -> None:
        lines = [f"POST {path} HTTP/1.1", f"Host: {HOST}:{port}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        lines.append("Content-Type: application/x-www-form-urlencoded")
        self.prefix = ("\r\n".join(lines) + "\r\n").encode()

    def build(self, body: str) -> bytes:
        raw = body.encode()
        return self.prefix + b"Content-Length: %d\r\n\r\n" % len(raw) + raw


async def _closed_loop(
    result: Result,
    port: int,
    factory: RequestFactory,
    bodies: Bodies,
    expect: set[int],
    warmup: float,
) -> None:
    t0 = time.perf_counter()
    t_measure, t_end = t0 + warmup, t0 + warmup + result.duration
    latencies: list[float] = []
    statuses: Counter[str] = Counter()

    async def worker() -> None:
        conn = _Connection(port)
        try:
            while True:
                start = time.perf_counter()
                if start >= t_end:
                    return
                body = bodies.next()
                if body is None:
                    result.exhausted = True
                    return
                try:
                    status = await conn.request(factory.build(body))
                    label = str(status)
                except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    conn.close()
                    status, label = 0, type(exc).__name__
                done = time.perf_counter()
                if t_measure <= done <= t_end:
                    statuses[label] += 1
                    if status in expect:
                        result.completed += 1
                        latencies.append(done - start)
                    else:
                        result.errors += 1
        finally:
            conn.close()

    tasks = [asyncio.create_task(worker()) for _ in range(result.connections)]
    _, pending = await asyncio.wait(tasks, timeout=warmup + result.duration + DRAIN_TIMEOUT)
    for task in pending:
        task.cancel()
    result.statuses = dict(statuses)
    result.rps = result.completed / result.duration
    fill_latency(result, latencies)


async def _open_loop(
    result: Result,
    port: int,
    factory: RequestFactory,
    bodies: Bodies,
    expect: set[int],
    warmup: float,
) -> None:
    assert result.target_rate
    rate = result.target_rate
    total = int(rate * (warmup + result.duration))
    queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
    t0 = time.perf_counter() + 0.05
    t_measure = t0 + warmup
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    scheduled = 0

    async def dispatcher() -> None:
        nonlocal scheduled
        for i in range(total):
            due = t0 + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            body = bodies.next()
            if body is None:
                result.exhausted = True
                break
            scheduled += 1
            queue.put_nowait((due, factory.build(body)))
        for _ in range(result.connections):
            queue.put_nowait(None)

    async def worker() -> None:
        conn = _Connection(port)
        try:
            while (item := await queue.get()) is not None:
                due, data = item
                try:
                    status = await conn.request(data)
                    label = str(status)
                except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    conn.close()
                    status, label = 0, type(exc).__name__
                done = time.perf_counter()
                if due >= t_measure:
                    statuses[label] += 1
                    if status in expect:
                        result.completed += 1
                        latencies.append(done - due)  # from the scheduled time
                    else:
                        result.errors += 1
        finally:
            conn.close()

    tasks = [asyncio.create_task(worker()) for _ in range(result.connections)]
    feeder = asyncio.create_task(dispatcher())
    _, pending = await asyncio.wait(
        [feeder, *tasks], timeout=warmup + result.duration + DRAIN_TIMEOUT
    )
    for task in pending:
        task.cancel()
    if pending:
        # Whatever was still queued or in flight at the deadline counts as a timeout.
        result.errors += queue.qsize()
        result.note = f"{len(pending)} tasks still busy {DRAIN_TIMEOUT:.0f}s after the end"
    result.statuses = dict(statuses)
    result.rps = result.completed / result.duration
    fill_latency(result, latencies)


def _run_python(coro_fn, *args) -> None:  # type: ignore[no-untyped-def]
    # The collector's pauses would land in the client's latency figures: keep it off for the run.
    gc.collect()
    gc.disable()
    try:
        asyncio.run(coro_fn(*args))
    finally:
        gc.enable()


def closed_loop_python(
    name: str,
    port: int,
    path: str,
    headers: dict[str, str],
    bodies: Bodies,
    *,
    connections: int,
    warmup: float,
    duration: float,
    expect: set[int],
) -> Result:
    result = Result(name, "closed", "python", connections, duration)
    factory = RequestFactory(port, path, headers)
    _run_python(_closed_loop, result, port, factory, bodies, expect, warmup)
    return result


def open_loop(
    name: str,
    port: int,
    path: str,
    headers: dict[str, str],
    bodies: Bodies,
    *,
    rate: float,
    connections: int,
    warmup: float,
    duration: float,
    expect: set[int],
) -> Result:
    result = Result(name, "open", "python", connections, duration, target_rate=rate)
    factory = RequestFactory(port, path, headers)
    _run_python(_open_loop, result, port, factory, bodies, expect, warmup)
    return result


# -- wrk ----------------------------------------------------------------------------------------


def wrk_path() -> str | None:
    return shutil.which("wrk")


def _wrk_once(
    port: int,
    path: str,
    headers: dict[str, str],
    body_file: Path,
    offset: int,
    connections: int,
    seconds: float,
) -> dict[str, float]:
    wrk = wrk_path()
    assert wrk is not None
    cmd = [
        wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
        "-s", str(WRK_SCRIPT), f"http://{HOST}:{port}{path}", "--",
        path, str(body_file), str(offset), *(f"{k}: {v}" for k, v in headers.items()),
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=True)
    for line in out.stdout.splitlines():
        if line.startswith("WRK_JSON "):
            return json.loads(line[len("WRK_JSON ") :])
    raise RuntimeError(f"wrk printed no summary:\n{out.stdout}\n{out.stderr}")


def closed_loop_wrk(
    name: str,
    port: int,
    path: str,
    headers: dict[str, str],
    bodies: Bodies,
    *,
    connections: int,
    warmup: float,
    duration: float,
    expect_rps: float,
    workdir: Path,
) -> Result:
    """wrk's warm-up run (discarded), then the measured run; bodies advance by what was used.

    wrk counts any status >= 400 as an error (every expected status here is 2xx).
    """
    result = Result(name, "closed", "wrk", connections, float(max(1, round(duration))))
    wanted = int(expect_rps * (warmup + duration) * 1.5) + 10 * connections + 100
    lines = bodies.peek(wanted)
    body_file = workdir / "wrk-bodies.txt"
    body_file.write_text("\n".join(lines) + "\n")
    used = 0
    if warmup > 0:
        warm = _wrk_once(port, path, headers, body_file, 0, connections, warmup)
        used = int(warm["requests"]) + connections  # in-flight ones at the stop may have landed
    summary = _wrk_once(port, path, headers, body_file, used, connections, duration)
    used += int(summary["requests"]) + connections
    bodies.advance(used)
    if not isinstance(bodies, ConstantBodies) and (summary["wraps"] or used > len(lines)):
        result.exhausted = True
        result.note = "request bodies ran out and were reused"
    errors = int(
        summary["connect"] + summary["read"] + summary["write"] + summary["status"]
        + summary["timeout"]
    )  # fmt: skip
    result.duration = summary["duration_us"] / 1e6
    result.completed = int(summary["requests"]) - int(summary["status"])
    result.errors = errors
    result.statuses = {"2xx": result.completed, "non-2xx": int(summary["status"])}
    result.rps = result.completed / result.duration
    result.p50_ms = summary["p50_us"] / 1000
    result.p99_ms = summary["p99_us"] / 1000
    result.max_ms = summary["max_us"] / 1000
    result.mean_ms = summary["mean_us"] / 1000
    return result
