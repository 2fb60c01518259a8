"""WSGI entry point: ``gunicorn app:app``."""

from verify.app import create_app_from_env

app = create_app_from_env()
