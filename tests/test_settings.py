from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from app.settings import Settings


def test_the_default_database_is_a_sqlite_file_under_the_data_folder(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path)
    assert settings.database_url == f"sqlite:///{tmp_path / 'navigator.sqlite3'}"


def test_production_refuses_placeholder_secrets() -> None:
    with pytest.raises(ValidationError, match="NAVIGATOR_SECRET_KEY"):
        Settings(_env_file=None, env="production", database_url="postgresql+psycopg://db/navigator")


def test_production_refuses_sqlite() -> None:
    with pytest.raises(ValidationError, match="PostgreSQL"):
        Settings(
            _env_file=None, env="production", secret_key="x" * 40, database_url="sqlite:///a.db"
        )


def test_secrets_never_print() -> None:
    settings = Settings(_env_file=None, twilio_auth_token="tok-123456")
    assert "tok-123456" not in repr(settings)


def test_trusted_proxies_default_to_none_and_read_a_comma_list_or_json(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings(_env_file=None).trusted_proxies == []
    monkeypatch.setenv("NAVIGATOR_TRUSTED_PROXIES", "10.0.0.5, 10.0.0.6")
    assert Settings(_env_file=None).trusted_proxies == ["10.0.0.5", "10.0.0.6"]
    monkeypatch.setenv("NAVIGATOR_TRUSTED_PROXIES", '["192.0.2.1"]')
    assert Settings(_env_file=None).trusted_proxies == ["192.0.2.1"]


def test_body_limits_stay_within_a_few_kilobytes_and_sixteen_megabytes() -> None:
    with pytest.raises(ValidationError):
        Settings(_env_file=None, body_limit_json_bytes=10)
    settings = Settings(_env_file=None)
    assert settings.body_limit_sign_in_bytes <= settings.body_limit_json_bytes <= 1024 * 1024
