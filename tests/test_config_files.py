"""Secrets by file: any setting read from the environment may be given as `NAME_FILE`, the path
of a file holding its value (a Kubernetes Secret or a compose secret mounted as a file)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from idp.cli import main
from idp.config import load_config
from idp.errors import ConfigError


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in ("IDP_SECRET_KEY", "IDP_ENCRYPTION_KEY", "IDP_DATABASE_URL", "IDP_REDIS_URL",
                 "IDP_AMQP_URL", "IDP_METRICS_TOKEN"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"{name}_FILE", raising=False)
    monkeypatch.setenv("IDP_INSTANCE_PATH", str(tmp_path / "instance"))
    return monkeypatch


def secret_file(tmp_path: Path, name: str, content: str) -> Path:
    path = tmp_path / name
    path.write_text(content)
    path.chmod(0o400)
    return path


def test_secret_settings_are_read_from_the_files_their_FILE_variables_name(
    environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    database_url = f"sqlite:///{tmp_path / 'from-file.sqlite3'}"
    files = {
        "IDP_SECRET_KEY": ("s3cret-from-a-mounted-file", "s3cret-from-a-mounted-file\n"),
        "IDP_ENCRYPTION_KEY": ("new-key,old-key", "new-key,old-key\n"),
        "IDP_DATABASE_URL": (database_url, f"{database_url}\n"),
        "IDP_METRICS_TOKEN": ("scrape-token", "  scrape-token \n"),
    }
    for name, (_, content) in files.items():
        environment.setenv(f"{name}_FILE", str(secret_file(tmp_path, name.lower(), content)))

    config = load_config()

    for name, (expected, _) in files.items():
        assert config[name] == expected, name
    # Nothing was generated into instance/ in their place.
    assert not (tmp_path / "instance" / "secret_key").exists()
    assert not (tmp_path / "instance" / "encryption_key").exists()


def test_the_app_signs_sessions_with_the_key_from_the_file(
    environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from idp import create_app

    environment.setenv("IDP_SECRET_KEY_FILE", str(secret_file(tmp_path, "key", "from-file\n")))
    environment.setenv("IDP_DATABASE_URL", f"sqlite:///{tmp_path / 'app.sqlite3'}")
    app = create_app({"TESTING": True})
    assert app.config["SECRET_KEY"] == "from-file"


def test_a_setting_given_both_ways_is_refused(
    environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    environment.setenv("IDP_SECRET_KEY", "from-the-environment")
    environment.setenv("IDP_SECRET_KEY_FILE", str(secret_file(tmp_path, "key", "from-file")))
    with pytest.raises(ConfigError, match="IDP_SECRET_KEY and IDP_SECRET_KEY_FILE are both set"):
        load_config()


@pytest.mark.parametrize("problem", ["missing", "empty", "unreadable"])
def test_a_file_that_gives_no_value_is_refused_without_showing_its_content(
    environment: pytest.MonkeyPatch, tmp_path: Path, problem: str
) -> None:
    path = tmp_path / "encryption-key"
    if problem == "empty":
        secret_file(tmp_path, path.name, " \n")
    elif problem == "unreadable":
        path.mkdir()  # a directory (what a mistyped volume mount leaves): reading it fails
    environment.setenv("IDP_ENCRYPTION_KEY_FILE", str(path))
    with pytest.raises(ConfigError, match=r"^IDP_ENCRYPTION_KEY_FILE: ") as raised:
        load_config()
    assert str(path) in str(raised.value)


def test_the_cli_names_the_unreadable_file_in_one_line(
    environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    environment.setenv("IDP_SECRET_KEY_FILE", str(tmp_path / "not-mounted"))
    result = CliRunner().invoke(main, ["keys", "list"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"error: IDP_SECRET_KEY_FILE: {tmp_path / 'not-mounted'} cannot be read "
        "(No such file or directory)"
    ]
