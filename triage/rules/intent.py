"""What is asked: a forgotten -xt password, an expired one, or something else?

Read from the sender's own new text and the subject, folded (lower case, no accents) so that
« EXPIRÉ », « expiré » and « expire » are one word, and tolerant of the common typos. A cue
(« oublié », « perdu », « réinitialiser », « expiré », « périmé », English alike) counts only near a
mention of the password (« mot de passe », « mdp », « password »…) or of the account's access, and
not when negated (« je n'ai pas oublié »). A password that belongs to something else (the
mailbox, the Wi-Fi, another application) is not ours. Expired wins when both appear. A thank-you
that closes the matter (« c'est réglé ») is ``other``.

Quoted or forwarded text is read only when the new text says nothing about a password: a bare
« voir ci-dessous », a reminder, or the forward of the requester's own message. Blocks written by
the helpdesk itself are skipped there: its questions are not the sender's request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from triage.parse import MessageView
from triage.rules.base import Context, Finding, Reason
from triage.text import fold

NAME = "intent"
DESCRIPTION = "demande : mot de passe -xt oublié, expiré, ou autre chose"

FORGOTTEN = "forgotten_password"
EXPIRED = "expired_password"
OTHER = "other"

_PASSWORD = re.compile(
    r"(\bmots?[\s-]*d[e']?[\s-]*pa+s+e?s?\b|\bmot ?de ?pas\b|\bmdp\b|\bm\.d\.p\b|\bpass ?words?\b|"
    r"\bpasswd\b|\bpwd\b|\bmot de pass\b|\bcodes? (d'acces|secret|de connexion)\b)")
# Objects that stand for the password when people do not name it.
_ACCESS = re.compile(
    r"(\bcompte\b|\bacces\b|\bidentifiants\b|\blogin\b|\bconnexion\b|\baccount\b)")
_OTHER_OWNER = re.compile(
    r"^\s*(de|du|pour|d'acces a|d'acces au|de connexion a|de connexion au|sur|of|for)\s+"
    r"(ma |mon |la |le |l'|notre |nos |les |my |the )?(\w+ )?"
    r"(messagerie|boite|bal\b|adresse (mail|e-?mail|electronique)|mail\b|e-?mail\b|webmail|wi-?fi|"
    r"ordinateur|pc\b|session|windows|outlook|zimbra|helios|ent\b|parapheur|ameli|impots|"
    r"net-?entreprises|telephone|portable|banque|cloud|teams|office|intranet|logiciel|berger|"
    r"cosoluce|jvs|segilog|horizon|magnus|xemelios|pes\b|cdg|dematerialisation)")
_OTHER_BEFORE = re.compile(
    r"(messagerie|boite mail|boite aux lettres|webmail|wi-?fi|ordinateur|session windows|"
    r"outlook|zimbra|helios|parapheur|intranet|logiciel)[^.?!\n]{0,25}$")

_EXPIRED_CUES = re.compile(
    r"(\bexpir\w*|\bexipr\w*|\bexprir\w*|\bexpier\w*|\bespir[eé]\w*|\bperim\w*|"
    r"\bplus (valide|valable)\b|\barrive a (echeance|expiration)\b|\bechu\b|\bcaduc\w*|"
    r"\bexpired?\b|\boutdated\b|\bvalidite (depassee|expiree|terminee)\b|\bdate de validite\b)")
_FORGOTTEN_CUES = re.compile(
    r"(\boubli\w*|\boubier\b|\boublei\w*|\bobli(e|er|ee)\b|\bperdu\w*|\begare\w*|"
    r"\bne (me )?(souviens|souvient|rappelle|rapelle) (plus|pas)\b|\b(souviens|rappelle) plus\b|"
    r"\bretrouve(r)? (plus|pas)\b|\b(plus|pas) (a )?retrouver\b|\bre-?initiali\w*|"
    r"\breinisiali\w*|\brenitiali\w*|\breinit\w*|\breset\w*|\bnouveau (mot|mdp|code)|"
    r"\bregenere\w*|\bdebloqu\w*|\bbloque\w*|\bverrouill\w*|\bforgot\w*|\blost\b|"
    r"\b(can'?t|cannot|don'?t|do not) remember\b|\bplus (le|mon|son) (mot|mdp)\b)")
_NEGATION = re.compile(r"(\bpas|\bjamais|\bnot|\bn'a|\bn'est)\s+(encore\s+|du tout\s+|deja\s+)?$")
_CLOSURE = re.compile(
    r"(c'est regle|c'est bon\b|c'est ok\b|probleme (est )?(regle|resolu)|tout (est rentre dans "
    r"l'ordre|fonctionne)|ca (re)?fonctionne|ca (re)?marche|j'ai (pu|reussi a) (me )?(re)?connect|"
    r"je (peux|parviens a) (de nouveau|a nouveau) me connecter|j'ai retrouve mon (mot|mdp)|"
    r"ne (plus )?tenez pas compte|annule(r)? ma demande|demande (est )?(resolue|sans objet)|"
    r"it works now|problem solved)")
_REFERS_BELOW = re.compile(
    r"(ci-?dessous|ci-?apres|ci-?joint|plus bas|relance|voir (le )?(message|mail|courriel)|"
    r"ma (premiere |precedente )?demande|mon (precedent|dernier) (message|mail|courriel)|"
    r"see below|below|en dessous|pour suite a donner|pour info|transmets?|fais suivre)")
_HELPDESK_BLOCK = re.compile(r"(ddfip|dgfip|pgp spl pes|spl-pes|finances publiques)")

WINDOW = 110


@dataclass(frozen=True)
class Cues:
    expired: list[str]
    forgotten: list[str]
    excluded: list[str]

    @property
    def any(self) -> bool:
        return bool(self.expired or self.forgotten)


def find_cues(text: str) -> Cues:
    """The expired and forgotten cues of ``text`` that sit near a password (or access) mention."""
    folded = fold(text)
    anchors: list[tuple[int, int]] = []
    excluded: list[str] = []
    for match in _PASSWORD.finditer(folded):
        after, before = folded[match.end():match.end() + 60], folded[:match.start()]
        owner = _OTHER_OWNER.match(after)
        if owner or _OTHER_BEFORE.search(before):
            found = owner.group(0) if owner else before[-40:]
            excluded.append(f"« {match.group(0)}{found if owner else ''} »".strip())
            continue
        anchors.append((match.start(), match.end()))
    access = [(m.start(), m.end()) for m in _ACCESS.finditer(folded)]
    expired = _near(folded, _EXPIRED_CUES, anchors, access, negatable=True)
    forgotten = _near(folded, _FORGOTTEN_CUES, anchors, access, negatable=True)
    return Cues(expired, forgotten, excluded)


def _near(folded: str, cues: re.Pattern[str], anchors: list[tuple[int, int]],
          access: list[tuple[int, int]], negatable: bool) -> list[str]:
    out = []
    for match in cues.finditer(folded):
        start, end = match.span()
        if negatable and _NEGATION.search(folded[max(0, start - 20):start]):
            continue
        close = any(a_start - WINDOW <= start and end <= a_end + WINDOW
                    for a_start, a_end in anchors)
        # Without a password mention, "compte expiré" or "accès bloqué" still say it.
        close = close or any(abs(start - a_end) <= 40 or abs(a_start - end) <= 40
                             for a_start, a_end in access)
        if close:
            out.append(_snippet(folded, start, end))
    return out


def _snippet(folded: str, start: int, end: int) -> str:
    left = folded.rfind(" ", 0, max(0, start - 25))
    right = folded.find(" ", end + 25)
    snippet = folded[left + 1 if left >= 0 else 0: right if right >= 0 else len(folded)]
    return " ".join(snippet.split())


def _sender_quoted_blocks(quoted: str) -> str:
    """The quoted text without the blocks the helpdesk wrote (its questions and replies)."""
    blocks: list[list[str]] = [[]]
    for line in quoted.splitlines():
        if re.match(r"^\s*\*?(de|from)\s*\*?\s*:", line, re.I) or re.search(
                r"(a [ée]crit|wrote)\s*:\s*$", line, re.I) or re.match(r"^\s*-{3,}", line):
            blocks.append([])
        blocks[-1].append(line)
    keep = []
    for block in blocks:
        head = fold(" ".join(block[:2]))
        if not _HELPDESK_BLOCK.search(head):
            keep.append("\n".join(block))
    return "\n".join(keep)


def check(message: MessageView, ctx: Context) -> Finding[str]:
    reasons: list[Reason] = []

    def say(text: str) -> None:
        reasons.append(Reason(NAME, text))

    new_folded = fold(message.new_text)
    closure = _CLOSURE.search(new_folded)
    if closure:
        say(f"le message clôt l'échange : « {closure.group(0)} »")
        return Finding(NAME, OTHER, tuple(reasons))
    cues = _merge(find_cues(message.subject), find_cues(message.new_text))
    where = "l'objet et le nouveau texte"
    if not cues.any and message.quoted_text:
        refers = _REFERS_BELOW.search(new_folded) or message.quote_kind == "forward" or len(
            new_folded.split()) < 8
        if refers:
            quoted = find_cues(_sender_quoted_blocks(message.quoted_text))
            if quoted.any:
                cues = quoted
                where = "le message cité ou transféré (le nouveau texte y renvoie)"
    for ex in cues.excluded:
        say(f"mot de passe d'une autre application, ignoré : {ex}")
    if cues.expired:
        extra = f" (l'oubli est aussi cité : « {cues.forgotten[0]} » ; l'expiration prime)" \
            if cues.forgotten else ""
        say(f"mot de passe expiré dans {where} : « {cues.expired[0]} »{extra}")
        return Finding(NAME, EXPIRED, tuple(reasons))
    if cues.forgotten:
        say(f"mot de passe oublié ou à réinitialiser dans {where} : « {cues.forgotten[0]} »")
        return Finding(NAME, FORGOTTEN, tuple(reasons))
    say("ni oubli ni expiration d'un mot de passe Chorus Pro dans le message : autre demande")
    return Finding(NAME, OTHER, tuple(reasons))


def _merge(a: Cues, b: Cues) -> Cues:
    return Cues(a.expired + b.expired, a.forgotten + b.forgotten, a.excluded + b.excluded)
