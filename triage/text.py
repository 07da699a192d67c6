"""Text helpers shared by the parser and the rules: normalisation for matching."""

from __future__ import annotations

import re
import unicodedata

_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b\u202f\u205f\u3000]+")
# Typographic quotes and dashes made plain, ligatures spelt out: one table, applied by a regular
# expression that finds the few characters concerned (a str.translate with a dict looks up every
# character of the text in Python's dict, four times slower on a message).
_PLAIN = {"’": "'", "‘": "'", "ʼ": "'", "`": "'", "´": "'",
          "–": "-", "—": "-", "‐": "-", "‑": "-", "−": "-",
          "«": '"', "»": '"', "“": '"', "”": '"',
          "œ": "oe", "Œ": "OE", "æ": "ae", "Æ": "AE", "ß": "ss"}
_SPECIAL = re.compile("[" + "".join(_PLAIN) + "]")
# The combining diacritical marks block: what NFKD leaves of é, è, ç, ô…
_COMBINING = re.compile("[\u0300-\u036f]")
# Anything but ASCII and that block: when NFKD left none, dropping the non-ASCII characters is
# dropping the marks, which str.encode does in one pass (a regular expression substitution
# pays for each of the many accents of a French line).
_NOT_ASCII_OR_COMBINING = re.compile("[^\x00-\x7f\u0300-\u036f]")


def _plain(match: re.Match[str]) -> str:
    return _PLAIN[match.group()]


def fold(text: str) -> str:
    """Lower-case, accents removed, typographic quotes and dashes made plain, spaces collapsed.

    Rules match against folded text so that ``expiré``, ``EXPIRE`` and ``expire`` are one word.
    The length of the text may change (ligatures), so offsets are not carried over.
    """
    if text.isascii():
        # Of the table only the backquote concerns ASCII.
        text = text.replace("`", "'")
    else:
        text = _SPECIAL.sub(_plain, text)
        if not text.isascii():
            text = unicodedata.normalize("NFKD", text)
            if _NOT_ASCII_OR_COMBINING.search(text) is None:
                text = text.encode("ascii", "ignore").decode("ascii")
            else:
                text = _COMBINING.sub("", text)
                if not text.isascii():  # rarer marks, outside the common block
                    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.lower()
    if text.isascii():
        # Most texts are ASCII by now: only a tab or two spaces in a row make a run of spaces
        # to collapse, and a substitution that replaces every single space is costly.
        return _SPACES.sub(" ", text) if "\t" in text or "  " in text else text
    return _SPACES.sub(" ", text)


def fold_lines(text: str) -> str:
    """:func:`fold`, keeping line breaks (signature lines are read one by one)."""
    return "\n".join(fold(line).strip() for line in text.splitlines())


def compact(text: str) -> str:
    """Folded, letters and digits only: ``Saint-Agrève`` -> ``saintagreve``."""
    return re.sub(r"[^a-z0-9]", "", fold(text))
