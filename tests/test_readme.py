"""The README is the contract with users: every validation code and command it promises exists."""

from pathlib import Path

from imports.report import CODES

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def test_every_validation_code_is_documented():
    assert [code for code in CODES if f"| `{code}` |" not in README] == []


def test_every_documented_command_exists(app):
    commands = set(app.cli.list_commands(app.app_context()))
    for name in ("init-db", "demo", "agencies", "users", "template", "validate", "import", "compliance", "rules", "summaries", "worker"):
        assert name in commands and f"`{name}" in README
