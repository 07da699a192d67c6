"""Drafts: the templates say what the procedure tells users, and nothing can be injected."""

from __future__ import annotations

from pathlib import Path

import pytest

from triage.config import load_settings
from triage.draft import one_line, render
from triage.pipeline import triage_bytes

DEV = Path(__file__).resolve().parent / "data" / "dev"


@pytest.fixture(scope="module")
def settings():
    return load_settings()


def test_reset_draft_content(settings):
    """A reset draft greets by name, repeats the identifier, explains the mobile and signs 26."""
    outcome = triage_bytes((DEV / "020.eml").read_bytes(), settings)
    draft = outcome.draft
    assert draft is not None and draft.template == "reset_password"
    assert draft.to == "nathalie.reynaud@mairie-crest.fr"
    assert draft.body.startswith("Bonjour Nathalie Reynaud,")
    assert "nreynaud-xt" in draft.body
    assert "« Gérer ses informations personnelles et changer son mot de passe »" in draft.body
    assert "« Mot de passe -xt oublié »" in draft.body
    assert "d'un an" in draft.body and "différent de l'ancien" in draft.body
    assert "Finances publiques de la Drôme" in draft.body
    assert draft.subject == "Re: Demande de réinitialisation de mot de passe"


def test_expired_draft_says_only_this_route(settings):
    """An expired draft says the e-mail route is the only way and where the date is shown."""
    draft = triage_bytes((DEV / "060.eml").read_bytes(), settings).draft
    assert draft is not None and draft.template == "expired_password"
    assert "ne peut être renouvelé que par cette démarche" in draft.body
    assert "date d'expiration de votre mot de passe est indiquée" in draft.body
    assert "Haute-Savoie" in draft.body


def test_missing_identifier_is_asked_for(settings):
    """Without an identifier the draft asks for it instead of claiming a reset."""
    draft = triage_bytes((DEV / "013.eml").read_bytes(), settings).draft
    assert draft is not None
    assert "en indiquant votre identifiant de connexion" in draft.body
    assert "a été renouvelé" not in draft.body


def test_nominative_request_signs_for_receiving_mailbox(settings):
    """A role-address request with no department known signs as a receiving department."""
    draft = triage_bytes((DEV / "085.eml").read_bytes(), settings).draft
    assert draft is not None and draft.template == "request_nominative_address"
    assert draft.body.startswith("Madame, Monsieur,")
    assert "adresse électronique nominative" in draft.body
    assert draft.department in ("07", "26")


def test_template_syntax_in_message_is_literal(settings):
    """Template code in a display name or identifier is printed, never evaluated."""
    body = render("reset_password", settings, settings.departments[0],
                  sender_name="{{ 7*7 }} {% raw %}", identifier="{{config}}-xt")
    assert "{{ 7*7 }} {% raw %}" in body and "{{config}}-xt" in body
    assert "49" not in body


def test_header_values_lose_line_breaks():
    """CR, LF and other separators cannot smuggle a header into the reply."""
    assert one_line("Objet\r\nBcc: victim@example.org") == "Objet Bcc: victim@example.org"
    assert "\n" not in one_line("a\u2028b\x85c\nd")


def test_undefined_variable_is_an_error(settings, tmp_path):
    """A template that uses an unknown variable fails loudly rather than rendering a blank."""
    from triage.draft import _environment
    from triage.errors import TemplateError

    (tmp_path / "reset_password.txt.j2").write_text("{{ nope }}")
    env_settings = settings.model_copy(update={"templates_dir": str(tmp_path)})
    _environment.cache_clear()
    with pytest.raises(TemplateError):
        render("reset_password", env_settings, settings.departments[0], sender_name=None,
               identifier=None)
