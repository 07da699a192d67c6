"""Tell the sender's new text from the quoted reply or forwarded block beneath it.

Recognised: ``>`` lines; attributions (``Le … a écrit :``, ``On … wrote:``, also wrapped over two
lines); separators (``-----Message d'origine-----``, ``---------- Message transféré ---------``,
``Begin forwarded message:``, Outlook's underscore rule); and Outlook's header block
(``De : … / Envoyé : … / À : … / Objet : …``, in French or English). Everything from the first
marker on is the quoted part. The signature is the tail of the new text after the sign-off.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from triage.text import fold

_FORWARD_MARKERS = re.compile(
    r"^\s*(-{2,}\s*(message transf[eé]r[eé]|forwarded message|mail transf[eé]r[eé]|courriel "
    r"transf[eé]r[eé])\s*-{2,}|d[ée]but du message (r[ée]exp[ée]di[ée]|transf[ée]r[ée])\s*:|"
    r"begin forwarded message\s*:)",
    re.IGNORECASE,
)
# Outlook writes "-----Message d'origine-----" above replies and forwards alike: the subject
# (TR:, Fwd:) tells a forward apart, in the reader.
_REPLY_MARKERS = re.compile(
    r"^\s*-{2,}\s*(original message|message d'origine|courriel d'origine|mail d'origine|"
    r"message original|r[ée]ponse)\s*-{2,}", re.IGNORECASE)
# Searched in every line: tried only on those with a colon, which it ends with.
_ATTRIBUTION = re.compile(r"(a [ée]crit|wrote|schrieb|escribi[óo])\s*:\s*$", re.IGNORECASE)
# The attribution wrapped inside « a écrit » itself: "Le …, Jean Dupont a" / "écrit :".
_ATTRIBUTION_TAIL = re.compile(r"^\s*([ée]crit|wrote)\s*:\s*$", re.IGNORECASE)
_ATTRIBUTION_START = re.compile(r"^\s*(le|on|am|el)\s.{4,}", re.IGNORECASE)
_OUTLOOK_FROM = re.compile(r"^\s*\*?(de|from|exp[ée]diteur)\s*\*?\s*:\s*\S", re.IGNORECASE)
_OUTLOOK_FIELDS = re.compile(
    r"^\s*\*?(envoy[ée]|sent|date|[àa]|to|objet|subject|cc)\s*\*?\s*:", re.IGNORECASE)
_UNDERSCORES = re.compile(r"^\s*_{10,}\s*$")
#: The characters a stripped line must start with to match one of the markers above but the
#: attributions (those end with a colon): a dash or underscore rule, a "*De :" or ">", a word
#: starting with b, d, e or f (IGNORECASE matches no other character for these letters).
#: Other lines, most of them, are tested no further.
_MARKER_START = frozenset("-_*>bBdDeEfF")
# A '>' prefix, with the spaces around it, at the start of a line. Matched from the line break
# before it, which [^\S\n] does not cross: one substitution unquotes a block of lines.
# Possessive: nothing follows, so backtracking could only give a shorter match, never one the
# greedy search takes; re's possessive repeat skips the bookkeeping (a third faster).
_QUOTE_PREFIX = re.compile(r"\n[^\S\n]*+(?:>[^\S\n]?)++")

#: The first letters of the sign-offs below (of the folded line).
_SIGN_OFF_START = frozenset("abcdejkmrstv")
_SIGN_OFFS = re.compile(
    r"^(bien )?(cordialement|cdlt|bien a vous|bien a toi|salutations|sinceres salutations|"
    r"meilleures salutations|respectueusement|bonne (journee|soiree|fin de journee)|merci|"
    r"merci (d'avance|par avance|beaucoup|bcp|de votre aide|pour votre aide|de votre retour)|"
    r"en vous remerciant.*|je vous remercie.*|veuillez agreer.*|dans l'attente.*|"
    r"regards|best regards|kind regards|thanks|thank you|a bientot)[ .,!]*$"
)


@dataclass(frozen=True)
class Split:
    new_text: str
    quoted_text: str
    kind: str | None  # "reply", "forward" or None
    signature: str


def split_quoted(text: str) -> Split:
    """Split ``text`` into the new part and the quoted part, and find the signature."""
    lines = text.splitlines()
    cut, kind = _first_marker(lines)
    new_lines = lines[:cut]
    quoted_lines = lines[cut:]
    answers = _answers_below(quoted_lines)
    if answers:
        # Bottom-posted or inline answers: the sender's lines between and after '>' blocks.
        new_lines = new_lines + [quoted_lines[i] for i in sorted(answers)]
        quoted_lines = [ln for i, ln in enumerate(quoted_lines) if i not in answers]
    # Interleaved '>' lines inside the new part (inline replies) also count as quoted.
    kept = [ln for ln in new_lines if not ln.lstrip().startswith(">")]
    if len(kept) != len(new_lines):
        quoted_lines = [ln for ln in new_lines if ln.lstrip().startswith(">")] + quoted_lines
        kind = kind or "reply"
    new_text = "\n".join(kept).strip()
    quoted = _unquote("\n".join(quoted_lines)).strip()
    return Split(new_text, quoted, kind if quoted else None, _signature(kept))


def _answers_below(quoted: list[str]) -> set[int]:
    """Indexes of unquoted lines written among or below a '>'-quoted block.

    Only for '>'-style quoting (the block's first lines are an attribution then '>' lines, or
    '>' lines): an Outlook-style quote is not prefixed, so its lines are never taken for new
    text. The walk stops at a forwarded or Outlook header block, whose lines are unprefixed.
    """
    head = [ln for ln in quoted[:3] if ln.strip()]
    if not head or not any(ln.lstrip().startswith(">") for ln in head[:2]):
        return set()
    if any(_OUTLOOK_FROM.match(_unquote(ln)) for ln in quoted[:6] if ln.lstrip().startswith(">")):
        return set()  # an Outlook header shown quoted: the original below it is unprefixed
    out: set[int] = set()
    for i, line in enumerate(quoted):
        stripped = line.strip()
        if i == 0 and not stripped.startswith(">"):
            continue  # the attribution line itself
        if not stripped or stripped.startswith(">"):
            continue
        if _FORWARD_MARKERS.match(stripped) or _OUTLOOK_FROM.match(stripped) or (
                stripped[-1] == ":" and _ATTRIBUTION.search(stripped)):
            break
        out.add(i)
    return out


def _first_marker(lines: list[str]) -> tuple[int, str | None]:
    n = len(lines)
    block_follows = _QuoteBlock(lines)
    for i, line in enumerate(lines):
        stripped = line.strip()
        # An attribution ends with a colon (":\s*$" of a stripped line): its last character.
        if not stripped or (stripped[0] not in _MARKER_START and stripped[-1] != ":"):
            continue
        if _FORWARD_MARKERS.match(stripped):
            return i, "forward"
        if _REPLY_MARKERS.match(stripped):
            return i, "reply"
        if (_ATTRIBUTION_TAIL.match(stripped) and i > 0 and _ATTRIBUTION_START.match(lines[i - 1])
                and re.search(r"\s(a|has)\s*$", lines[i - 1], re.IGNORECASE)):
            return i - 1, "reply"
        if stripped[-1] == ":" and _ATTRIBUTION.search(stripped) and (
            _ATTRIBUTION_START.match(stripped) or (i > 0 and _ATTRIBUTION_START.match(lines[i - 1]))
        ):
            start = i - 1 if not _ATTRIBUTION_START.match(stripped) else i
            return start, "reply"
        if _UNDERSCORES.match(stripped) and i + 1 < n and any(
            _OUTLOOK_FROM.match(x) for x in lines[i + 1:i + 3]
        ):
            return i, _outlook_kind(lines, i + 1)
        if _OUTLOOK_FROM.match(stripped):
            following = [x for x in lines[i + 1:i + 7] if x.strip()]
            if sum(1 for x in following[:5] if _OUTLOOK_FIELDS.match(x)) >= 2:
                return i, _outlook_kind(lines, i)
        if stripped.startswith(">") and block_follows(i):
            return i, "reply"
    return n, None


def _outlook_kind(lines: list[str], start: int) -> str:
    for line in lines[start:start + 8]:
        folded = fold(line)
        if re.match(r"\s*\*?(objet|subject)\s*\*?\s*:\s*(tr|fwd?|wg)\s*:", folded):
            return "forward"
    return "reply"


class _QuoteBlock:
    """Whether ``>`` lines run from line ``i`` to the end, blank lines and a short tail aside.

    The counts of the lines after each position are computed backwards, once each, and only
    down to the lowest position asked about (the first '>' line, mostly): a text of many
    interleaved ``>`` lines is read in linear time, and the new text above the quote not at all.
    """

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.after: list[tuple[int, int]] = [(0, 0)] * (len(lines) + 1)
        self.low = len(lines)  # the counts are known from this position on

    def __call__(self, i: int) -> bool:
        if i < self.low:
            after, lines = self.after, self.lines
            rest, quoted = after[self.low]
            for j in range(self.low - 1, i - 1, -1):
                stripped = lines[j].lstrip()
                if stripped:
                    rest += 1
                    quoted += stripped.startswith(">")
                after[j] = (rest, quoted)
            self.low = i
        rest, quoted = self.after[i]
        return quoted >= max(1, rest - 2)


def _unquote(text: str) -> str:
    """``text`` without the '>' prefix of each of its lines (lines split by "\\n" only)."""
    if ">" not in text:
        return text
    return _QUOTE_PREFIX.sub("\n", "\n" + text)[1:]


def _signature(lines: list[str]) -> str:
    """The lines after the last sign-off or ``--`` delimiter; else the short trailing block."""
    content = [ln.rstrip() for ln in lines]
    for i in range(len(content) - 1, -1, -1):
        if content[i].strip() in ("--", "-- ", "—"):
            return "\n".join(content[i + 1:]).strip()
    for i in range(len(content) - 1, -1, -1):
        # Folding keeps an ASCII character (lower-cased) and turns spaces into spaces: a line
        # starting with another ASCII character is no sign-off, and is not folded.
        first = content[i].lstrip()[:1]
        if first.isascii() and first.lower() not in _SIGN_OFF_START:
            continue
        if _SIGN_OFFS.match(fold(content[i]).strip()):
            return "\n".join(content[i + 1:]).strip()
    tail: list[str] = []
    for line in reversed(content):
        if not line.strip():
            if tail:
                break
            continue
        if len(line.strip()) > 80:
            break
        tail.append(line)
    return "\n".join(reversed(tail[:8])).strip()
