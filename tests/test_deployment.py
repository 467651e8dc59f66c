"""The Dockerfile, read rather than built (no Docker here): stages, non-root user, commands."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from typer.testing import CliRunner

from app.cli import app as cli_app

DOCKERFILE = Path(__file__).resolve().parents[1] / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    parsed = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            parsed.append((keyword.upper(), rest.strip()))
    return parsed


def test_the_image_is_built_in_a_node_stage_and_a_python_stage() -> None:
    stages = [rest for keyword, rest in instructions() if keyword == "FROM"]

    assert len(stages) == 2
    assert re.match(r"node:\S+ AS frontend", stages[0])
    assert re.match(r"python:3\.11-slim\S* AS \w+", stages[1])
    copies = [rest for keyword, rest in instructions() if keyword == "COPY"]
    assert any(rest.startswith("--from=frontend ") for rest in copies)


def test_the_service_runs_as_a_non_root_user() -> None:
    parsed = instructions()
    users = [(index, rest) for index, (keyword, rest) in enumerate(parsed) if keyword == "USER"]
    cmd_index = next(index for index, (keyword, _) in enumerate(parsed) if keyword == "CMD")

    assert users, "no USER instruction: the image would run as root"
    last_index, user = users[-1]
    assert user not in {"root", "0", "0:0"}
    assert last_index < cmd_index


def test_the_default_command_migrates_then_serves_with_several_workers() -> None:
    cmd = next(rest for keyword, rest in instructions() if keyword == "CMD")
    shell = " ".join(shlex.split(cmd.strip("[]").replace(",", " ")))

    assert shell.index("navigator db upgrade") < shell.index("navigator serve")
    assert "--workers" in shell
    assert "--host 0.0.0.0" in shell
    assert "NAVIGATOR_ENV=production" in DOCKERFILE.read_text(encoding="utf-8")


def test_the_worker_process_type_exists() -> None:
    result = CliRunner().invoke(cli_app, ["worker", "--help"])

    assert result.exit_code == 0
    assert "dispatcher" in result.output
