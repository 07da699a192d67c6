"""What is asked: a forgotten -xt password, an expired one, or something else?

Read from the sender's own new text and the subject, folded (lower case, no accents) so that
« EXPIRÉ », « expiré » and « expire » are one word, and tolerant of common typos (one letter off
« expiré » or « oublié » still counts). A cue (« oublié », « perdu », « réinitialiser », « renvoyer
un mot de passe », « expiré », « périmé », « n'est plus valide », English alike) counts only near a
mention of the password (« mot de passe », « mdp », « password »…) or of the account's access,
and not when:

- it is negated (« je n'ai pas oublié »; « n'est plus valide » is not a negation);
- it belongs to something else (« le lien d'activation a expiré », « le mot de passe de ma
  messagerie », « de l'espace ENSAP », « sur impots.gouv.fr »);
- it is a wish for later (« afin de pouvoir réinitialiser moi-même mon mot de passe à l'avenir »)
  or an action asked on someone else's account (« doit être bloqué »);
- « oublié de » introduces another verb (« j'ai oublié de vous indiquer… »), or what is
  forgotten is the identifier or a fact (« j'ai oublié mon identifiant », « je ne me souviens
  plus si… »);
- it is a warning of an expiry to come (« expirera dans 7 jours », « expire aujourd'hui ») or a
  future tense (« la prochaine fois que j'oublierai »), or said of anyone (« lorsqu'un agent a
  oublié… »).

When the subject names the password, a cue in a short new text counts (« Il a expiré » under
« Re: mot de passe »); a forward's subject (« TR: … ») is the forwarded message's, not the
sender's words. Expired wins when both appear. A message that closes the matter (« c'est
réglé », « vous pouvez clôturer ma demande », « j'ai pu le renouveler par SMS ») is ``other``.

Quoted or forwarded text is read only when the new text says nothing about a password: a bare
« voir ci-dessous », a reminder, a forward, or a new text over the sender's own earlier message;
never under a plain thank-you. Blocks written by the helpdesk itself are skipped there: its
questions are not the sender's request; header lines (« Objet : … ») are skipped too.

Cues found, :mod:`triage.rules.scope` then judges whether they ask for a Chorus Pro ``-xt``
reset or renewal (the application named, the request, who asks); anything else, or unclear, is
``other`` with the reason, for an agent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property, lru_cache

import re2

from triage.config import compile_pattern
from triage.parse import MessageView
from triage.rules import scope
from triage.rules.base import Context, Finding, Reason
from triage.text import Sieved, fold, match_spans

NAME = "intent"
LABEL = "Demande"
DESCRIPTION = ("ce que demande l'expéditeur : la réinitialisation d'un mot de passe Chorus Pro "
               "-xt oublié, son renouvellement s'il a expiré, ou autre chose (autre application, "
               "question, remerciement…)")

FORGOTTEN = "forgotten_password"
EXPIRED = "expired_password"
OTHER = "other"

# RE2 scans the text first (triage.text.Sieved): most lines name no password.
_PASSWORD = Sieved(re.compile(
    r"(\bcelui (de|du|pour|d'acces a) (chorus|mon compte|compte|l'application chorus|cpp)\b|"
    r"\bmots?[\s-]*d[e']?[\s-]*pa+s+e?s?\b|\bmot ?de ?pas\b|\bmdp\b|\bm\.d\.p\b|\bpass ?words?\b|"
    r"\bpasswd\b|\bpwd\b|\bmot de pass\b|\bcodes? (d'acces|secret|de connexion)\b)"))
# Objects that stand for the password when people do not name it (RE2 first too). In ASCII
# text RE2 finds them itself: its \b is Python's there, and one word cannot match where
# another does.
_ACCESS_WORDS = ("compte", "acces", "identifiants", "login", "connexion", "account")
_ACCESS = Sieved(re.compile("(" + "|".join(rf"\b{w}\b" for w in _ACCESS_WORDS) + ")"))
_ACCESS_ASCII = re2.compile(rf"\b(?:{'|'.join(_ACCESS_WORDS)})\b".encode("ascii"))
_OTHER_APPS = (
    r"(messagerie|boite|bal\b|adresse (mail|e-?mail|electronique)|mail\b|e-?mail\b|webmail|"
    r"wi-?fi|ordinateur|pc\b|session|windows|outlook|zimbra|helios|ent\b|ensap|parapheur|ameli|"
    r"impots|net-?entreprises|cnracl|urssaf|caf\b|telephone|portable|banque|cloud|teams|"
    r"office|intranet|logiciel|berger|cosoluce|jvs|segilog|horizon|magnus|xemelios|pes\b|cdg|"
    r"dematerialisation|demat|e-?magnus|antai|ants|chorus formation|formation|"
    + scope.NAMED_APPLICATIONS + ")")
_OTHER_OWNER = re.compile(
    r"^\s*(((de|du|des|pour|d'acces a|d'acces au|de connexion a|de connexion au|sur|of|for)\s+"
    r"([\w'.-]+\s+){0,4}?|[(:-]?\s*)" + _OTHER_APPS + r"|"
    # « pour le site Démarches Simplifiées », « de l'espace X »: a named place that is not ours
    r"(de|du|pour|sur|of|for)\s+(le |la |l'|mon |ma |notre |votre |the |my )?"
    r"(site|portail|plateforme|espace|application|appli|logiciel|outil|service)\s+(web |en ligne )?"
    r"(?!chorus|pro\b|personnel|perso\b|utilisateur|client|professionnel|securise|xt\b|-xt|"
    r"de connexion|en ligne|mot|public|internet|web\b)[a-z][\w.-]+)")
_OTHER_BEFORE = re.compile(
    r"(messagerie|boite mail|boite aux lettres|webmail|wi-?fi|ordinateur|session windows|"
    r"outlook|zimbra|helios|ensap|parapheur|intranet|logiciel)[^.?!\n]{0,25}$")
# Longer than any match of _OTHER_BEFORE plus the line break its $ may stand before
# (tests/rules/test_intent.py checks it): searched in that much of the text before a mention,
# it finds what it finds in the whole, at a cost that does not grow with the text.
_OTHER_BEFORE_REACH = 60
# Things that expire or get blocked other than the password (« le lien d'activation a expiré »).
_OTHER_OBJECTS = re.compile(
    r"\b(lien|invitation|activation|certificat|carte|abonnement|contrat|convention|facture|"
    r"delai de paiement|bon de commande|marche|devis|piece|session de formation|numero|"
    r"portable|telephone)\b")

# RE2 scans the text first (see triage.text.Sieved). Every cue starts a word. Python's engine
# tries a pattern at each position of the text; the lookbehind put first turns away the
# positions inside a word at once, before the alternatives.
_EXPIRED_CUES = Sieved(re.compile(
    r"(?<!\w)"
    r"(\bexpir\w*|\bexipr\w*|\bexprir\w*|\bexpier\w*|\bexir[eé]\w*|\bespir[eé]\w*|\bperim\w*|"
    r"\bplus (valide|valable|actif)\b|\barrive a (echeance|expiration)\b|\bechu\b|\bcaduc\w*|"
    r"\bobsolete\w*|\bexpired?\b|\boutdated\b|\bvalidite (est )?(depassee|expiree|terminee)\b|"
    r"\bdate de validite\b|\b(validite|delai)\b[^.?!\n]{0,40}\b(depasse|expire|termine|echu)\w*|"
    r"\bfin de (sa )?validite\b|"
    r"\b(depasse|atteint)\w* (sa |la )?(duree|date|limite) de validite\b)"))
_FORGOTTEN_CUES = Sieved(re.compile(
    r"(?<!\w)"
    r"(\boubli\w*|\boubier\b|\boublei\w*|\bobli(e|er|ee)\b|\bperdu\w*|\bperte\b|\begare\w*|"
    r"\bne (me )?(souviens|souvient|rappelle|rapelle) (plus|pas)\b|\b(souviens|rappelle) plus\b|"
    r"\b(me )?(souvenir|rappeler) (de|du|mon|le)\b|\bne (sais|connais) plus\b|"
    r"\btrou de memoire\b|\b(impossible de|n'arrive plus a|ne parviens plus a) (me )?"
    r"(retrouver|souvenir|rappeler)\b|"
    r"\ben (r?envo|attribu|gene|donn|fourni|redonn)\w+ (un|une) (nouveau|nouvelle|autre)\b|"
    r"\bretrouve(r)? (plus|pas)\b|\b(plus|pas) (a )?retrouver\b|\bre-?initiali\w*|"
    r"\breinisiali\w*|\brenitiali\w*|\breinit\w*|\breset\w*|\bnouveau (mot|mdp|code)|"
    r"\b(r?envo\w+|attribu\w+|gene\w+|communiqu\w+|redonn\w+|donn\w+|fourni\w+|transmet\w*|"
    r"refai\w+|recreer|regenere\w*)\s+(moi |nous )?(un |une |mon |le |d'un |un autre |"
    r"de nouveaux |des )?(nouveau |nouveaux |provisoire )?(mots? de passe|mdp|codes? d'acces)|"
    r"\bdebloqu\w*|\bbloque\w*|\bverrouill\w*|\bforgot\w*|\blost\b|"
    r"\b(can'?t|cannot|don'?t|do not) remember\b|\bplus (le|mon|son) (mot|mdp)\b)"))
_NEGATION = re.compile(r"(\bpas|\bjamais|\bnot|\bnever|\bnon)\s+(encore\s+|du tout\s+|deja\s+)?$")
# « je n'ai pas besoin que vous le réinitialisiez », « no need to reset it »
_NO_NEED = re.compile(r"(pas besoin|plus besoin|no need|don'?t need|do not need)\b[^.?!\n]{0,30}$")
# « j'ai oublié mon identifiant », « je ne me souviens plus si… »: not the password forgotten.
_FORGOT_OTHER = re.compile(
    r"^\s*(mon |son |l'|le |my |your )?(identifiant|login|nom d'utilisateur|username|user ?name)"
    r"\b(?![^.?!\n]{0,25}\b(et|ni|and|ou)\b[^.?!\n]{0,12}\b(mot de passe|mdp|password))|"
    r"^\s*(plus |pas )?(si|de quel|quel|quelle|lequel|laquelle|whether|which)\b")
_FORGOT_TO = re.compile(r"^\w*\s+d(e\s+|')(vous|te|lui|leur|le |la |les |l'|me |m'|y |\w+er\b)")
_FUTURE_WISH = re.compile(
    r"^[^.?!\n]{0,60}\b(moi-?meme|nous-?memes?|par moi-?meme|a l'avenir|la prochaine fois|"
    r"en cas d'oubli|si besoin|le cas echeant)")
_WISH_BEFORE = re.compile(r"((afin de|pour|de) pouvoir|so (that )?i can|in order to|to be able to)"
                          r"\s+(le |la |les |me |moi-?meme |myself )?$")
_ACTION_ON_OTHER = re.compile(r"\b(etre|soit|faire|sera)\s+$")
# « pour éviter qu'il n'expire », « au cas où il expirerait », « si vous pensez que votre mot de
# passe a expiré », « a été réinitialisé par vos services »: not a request.
_HYPOTHETICAL = re.compile(
    r"(\beviter qu|\bavant qu|\bde peur qu|\bau cas ou|\bdans le cas ou|\bsi jamais|"
    r"\bsi vous|\ben cas d|"
    # « lorsqu'un agent a oublié… », « quand nos agents… »: anyone, not the sender
    r"\blorsqu'?\s?(un|une|nos|les|des|l'|le|la|on|il|elle)\b|\bquand (un|une|nos|les|des|on|il|"
    r"elle)\b|\bla prochaine fois|\bcomme pour\b|\bnext time\b|"
    r"\bsi (un|une|nos|des|on)\b|\bif (a|an|one|someone|somebody|a user)\b)[^.?!\n]{0,60}$")
_REPORTED = re.compile(r"\b(a|ont|avait) (bien |deja )?ete\s+$|\b(avez|aviez) (bien |deja )?$")
_CONDITIONAL = re.compile(r"(erait|eraient)$")
_DISCLAIMER = re.compile(
    r"^\s*(_{3,}|-{3,}\s*$|avertissement|ce (message|courriel|mail)( electronique)? (et|est|peut)|"
    r"les informations contenues|this (e-?mail|message) (and|is|may)|confidenti|"
    r"pensez a l'environnement)")
# The lookahead holds the first letters of the alternatives (tests/rules/test_intent.py checks
# it): the engine tries the pattern at each position of the text, and turns most away at once.
_CLOSURE = Sieved(re.compile(
    r"(?=[acdijlmnptvy])"
    r"(c'est regle|c'est bon\b|c'est ok\b|c'est parfait|probleme (est )?(regle|resolu)|"
    r"tout (est rentre dans l'ordre|fonctionne|marche)|ca (re)?fonctionne|ca (re)?marche|"
    r"(nouveau )?(mot de passe|mdp|il|cela|le lien) (re)?(fonctionne|marche)|"
    r"j'ai (pu|reussi a) (me )?(re)?connect|je (peux|parviens a) (de nouveau|a nouveau) me "
    r"connecter|j'ai retrouve mon (mot|mdp)|ne (plus )?tenez pas compte|annule(r)? ma demande|"
    r"demande (est )?(resolue|sans objet)|it works now|problem solved|tout est (en ordre|ok\b)|"
    r"(vous pouvez|merci de|vous pourrez) (clore|cloturer|fermer|classer) (ma|la|cette|notre) "
    r"demande|je (vous )?confirme (avoir )?(bien )?(recu|recupere)|"
    r"j'ai (finalement |enfin |bien )?(pu|reussi a) (le |la |mon |ma )?(renouveler|reinitialiser|"
    r"changer|modifier|debloquer|retrouver)|you can close|\bannul\w* (de )?(ma |la |cette )?"
    r"demande)"))
_THANKS_ONLY = re.compile(
    r"^(bonjour|bonsoir|madame|monsieur|,|\.|!|\s)*((un )?grand |mille |tous mes )?"
    r"(merci|thanks|thank you|parfait|super|top|ok|tres bien|bien recu|c'est note|note)"
    r"[\w\s,.!'-]{0,60}$")
_REFERS_BELOW = re.compile(
    r"(ci-?dessous|ci-?apres|ci-?joint|plus bas|relance|sans (nouvelles|reponse)|"
    r"voir (le )?(message|mail|courriel)|ma (premiere |precedente )?demande|"
    r"mon (precedent|dernier) (message|mail|courriel)|see below|below|en dessous|"
    r"pour suite a donner|pour info|transmets?|fais suivre)")
_HELPDESK_BLOCK = re.compile(r"(ddfip|dgfip|pgp spl pes|spl-pes|finances publiques)")
_SENTENCE_END = re.compile(r"[.!?\n]")
_QUOTED_HEADER = re.compile(
    r"^[>\s]*\*?(de|from|envoye|sent|date|a|à|to|cc|objet|subject|pour|von|gesendet|betreff)"
    r"\s*\*?\s*:.*$", re.I | re.M)
_FORWARD_SUBJECT = re.compile(r"^\s*(\[[^\]]{1,30}\]\s*)*(tr|fw|fwd|wg|rv|doorst|i)\s*:", re.I)
# « expire dans 7 jours », « expirera », « va expirer », « will expire »: a warning, not a state.
_FUTURE_AFTER = re.compile(r"^\s*(dans \d|dans les|bientot|prochainement|le \d|d'ici|sous \d|"
                           r"in \d|soon|on \d|aujourd'hui|ce soir|demain|today|tomorrow)")
_FUTURE_BEFORE = re.compile(r"(\bva|\bvont|\bsur le point d'|\bwill|\babout to|\bgoing to)\s+$")
_FUZZY_EXPIRED = ("expire", "expiree", "expirer", "expiration", "perime", "perimee")
_FUZZY_FORGOTTEN = ("oublie", "oubliee", "oublier")

WINDOW = 110


@dataclass(frozen=True)
class Cues:
    expired: list[str]
    forgotten: list[str]
    excluded: list[str]
    anchored: bool  # the text names the password (or the account) somewhere

    @property
    def any(self) -> bool:
        return bool(self.expired or self.forgotten)


def _one_edit(word: str, target: str) -> bool:
    """True when ``word`` is ``target`` with one letter added, dropped, changed or swapped."""
    if word == target or abs(len(word) - len(target)) > 1:
        return False
    if len(word) == len(target):
        diff = [i for i, (a, b) in enumerate(zip(word, target, strict=True)) if a != b]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1
                                  and word[diff[0]] == target[diff[1]]
                                  and word[diff[1]] == target[diff[0]])
    short, long_ = (word, target) if len(word) < len(target) else (target, word)
    return any(long_[:i] + long_[i + 1:] == short for i in range(len(long_)))


def find_cues(text: str, anchor_anywhere: bool = False, other_apps: tuple[str, ...] = ()
              ) -> Cues:
    """The expired and forgotten cues of ``text`` that sit near a password (or access) mention.

    With ``anchor_anywhere`` (the subject names the password), any cue counts.
    """
    return _scan(fold(text), other_apps).cues(anchor_anywhere)


@dataclass(frozen=True)
class _Scan:
    """What :func:`find_cues` reads of a folded text before it weighs the cues: the password
    and access mentions, and every cue found. The new text is weighed twice (on its own, then
    lent the subject's password mention), and read once."""

    folded: str
    anchors: list[tuple[int, int]]
    excluded: list[str]
    foreign: list[tuple[int, int]]  # password mentions that belong to something else
    access: list[tuple[int, int]]
    expired: list[tuple[int, int, str]]
    forgotten: list[tuple[int, int, str]]

    @cached_property
    def weighed(self) -> tuple[list[tuple[str, bool]], list[tuple[str, bool]]]:
        """The expired and forgotten cues that stand, with whether a password or access
        mention is close: weighed once for both ways of :meth:`cues`."""
        return (_near(self.folded, self.expired, self.anchors, self.access, self.foreign),
                _near(self.folded, self.forgotten, self.anchors, self.access, self.foreign))

    def cues(self, anchor_anywhere: bool) -> Cues:
        expired, forgotten = self.weighed
        return Cues([snippet for snippet, close in expired if close or anchor_anywhere],
                    [snippet for snippet, close in forgotten if close or anchor_anywhere],
                    list(self.excluded), bool(self.anchors or self.access))


def _scan(folded: str, other_apps: tuple[str, ...]) -> _Scan:
    anchors: list[tuple[int, int]] = []
    excluded: list[str] = []
    foreign: list[tuple[int, int]] = []
    extra = [compile_pattern(p) for p in other_apps]
    for match in _PASSWORD.finditer(folded):
        after = folded[match.end():match.end() + 80]
        before = folded[max(0, match.start() - _OTHER_BEFORE_REACH):match.start()]
        owner = _OTHER_OWNER.match(after)
        if owner is None and extra:
            near = folded[max(0, match.start() - 40):match.end() + 60]
            hit = next((p.search(near) for p in extra if p.search(near)), None)
            if hit is not None:
                excluded.append(f"« {match.group(0)} … {hit.group(0)} » (motif de la "
                                "configuration)")
                foreign.append(match.span())
                continue
        if owner or _OTHER_BEFORE.search(before):
            found = owner.group(0) if owner else ""
            excluded.append(f"« {match.group(0)}{found} »")
            foreign.append(match.span())
            continue
        anchors.append((match.start(), match.end()))
    access = (match_spans(_ACCESS_ASCII, folded.encode("ascii")) if folded.isascii()
              else [(m.start(), m.end()) for m in _ACCESS.finditer(folded)])
    expired = [(m.start(), m.end(), m.group(0)) for m in _EXPIRED_CUES.finditer(folded)]
    forgotten = [(m.start(), m.end(), m.group(0)) for m in _FORGOTTEN_CUES.finditer(folded)]
    words = _typo_words(folded)
    expired += _fuzzy(words, _FUZZY_EXPIRED, expired)
    forgotten += _fuzzy(words, _FUZZY_FORGOTTEN, forgotten)
    return _Scan(folded, anchors, excluded, foreign, access, expired, forgotten)


def _one_edit_spellings(target: str) -> list[str]:
    """RE2 spellings of every word one letter off ``target`` (added, dropped, changed or two
    swapped), and of ``target`` itself."""
    spellings = []
    for i in range(len(target) + 1):
        spellings.append(f"{target[:i]}[a-z]{target[i:]}")
        if i < len(target):
            spellings += [f"{target[:i]}[a-z]{target[i + 1:]}", target[:i] + target[i + 1:]]
        if i + 1 < len(target):
            spellings.append(target[:i] + target[i + 1] + target[i] + target[i + 2:])
    return spellings


def _typo_sieve(group: str = "(") -> str:
    """A word (of letters a-z) one typo off a fuzzy target starts at a match of this pattern
    (RE2, longest match), whose group is then the longest such word the letters there begin
    with (every spelling starts with a letter: the match starts with the word only at the
    text's start)."""
    spellings = {s for t in _FUZZY_EXPIRED + _FUZZY_FORGOTTEN for s in _one_edit_spellings(t)}
    return "(?:^|[^a-z])" + group + "|".join(sorted(spellings)) + ")"


_LONGEST = re2.Options()
_LONGEST.longest_match = True
# Compiled for str and for the bytes of an ASCII text, whose offsets RE2 need not convert,
# there without a group: RE2 then finds the matches' spans by its automata alone, without
# the slower search that places a group.
_TYPO_SIEVE = re2.compile(_typo_sieve(), _LONGEST)
_TYPO_SIEVE_ASCII = re2.compile(_typo_sieve("(?:").encode("ascii"), _LONGEST)


def _typo_words(folded: str) -> list[tuple[int, int, str]]:
    """The words of ``folded`` (runs of five letters a-z or more) that may be one typo off a
    fuzzy target, with their spans, in order: those where RE2, in one pass, finds a candidate
    whole word (most texts hold none); the others cannot be one typo off."""
    if folded.isascii():
        spans = [(start if "a" <= folded[start] <= "z" else start + 1, end)
                 for start, end in match_spans(_TYPO_SIEVE_ASCII, folded.encode("ascii"))]
    else:
        spans = [m.span(1) for m in _TYPO_SIEVE.finditer(folded)]
    # The longest candidate a word begins with is the word itself only if no letter follows.
    return [(start, end, folded[start:end]) for start, end in spans
            if end == len(folded) or not "a" <= folded[end] <= "z"]


def _fuzzy(words: list[tuple[int, int, str]], targets: tuple[str, ...],
           known: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    return [(start, end, word) for start, end, word in words
            if _near_miss(word, targets) and not any(s <= start < e for s, e, _ in known)]


@lru_cache(maxsize=65536)
def _near_miss(word: str, targets: tuple[str, ...]) -> bool:
    """True when ``word`` is one of ``targets`` with one typo (cached: words repeat)."""
    # One edit keeps the length within one and the first or second letter in place.
    if not any(abs(len(word) - len(t)) <= 1 and (word[0] in t[:2] or word[1] in t[:2])
               for t in targets):
        return False
    return any(_one_edit(word, t) for t in targets)


def _distance(start: int, end: int, spans: list[tuple[int, int]]) -> int:
    return min((max(s - end, start - e, 0) for s, e in spans), default=10**9)


def _near(folded: str, spans: list[tuple[int, int, str]], anchors: list[tuple[int, int]],
          access: list[tuple[int, int]], foreign: list[tuple[int, int]]
          ) -> list[tuple[str, bool]]:
    """The cues of ``spans`` that stand (not negated, nor another thing's, nor a wish…), as
    snippets, each with whether a password (or access) mention is close enough."""
    out = []
    for start, end, word in sorted(spans):
        if foreign and _distance(start, end, list(foreign)) < _distance(start, end, anchors):
            continue  # « le mot de passe de ma messagerie a expiré »: that one's, not ours
        before = folded[max(0, start - 40):start]
        after = folded[end:end + 70]
        if _NEGATION.search(before[-20:]):
            continue
        if word.startswith("oubli") and _FORGOT_TO.match(folded[start:start + 40]):
            continue
        if _FORGOT_OTHER.match(folded[end:end + 80]) or _NO_NEED.search(before):
            continue
        if word.startswith(("oubli", "expir")) and re.search(r"(erai|eras|era|erons|erez|eront)$",
                                                             word):
            continue  # « la prochaine fois que j'oublierai », « il expirera »: not yet
        if _WISH_BEFORE.search(before) or (
                word.startswith(("reinit", "re-init", "reset", "debloq")) and
                _FUTURE_WISH.match(after)):
            continue
        if word.startswith(("bloque", "verrouill")) and _ACTION_ON_OTHER.search(before):
            continue
        if (_HYPOTHETICAL.search(folded[max(0, start - 80):start]) or _REPORTED.search(before)
                or _CONDITIONAL.search(word)):
            continue
        if word.startswith(("expir", "arrive", "expire")) and (
                word.startswith(("expirera", "expireront")) or _FUTURE_BEFORE.search(before)
                or _FUTURE_AFTER.match(folded[end:end + 30])):
            continue  # a warning of an expiry to come asks for nothing yet
        password_close = any(a_start - WINDOW <= start and end <= a_end + WINDOW
                             for a_start, a_end in anchors)
        nearest_other = max((m.end() for m in _OTHER_OBJECTS.finditer(before)), default=-1)
        if nearest_other >= 0 and not any(
                max(0, start - 40) + nearest_other <= a_start < start for a_start, _ in anchors):
            continue  # what expired (or was lost) is a link, a card, an invoice…
        access_close = any(abs(start - a_end) <= 40 or abs(a_start - end) <= 40
                           for a_start, a_end in access)
        out.append((_snippet(folded, start, end), password_close or access_close))
    return out


def _snippet(folded: str, start: int, end: int) -> str:
    left = folded.rfind(" ", 0, max(0, start - 25))
    right = folded.find(" ", end + 25)
    snippet = folded[left + 1 if left >= 0 else 0: right if right >= 0 else len(folded)]
    return " ".join(snippet.split())


def _folded_without_disclaimer(text: str) -> str:
    """The text folded, without a trailing confidentiality notice (it talks about the reader)."""
    lines = text.splitlines()
    if "\n".join(lines) == text:
        # Folding never makes, moves nor drops a "\n" ("\n" is no space, mark nor cased letter,
        # and no character decomposes or lower-cases into one): the folded text, cut at its
        # "\n", gives the folded lines, at the cost of one call instead of one per line.
        folded = fold(text)
        folded_lines = folded.split("\n")
        for i in range(1, len(folded_lines)):
            if _DISCLAIMER.match(folded_lines[i]):
                return "\n".join(folded_lines[:i])
        return folded
    for i, line in enumerate(lines):  # other line breaks: each line folded apart
        if i > 0 and _DISCLAIMER.match(fold(line)):
            return fold("\n".join(lines[:i]))
    return fold(text)


# A line that starts a quoted block: an attribution (« De : … », « Le … a écrit : ») or a
# separator. Each has a colon or three dashes, which most lines lack.
_BLOCK_START = re.compile(r"\s*\*?(de|from)\s*\*?\s*:|\s*-{3,}|.*(a [ée]crit|wrote)\s*:\s*$",
                          re.I)


def _quoted_blocks(quoted: str) -> list[tuple[str, str]]:
    """The quoted text cut into (folded head, text) blocks at each attribution or header block;
    the head is the block's first two lines."""
    blocks: list[list[str]] = [[]]
    for line in quoted.splitlines():
        if (":" in line or "---" in line) and _BLOCK_START.match(line):
            blocks.append([])
        blocks[-1].append(line)
    return [(fold(" ".join(b[:2])), "\n".join(b)) for b in blocks if b]


def _helpdesk_asks_password(blocks: list[tuple[str, str]]) -> bool:
    """True when a quoted block written by the helpdesk talks about the password."""
    return any(_HELPDESK_BLOCK.search(head) and _PASSWORD.search(fold(text))
               for head, text in blocks)


def _sender_blocks(message: MessageView, blocks: list[tuple[str, str]]) -> tuple[str, bool]:
    """The quoted text without the helpdesk's blocks, and whether the sender wrote some of it."""
    sender = message.sender_address
    names = []
    if sender is not None:
        names.append(sender.address)
        if sender.display_name:
            names.append(fold(sender.display_name))
    keep, own = [], False
    for head, text in blocks:
        if _HELPDESK_BLOCK.search(head):
            continue
        keep.append(text)
        own = own or any(n and n in head for n in names)
    return "\n".join(keep), own


def check(message: MessageView, ctx: Context) -> Finding[str]:
    reasons: list[Reason] = []

    def say(text: str) -> None:
        reasons.append(Reason(NAME, text))

    new_folded = _folded_without_disclaimer(message.new_text)
    apps = ctx.settings.patterns.other_applications
    closure = _CLOSURE.search(new_folded)
    if closure:
        # What follows the closing sentence may be a new request (« c'est réglé pour Paul,
        # mais le mien a expiré »); the closing sentence itself is not.
        stop = _SENTENCE_END.search(new_folded, closure.end())
        rest = new_folded[stop.end():] if stop else ""
        if not find_cues(rest, other_apps=apps).any:
            say(f"le message clôt l'échange : « {closure.group(0)} »")
            return Finding(NAME, OTHER, tuple(reasons))
    subject = find_cues(message.subject, other_apps=apps)
    if _FORWARD_SUBJECT.match(message.subject):
        # « TR: Votre mot de passe expire… » is the forwarded message's subject, not the
        # sender's words: its cues count with the forwarded text, its mention of the password
        # still lends itself to a short new text (« il a expiré »).
        subject = Cues([], [], subject.excluded, subject.anchored)
    short = len(new_folded.split(maxsplit=60)) <= 60  # (more words: 61 pieces)
    scan = _scan(new_folded, apps)
    alone = scan.cues(False)
    foreign_only = bool(alone.excluded) and not alone.anchored
    # A short new text borrows the password mention of the subject, or of the helpdesk's
    # quoted question it answers (« Expiré. » under « oublié ou expiré ? »), unless the text's
    # own password mentions were all another application's.
    blocks: list[tuple[str, str]] | None = None  # the quoted blocks, cut when first needed
    lend = short and not foreign_only and subject.anchored
    if short and not foreign_only and not subject.anchored and message.quoted_text:
        blocks = _quoted_blocks(message.quoted_text)
        lend = _helpdesk_asks_password(blocks)
    new = scan.cues(True) if lend else alone
    if foreign_only:
        subject = Cues([], [], subject.excluded, subject.anchored)
    cues = Cues(subject.expired + new.expired, subject.forgotten + new.forgotten,
                subject.excluded + new.excluded, subject.anchored or new.anchored)
    where = "l'objet et le nouveau texte"
    if not cues.any and message.quoted_text and not _THANKS_ONLY.match(new_folded.strip()):
        if blocks is None:
            blocks = _quoted_blocks(message.quoted_text)
        text, own = _sender_blocks(message, blocks)
        refers = (_REFERS_BELOW.search(new_folded) or message.quote_kind == "forward" or own
                  or len(new_folded.split()) < 8)
        if refers:
            # The header lines of a quoted or forwarded message (« Objet : Expiration de votre
            # mot de passe ») name its topic; only its text can state or ask anything.
            quoted = find_cues(_QUOTED_HEADER.sub("", text), other_apps=apps)
            if quoted.any:
                cues = quoted
                where = "le message cité ou transféré (le nouveau texte y renvoie)"
    for ex in cues.excluded:
        say(f"mot de passe d'une autre application, ignoré : {ex}")
    if cues.any:
        judged = scope.judge(new_folded, fold(message.subject), where,
                             where != "l'objet et le nouveau texte")
        for text in judged.reasons:
            say(text)
        if not judged.in_scope:
            return Finding(NAME, OTHER, tuple(reasons))
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
