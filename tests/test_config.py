from __future__ import annotations

from pathlib import Path

import pytest

from hub.config import Settings


def test_precedence_defaults_file_env_flags(tmp_path: Path) -> None:
    (tmp_path / "gpshub.toml").write_text(
        'port = 9000\nhost = "0.0.0.0"\nallowed_origins = ["https://a.example"]\n'
    )
    env = {"GPSHUB_DATA_DIR": str(tmp_path), "GPSHUB_PORT": "9100"}
    s = Settings.load(environ=env)
    assert (s.host, s.port, s.allowed_origins) == ("0.0.0.0", 9100, ("https://a.example",))
    assert s.db_url == f"sqlite:///{tmp_path / 'gpshub.db'}"
    s = Settings.load(environ=env, port=9200)
    assert s.port == 9200
    s = Settings.load(environ={**env, "GPSHUB_ALLOWED_ORIGINS": "https://b, https://c"})
    assert s.allowed_origins == ("https://b", "https://c")


def test_bad_settings_name_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'port'"):
        Settings.load(environ={"GPSHUB_DATA_DIR": str(tmp_path), "GPSHUB_PORT": "eighty"})
    (tmp_path / "gpshub.toml").write_text("colour = 'blue'\n")
    with pytest.raises(ValueError, match="unknown setting 'colour'"):
        Settings.load(environ={"GPSHUB_DATA_DIR": str(tmp_path)})
    (tmp_path / "gpshub.toml").write_text("port = \n")
    with pytest.raises(ValueError, match=r"gpshub\.toml"):
        Settings.load(environ={"GPSHUB_DATA_DIR": str(tmp_path)})


def test_database_password_is_hidden_in_messages() -> None:
    s = Settings(database_url="postgresql+psycopg://gps:pa55@db/gps")
    assert "pa55" not in s.redacted_db_url()
