"""Which ``-xt`` identifier does the message give?

The first identifier in the sender's new text, else in the subject, else in the quoted or
forwarded text; lower-cased. Typographic dashes are tolerated (``JDUPONT–XT``);
the bare suffix (« un compte en -xt ») is not an identifier.
"""

from __future__ import annotations

import re

from triage.parse import MessageView
from triage.rules.base import Context, Finding, finding

NAME = "identifier"
LABEL = "Identifiant"
DESCRIPTION = "identifiant Chorus Pro en -xt cité dans le message"

_IDENTIFIER = re.compile(
    r"(?<![\w.@-])([a-z0-9](?:[a-z0-9._-]{0,60}[a-z0-9])?)(\s{0,3})[-‐‑–—](\s{0,3})xt(?![\w-])",
    re.IGNORECASE)
# The dash and « xt » that end every identifier. Each search for an identifier starts where one
# could begin before the next of them (a name is at most 62 characters, then up to 3 spaces
# before the dash), so that the words of a text without any are not each tried in turn.
_SUFFIX = re.compile(r"[-‐‑–—]\s{0,3}xt", re.IGNORECASE)
_MOST_BEFORE_DASH = 62 + 3
# Written with a space before the dash (« jdupont -xt », « JDUPONT - XT »), an identifier is
# told from prose about the suffix (« un compte en -xt ») by the word before it.
_NOT_AN_ACCOUNT = {"en", "un", "une", "le", "la", "les", "l", "de", "du", "des", "d", "au", "aux",
                   "compte", "comptes", "type", "suffixe", "format", "identifiant", "identifiants",
                   "login", "mon", "ma", "son", "sa", "votre", "notre", "leur", "avec", "par",
                   "sans", "terminant", "finissant", "termine", "finit", "extension", "pas",
                   "est", "et", "ou", "chorus", "pro", "acces", "utilisateur", "nom", "prenom",
                   "dit", "dits", "dite", "appele", "account", "an", "a", "the", "my", "with"}
# Placeholders, never a real account.
_PLACEHOLDERS = {"prenom.nom-xt", "nom.prenom-xt", "prenomnom-xt", "pnom-xt", "nom-xt",
                 "identifiant-xt", "xxx-xt", "xxxx-xt", "votrenom-xt", "login-xt", "x-xt"}
# The example our own replies give: in quoted text it is the helpdesk's, not the sender's.
_TEMPLATE_EXAMPLES = {"jdupont-xt", "dupont-xt", "jean.dupont-xt"}


def find_identifier(text: str, quoted: bool = False) -> str | None:
    start = 0
    while True:  # the identifiers in turn, as finditer gives them, until one is an account
        suffix = _SUFFIX.search(text, start)
        if suffix is None:
            return None
        # (A search from a position still sees the characters before it: the lookbehind holds.)
        match = _IDENTIFIER.search(text, max(start, suffix.start() - _MOST_BEFORE_DASH))
        if match is None:
            return None
        start = match.end()
        name = match.group(1).lower()
        if (match.group(2) or match.group(3)) and (name in _NOT_AN_ACCOUNT or len(name) < 3
                                                   or not re.search(r"[a-z]", name)):
            continue
        ident = f"{name}-xt"
        if ident in _PLACEHOLDERS or (quoted and ident in _TEMPLATE_EXAMPLES):
            continue
        return ident


def check(message: MessageView, ctx: Context) -> Finding[str | None]:
    for where, text in (("le texte du message", message.new_text), ("l'objet", message.subject),
                        ("le message cité ou transféré", message.quoted_text)):
        ident = find_identifier(text, quoted=text is message.quoted_text)
        if ident:
            return finding(NAME, ident, f"identifiant {ident} trouvé dans {where}")
    return finding(NAME, None, "aucun identifiant en -xt dans le message")
