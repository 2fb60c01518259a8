"""A Flask site with two-step sign-in and phone-verified sign-up, built on ``verify.client``.

Sign up:  username, password, phone, email -> a code by SMS -> the code -> the account is saved
          (the phone number is stored only once it is proven).
Sign in:  username + password -> pick SMS or email -> a code -> the code -> the dashboard.

Everything about codes goes through three client calls: ``verifications.start`` (send or resend),
``verifications.check`` and the exceptions they raise, turned into messages by ``explain``.
Run it against ``verify dev``: see README.md.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import sqlite3
import time
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

from flask import Flask, abort, current_app, flash, g, redirect, render_template, request, session
from flask import url_for as url
from werkzeug.security import check_password_hash, generate_password_hash
from werkzeug.wrappers import Response

from verify.client import (
    Blocked,
    InternalServerError,
    InvalidParameter,
    MaxCheckAttemptsReached,
    MaxSendAttemptsReached,
    NotFoundError,
    RateLimited,
    ServiceUnavailable,
    SmsToLandline,
    TransportError,
    VerificationNotPending,
    VerifyClient,
    VerifyError,
)

HERE = Path(__file__).resolve().parent
SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    phone TEXT NOT NULL,              -- E.164, proven by a code at sign-up
    email TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS signups (  -- sign-ups waiting for their phone code
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    email TEXT NOT NULL,
    created_at REAL NOT NULL
);
"""


# -- configuration --------------------------------------------------------------------------------


def settings_from_environment() -> dict[str, Any]:
    """LOGIN_FLOW_* variables, else the credentials ``verify dev`` wrote to var/dev.json."""
    env = os.environ
    config: dict[str, Any] = {
        "DATABASE": env.get("LOGIN_FLOW_DATABASE", "var/login_flow.db"),
        "SECRET_KEY": env.get("LOGIN_FLOW_SECRET_KEY") or secrets.token_hex(32),
    }
    if env.get("LOGIN_FLOW_VERIFY_URL"):
        return config | {
            "VERIFY_URL": env["LOGIN_FLOW_VERIFY_URL"],
            "VERIFY_ACCOUNT_SID": env["LOGIN_FLOW_ACCOUNT_SID"],
            "VERIFY_AUTH_TOKEN": env["LOGIN_FLOW_AUTH_TOKEN"],
            "VERIFY_SERVICE_SID": env["LOGIN_FLOW_SERVICE_SID"],
        }
    dev = Path(env.get("LOGIN_FLOW_DEV_JSON", "var/dev.json"))
    if not dev.exists():
        raise SystemExit(f"{dev} not found: start `verify dev` first, or set LOGIN_FLOW_VERIFY_URL")
    info = json.loads(dev.read_text())
    return config | {
        "VERIFY_URL": info["base_url"],
        "VERIFY_ACCOUNT_SID": info["account_sid"],
        "VERIFY_AUTH_TOKEN": info["auth_token"],
        "VERIFY_SERVICE_SID": info["service_sid"],
    }


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """The site. ``config`` needs VERIFY_URL, VERIFY_ACCOUNT_SID, VERIFY_AUTH_TOKEN,
    VERIFY_SERVICE_SID, DATABASE and SECRET_KEY (default: ``settings_from_environment()``);
    RESEND_COOLDOWN is the seconds between two sends (default 30)."""
    app = Flask(__name__, root_path=str(HERE))
    app.config.update(RESEND_COOLDOWN=30)
    app.config.update(config if config is not None else settings_from_environment())
    app.extensions["verify"] = VerifyClient(
        app.config["VERIFY_URL"], app.config["VERIFY_ACCOUNT_SID"], app.config["VERIFY_AUTH_TOKEN"]
    )
    Path(app.config["DATABASE"]).parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(app.config["DATABASE"]) as conn:
        conn.executescript(SCHEMA)
    app.teardown_appcontext(_close_db)
    app.before_request(_check_csrf)
    app.context_processor(lambda: {"csrf_token": _csrf_token(), "user": current_user()})
    _routes(app)
    return app


# -- helpers --------------------------------------------------------------------------------------


def verify() -> VerifyClient:
    client: VerifyClient = current_app.extensions["verify"]
    return client


def service_sid() -> str:
    return str(current_app.config["VERIFY_SERVICE_SID"])


def db() -> sqlite3.Connection:
    if "db" not in g:
        g.db = sqlite3.connect(current_app.config["DATABASE"])
        g.db.row_factory = sqlite3.Row
    conn: sqlite3.Connection = g.db
    return conn


def _close_db(_: BaseException | None) -> None:
    conn = g.pop("db", None)
    if conn is not None:
        conn.close()


def _csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return str(session["csrf"])


def _check_csrf() -> None:
    if request.method == "POST":
        sent = request.form.get("csrf_token", "")
        if not secrets.compare_digest(sent, session.get("csrf", "")):
            abort(400, "The form expired; go back and try again.")


def current_user() -> sqlite3.Row | None:
    if "user_id" not in session:
        return None
    row: sqlite3.Row | None = (
        db().execute("SELECT * FROM users WHERE id = ?", (session["user_id"],)).fetchone()
    )
    return row


def login_required(view: Callable[[], Any]) -> Callable[[], Any]:
    @wraps(view)
    def wrapper() -> Any:
        if current_user() is None:
            return redirect(url("signin"))
        return view()

    return wrapper


def mask(destination: str) -> str:
    if "@" in destination:
        local, _, domain = destination.partition("@")
        return f"{local[:1]}•••@{domain}"
    return f"{destination[:2]}•••••{destination[-4:]}"


def wait_text(seconds: int | None) -> str:
    if not seconds:
        return "a little while"
    minutes, secs = divmod(seconds, 60)
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def explain(exc: VerifyError, channel: str) -> str:
    """What to tell the person when a code could not be sent or checked."""
    what = "email address" if channel == "email" else "phone number"
    match exc:
        case VerificationNotPending(verification_status="expired"):
            return "This code has expired. Send a new one."
        case VerificationNotPending():
            return "This code can no longer be used. Send a new one."
        case MaxCheckAttemptsReached():
            return "Too many wrong codes. Send a new code to try again."
        case MaxSendAttemptsReached(retry_after=seconds):
            return f"Too many codes were sent to this {what}. Try again in {wait_text(seconds)}."
        case RateLimited(retry_after=seconds):
            return f"Too many attempts. Try again in {wait_text(seconds)}."
        case Blocked():
            return f"We can't send codes to this {what}. Use another method or contact support."
        case SmsToLandline():
            return "This number is a landline and can't receive text messages."
        case InvalidParameter(parameter="To"):
            reason = exc.message.split(": ", 1)[-1].rstrip(".")  # Verify says why
            return f"This {what} can't be used: {reason}."
        case InvalidParameter(parameter="Code"):
            return "Enter the code exactly as you received it: digits only."
        case NotFoundError():
            return "No code is waiting to be checked. Send a new one."
        case TransportError() | ServiceUnavailable() | InternalServerError():
            return "We couldn't reach the verification service. Try again in a moment."
    current_app.logger.error("verification failed: %r", exc)
    return "Something went wrong with the verification. Try again later."


def send_code(to: str, channel: str, *, again: bool = False) -> str | None:
    """Send (or resend) a code; remember what is pending. Returns an error message, or None."""
    try:
        verification = verify().verifications.start(service_sid(), to, channel)
    except VerifyError as exc:
        return explain(exc, channel)
    pending = session.get("pending", {})
    session["pending"] = pending | {
        "to": verification.to,  # normalized by Verify (E.164 / lower-case domain)
        "channel": channel,
        "sid": verification.sid,
        "sent_at": time.time(),
    }
    if again:
        how = "email" if channel == "email" else "SMS"
        flash(f"We sent a new code by {how} to {mask(verification.to)}.", "info")
    return None


def resend_wait() -> int:
    """Seconds until another code may be sent for the pending verification."""
    sent_at = session.get("pending", {}).get("sent_at", 0.0)
    return max(0, math.ceil(sent_at + current_app.config["RESEND_COOLDOWN"] - time.time()))


# -- views ----------------------------------------------------------------------------------------


def _routes(app: Flask) -> None:
    @app.get("/")
    def home() -> Response:
        return redirect(url("dashboard" if current_user() else "signin"))

    @app.route("/signup", methods=["GET", "POST"])
    def signup() -> Any:
        if request.method == "GET":
            return render_template("signup.html")
        form = request.form
        username, password = form["username"].strip(), form["password"]
        phone, email = form["phone"].strip(), form["email"].strip()
        error = None
        if not username or len(password) < 8:
            error = "Choose a username and a password of at least 8 characters."
        elif "@" not in email:
            error = "Enter your email address."
        elif db().execute("SELECT 1 FROM users WHERE username = ?", (username,)).fetchone():
            error = "That username is taken."
        if error is None:
            session["pending"] = {"purpose": "signup", "signup": secrets.token_urlsafe(16)}
            error = send_code(phone, "sms")
        if error is not None:
            flash(error, "error")
            return render_template("signup.html", form=form), 400
        with db() as conn:
            conn.execute(
                "INSERT INTO signups VALUES (?, ?, ?, ?, ?)",
                (
                    session["pending"]["signup"],
                    username,
                    generate_password_hash(password),
                    email,
                    time.time(),
                ),
            )
        return redirect(url("code"))

    @app.route("/signin", methods=["GET", "POST"])
    def signin() -> Any:
        if request.method == "GET":
            return render_template("signin.html")
        row = (
            db()
            .execute("SELECT * FROM users WHERE username = ?", (request.form["username"].strip(),))
            .fetchone()
        )
        if row is None or not check_password_hash(row["password_hash"], request.form["password"]):
            flash("Wrong username or password.", "error")
            return render_template("signin.html", form=request.form), 401
        session.clear()
        session["password_ok"] = row["id"]  # first factor done; the second comes next
        return redirect(url("method"))

    @app.route("/signin/method", methods=["GET", "POST"])
    def method() -> Any:
        row = (
            db()
            .execute("SELECT * FROM users WHERE id = ?", (session.get("password_ok"),))
            .fetchone()
        )
        if row is None:
            return redirect(url("signin"))
        if request.method == "GET":
            return render_template(
                "method.html", phone=mask(row["phone"]), email=mask(row["email"])
            )
        channel = "email" if request.form.get("channel") == "email" else "sms"
        session["pending"] = {"purpose": "signin", "user_id": row["id"]}
        error = send_code(row["email"] if channel == "email" else row["phone"], channel)
        if error is not None:
            flash(error, "error")
            return redirect(url("method"))
        return redirect(url("code"))

    @app.route("/code", methods=["GET", "POST"])
    def code() -> Any:
        pending = session.get("pending")
        if not pending or "sid" not in pending:
            return redirect(url("signin"))
        if request.method == "GET":
            return render_template(
                "code.html", pending=pending, to=mask(pending["to"]), wait=resend_wait()
            )
        try:
            check = verify().verifications.check(
                service_sid(), request.form["code"].strip(), verification_sid=pending["sid"]
            )
        except VerifyError as exc:
            flash(explain(exc, pending["channel"]), "error")
            return redirect(url("code"))
        if check.status != "approved":
            flash("That code isn't right. Check the message and try again.", "error")
            return redirect(url("code"))
        return finish_signup(pending) if pending["purpose"] == "signup" else finish_signin(pending)

    @app.post("/code/resend")
    def resend() -> Response:
        pending = session.get("pending")
        if not pending or "sid" not in pending:
            return redirect(url("signin"))
        wait = resend_wait()
        if wait:  # the button is disabled until then; this is for whoever skips the page
            flash(f"Please wait {wait} s before asking for another code.", "error")
        elif (error := send_code(pending["to"], pending["channel"], again=True)) is not None:
            flash(error, "error")
        return redirect(url("code"))

    @app.get("/dashboard")
    @login_required
    def dashboard() -> str:
        return render_template("dashboard.html")

    @app.post("/signout")
    def signout() -> Response:
        session.clear()
        flash("You are signed out.", "info")
        return redirect(url("signin"))


def finish_signup(pending: dict[str, Any]) -> Response:
    with db() as conn:
        row = conn.execute("SELECT * FROM signups WHERE id = ?", (pending["signup"],)).fetchone()
        conn.execute("DELETE FROM signups WHERE id = ?", (pending["signup"],))
        if row is None:  # already finished in another tab
            session.pop("pending")
            return redirect(url("signin"))
        try:
            cursor = conn.execute(
                "INSERT INTO users (username, password_hash, phone, email) VALUES (?, ?, ?, ?)",
                (row["username"], row["password_hash"], pending["to"], row["email"]),
            )
        except sqlite3.IntegrityError:  # someone took the username meanwhile
            session.pop("pending")
            flash("That username was taken meanwhile; choose another.", "error")
            return redirect(url("signup"))
    session.clear()
    session["user_id"] = cursor.lastrowid
    flash("Your phone number is verified and your account is ready.", "info")
    return redirect(url("dashboard"))


def finish_signin(pending: dict[str, Any]) -> Response:
    session.clear()
    session["user_id"] = pending["user_id"]
    return redirect(url("dashboard"))


if __name__ == "__main__":
    port = int(os.environ.get("LOGIN_FLOW_PORT", "5000"))
    create_app().run(host="127.0.0.1", port=port)
