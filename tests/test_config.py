"""Configuration loading: valid file, and one clear error (file, line, key) for each mistake."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from triage.config import DEFAULT_CONFIG, load_settings
from triage.errors import ConfigError

GOOD = DEFAULT_CONFIG.read_text("utf-8")


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "config").mkdir(exist_ok=True)
    path = tmp_path / "config" / "departments.yaml"
    # Keep the shipped templates reachable from the temporary copy.
    text = text.replace("templates_dir: ../templates",
                        f"templates_dir: {DEFAULT_CONFIG.parent.parent / 'templates'}")
    path.write_text(text, "utf-8")
    return path


def line_of(text: str, needle: str, nth: int = 1) -> int:
    count = 0
    for number, line in enumerate(text.splitlines(), 1):
        if needle in line:
            count += 1
            if count == nth:
                return number
    raise AssertionError(needle)


def test_shipped_configuration_loads():
    """The shipped file loads into five frozen departments with their mailboxes."""
    settings = load_settings(DEFAULT_CONFIG)
    assert [d.code for d in settings.departments] == ["07", "26", "38", "73", "74"]
    assert settings.department("38").mailbox == "ddfip38.pgp.spl-pes@dgfip.finances.gouv.fr"
    with pytest.raises(ValidationError):
        settings.departments[0].code = "99"  # type: ignore[misc]


def test_unknown_key_names_line_and_path(tmp_path):
    """A misspelt key is refused with its line and key path."""
    text = GOOD.replace("    extra_sender_domains: []", "    extra_sender_domain: []", 1)
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert err.value.line == line_of(text, "extra_sender_domain:")
    assert err.value.key == "departments[0].extra_sender_domain"
    assert "unknown key" in str(err.value) and str(path) in str(err.value)


def test_duplicate_department_code(tmp_path):
    """Two departments with one code: the second code's line is named."""
    text = GOOD.replace('code: "26"', 'code: "07"')
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert err.value.key == "departments[1].code"
    assert err.value.line == line_of(text, 'code: "07"', 2)
    assert "duplicate department code" in err.value.message


def test_malformed_mailbox_address(tmp_path):
    """A mailbox that is not an e-mail address is refused at its line."""
    text = GOOD.replace("mailbox: ddfip38.pgp.spl-pes@dgfip.finances.gouv.fr",
                        "mailbox: ddfip38.pgp.spl-pes@@dgfip")
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert err.value.key == "departments[2].mailbox"
    assert err.value.line == line_of(text, "mailbox: ddfip38")
    assert "not a valid e-mail address" in err.value.message


def test_missing_template(tmp_path):
    """A template file that does not exist is named with the key that asks for it."""
    text = GOOD.replace("reset_password: reset_password.txt.j2", "reset_password: nope.txt.j2")
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert err.value.key == "templates.reset_password"
    assert err.value.line == line_of(text, "reset_password: nope.txt.j2")
    assert "'nope.txt.j2' does not exist" in err.value.message


def test_duplicate_yaml_key_and_bad_yaml(tmp_path):
    """A key written twice, and YAML that does not parse, both name their line."""
    text = GOOD.replace("data_dir: ../var", "data_dir: ../var\ndata_dir: /tmp")
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path, text))
    assert "duplicate key" in err.value.message and err.value.key == "data_dir"
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path, GOOD + "\n  - code: [unclosed\n"))
    assert err.value.line is not None and "invalid YAML" in err.value.message


def test_check_config_command_exits_2_with_one_line(tmp_path):
    """`triage check-config` prints one error line naming file, line and key, and exits 2."""
    text = GOOD.replace("    name: Isère", "    name: Isère\n    colour: blue")
    path = write(tmp_path, text)
    run = subprocess.run([sys.executable, "-m", "triage", "check-config", "--config", str(path)],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1
    assert f"{path}:{line_of(text, 'colour: blue')}: departments[2].colour: unknown key" in lines[0]
    ok = subprocess.run([sys.executable, "-m", "triage", "check-config", "--config",
                         str(write(tmp_path, GOOD))], capture_output=True, text=True, check=False)
    assert ok.returncode == 0 and "OK" in ok.stdout
