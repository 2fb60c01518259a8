"""The rules file (``verify fraud load rules.yaml`` / ``verify fraud export``): every account's rules
as YAML. Loading makes an account's rules exactly those of the file (see ``FraudRules.replace_all``).

    version: 1
    accounts:
      AC0123…:
        - type: geo_permissions
          service: VA0123…        # omit (or null) for every service of the account
          mode: enforce           # or monitor
          channels: [sms, call]   # omit for the type's default channels
          priority: 10
          params: {allow: [US, CA, GB], default: block}
"""

from __future__ import annotations

from typing import Any

import yaml

from verify.domain.text import load_yaml, refusal
from verify.errors import InvalidParameter

VERSION = 1


def dump(rules: dict[str, list[dict[str, Any]]]) -> str:
    document = {"version": VERSION, "accounts": rules}
    return yaml.safe_dump(document, sort_keys=False, default_flow_style=None, width=100)


def parse(text: str | bytes) -> dict[str, list[dict[str, Any]]]:
    try:
        document = load_yaml(text)
    except ValueError as exc:
        raise InvalidParameter("rules", str(exc)) from None
    problem = refusal(document)
    if problem:
        raise InvalidParameter("rules", problem)
    if not isinstance(document, dict) or document.get("version") != VERSION:
        raise InvalidParameter("version", f"the rules file must start with version: {VERSION}")
    accounts = document.get("accounts") or {}
    if not isinstance(accounts, dict):
        raise InvalidParameter("accounts", "must map account sids to lists of rules")
    out: dict[str, list[dict[str, Any]]] = {}
    for account, rules in accounts.items():
        if not isinstance(account, str) or not account.startswith("AC"):
            raise InvalidParameter("accounts", f"{account!r} is not an account sid")
        if rules is None:
            rules = []
        if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
            raise InvalidParameter("accounts", f"{account}: expected a list of rules")
        out[account] = rules
    return out
