"""Console pages: an account's fraud rules and geo permissions — view, create, edit, delete — through
the abuse area's ``FraudRules`` (validated, audited as ``console``, effective without a restart)."""

from __future__ import annotations

import json
from typing import Any

import flask
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response

from verify.abuse.registry import RuleFields
from verify.api import context
from verify.console import queries, services
from verify.console.web import blp, render
from verify.domain import fraud
from verify.domain.destinations import CHANNELS
from verify.domain.text import json_object
from verify.errors import InvalidParameter
from verify.models.abuse import FraudRule

GEO_ACTIONS = ("allow", "block", "monitor")
MAX_RULES_SHOWN = 200


@blp.get("/fraud")
def fraud_rules() -> Response | tuple[str, int]:
    found = queries.accounts(context.session())
    if len(found) == 1:
        return flask.redirect(flask.url_for("console.fraud_account", account_sid=found[0].sid))
    return render("fraud_accounts.html", accounts=found)


@blp.get("/fraud/<account_sid>")
def fraud_account(account_sid: str) -> tuple[str, int]:
    return _account_page(account_sid)


def _account_page(account_sid: str, status: int = 200, **form: Any) -> tuple[str, int]:
    account = queries.account(context.session(), account_sid)
    if account is None:
        raise NotFound(f"No account {account_sid}.")
    rules = services.fraud_rules()
    mine = rules.page(account_sid, 0, MAX_RULES_SHOWN)
    own_types = {r.type for r in mine}
    defaults = [r for r in fraud.DEFAULT_RULES if r.type not in own_types]
    return render(
        "fraud.html",
        status,
        account=account,
        rules=mine,
        defaults=defaults,
        geo=[r for r in mine if r.type == "geo_permissions"],
        geo_default=next((r for r in fraud.DEFAULT_RULES if r.type == "geo_permissions"), None),
        changes=rules.changes(account_sid, 0, 20),
        decisions=rules.decisions(account_sid, 0, 20, None),
        types=fraud.TYPES,
        modes=fraud.MODES,
        channels=CHANNELS,
        services=[s for s in queries.services(context.session()) if s.account_sid == account_sid],
        **form,
    )


@blp.get("/fraud/<account_sid>/rules/<sid>")
def fraud_rule(account_sid: str, sid: str) -> tuple[str, int]:
    rule = services.fraud_rules().get(account_sid, sid)
    return _rule_page(account_sid, rule)


def _rule_page(
    account_sid: str, rule: FraudRule, status: int = 200, **form: Any
) -> tuple[str, int]:
    return render(
        "fraud_rule.html",
        status,
        account_sid=account_sid,
        rule=rule,
        modes=fraud.MODES,
        channels=CHANNELS,
        params_json=form.pop("params_json", json.dumps(rule.params, indent=2, sort_keys=True)),
        geo_actions=GEO_ACTIONS,
        **form,
    )


@blp.post("/fraud/<account_sid>/rules/<sid>")
def update_fraud_rule(account_sid: str, sid: str) -> Response | tuple[str, int]:
    rules = services.fraud_rules()
    rule = rules.get(account_sid, sid)
    try:
        fields = rule_fields(flask.request.form, rule.type)
        rules.update(account_sid, sid, fields)
    except InvalidParameter as exc:
        # Shown on the form, which keeps what was typed; nothing was changed.
        return _rule_page(
            account_sid,
            rule,
            400,
            error=exc.detail,
            params_json=flask.request.form.get("params", ""),
        )
    flask.flash(f"Rule {sid} ({rule.type}) saved; it applies to the next send.", "success")
    return flask.redirect(flask.url_for("console.fraud_account", account_sid=account_sid))


@blp.post("/fraud/<account_sid>/rules")
def create_fraud_rule(account_sid: str) -> Response | tuple[str, int]:
    form = flask.request.form
    try:
        rule = services.fraud_rules().create(account_sid, rule_fields(form, form.get("type", "")))
    except InvalidParameter as exc:
        return _account_page(account_sid, 400, error=exc.detail, draft=form)
    flask.flash(f"Rule {rule.sid} ({rule.type}) created; it applies to the next send.", "success")
    return flask.redirect(flask.url_for("console.fraud_account", account_sid=account_sid))


@blp.post("/fraud/<account_sid>/rules/<sid>/delete")
def delete_fraud_rule(account_sid: str, sid: str) -> Response:
    services.fraud_rules().delete(account_sid, sid)
    flask.flash(f"Rule {sid} deleted.", "success")
    return flask.redirect(flask.url_for("console.fraud_account", account_sid=account_sid))


def rule_fields(form: MultiDict[str, str], type_: str) -> RuleFields:
    """A rule form as the registry takes it. Geo permissions come as three country lists and a
    default; other types' parameters as a JSON object."""
    if type_ == "geo_permissions" and "default" in form:
        params: dict[str, Any] = {a: _countries(form.get(a, "")) for a in GEO_ACTIONS}
        params["default"] = form["default"]
    else:
        params = _json_object(form.get("params", "") or "{}")
    priority = form.get("priority", "").strip()
    if priority and not priority.lstrip("-").isdigit():
        raise InvalidParameter("Priority", "must be a whole number")
    return RuleFields(
        type=type_ or None,
        params=params,
        mode=form.get("mode") or None,
        service_sid=form.get("service_sid") or None,
        channels=tuple(form.getlist("channels")),
        priority=int(priority) if priority else None,
        enabled=form.get("enabled") == "on",
        description=form.get("description", "").strip() or None,
    )


def _countries(raw: str) -> list[str]:
    return [c for c in (part.strip().upper() for part in raw.replace(";", ",").split(",")) if c]


def _json_object(raw: str) -> dict[str, Any]:
    try:
        return json_object(raw)
    except ValueError as exc:
        raise InvalidParameter("Params", str(exc)) from None
