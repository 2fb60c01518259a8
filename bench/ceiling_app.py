"""The two ceilings the API is measured against: a tiny Flask app run under the same gunicorn settings.

POST /constant  returns a constant JSON body (the cost of gunicorn + Flask + the HTTP round trip).
POST /insert    inserts one row into ``bench_ceiling_rows`` in the same PostgreSQL database, through
                SQLAlchemy with the app's own engine settings (``verify.db.make_engine``: same pool
                size, overflow and pre-ping) and an ORM session, and returns its id.

Both accept (and /insert reads) the same form body the API requests carry, so request sizes match.
Started by bench_api.py as ``gunicorn 'ceiling_app:create_app()'`` with BENCH_DATABASE_URL set.
"""

from __future__ import annotations

import os
from datetime import datetime

import flask
from sqlalchemy import BigInteger, DateTime, String, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from verify.db import make_engine, make_session_factory

CONSTANT = b'{"status":"ok"}'


class Base(DeclarativeBase):
    pass


class CeilingRow(Base):
    __tablename__ = "bench_ceiling_rows"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    payload: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


def create_app() -> flask.Flask:
    engine = make_engine(os.environ["BENCH_DATABASE_URL"])
    sessions = make_session_factory(engine)
    app = flask.Flask("ceiling")
    app.extensions["engine"] = engine  # for bench/profile_api.py's statement counters

    @app.post("/constant")
    def constant() -> flask.Response:
        return flask.Response(CONSTANT, 200, content_type="application/json")

    @app.post("/insert")
    def insert() -> flask.Response:
        row = CeilingRow(payload=flask.request.form.get("To", "")[:64])
        with sessions() as session, session.begin():
            session.add(row)
            session.flush()
            row_id = row.id
        return flask.Response(f'{{"id":{row_id}}}', 201, content_type="application/json")

    return app
