"""Domain names as the trust and authentication rules compare them (not a rule itself).

- :func:`organizational_domain`: the registrable domain after the Public Suffix List (RFC 7489
  §3.2), from the ``publicsuffixlist`` package, which ships the list (no download at run time):
  ``finances.gouv.fr`` for ``dgfip.finances.gouv.fr``, None for a public suffix like ``fr``.
- :func:`skeleton`: a confusable skeleton after Unicode TR39 §4, from the confusables data
  the ``confusable_homoglyphs`` package ships (Unicode's ``confusables.txt``): compatibility
  forms and ligatures unfolded (``ﬁ`` → ``fi``), each character replaced by its Latin
  prototype (Cyrillic ``і`` → ``i``, ``0`` → ``o``, ``m`` → ``rn``), so two names that look
  alike have one skeleton.
"""

from __future__ import annotations

import json
import unicodedata
from functools import lru_cache
from importlib import resources


@lru_cache(maxsize=1)
def _psl() -> object:
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()


@lru_cache(maxsize=4096)
def organizational_domain(domain: str) -> str | None:
    """The registrable domain of ``domain`` (lower case), or None for a public suffix."""
    name = domain.strip().lower().rstrip(".")
    if not name:
        return None
    found = _psl().privatesuffix(name)  # type: ignore[attr-defined]
    return str(found) if found else None


@lru_cache(maxsize=4096)
def public_suffix(domain: str) -> str:
    name = domain.strip().lower().rstrip(".")
    return str(_psl().publicsuffix(name) or "")  # type: ignore[attr-defined]


def within(domain: str, parent: str) -> bool:
    """``domain`` is ``parent`` or one of its subdomains."""
    return domain == parent or domain.endswith("." + parent)


@lru_cache(maxsize=1)
def _prototypes() -> dict[str, str]:
    """Character -> its ASCII prototype, from the shipped confusables table."""
    import confusable_homoglyphs  # type: ignore[import-untyped]

    text = resources.files(confusable_homoglyphs).joinpath("confusables.json").read_text(
        "utf-8")
    table: dict[str, list[dict[str, str]]] = json.loads(text)
    out: dict[str, str] = {}
    for char, entries in table.items():
        if len(char) != 1:
            continue
        ascii_forms = [e["c"].lower() for e in entries
                       if e["c"].isascii() and e["c"].strip() and e["c"].isalnum()]
        if ascii_forms:
            out[char] = min(ascii_forms, key=lambda c: (len(c), c))
    return out


@lru_cache(maxsize=4096)
def skeleton(text: str) -> str:
    """The TR39 skeleton of ``text``, lower case, in ASCII where a prototype exists."""
    table = _prototypes()
    folded = unicodedata.normalize("NFKC", text).lower()
    out = "".join(table.get(ch, ch) if not ("a" <= ch <= "z" or ch in ".-_")
                  else ("rn" if ch == "m" else ch) for ch in folded)
    return unicodedata.normalize("NFKC", out).lower()
