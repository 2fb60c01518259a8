"""WSGI entry point: ``gunicorn app:app``."""

from verify.app import create_app
from verify.config import Settings

app = create_app(Settings.from_env())
