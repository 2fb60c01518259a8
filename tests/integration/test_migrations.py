"""Migrations: up, down and up again on a fresh database, and no drift from the ORM models."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Engine, MetaData, String, create_engine, inspect, make_url, text

from tests.conftest import Backend, make_settings
from verify import migrate
from verify.db import make_engine, normalize_url
from verify.models import Base

VERSION_TABLE = "alembic_version"


@pytest.fixture
def fresh_engine(backend: Backend, tmp_path: Path) -> Iterator[Engine]:
    """An engine on a database nobody has migrated: a new SQLite file or a new PostgreSQL database."""
    if backend.name == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
        yield engine
        engine.dispose()
        return
    server = make_url(normalize_url(backend.database_url))
    name = f"verify_mig_{secrets.token_hex(6)}"
    admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(server.set(database=name).render_as_string(hide_password=False))
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def _drift(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))


def test_upgrade_downgrade_upgrade(fresh_engine: Engine) -> None:
    """Upgrade to head, downgrade to base (no tables left), and upgrade to head again."""
    expected = set(Base.metadata.tables)

    migrate.upgrade(fresh_engine)
    assert _tables(fresh_engine) == expected | {VERSION_TABLE}

    migrate.downgrade(fresh_engine, "base")
    assert _tables(fresh_engine) <= {VERSION_TABLE}
    if VERSION_TABLE in _tables(fresh_engine):
        with fresh_engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 0

    migrate.upgrade(fresh_engine)
    assert _tables(fresh_engine) == expected | {VERSION_TABLE}


def test_head_is_single_and_recorded(fresh_engine: Engine) -> None:
    """After an upgrade the database records the one head revision of the migration scripts."""
    script = ScriptDirectory.from_config(migrate.alembic_config(fresh_engine))
    heads = script.get_heads()
    assert len(heads) == 1

    migrate.upgrade(fresh_engine)
    with fresh_engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_heads() == tuple(heads)


def test_no_drift_between_migrations_and_models(fresh_engine: Engine) -> None:
    """Autogenerate finds nothing to change between the migrated schema and verify.models."""
    migrate.upgrade(fresh_engine)
    assert _drift(fresh_engine) == []


def test_cli_db_upgrade_on_a_fresh_sqlite_file(tmp_path: Path, embedded_redis: str) -> None:
    """`verify db upgrade` migrates a new SQLite file to head."""
    db = tmp_path / "cli.db"
    settings = make_settings(f"sqlite:///{db}", embedded_redis, tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VERIFY_")}
    env.update(settings.as_environ())
    verify = Path(sys.executable).with_name("verify")

    result = subprocess.run(
        [str(verify), "db", "upgrade"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert "head" in result.stdout
    engine = make_engine(f"sqlite:///{db}")
    try:
        assert _tables(engine) == set(Base.metadata.tables) | {VERSION_TABLE}
        assert _drift(engine) == []
    finally:
        engine.dispose()


def test_drift_check_sees_a_changed_model(fresh_engine: Engine) -> None:
    """The comparison is not vacuous: a new column and a changed type on the models both show up."""
    migrate.upgrade(fresh_engine)
    changed = MetaData(naming_convention=Base.metadata.naming_convention)
    for table in Base.metadata.sorted_tables:
        table.to_metadata(changed)
    changed.tables["accounts"].append_column(Column("nickname", String(16), nullable=True))
    changed.tables["accounts"].c.friendly_name.type = String(200)

    with fresh_engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = compare_metadata(context, changed)

    kinds = {d[0] if isinstance(d, tuple) else d[0][0] for d in diffs}
    assert kinds == {"add_column", "modify_type"}
