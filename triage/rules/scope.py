"""Is the password request in scope: the reset or renewal of a Chorus Pro ``-xt`` password,
asked by the sender?

:mod:`triage.rules.intent` finds the cues (« oublié », « expiré », « réinitialiser ») near a
password; this module judges what they are about before a reply is drafted, because a draft
for a message that asks no reset is the costly error. It answers three questions and records
each answer for the agent:

- **which application**: a named other application or object (ANTS, S2LOW, Hélios, a signing
  certificate, a DGFiP mailbox…) with no mention of Chorus Pro or of an ``-xt`` account is not
  ours; nor is a Chorus Pro account that the sender says is not an ``-xt`` one (a login that is
  an e-mail address);
- **which request**: a question about the procedure in general, registering or changing a
  mobile number, creating an account or adding a user, a report of a suspicious message, are
  other requests, unless the sender also states that their own password is forgotten, lost,
  blocked or expired;
- **who asks**: the sender in their own words, for themselves or a colleague, or the requester
  whose message is forwarded.

Only the sender's own words decide (new text and subject; quoted text where the intent rule
read it). An unclear case is not drafted: it goes to an agent with the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from triage.text import Sieved, SievedGroup

#: Applications and objects whose passwords or validity the helpdesk does not manage, by name
#: (folded text). A word such as « mail » is too common to mean the topic; the intent rule
#: adds such words where they sit next to the password (« le mot de passe de ma messagerie »).
NAMED_APPLICATIONS = (
    r"ants|s2low|helios|xemelios|ensap|net-?entreprises|demarches[- ]simplifiees|ameli|"
    r"cnracl|e-?magnus|i?x?parapheur|ixbus|pastell|docapost|achatpublic|marches-?publics|"
    r"profil acheteur|plateforme (de )?(des )?marches( publics)?|"
    r"impots\.gouv(\.fr)?|espace (professionnel|particulier) (sur |d')?impots|"
    r"boite (mail |aux lettres |de messagerie )?(dgfip|professionnelle|fonctionnelle)|"
    r"messagerie (dgfip|professionnelle|melanie|zimbra|outlook)|nubo|ulysse|hubee|"
    r"(mot de passe|mdp|compte|acces|identifiant|session) (de la |du |de )?dgfip|"
    r"portail (internet )?(de la )?(gestion publique|dgfip)|applications? (de la )?dgfip|"
    r"pes ?v2|flux pes|compte de depot|"
    r"logiciel( de| du)? (comptabilite|compta|paie|gestion|facturation|finances)|progiciel|"
    r"berger[- ]?levrault|cosoluce|segilog|jvs|"
    r"certificats?( (de signature|electronique|rgs\W*|numerique|serveur|logiciel))?|"
    r"(signing |digital |rgs\W* )?certificates?|signature electronique|universign|"
    r"certeurope|chambersign|docusign|yousign|carte (agent|cps|a puce|de signature)|"
    r"cle (usb|rgs|de signature|de securite|universign|certeurope|chambersign)|"
    r"token|chorus formation|plateforme de formation")
# The patterns that start with « (?<!\w) » have alternatives that all start a word. The engine
# tries a pattern at each position of the text; that lookbehind turns away the positions inside
# a word at once, before the alternatives.
_OTHER_APPLICATION = re.compile(r"(?<!\w)\b(" + NAMED_APPLICATIONS + r")\b")
_CHORUS = Sieved(re.compile(
    r"\b(chorus( ?pro)?|cpp|-\s?xt\b|\w-xt\b|portail (de )?facturation)"))
# « comme pour Chorus Pro », « like for Chorus Pro »: named as a comparison, not the topic.
_COMPARISON = re.compile(r"(comme (pour|sur|avec|dans|a)|like (for|on|with)|as (for|on|with)|"
                         r"contrairement a|de meme que|autre que)\s+(le |la |l'|mon |ma |the )?$")
_NOT_XT = re.compile(
    r"(?<!\w)"
    r"(\b(pas|plus|non|jamais) (un |d'|de )?(compte |identifiant )?(en |de type )?\W{0,3}-?\s?xt\b|"
    r"\bsans (le )?(suffixe )?\W{0,3}-?\s?xt\b|\bcompte (chorus( pro)? )?\W?(fournisseur|"
    r"entreprise|prive|standard|classique)\b|\bsupplier account\b|\b(nous sommes|je suis|we "
    r"are|i am) (un |une |a )?(fournisseur|prestataire|supplier|vendor)\b|"
    r"\b(connexion|login|connecte\w*) (par|avec) (mon |mon adresse |l'adresse |une adresse )?"
    r"(mail|e-?mail|electronique|courriel)\b|"
    r"\b(identifiant|login)( de connexion)? (est|correspond a|c'est) (mon |mon adresse |l'adresse "
    r"|une adresse )?(mail|e-?mail|electronique|courriel)\b|"
    r"\b(identifiant|login|connexion)( chorus( pro)?)? (est|:|=)?\s?(mon |mon "
    r"adresse )?[\w.+-]+@[\w-]+\.[\w.]+)")
# A question about the procedure for anyone, not a request for one's own account.
_GENERAL = re.compile(
    r"(?<!\w)"
    r"(\b(procedure|marche|demarche) (a suivre )?(en cas|lorsqu|quand|si\b|pour (un|une|les|nos|"
    r"des|tous|chaque))|\bque (faut-il|doit-on|dois-je|devons-nous) faire\b|\bque faire (si|en "
    r"cas|lorsqu|quand)\b|\bcomment (proceder|procede-t-on|fait-on|doit-on)\b|"
    r"\b(un|une|nos|les|des) (agents?|utilisateurs?|collegues?|collaborat\w+) (qui|dont)\b|"
    r"\bwhat is the procedure\b|\bhow does (one|the reset)\b|"
    # impersonal questions (« faut-il passer par vous ? »); how long; how often; what
    # difference: questions, not requests
    r"\b(faut-il|existe-t-il|y a-t-il|doit-on|est-ce obligatoire|is it (necessary|mandatory)|"
    r"do (we|i) have to)\b|"
    r"\b(mots de passe|comptes|passwords) (des|de nos|de mes|of (our|my)) (utilisateurs|agents|"
    r"collegues|collaborateurs|users|staff)\b|"
    r"\b(a quelle frequence|tous les combien|combien de (temps|jours)|quel(le)? est (le|la) "
    r"(delai|duree)|quels sont les delais|how often|how long)\b|\bexpire-t-(il|elle)\b|"
    r"\bquelle (est la )?difference\b|\b(doivent|doit)-(ils|elles|il|on)\b)")
# « Puis-je le réinitialiser moi-même ? »: asks how to do it oneself, not for a reset.
_SELF_SERVICE = re.compile(
    r"\b(est-il possible|est il possible|puis-je|pouvons-nous|peut-on|can i|can we|is it "
    r"possible|could i)\b[^.?!\n]{0,80}\b(moi-?meme|nous-?memes|myself|ourselves|sans passer par "
    r"vous|without (going through|writing to) you|depuis (mon|notre) espace)")
_MOBILE = re.compile(
    r"(?<!\w)"
    r"(\b(numero|portable|mobile|telephone|phone)\b[^.?!\n]{0,30}\b(est|a ete|is|was) "
    r"(bien )?(enregistr|renseign|declar|associ|registered|saved)\w*|"
    r"\b(enregistr|ajout|modifi|chang|mettre a jour|mise a jour|renseign|declar|associer|"
    r"updat|regist|add(ed|ing)?\b)\w*\b[^.?!\n]{0,50}\b(numero|n°|telephone|tel|portable|mobile|"
    r"phone|cell)\b|\b(numero|telephone|portable|mobile|phone( number)?)\b[^.?!\n]{0,30}\b"
    r"(a (changer|modifier|mettre a jour|enregistrer)|(a|ont) change|has changed|changed|"
    r"nouveau|new)\b)")
_MOBILE_NEGATED = re.compile(r"\b(pas|jamais|aucun|sans|no|not|never|n'ai)\b[^.?!\n]{0,25}$")
_ACCOUNT_CREATION = re.compile(
    r"(\b(creer|creation|ouvrir|ouverture)( d'un| de| un| d'une| une)? (nouveau |nouvel )?"
    r"(compte|acces|identifiant)\b|\bajout(er)? (d')?(un|une|de|des) (nouvel(le)? |nouveau )?"
    r"(utilisateur|agent|gestionnaire|collegue|secretaire|compte)|"
    r"\b(nouvel(le)?|nouveau) (utilisateur|agent|gestionnaire|collegue|secretaire) (a|au|sur|dans)"
    r"\b|\bcreate an? (new )?account\b|\badd an? (new )?user\b)")
_SUSPICIOUS = re.compile(
    r"(?<!\w)"
    r"\b(phishing|hameconnage|arnaque|frauduleu\w*|escroquer\w*|malveillant\w*|spam|scam|"
    r"(mail|message|courriel|e-?mail|lien|sms) (suspect|douteux|bizarre|etrange)\w*|"
    r"tentative de fraude|est-ce (bien )?(un message |un mail |un courriel )?(legitime|officiel|"
    r"de chez vous|de vos services|normal)|is (this|it) (legit|genuine)|"
    r"\b(est-il|est-elle|est il|est-ce|est ce) (bien )?(authentique|legitime|officiel|fiable|"
    r"vrai|valable)|\bauthenticite\b|\bavant de cliquer\b|\best-ce (bien )?vous qui\b|"
    r"\b(venir|provenir|vient|provient|emane)\w* (bien )?(de chez vous|de vos services|de la "
    r"dgfip|de chorus))")
# The sender's own state: what makes a request a request even beside another topic.
_OWN_STATE = Sieved(re.compile(
    r"(?<!\w)"
    r"(\b(j'ai|j ai|i have|i've|i|je l'ai|nous avons|on a) (oubli|perdu|egare|forgot|lost)\w*|"
    # « je ne reçois plus le SMS »: the self-service route is closed, the e-mail one is asked
    r"\bne (recois|recoit|recevons|peux (plus|pas) recevoir)( plus| pas| aucun)? (le |les |de |d'|"
    r"aucun )?(code|sms|texto)|\b(don'?t|do not|no longer) (receive|get) (the |any )?(code|sms|"
    r"text)|"
    r"\b(a|ont|avons|avez|has|have) (oubli|perdu|egare|forgot|lost)\w* (son|sa|leur|ses|mon|ma|"
    r"notre|le|his|her|their|my) (mot de passe|mdp|code|password)|\bne (se|me|m'en|s'en) "
    r"(souvien\w*|rappel\w*) plus\b(?! (si|de quel|quel|quelle|lequel|laquelle))|"
    r"\b(mon|ma|notre|my|son|sa|leur) (mot de passe|mdp|password|compte|acces|identifiant)\b"
    r"[^.?!\n]{0,60}\b(expir|perim|bloqu|verrouill|oubli|perdu|plus valide|has expired|"
    r"is expired|expired|locked|blocked)\w*|\bje (ne )?(n')?(peux|arrive|parviens) (plus|pas) "
    r"(a )?(me connecter|acceder|me reconnecter|entrer)|\bi (can'?t|cannot) (log ?in|sign in|"
    r"access))"))
_IDENTIFIER = re.compile(r"[a-z0-9]-\s?xt\b")
# The request verb, recorded for the agent (« pouvez-vous le réinitialiser »).
_REQUEST = Sieved(re.compile(
    r"\b(pourriez|pouvez|pourrais|peux|pouvons|merci de|je (vous )?(souhaite|souhaiterais|voudrais|"
    r"demande)|nous (souhaitons|voudrions)|could you|can you|please)\b[^.?!\n]{0,50}?\b(reinitialis"
    r"\w*|renouvel\w*|debloqu\w*|r?envoy\w*|attribu\w*|regenere\w*|reset\w*|renew\w*|unlock\w*|"
    r"nouveau (mot de passe|mdp)|new password|aider|help)\w*|"
    r"\b(demande|sollicit\w*|obtenir|besoin)\b[^.?!\n]{0,30}?\b(reinitialisation|renouvellement|"
    r"deblocage|nouveau (mot de passe|mdp))"))
# RE2 scans the text first (triage.text.Sieved): it rarely matches.
_ON_BEHALF = Sieved(re.compile(
    r"\b((pour|de la part de|a la place de|au nom de) (ma |mon |notre |la |le )?|(ma|mon|notre|"
    r"nos) )(collegue|"
    r"secretaire|agent|adjointe?|comptable|gestionnaire|maire|directrice|directeur|"
    r"remplacante?|predecesseur)\b"))


@dataclass(frozen=True)
class Scope:
    """Whether the cues found ask for an ``-xt`` reset or renewal, and why (French)."""

    in_scope: bool
    reasons: tuple[str, ...]


def judge(own: str, subject: str, where: str, forwarded_requester: bool) -> Scope:
    """Judge the scope of a request whose cues were found in ``where``.

    ``own`` is the sender's folded new text, ``subject`` the folded subject;
    ``forwarded_requester`` says the cues came from a quoted or forwarded message.
    """
    text = f"{subject}\n{own}"
    # The sender's own state (« j'ai oublié mon mot de passe ») keeps a request a request
    # beside another topic.
    own_state = _OWN_STATE.search(text)
    chorus = next((m for m in _CHORUS.finditer(text)
                   if not _COMPARISON.search(text[max(0, m.start() - 30):m.start()])), None)
    for name, pattern, reason in _TOPICS if _ANY_TOPIC.may_match(text) else ():
        match = pattern.search(text)
        if match is None or (name == "mobile" and _MOBILE_NEGATED.search(
                text[max(0, match.start() - 30):match.start()])):
            continue
        if name == "application" and chorus:
            continue  # both named: the intent rule's proximity test settled which password
        if name == "not-xt" and _IDENTIFIER.search(text):
            continue  # an -xt identifier given: the account is one
        if name in ("mobile", "account", "general") and own_state:
            continue  # « j'ai oublié mon mot de passe » beside it: still a request
        return Scope(False, (f"hors du champ : {reason} « {match.group(0).strip()[:60]} »",
                             "incertain : pas de brouillon, à traiter par un agent"))
    reasons = [_application(chorus), _request(text), _who(text, forwarded_requester)]
    return Scope(True, tuple(reasons))


_TOPIC_PATTERNS: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("suspicious", _SUSPICIOUS, "signalement d'un message suspect, aucune demande propre :"),
    ("not-xt", _NOT_XT, "compte Chorus Pro qui n'est pas un compte -xt :"),
    ("application", _OTHER_APPLICATION, "autre application ou objet que Chorus Pro nommé :"),
    ("mobile", _MOBILE, "demande sur le numéro de téléphone portable :"),
    ("account", _ACCOUNT_CREATION, "création de compte ou ajout d'utilisateur :"),
    ("self-service", _SELF_SERVICE, "question sur la manière de le faire soi-même :"),
    ("general", _GENERAL, "question générale sur la procédure, pas une demande pour un compte :"),
)
# Each rarely matches, in texts of hundreds of characters: RE2 scans the text first, once for
# all of them.
_TOPICS = tuple((name, Sieved(pattern), reason) for name, pattern, reason in _TOPIC_PATTERNS)
_ANY_TOPIC = SievedGroup(tuple(pattern for _, pattern, _ in _TOPICS))


def _application(chorus: re.Match[str] | None) -> str:
    if chorus is not None:
        return f"application : Chorus Pro (« {chorus.group(0).strip()} » dans le message)"
    return ("application : aucune autre n'est nommée ; Chorus Pro, seule application de ce "
            "service")


def _request(text: str) -> str:
    asked = _REQUEST.search(text)
    if asked:
        return f"demande : « {asked.group(0).strip()} »"
    return "demande : implicite, l'état du mot de passe décrit vaut demande"


def _who(text: str, forwarded_requester: bool) -> str:
    if forwarded_requester:
        return "qui demande : le demandeur du message cité ou transféré, auquel le texte renvoie"
    behalf = _ON_BEHALF.search(text)
    if behalf:
        return f"qui demande : l'expéditeur, pour un tiers (« {behalf.group(0)} »)"
    return "qui demande : l'expéditeur, dans son propre texte"
