"""Architecture rules that a reviewer would otherwise have to remember."""

import ast
import importlib
import pkgutil
from pathlib import Path

import verify

WEB = ("flask", "werkzeug", "marshmallow", "flask_smorest", "webargs")
ROOT = Path(verify.__file__).parent


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_domain_imports_no_web_framework():
    """verify/domain is plain Python: no Flask, werkzeug or marshmallow."""
    offenders = {
        str(path.relative_to(ROOT)): sorted(n for n in imports(path) if n.split(".")[0] in WEB)
        for path in (ROOT / "domain").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_only_config_reads_the_environment():
    """Settings are parsed in one place; nothing else reads os.environ."""
    readers = [
        str(path.relative_to(ROOT))
        for path in ROOT.rglob("*.py")
        if "os.environ" in path.read_text() or "getenv" in path.read_text()
    ]
    assert sorted(readers) == ["config.py", "devserver.py"]


def test_importing_any_module_does_no_io(monkeypatch):
    """Every module imports without opening a socket."""
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError("network I/O at import time")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    for module in pkgutil.walk_packages([str(ROOT)], prefix="verify."):
        importlib.import_module(module.name)
