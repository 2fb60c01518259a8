"""The ``verify`` command as an operator runs it: a real subprocess with only VERIFY_* settings."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import flask
import httpx
import pytest
import redis

from tests.conftest import code_in, make_settings
from tests.servers import free_port
from verify.app import create_app
from verify.config import Settings

VERIFY = Path(sys.executable).with_name("verify")
TO = "+14155550123"
SECRETS = ("VERIFY_CODE_PEPPERS", "VERIFY_CODE_KEYS", "VERIFY_SECRET_KEY", "VERIFY_OPERATOR_TOKEN")


def base_env(**settings: str) -> dict[str, str]:
    """This process's environment without any VERIFY_* variable, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VERIFY_")}
    env.update(settings)
    return env


def verify(
    *args: str, env: dict[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VERIFY), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def verify_json(*args: str, env: dict[str, str]) -> dict[str, Any]:
    result = verify(*args, "--json", env=env)
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def sid_shape(prefix: str) -> re.Pattern[str]:
    return re.compile(rf"^{prefix}[0-9a-f]{{32}}$")


# -- accounts, keys, services --------------------------------------------------------------------


@dataclass
class Cli:
    settings: Settings
    env: dict[str, str]


@pytest.fixture
def cli(tmp_path: Path, embedded_redis: str) -> Cli:
    """Settings for a new SQLite file (migrated with `verify db upgrade`) and the embedded Redis."""
    redis.Redis.from_url(embedded_redis).flushdb()
    settings = make_settings(f"sqlite:///{tmp_path / 'cli.db'}", embedded_redis, tmp_path)
    env = base_env(**settings.as_environ())
    result = verify("db", "upgrade", env=env)
    assert result.returncode == 0, result.stderr
    return Cli(settings, env)


@pytest.fixture
def app(cli: Cli) -> Iterator[flask.Flask]:
    """The application on the CLI's database (this overrides the backend-wide ``app`` fixture)."""
    application = create_app(cli.settings)
    yield application
    application.extensions["verify"].close()


def test_create_account_key_and_service(cli: Cli, app: flask.Flask) -> None:
    """--json prints Twilio-shaped SIDs and secrets that authenticate against the API."""
    account = verify_json("accounts", "create", "CLI Corp", env=cli.env)
    assert sid_shape("AC").match(account["account_sid"])
    assert re.fullmatch(r"[0-9a-f]{64}", account["auth_token"])
    assert account["friendly_name"] == "CLI Corp"

    key = verify_json("keys", "create", account["account_sid"], env=cli.env)
    assert sid_shape("SK").match(key["sid"])
    assert key["account_sid"] == account["account_sid"]
    assert len(key["secret"]) >= 32

    service = verify_json("services", "create", account["account_sid"], "CLI Login", env=cli.env)
    assert sid_shape("VA").match(service["sid"])
    assert service["account_sid"] == account["account_sid"]

    client = app.test_client()
    path = f"/v2/Services/{service['sid']}"
    for auth in ((account["account_sid"], account["auth_token"]), (key["sid"], key["secret"])):
        r = client.get(path, auth=auth)
        assert r.status_code == 200, r.json
        assert (r.json["sid"], r.json["friendly_name"]) == (service["sid"], "CLI Login")
    r = client.get("/v2/Services", auth=(key["sid"], key["secret"]))
    assert [s["sid"] for s in r.json["services"]] == [service["sid"]]
    r = client.get(path, auth=(account["account_sid"], key["secret"]))
    assert r.status_code == 401


def test_cli_credentials_complete_a_verification(cli: Cli, app: flask.Flask) -> None:
    """A verification started with CLI-made credentials is delivered by `verify worker --burst`."""
    account = verify_json("accounts", "create", "Flow", env=cli.env)
    service = verify_json("services", "create", account["account_sid"], "Flow", env=cli.env)
    client = app.test_client()
    auth = (account["account_sid"], account["auth_token"])
    base = f"/v2/Services/{service['sid']}"

    r = client.post(f"{base}/Verifications", data={"To": TO, "Channel": "sms"}, auth=auth)
    assert r.status_code == 201, r.json
    result = verify("worker", "--burst", env=cli.env)
    assert result.returncode == 0, result.stderr

    outbox = client.get(
        "/dev/outbox", headers={"Authorization": f"Bearer {cli.settings.operator_token}"}
    )
    assert outbox.status_code == 200
    code = code_in(next(m["body"] for m in outbox.json if m["to"] == TO))
    r = client.post(f"{base}/VerificationCheck", data={"To": TO, "Code": code}, auth=auth)
    assert (r.status_code, r.json["status"]) == (200, "approved")


NO_ACCOUNT = "AC" + "0" * 32


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("keys", "create", NO_ACCOUNT), f"{NO_ACCOUNT} was not found (20404)"),
        (("services", "create", NO_ACCOUNT, "Shop"), f"no account {NO_ACCOUNT}"),
        (("accounts", "create", ""), "`FriendlyName`: must be 1-64 characters (60200)"),
        (("providers", "export", NO_ACCOUNT), f"no account {NO_ACCOUNT}"),
        (("db", "upgrade", "nonsense"), "Can't locate revision identified by 'nonsense'"),
    ],
)
def test_refusals_are_one_line_not_a_traceback(cli: Cli, args: tuple[str, ...], says: str) -> None:
    """What the command refuses (an unknown account, a bad name) exits 1 with one line on stderr
    saying why, and prints nothing on stdout."""
    result = verify(*args, env=cli.env)
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.stderr
    assert says in errors[0]


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (
            ("providers", "load"),
            'account: {account}\nproviders:\n  - type: console\n    friendly_name: "c\\0"\n',
        ),
        (
            ("fraud", "load"),
            'version: 1\naccounts:\n  {account}:\n    - type: number_type\n      description: "\\ud800"\n',
        ),
    ],
)
def test_files_with_unstorable_characters_are_refused(
    cli: Cli, tmp_path: Path, args: tuple[str, ...], text: str
) -> None:
    """A YAML file can spell a NUL ("\\0") or an unpaired surrogate: no database stores either, so
    the file is refused whole, in one line."""
    account = verify_json("accounts", "create", "Acme", env=cli.env)["account_sid"]
    path = tmp_path / "file.yaml"
    path.write_text(text.format(account=account))
    result = verify(*args, str(path), env=cli.env)
    assert result.returncode == 1, result.stderr
    assert "must not contain NUL characters or unpaired surrogates" in result.stderr
    assert "Traceback" not in result.stderr


# Nine levels of nine aliases each: 9**9 values once expanded, from a few hundred bytes.
ALIAS_BOMB = "a0: &a0 [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 10)
)


@pytest.mark.parametrize(
    ("args", "text", "says"),
    [
        (("fraud", "load"), "[" * 3000 + "]" * 3000, "must not nest more than 32 levels deep"),
        (("providers", "load"), "providers: " + "[" * 40 + "]" * 40, "must not nest more than 32"),
        (("fraud", "load"), ALIAS_BOMB, "must not hold more than 100000 values"),
        (("providers", "load"), "account: 9" + "9" * 5000, "holds a number too long to read"),
        (("providers", "load"), "providers: [\n  password: s3cret", "is not valid YAML (line 2"),
        (("fraud", "load"), b"version: 1\naccounts: \xff", "is not valid YAML (position 21"),
        (("providers", "load"), b"account: \xc3(", "is not valid YAML (position 9"),
    ],
)
def test_files_past_what_can_be_read_are_refused(
    cli: Cli, tmp_path: Path, args: tuple[str, ...], text: str | bytes, says: str
) -> None:
    """Nesting past any setting, an alias expanding past any file, a number Python will not read,
    broken YAML or bytes that are not UTF-8: one line, quickly, and never the line's text (it may
    hold a credential)."""
    path = tmp_path / "file.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    result = verify(*args, str(path), env=cli.env)
    assert result.returncode == 1, result.stderr
    assert says in result.stderr
    assert "Traceback" not in result.stderr
    assert "s3cret" not in result.stderr


def test_an_unreachable_database_is_one_line_without_the_password(cli: Cli) -> None:
    url = f"postgresql://verify:s3cret-pw@127.0.0.1:{free_port()}/verify"
    result = verify("accounts", "create", "X", env={**cli.env, "VERIFY_DATABASE_URL": url})
    assert result.returncode == 1
    assert "Error: the database cannot be used: connection failed" in result.stderr
    assert "Traceback" not in result.stderr
    assert "s3cret-pw" not in result.stderr


def test_a_providers_file_for_an_unknown_account_is_refused(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "providers.yaml"
    path.write_text(f"account: {NO_ACCOUNT}\nproviders:\n  - type: console\n    friendly_name: c\n")
    result = verify("providers", "load", str(path), env=cli.env)
    assert result.returncode == 1
    assert f"Error: no account {NO_ACCOUNT}" in result.stderr
    assert "Traceback" not in result.stderr


# -- settings errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "missing"),
    [
        *((("accounts", "create", "X"), name) for name in SECRETS),
        (("db", "upgrade"), "VERIFY_SECRET_KEY"),
        (("worker", "--burst"), "VERIFY_CODE_KEYS"),
    ],
)
def test_missing_secret_in_production_names_it(
    tmp_path: Path, embedded_redis: str, missing: str, command: tuple[str, ...]
) -> None:
    """In production a missing secret stops the command with one clear line naming the variable."""
    settings = make_settings(f"sqlite:///{tmp_path / 'x.db'}", embedded_redis, tmp_path)
    env = base_env(**settings.as_environ())
    env["VERIFY_ENV"] = "production"
    del env[missing]

    result = verify(*command, env=env, cwd=tmp_path)

    assert result.returncode != 0
    assert missing in result.stderr
    assert "verify secrets" in result.stderr
    assert "Traceback" not in result.stderr
    assert "--help" not in result.stderr  # a setting is missing: the command line was fine
    for other in set(SECRETS) - {missing}:
        assert other not in result.stderr
    assert not (tmp_path / "x.db").exists()


def test_help_without_secrets_lists_commands(tmp_path: Path) -> None:
    """`verify --help` on a fresh install (no settings at all) lists the commands, no traceback."""
    result = verify("--help", env=base_env(), cwd=tmp_path)

    assert result.returncode == 0
    for command in ("accounts", "db", "dev", "keys", "secrets", "services", "worker"):
        assert re.search(rf"^\s+{command}\s", result.stdout, re.MULTILINE), command
    assert result.stderr == ""  # nothing about settings the help does not need


def test_unknown_command_without_secrets_says_only_that(tmp_path: Path) -> None:
    result = verify("nope", env=base_env(), cwd=tmp_path)

    assert result.returncode == 2
    assert "No such command 'nope'" in result.stderr
    assert "VERIFY_" not in result.stderr


def test_secrets_prints_a_working_production_environment(tmp_path: Path) -> None:
    """`verify secrets` prints NAME=value lines that make valid production settings."""
    result = verify("secrets", env=base_env(), cwd=tmp_path)
    assert result.returncode == 0, result.stderr

    lines = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert set(lines) == set(SECRETS)
    settings = Settings.from_env({"VERIFY_ENV": "production", **lines})
    assert settings.operator_token == lines["VERIFY_OPERATOR_TOKEN"]
    assert verify("secrets", env=base_env(), cwd=tmp_path).stdout != result.stdout


# -- verify dev ------------------------------------------------------------------------------------


def _parents() -> dict[int, int]:
    """pid -> parent pid for every process we can see."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name (field 2) may contain spaces; it ends at the last ")".
        fields = stat[stat.rindex(")") + 2 :].split()
        out[int(entry.name)] = int(fields[1])
    return out


def descendants(pid: int) -> set[int]:
    parents = _parents()
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie has exited: only its parent has not reaped it yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


class DevServer:
    """`verify dev` in its own session (process group), so Ctrl-C can be sent as a terminal would."""

    def __init__(self, data_dir: Path, log: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log = log
        args = ["dev", "--host", "127.0.0.1", "--port", str(self.port), "--data-dir", str(data_dir)]
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [str(VERIFY), *args],
                env=base_env(),
                cwd=data_dir.parent,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.children: set[int] = set()

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float = 60) -> dict[str, Any]:
        """dev.json for this run once /readyz answers 200."""
        deadline = time.monotonic() + timeout
        dev_json = self.data_dir / "dev.json"
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"verify dev exited:\n{self.output()}"
            if dev_json.exists():
                try:
                    info: dict[str, Any] = json.loads(dev_json.read_text())
                    ready = httpx.get(f"{self.base_url}/readyz", timeout=2).status_code == 200
                except (ValueError, httpx.HTTPError):
                    ready = False
                # The banner comes last: after it, every child is up.
                banner = "Ctrl-C stops everything" in self.output()
                if ready and banner and info.get("base_url") == self.base_url:
                    self.children = descendants(self.process.pid)
                    return info
            time.sleep(0.2)
        raise AssertionError(f"verify dev was not ready in {timeout}s:\n{self.output()}")

    def interrupt(self, *, whole_group: bool) -> None:
        """SIGINT: to the process group (Ctrl-C in a terminal) or to `verify dev` alone."""
        if whole_group:
            os.killpg(self.process.pid, signal.SIGINT)
        else:
            self.process.send_signal(signal.SIGINT)

    def kill(self) -> None:
        """Last resort after a failed test: the processes this run started, by pid."""
        for pid in self.children | {self.process.pid}:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(10)


@pytest.fixture
def dev_servers(tmp_path: Path) -> Iterator[list[DevServer]]:
    started: list[DevServer] = []
    yield started
    for server in started:
        if server.process.poll() is None or any(alive(pid) for pid in server.children):
            server.kill()


def start_dev(dev_servers: list[DevServer], data_dir: Path) -> DevServer:
    server = DevServer(data_dir, data_dir.parent / f"dev-{len(dev_servers)}.log")
    dev_servers.append(server)
    return server


def wait_for_message(base_url: str, operator_token: str, to: str, timeout: float = 30) -> str:
    """The code of the first message to ``to`` that appears in GET /dev/outbox."""
    headers = {"Authorization": f"Bearer {operator_token}"}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = httpx.get(f"{base_url}/dev/outbox", headers=headers, timeout=5)
        assert r.status_code == 200, r.text
        for message in r.json():
            if message["to"] == to:
                return code_in(str(message["body"]))
        time.sleep(0.2)
    raise AssertionError(f"no message to {to} in the outbox after {timeout}s")


def assert_stops(server: DevServer, timeout: float = 20) -> None:
    """`verify dev` exits 0, every process it started is gone, and none of them crashed."""
    assert server.process.wait(timeout) == 0, server.output()
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in server.children) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = {pid: cmdline(pid) for pid in server.children if alive(pid)}
    assert left == {}, left
    # Redis stops last, so the worker and the web server wind down without connection errors.
    assert "Traceback" not in server.output()


def test_dev_runs_a_verification_and_stops_on_ctrl_c(
    tmp_path: Path, dev_servers: list[DevServer]
) -> None:
    """verify dev: the printed credentials and curl line work, and Ctrl-C stops every child."""
    data_dir = tmp_path / "var"
    server = start_dev(dev_servers, data_dir)
    info = server.wait_ready()

    assert sid_shape("AC").match(info["account_sid"])
    assert sid_shape("VA").match(info["service_sid"])
    assert info["base_url"] == server.base_url
    out = server.output()
    assert info["auth_token"] in out
    assert f"{server.base_url}/v2/Services/{info['service_sid']}/Verifications" in out
    commands = " ".join(cmdline(pid) for pid in server.children)
    for child in ("redis-server", "workers.worker", "gunicorn"):
        assert child in commands, commands

    # The curl line from the banner: curl -u SID:TOKEN URL -d To=... -d Channel=sms
    auth = (info["account_sid"], info["auth_token"])
    service = f"{server.base_url}/v2/Services/{info['service_sid']}"
    r = httpx.post(f"{service}/Verifications", data={"To": TO, "Channel": "sms"}, auth=auth)
    assert (r.status_code, r.json()["status"]) == (201, "pending"), r.text
    code = wait_for_message(server.base_url, info["operator_token"], TO)
    r = httpx.post(f"{service}/VerificationCheck", data={"To": TO, "Code": code}, auth=auth)
    assert (r.status_code, r.json()["status"]) == (200, "approved"), r.text

    server.interrupt(whole_group=True)
    assert_stops(server)


def test_dev_second_start_reuses_the_account(tmp_path: Path, dev_servers: list[DevServer]) -> None:
    """A second run on the same data directory keeps the account, service and secrets."""
    data_dir = tmp_path / "var"
    first = start_dev(dev_servers, data_dir)
    before = first.wait_ready()
    first.interrupt(whole_group=True)
    assert_stops(first)

    second = start_dev(dev_servers, data_dir)
    after = second.wait_ready()

    for field in ("account_sid", "auth_token", "service_sid", "operator_token"):
        assert after[field] == before[field], field
    r = httpx.get(
        f"{second.base_url}/v2/Services/{after['service_sid']}",
        auth=(after["account_sid"], after["auth_token"]),
    )
    assert r.status_code == 200, r.text

    # SIGINT to `verify dev` alone (kill -INT <pid>): it still stops what it started.
    second.interrupt(whole_group=False)
    assert_stops(second)
