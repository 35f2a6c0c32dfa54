import logging
import os

import pytest

from sft_playbook import secrets


@pytest.fixture
def clean_env(monkeypatch):
    for key in ("HF_TOKEN", "WANDB_API_KEY", "WANDB_PROJECT", "HF_ENDPOINT"):
        monkeypatch.delenv(key, raising=False)
    return monkeypatch


def test_token_env_is_read_and_never_logged(tmp_path, clean_env, caplog):
    f = tmp_path / "token.env"
    f.write_text("# comment\nHF_TOKEN=hf_secretvalue123\nexport WANDB_API_KEY='wb_secret_456'\nWANDB_PROJECT=\n")
    with caplog.at_level(logging.DEBUG):
        names = secrets.load_token_env(f)
    assert os.environ["HF_TOKEN"] == "hf_secretvalue123"
    assert os.environ["WANDB_API_KEY"] == "wb_secret_456"
    assert "HF_TOKEN" in names and "WANDB_PROJECT" not in names
    assert "hf_secretvalue123" not in caplog.text and "wb_secret_456" not in caplog.text


def test_environment_wins_over_token_env(tmp_path, clean_env):
    clean_env.setenv("HF_TOKEN", "from_env")
    f = tmp_path / "token.env"
    f.write_text("HF_TOKEN=from_file\n")
    secrets.load_token_env(f)
    assert os.environ["HF_TOKEN"] == "from_env"


def test_bad_line_names_file_and_line_but_not_the_value(tmp_path, clean_env):
    f = tmp_path / "token.env"
    f.write_text("HF_TOKEN=ok\nthis-line-has-hf_leak\n")
    with pytest.raises(secrets.TokenFileError) as err:
        secrets.load_token_env(f)
    assert f"{f}:2" in str(err.value)
    assert "hf_leak" not in str(err.value)


def test_redact(clean_env):
    clean_env.setenv("HF_TOKEN", "hf_abcdef")
    assert secrets.redact("auth failed for hf_abcdef") == "auth failed for <HF_TOKEN>"
