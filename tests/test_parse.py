"""The parser: bytes to :class:`~triage.parse.MessageView`, on the fixtures of tests/data/parse/.

Each fixture is a small message written for one behaviour: header and body decodings, HTML
bodies, the quoted or forwarded part and the signature told apart from the sender's new text,
attachments listed but never decoded, and the receiving mailbox read from the delivery headers.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from triage.config import Limits
from triage.parse import MessageView, parse_message
from triage.parse.decode import (
    _FOLD,
    decode_bytes,
    decode_header,
    decode_words,
    one_line,
    recover_8bit,
)
from triage.parse.html import html_to_text
from triage.parse.quoting import split_quoted

DATA = Path(__file__).resolve().parent / "data" / "parse"


def view(name: str) -> MessageView:
    return parse_message((DATA / name).read_bytes())


# -- headers ------------------------------------------------------------------------------------

def test_rfc2047_subject_q_and_b_words_in_several_charsets():
    """Q and B encoded words in UTF-8, ISO-8859-1 and windows-1252 decode and join without the
    whitespace between adjacent words."""
    v = view("rfc2047-subject.eml")
    assert v.subject == "Mot de passe expiré - réinitialisation urgente – merci"


def test_rfc2047_display_name_is_decoded_after_address_parsing():
    """An encoded display name is decoded, and the address stays the one in angle brackets."""
    v = view("rfc2047-subject.eml")
    assert v.sender_address is not None
    assert v.sender_address.display_name == "Renée François"
    assert v.sender_address.address == "renee.francois@mairie-bozel.fr"


def test_rfc2047_character_split_across_two_words():
    """A UTF-8 character whose bytes are split between two encoded words is rebuilt whole."""
    assert view("rfc2047-split-character.eml").subject == "Réinitialisé ✔ (compte jmartin-xt)"


def test_encoded_word_never_becomes_an_address_or_a_line_break():
    """An encoded word holding an address stays a display name, and an encoded CR LF in the
    subject becomes a space (no header injection into a reply)."""
    v = view("rfc2047-address-smuggling.eml")
    assert v.sender_address is not None
    assert v.sender_address.address == "pirate@example.net"
    assert "\r" not in v.subject and "\n" not in v.subject
    assert v.subject.startswith("Objet Bcc: victime@example.net")


@pytest.mark.parametrize("raw, expected", [
    ("=?utf-8?q?caf=E9?=", "café"),  # declared UTF-8, Latin-1 byte: read as windows-1252
    ("=?x-unknown-charset?q?d=C3=A9j=C3=A0?=", "déjà"),
    ("=?utf-8?b?bW90IGRlIHBhc3Nl?=", "mot de passe"),  # base64 without its padding "="
    ("Re: =?iso-8859-1?q?r=E9ponse?= finale", "Re: réponse finale"),
    ("=?utf-8?q?incomplet", "=?utf-8?q?incomplet"),
])
def test_decode_header_tolerates_malformed_words(raw, expected):
    """Wrong charsets, unknown charsets, missing padding and unfinished words never raise."""
    assert decode_header(raw) == expected


# -- body decodings -----------------------------------------------------------------------------

def test_quoted_printable_body():
    """A quoted-printable UTF-8 body is decoded, soft line breaks joined."""
    v = view("quoted-printable.eml")
    assert "s'il vous plaît ? Le portail m'indique que mon compte est bloqué" in v.text
    assert "=\n" not in v.text and "=C3" not in v.text


def test_base64_body():
    """A base64 UTF-8 body is decoded."""
    v = view("base64.eml")
    assert "mon mot de passe a expiré, identifiant jmartin-xt." in v.text
    assert "Mairie de Bozel — 73350 Bozel" in v.signature


def test_latin1_declared_but_windows_1252_bytes():
    """Bytes 0x92, 0x9c and 0x80 under a declared ISO-8859-1 read as ’, œ and € (windows-1252)."""
    text = view("latin1-declared-cp1252-bytes.eml").text
    assert "l’accès" in text and "cœur" in text and "120 €" in text
    assert "\x92" not in text and "\x80" not in text


def test_windows_1252_body():
    """A declared windows-1252 body keeps its typographic quotes and dashes."""
    assert "J’ai oublié mon mot de passe – merci « d’avance »." in view("windows-1252.eml").text


def test_utf8_with_bad_bytes_keeps_the_good_text():
    """A UTF-8 body with a stray Latin-1 byte keeps its UTF-8 accents and replaces the bad byte."""
    v = view("utf8-bad-bytes.eml")
    assert "mon mot de passe a expiré, je n’ai plus accès." in v.text
    assert "Signature coup\ufffde" in v.text
    assert any("invalid UTF-8" in d for d in v.defects)


@pytest.mark.parametrize("name, expected", [
    ("undeclared-8bit-utf8.eml", "j'ai oublié mon mot de passe (identifiant jmartin-xt)"),
    ("undeclared-8bit-latin1.eml", "Réponse très attendue."),
])
def test_undeclared_8bit_body(name, expected):
    """8-bit text with no declared charset is read as UTF-8 when it is, else windows-1252."""
    assert expected in view(name).text


def test_valid_utf8_wins_over_a_wrong_legacy_label():
    """Bytes that are valid UTF-8 are read as UTF-8 even under a legacy charset label."""
    text, note = decode_bytes("Мы получили ваш запрос".encode(), "x-mac-cyrillic")
    assert text == "Мы получили ваш запрос"
    assert note is not None and "wrong" in note


# -- HTML ---------------------------------------------------------------------------------------

def test_html_only_body_is_read_as_text():
    """Entities are decoded, <br> and <p> break lines, and the head, style and script vanish."""
    v = view("html-only.eml")
    assert "J’ai oublié mon mot de passe : identifiant jmartin-xt.\nMerci & bonne journée." in (
        v.text)
    assert "Titre caché" not in v.text and "color" not in v.text and "alert" not in v.text
    assert v.new_text.splitlines()[0] == "Bonjour,"


def test_html_quote_containers_become_quoted_text():
    """Gmail's quote block and <blockquote> end up in the quoted part, not the new text."""
    v = view("html-only.eml")
    assert v.quote_kind == "reply"
    assert "Votre demande a bien été reçue." in v.quoted_text
    assert "reçue" not in v.new_text


def test_html_outlook_reply_header_block_is_quoted():
    """Outlook's divRplyFwdMsg block and the original below it are the quoted part."""
    v = view("html-outlook-reply.eml")
    assert v.new_text == "Toujours bloquée, merci de relancer."
    assert "J'ai oublié mon mot de passe (jmartin-xt)." in v.quoted_text


def test_html_attribute_holding_a_greater_than_sign():
    """A ">" inside a quoted attribute value does not end the tag."""
    assert html_to_text('<a href="mailto:<a@b.fr>">écrire</a> ici') == "écrire ici"


# -- quoted and forwarded parts -----------------------------------------------------------------

def test_outlook_french_header_block_starts_the_quote():
    """« De : … Envoyé : … À : … Objet : » starts the quoted part of an Outlook reply."""
    v = view("quote-outlook-fr.eml")
    assert v.quote_kind == "reply"
    assert v.new_text.endswith("pouvez-vous relancer ?\n\nJeanne Martin")
    assert v.quoted_text.startswith("De : Jeanne Martin")
    assert "identifiant jmartin-xt" in v.quoted_text and "jmartin-xt" not in v.new_text


def test_outlook_english_header_block_after_underscores_is_a_forward():
    """The underscore rule with From/Sent/To/Subject starts the quote; TR: makes it a forward."""
    v = view("quote-outlook-en.eml")
    assert v.quote_kind == "forward"
    assert v.new_text == "Bonjour, voir ci-dessous."
    assert "My password expired." in v.quoted_text


def test_attribution_wrapped_over_two_lines():
    """« Le … a écrit : » wrapped over two lines is recognised from its first line."""
    v = view("quote-attribution-wrapped.eml")
    assert v.new_text == "Merci, c'est bien l'identifiant jmartin-xt."
    assert v.quoted_text.startswith("Le lun. 2 mars 2026")
    assert "Quel est votre identifiant ?" in v.quoted_text


@pytest.mark.parametrize("attribution", [
    "Le lun. 2 mars 2026 à 09:00, Service DDFIP <ddfip73@example.fr> a écrit :",
    "Le lun. 2 mars 2026 à 09:00, Service DDFIP <ddfip73@example.fr>\na écrit :",
    "Le lun. 2 mars 2026 à 09:00, Service DDFIP <ddfip73@example.fr> a\nécrit :",
    "On Mon, Mar 2, 2026 at 9:00 AM Service DDFIP <ddfip73@example.fr>\nwrote:",
])
def test_attribution_on_one_line_or_wrapped(attribution):
    """The attribution starts the quote on one line or wrapped anywhere inside « a écrit »."""
    split = split_quoted(f"Oui, jmartin-xt.\n\n{attribution}\n> Votre identifiant ?\n")
    assert split.new_text == "Oui, jmartin-xt."
    assert split.quoted_text.startswith(("Le lun.", "On Mon"))
    assert split.kind == "reply"


def test_interleaved_greater_than_lines_are_quoted():
    """Inline « > » lines go to the quoted part; the answers between them stay new text."""
    v = view("quote-gt-lines.eml")
    assert v.quote_kind == "reply"
    assert v.quoted_text == "Quel est votre identifiant ?\nEt votre commune ?"
    assert "C'est jmartin-xt." in v.new_text and "Bozel." in v.new_text
    assert ">" not in v.new_text


def test_gmail_forward_separator():
    """Gmail's « ---------- Message transféré --------- » starts a forwarded part."""
    v = view("quote-gmail-forward.eml")
    assert v.quote_kind == "forward"
    assert v.new_text == "Bonjour, je vous transfère la demande de ma collègue."
    assert "J'ai perdu mon mot de passe (mdurand-xt)." in v.quoted_text


def test_apple_mail_forward_separator():
    """Apple Mail's « Début du message réexpédié : » starts a forward, even without TR:."""
    v = view("quote-apple-forward.eml")
    assert v.quote_kind == "forward"
    assert "Votre mot de passe expirera dans 7 jours." in v.quoted_text
    assert "expirera" not in v.new_text


def test_message_d_origine_separator_in_a_reply():
    """« -----Message d'origine----- » starts the quote; with RE: in the subject it is a reply."""
    v = view("quote-message-d-origine.eml")
    assert v.quote_kind == "reply"
    assert v.new_text == "Je confirme, mon mot de passe a expiré."
    assert "Pouvez-vous préciser votre demande ?" in v.quoted_text


def test_message_d_origine_with_a_forward_subject_is_a_forward():
    """The same separator under a TR: subject makes the quoted part a forward."""
    raw = (DATA / "quote-message-d-origine.eml").read_bytes().replace(b"RE: Chorus", b"TR: Chorus")
    assert parse_message(raw).quote_kind == "forward"


def test_text_without_markers_has_no_quote():
    """A message with no marker is all new text."""
    split = split_quoted("Bonjour,\nmot de passe oublié.\nMerci")
    assert (split.quoted_text, split.kind) == ("", None)


# -- signatures ---------------------------------------------------------------------------------

def test_signature_after_dash_dash_delimiter():
    """The lines after « -- » are the signature."""
    v = view("signature-dashes.eml")
    assert v.signature == "Jeanne Martin\nSecrétaire de mairie\nMairie de Bozel - 73350 Bozel"


def test_signature_after_a_sign_off():
    """Without « -- », the lines after a sign-off (« Bien cordialement, ») are the signature."""
    v = view("signature-sign-off.eml")
    assert v.signature == "Jeanne Martin\nMairie de Bozel\n04 79 00 00 00"


# -- attachments --------------------------------------------------------------------------------

def test_attachments_are_listed_not_decoded():
    """Attachments are listed with name, type and approximate size; their content is not text."""
    v = view("attachments.eml")
    assert [(a.filename, a.content_type) for a in v.attachments] == [
        ("facture.pdf", "application/pdf"), ("capture décran.png", "image/png")]
    pdf, png = v.attachments
    assert abs(pdf.size - 5754) < 10 and abs(png.size - 2048) < 10
    assert "SECRET-PDF-CONTENT" not in v.text
    assert v.new_text == "Ci-joint la capture d'écran de l'erreur."


@pytest.mark.parametrize("name", ["attachments.eml", "attached-message.eml"])
@pytest.mark.parametrize("line_end", [b"\n", b"\r\n", b"\r"])
def test_attachment_sizes_are_the_same_when_the_prescan_counted_the_line_ends(name, line_end):
    """A large message's line ends, counted by the prescan, give the attachments the sizes a
    count of their own payloads gives (a line limit under the byte size makes it count)."""
    raw = (DATA / name).read_bytes().replace(b"\n", line_end)
    counted = parse_message(raw, Limits(max_lines=len(raw) - 1))
    assert counted.violations == ()
    assert counted.attachments == parse_message(raw).attachments


def test_attached_message_is_listed_and_read_as_quoted():
    """A message/rfc822 attachment is listed, and its text is quoted, never new text."""
    v = view("attached-message.eml")
    assert [(a.filename, a.content_type) for a in v.attachments] == [
        ("demande.eml", "message/rfc822")]
    assert 200 < v.attachments[0].size < 300  # its headers and body, about 230 bytes
    assert "J'ai perdu mon mot de passe Chorus Pro (mdurand-xt)." in v.quoted_text
    assert "mdurand-xt" not in v.new_text
    assert v.quote_kind == "forward"


# -- delivery headers ---------------------------------------------------------------------------

def test_delivered_to_and_x_original_to():
    """Delivered-To and X-Original-To give the receiving mailbox when To names a group."""
    v = view("delivered-to.eml")
    assert v.to == ()
    assert set(v.delivered_to) == {"ddfip74.pgp.spl-pes@dgfip.finances.gouv.fr"}
    assert v.header("Return-Path") == "<jeanne.martin@mairie-bozel.fr>"


# -- sender address parsing (CVE-2023-27043) -----------------------------------------------------

@pytest.mark.parametrize("from_header, problem", [
    ("alice@example.org)<bob@example.org>", "parenthèses"),
    ("alice@example.org <bob@example.org>", "2 adresse(s) lue(s) pour 1"),
    ("<a@b.fr> <c@d.fr>", "2 adresse(s) lue(s) pour 1"),
    ("Jean <jean@[192.0.2.1]>", "crochet"),
    ("=?utf-8?q?a=40b.fr?=", "pas d'adresse"),
])
def test_ambiguous_from_is_unusable(from_header, problem):
    """A From header the address parser could misread gives no sender, with the reason."""
    v = parse_message(f"From: {from_header}\nSubject: x\n\nBonjour\n".encode())
    assert v.sender_address is None
    assert v.from_problem is not None and problem in v.from_problem


def test_display_name_with_comma_in_quotes_is_one_sender():
    """A quoted display name holding a comma is still exactly one sender."""
    v = parse_message(b'From: "Martin, Jeanne" <jeanne.martin@mairie-bozel.fr>\n\nBonjour\n')
    assert v.sender_address is not None
    assert v.sender_address.display_name == "Martin, Jeanne"


def test_leading_blank_lines_do_not_hide_the_headers():
    """Blank padding and a byte order mark before the first header are skipped."""
    raw = b"\xef\xbb\xbf\n   \nFrom: jeanne.martin@mairie-bozel.fr\nSubject: x\n\nOui\n"
    v = parse_message(raw)
    assert v.sender_address is not None and v.subject == "x"


def test_bottom_posted_and_inline_answers_are_new_text():
    """Unquoted lines among or below '>' blocks are the sender's answers, in order."""
    from triage.parse.quoting import split_quoted

    text = ("Le 10/03/2026 à 14:20, DDFIP 38 a écrit :\n> Est-il oublié ou expiré ?\n"
            "Expiré.\n> Votre identifiant ?\nmdurand-xt\n\nMerci, Marc\n")
    split = split_quoted(text)
    assert split.new_text.splitlines() == ["Expiré.", "mdurand-xt", "Merci, Marc"]
    assert "Est-il oublié ou expiré ?" in split.quoted_text
    assert "Expiré." not in split.quoted_text


@settings(max_examples=2000, deadline=None)
@given(st.text(alphabet=" \t\n\r\x0b\x1f\x85\u00a0\u2003\u3000\u200bab&", max_size=8))
def test_html_text_runs_collapse_spaces_as_the_pattern_did(text):
    """An HTML text run's spaces collapse as ``re.sub(r"\\s+", " ")`` does."""
    from triage.parse.html import _one_space

    assert _one_space(text) == re.sub(r"\s+", " ", text)


def test_str_split_spaces_are_re_spaces():
    """str.split() and re's \\s agree on every character (what _one_space relies on)."""
    space = re.compile(r"\s")
    assert all((space.match(c) is not None) == c.isspace() for c in map(chr, range(0x110000)))


def test_marker_start_holds_every_first_character_a_marker_can_have():
    """The quote markers other than attributions start with a character of ``_MARKER_START``:
    their first letters b, d, e and f match no other character under IGNORECASE."""
    from triage.parse.quoting import _MARKER_START

    letter = re.compile("[bdef]", re.IGNORECASE)
    assert {c for c in map(chr, range(0x110000)) if letter.match(c)} <= _MARKER_START


@settings(max_examples=2000, deadline=None)
@given(st.text(alphabet=" \t\u00a0\u2003\u3000\x1f\x85\u200bAaZz`Éé\ufb01\uff23\u0301",
               max_size=6))
def test_fold_keeps_a_leading_ascii_character(line):
    """A line whose first character that is not a space is ASCII folds to text starting with
    it, lower-cased (what lets the signature finder skip lines by their first character)."""
    from triage.text import fold

    first = line.lstrip()[:1]
    if first and first.isascii():
        assert fold(line).strip()[:1] == first.lower().replace("`", "'")


def test_every_space_folds_to_a_space():
    """No whitespace character folds to a character that is not a space."""
    from triage.text import fold

    for c in map(chr, range(0x110000)):
        if c.isspace():
            assert fold(f"x{c}y")[1:-1].strip() == ""


@settings(max_examples=2000, deadline=None)
@given(st.text(alphabet="ab =?:\t\r\n\x00\x0b\x1f\x7f\x85\u2028\u00e9\udce9", max_size=14))
def test_unfolding_and_one_line_shortcuts_give_the_patterns_results(value):
    """Unfolding by splitting at LFs, and making one line without the control pattern when the
    value is printable ASCII, give what the patterns give."""
    from triage.parse.decode import _CONTROL, _SPACES, _unfold

    assert _unfold(value) == _FOLD.sub(" ", value)
    assert one_line(value) == _SPACES.sub(" ", _CONTROL.sub(" ", value)).strip()


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="ab =?\t\r\n\x00\x7f\u00e9\udce9", max_size=12))
def test_plain_header_values_decode_as_the_full_steps_would(value):
    """The shortcut for plain values (ASCII, printable, no double space, no encoded word) gives
    what unfolding, decoding and making one line give."""
    full = one_line(decode_words(_FOLD.sub(" ", value)) if "=?" in value
                    else recover_8bit(_FOLD.sub(" ", value)))
    assert decode_header(value) == full


def test_the_sender_check_remembers_the_domains_it_has_checked() -> None:
    """triage.parse.reader wraps email_validator's domain check in a cache (its results are
    only read): if a release of email_validator renames it, the wrap is skipped and this test
    says so; a failing domain still fails each time."""
    import sys

    from email_validator import EmailNotValidError, validate_email

    import triage.parse.reader  # noqa: F401  (the wrap is made on import)

    # The package's name validate_email is the function; the module is only in sys.modules.
    check = sys.modules["email_validator.validate_email"].validate_email_domain_name
    assert hasattr(check, "cache_info"), "email_validator's domain check is no longer cached"
    before = check.cache_info().hits
    for _ in range(2):
        validate_email("a@cache-test.example.fr", check_deliverability=False)
    assert check.cache_info().hits > before
    for _ in range(2):
        with pytest.raises(EmailNotValidError):
            validate_email("a@-bad-.example", check_deliverability=False)
