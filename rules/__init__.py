"""Rules: rule packs as data (packs.py), periods, the compliance engine, explanations and their commands."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Check the rule packs at start-up and register the `compliance` and `rules` commands.

    A broken pack is refused and logged with its file, rule and field; the app still starts so that
    `flask rules check` can say what is wrong and the other packs stay usable."""
    from rules import cli
    from rules.packs import check_packs

    packs, errors = check_packs()
    for error in errors:
        app.logger.error("rule pack refused: %s", error)
    if app.config.get("RULE_PACK") not in packs:
        app.logger.error("the configured rule pack %r is not available", app.config.get("RULE_PACK"))
    cli.init_app(app)
