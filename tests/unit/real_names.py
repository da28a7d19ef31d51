"""What deployment files may name: the CLI's commands and the settings' environment variables."""

from __future__ import annotations

from typer.main import get_command

from services.cli import app
from services.settings import Settings


def cli_commands() -> set[tuple[str, ...]]:
    """Every command of `koopkracht`, as its words: ("worker",), ("topics", "ensure"), ..."""
    root = get_command(app)
    found: set[tuple[str, ...]] = set()
    for name, command in root.commands.items():  # type: ignore[attr-defined]
        found.add((name,))
        for sub in getattr(command, "commands", {}):
            found.add((name, sub))
    return found


def setting_variables() -> set[str]:
    """Every KOOPKRACHT_* variable that Settings reads (its env_prefix and field names)."""
    prefix = Settings.model_config.get("env_prefix", "")
    return {f"{prefix}{name}".upper() for name in Settings.model_fields}
