"""Text helpers shared by the parser and the rules: normalisation for matching."""

from __future__ import annotations

import re
import unicodedata

_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b\u202f\u205f\u3000]+")
_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "ʼ": "'", "`": "'", "´": "'",
                              "–": "-", "—": "-", "‐": "-", "‑": "-", "−": "-",
                              "«": '"', "»": '"', "“": '"', "”": '"'})
_LIGATURES = str.maketrans({"œ": "oe", "Œ": "OE", "æ": "ae", "Æ": "AE", "ß": "ss"})
# The combining diacritical marks block: what NFKD leaves of é, è, ç, ô…
_COMBINING = dict.fromkeys(range(0x300, 0x370))


def fold(text: str) -> str:
    """Lower-case, accents removed, typographic quotes and dashes made plain, spaces collapsed.

    Rules match against folded text so that ``expiré``, ``EXPIRE`` and ``expire`` are one word.
    The length of the text may change (ligatures), so offsets are not carried over.
    """
    text = text.translate(_APOSTROPHES).translate(_LIGATURES)
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text)
        if not text.isascii():
            text = text.translate(_COMBINING)
            if not text.isascii():  # rarer marks, outside the common block
                text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return _SPACES.sub(" ", text.lower())


def fold_lines(text: str) -> str:
    """:func:`fold`, keeping line breaks (signature lines are read one by one)."""
    return "\n".join(fold(line).strip() for line in text.splitlines())


def compact(text: str) -> str:
    """Folded, letters and digits only: ``Saint-Agrève`` -> ``saintagreve``."""
    return re.sub(r"[^a-z0-9]", "", fold(text))
