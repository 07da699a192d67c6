"""The routing YAML is the one source of departments: a department added there alone is routed
to by its mailbox and by content (its communes and postal codes come from the data for all of
France), and a code the data does not know is refused with file, line and key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from triage.config import DEFAULT_CONFIG, Settings, load_settings
from triage.errors import ConfigError
from triage.pipeline import triage_bytes
from triage.rules import department
from triage.rules.communes import commune_index

from .conftest import DATA, reasons

AIN = '''  - code: "01"
    name: Ain
    mailbox: ddfip01.pgp.spl-pes@dgfip.finances.gouv.fr
    signature: |
      Pôle de gestion publique – Service SPL PES
      Direction départementale des Finances publiques de l'Ain
'''


def config_with(tmp_path: Path, block: str) -> tuple[Path, str]:
    """The shipped configuration with ``block`` added first under ``departments``."""
    text = DEFAULT_CONFIG.read_text("utf-8")
    text = text.replace("templates_dir: ../templates",
                        f"templates_dir: {DEFAULT_CONFIG.parent.parent / 'templates'}")
    text = text.replace('departments:\n  - code: "07"', f'departments:\n{block}  - code: "07"')
    path = tmp_path / "departments.yaml"
    path.write_text(text, "utf-8")
    return path, text


@pytest.fixture()
def with_ain(tmp_path: Path) -> Settings:
    return load_settings(config_with(tmp_path, AIN)[0])


def decide(fixture: str, settings: Settings) -> tuple[str | None, str]:
    decision = triage_bytes((DATA / "department" / f"{fixture}.eml").read_bytes(),
                            settings).decision
    return decision.department, "\n".join(r.text for r in decision.reasons)


def test_department_added_in_yaml_is_routed_by_mailbox(with_ain):
    """A request to the new department's mailbox is that department's."""
    code, why = decide("ain-mailbox", with_ain)
    assert code == "01"
    assert "adressé à la boîte du 01" in why


def test_department_added_in_yaml_is_routed_by_content(with_ain):
    """« 01300 Belley » in the signature routes to 01 once 01 is configured, even when the
    request went to the Isère mailbox; with the shipped file it is another DDFIP's (none)."""
    code, why = decide("ain-postal-code", with_ain)
    assert code == "01"
    assert "code postal 01300" in why and "commune de Belley" in why
    code, why = decide("ain-postal-code", load_settings())
    assert code is None
    assert "que le service ne gère pas" in why


def test_communes_are_selected_by_the_configured_codes():
    """The commune index holds the names of the configured departments only, and the postal
    codes of all of France (another department's code places the sender outside)."""
    five = commune_index(frozenset({"07", "26", "38", "73", "74"}))
    assert "belley" not in five.by_name and five.by_postal_code["01300"] == {"01"}
    assert "belley" in commune_index(frozenset({"01", "38"})).by_name


def test_unknown_department_code_is_refused_with_file_line_key(tmp_path):
    """A code that is no French department is refused at its line, by load and check-config."""
    block = AIN.replace('"01"', '"99"').replace("ddfip01", "ddfip99")
    path, text = config_with(tmp_path, block)
    line = next(n for n, ln in enumerate(text.splitlines(), 1) if 'code: "99"' in ln)
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert err.value.line == line
    assert "unknown department code '99'" in err.value.message
    run = subprocess.run([sys.executable, "-m", "triage", "check-config", "--config", str(path)],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 2
    assert f"{path}:{line}: departments[0].code: unknown department code '99'" in run.stderr


def test_department_names_come_from_the_configuration(tmp_path):
    """A configured name and its other spellings (``name_patterns``) are statements of place;
    ``not_names`` keeps a phrase that contains the name from being one."""
    settings = load_settings()
    from triage.rules.places import department_names, geography

    geo = geography(settings.departments)
    said = {s.department for s in department_names("compte créé en Hte-Savoie", geo, 3, "x")}
    assert said == {"74"}
    assert department_names("Université Savoie Mont Blanc", geo, 3, "x") == []
    ain = load_settings(config_with(tmp_path, AIN)[0])
    said = {s.department for s in department_names("DDFIP de l'Ain", geography(ain.departments),
                                                   3, "x")}
    assert said == {"01"}


@pytest.mark.parametrize("fixture, expected, evidence", [
    ("another-ddfip", None, "que le service ne gère pas"),
    ("account-created-before", "73", "là où le compte a été créé"),
    ("ddfip-called-elsewhere", "73", "adressé à la boîte du 73"),
    ("spanning-epci-two-mailboxes", None, "plusieurs boîtes"),
    ("commune-outside-named", None, "commune de Givors dans la signature, un département"),
    ("commune-ours-hyphenated", "26", "commune de Livron-sur-Drôme"),
])
def test_where_the_account_was_created(check, fixture, expected, evidence):
    """Where the account was created wins over where the sender works now; an account of
    another DDFIP, or a sender's commune outside the service (« Ville de Givors »), gives none,
    a DDFIP merely mentioned does not; a grouping of communes that spans two departments
    settles nothing when both mailboxes were written to."""
    f = check(department, f"department/{fixture}.eml")
    assert f.value == expected, reasons(f)
    assert evidence in reasons(f)
