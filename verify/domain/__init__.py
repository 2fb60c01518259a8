"""Pure domain logic: no Flask, werkzeug or marshmallow here (a test enforces it)."""
