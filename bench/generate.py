"""Realistic helpdesk mail for the benchmarks: the kinds of ``tests/data/SPEC.md``, seeded.

Every message is a function of ``(seed, index)`` only, so the first 1,000 messages of a
10,000-message corpus are the 1,000-message corpus, and a run can be repeated exactly.

What the generator makes (shares by kind are in :data:`KINDS`):

- requests written by people: a forgotten or an expired ``-xt`` password, from a nominative or a
  role address, other questions (invoices, account creation), requests sent to two department
  mailboxes; in French, with greetings, signatures (commune, postal code, SIRET), disclaimers,
  « Envoyé de mon iPhone », and quoted threads in the styles of Outlook, Thunderbird and Gmail;
- automatic mail: out-of-office replies, delivery status notifications, newsletters;
- mail to quarantine: a trusted ``Authentication-Results`` with ``dmarc=fail``, a From with no
  address or with two;
- mail sent by the helpdesk mailboxes themselves and forwarded by an agent.

Bodies are ``text/plain`` alone, ``multipart/alternative`` (text and an Outlook-style HTML
alternative) or HTML alone, in UTF-8 quoted-printable, base64, 8bit or windows-1252. Sizes without
attachment go from 2 to 50 KB (log-uniform); 10 % of the messages carry an attachment of 0.2 to
2 MB (a scanned PDF, a screenshot) and 1 % one of 10 to 25 MB.

Usage::

    python bench/generate.py --count 10000 --seed 1 --out /tmp/triage-bench/corpus

writes ``NNNNNN.eml`` files (LF line ends, as a maildir stores them) and ``manifest.tsv`` (index,
file, kind, size, attachment bytes, Message-ID, size with CRLF line ends as IMAP counts it).
"""

from __future__ import annotations

import argparse
import base64
import json
import quopri
import random
import re
import sys
import time
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.header import Header
from email.utils import format_datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMUNES = ROOT / "triage" / "data" / "communes.json"

DEPARTMENTS = {
    "07": "Ardèche", "26": "Drôme", "38": "Isère", "73": "Savoie", "74": "Haute-Savoie",
}
AUTHSERV = "mx.dgfip.finances.gouv.fr"

#: (kind, share). The shares add up to 1.
KINDS: tuple[tuple[str, float], ...] = (
    ("forgotten", 0.30),        # draft reset_password
    ("expired", 0.20),          # draft expired_password
    ("role_address", 0.10),     # draft request_nominative_address
    ("other", 0.12),            # human: not a password request
    ("two_departments", 0.03),  # human: department none
    ("out_of_office", 0.08),    # ignore
    ("bounce", 0.03),           # ignore
    ("newsletter", 0.06),       # ignore
    ("own_mail", 0.02),         # ignore: the helpdesk's own reply, forwarded by an agent
    ("dmarc_fail", 0.05),       # quarantine
    ("bad_from", 0.01),         # quarantine
)
ATTACHMENT_SHARE = 0.10   # 0.2 to 2 MB
HUGE_SHARE = 0.01         # 10 to 25 MB
MIN_SIZE, MAX_SIZE = 2_000, 50_000
HEADER_BYTES = 3_200  # about what the trace and sender's headers take

FIRST = ("Jean", "Marie", "Nathalie", "Sophie", "Christophe", "Isabelle", "Laurent", "Sandrine",
         "Philippe", "Valérie", "Frédéric", "Catherine", "Stéphane", "Céline", "Éric", "Martine",
         "Pascal", "Véronique", "Thierry", "Sylvie", "Olivier", "Aurélie", "Nicolas", "Delphine",
         "Hervé", "Karine", "Gérard", "Monique", "Benoît", "Hélène", "Joël", "Agnès", "Rémi",
         "Élodie", "Damien", "Chantal", "Yannick", "Géraldine", "Franck", "Muriel")
LAST = ("Martin", "Bernard", "Dubois", "Girard", "Morel", "Faure", "Roux", "Blanc", "Chabert",
        "Bouvier", "Jacquet", "Revol", "Ballaz", "Michallet", "Reynaud", "Chapuis", "Roche",
        "Chazal", "Perrin", "Gauthier", "Bonnet", "Vial", "Mollard", "Favre", "Dufour",
        "Jacquemoud", "Pellissier", "Rey", "Guillot", "Berthet", "Collomb", "Duc", "Vittoz",
        "Boisson", "Mermoz", "Ginet", "Tissot", "Vernay", "Arnaud", "Brun")
ROLES = ("Secrétaire de mairie", "Secrétaire générale", "Comptable", "Gestionnaire comptable",
         "Responsable administratif et financier", "Directrice", "Agent administratif",
         "Assistante de gestion", "Responsable du service finances", "Gérant")
PERSONAL_DOMAINS = ("gmail.com", "orange.fr", "wanadoo.fr", "free.fr", "laposte.net",
                    "sfr.fr", "hotmail.fr", "yahoo.fr")
ROLE_LOCALS = ("mairie", "contact", "secretariat", "compta", "accueil", "comptabilite",
               "secretariat.mairie", "finances", "direction", "ccas")
MAILERS = ("Microsoft Outlook 16.0", "Mozilla Thunderbird 115.8.0", "Zimbra 9.0.0_GA_4583",
           "Apple Mail (2.3774.400.31)", "Roundcube Webmail/1.6.6", None)


@dataclass(frozen=True)
class Place:
    commune: str
    department: str
    postal: str
    siren: str


@dataclass(frozen=True)
class Sender:
    display: str
    address: str
    first: str
    last: str
    role: str
    organisation: str
    place: Place
    nominative: bool


@dataclass(frozen=True)
class Generated:
    index: int
    kind: str
    message_id: str
    raw: bytes
    attachment: int  # decoded bytes of the attachment, 0 without


_places: dict[str, list[Place]] | None = None


def places() -> dict[str, list[Place]]:
    global _places
    if _places is None:
        data = json.loads(COMMUNES.read_text("utf-8"))
        out: dict[str, list[Place]] = {code: [] for code in DEPARTMENTS}
        # [INSEE code, name, postal codes, SIREN]; former communes have neither of the last two.
        for insee, name, postal_codes, siren in data["communes"]:
            if insee[:2] in out and postal_codes and siren:
                out[insee[:2]].append(Place(name, insee[:2], postal_codes[0], siren))
        _places = out
    return _places


def slug(text: str) -> str:
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")


def mailbox_of(code: str) -> str:
    return f"ddfip{code}.pgp.spl-pes@dgfip.finances.gouv.fr"


# -- people and places --------------------------------------------------------------------

def pick_place(rng: random.Random, home: str, elsewhere: float = 0.08) -> Place:
    code = home
    if rng.random() < elsewhere:
        code = rng.choice([c for c in DEPARTMENTS if c != home])
    return rng.choice(places()[code])


def organisation(rng: random.Random, place: Place) -> str:
    kind = rng.random()
    if kind < 0.55:
        return f"Mairie de {place.commune}"
    if kind < 0.65:
        return f"CCAS de {place.commune}"
    if kind < 0.72:
        return f"EHPAD Les Tilleuls – {place.commune}"
    if kind < 0.80:
        return f"SIVOM de la région de {place.commune}"
    if kind < 0.90:
        return f"SARL {rng.choice(LAST)} et Fils"
    return f"Syndicat des eaux de {place.commune}"


def org_domain(org: str, place: Place) -> str:
    if org.startswith("Mairie"):
        return f"mairie-{slug(place.commune)}.fr"
    if org.startswith("SARL"):
        return f"{slug(org.removeprefix('SARL '))}.fr"
    return f"{slug(org.split(' de ')[0])}-{slug(place.commune)}.fr"


def make_sender(rng: random.Random, home: str, nominative: bool = True) -> Sender:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    place = pick_place(rng, home)
    org = organisation(rng, place)
    domain = org_domain(org, place) if rng.random() < 0.7 else rng.choice(PERSONAL_DOMAINS)
    f, lname = slug(first).replace("-", ""), slug(last).replace("-", "")
    if nominative:
        local = rng.choice((f"{f}.{lname}", f"{f[0]}.{lname}", f"{f[0]}{lname}",
                            f"{lname}.{f}"))
        display = rng.choice((f"{first} {last}", f"{last} {first}", f"{first} {last.upper()}",
                              ""))
    else:
        local = rng.choice(ROLE_LOCALS)
        if local == "mairie" and domain in PERSONAL_DOMAINS:
            local = f"mairie.{slug(place.commune)}"
        display = rng.choice((org, org, f"Secrétariat {org}", ""))
    return Sender(display, f"{local}@{domain}", first, last, rng.choice(ROLES), org, place,
                  nominative)


def identifier(rng: random.Random, s: Sender) -> str:
    f, lname = slug(s.first).replace("-", ""), slug(s.last).replace("-", "")
    ident = rng.choice((f"{f[0]}{lname}-xt", f"{f[0]}{lname}-xt", f"{lname}.{f[0]}-xt",
                        f"{f}.{lname}-xt"))
    return ident.upper() if rng.random() < 0.05 else ident


def phone(rng: random.Random) -> str:
    return "04 " + " ".join(f"{rng.randrange(100):02d}" for _ in range(4))


def signature(rng: random.Random, s: Sender, full: bool = True) -> str:
    lines = [f"{s.first} {s.last.upper() if rng.random() < 0.5 else s.last}", s.role,
             s.organisation]
    if full:
        lines += [rng.choice(("Place de la Mairie", "1 rue de l'Église", "12 avenue de la Gare",
                              "Le Bourg", "25 route des Alpes", "3 place du Champ de Foire")),
                  f"{s.place.postal} {s.place.commune}",
                  f"Tél. : {phone(rng)}"]
        if rng.random() < 0.5:
            lines.append(f"SIRET : {s.place.siren}{rng.randrange(10000, 99999)}")
        if rng.random() < 0.5:
            lines.append(f"Horaires : du lundi au vendredi, {rng.choice(('8h30', '9h'))} – 12h")
    return "\n".join(lines)


DISCLAIMERS = (
    "Ce message et toutes les pièces jointes sont établis à l'intention exclusive de ses "
    "destinataires et sont confidentiels. Si vous recevez ce message par erreur, merci de le "
    "détruire et d'en avertir immédiatement l'expéditeur. Toute utilisation de ce message non "
    "conforme à sa destination, toute diffusion ou toute publication, totale ou partielle, est "
    "interdite, sauf autorisation expresse. L'internet ne permettant pas d'assurer l'intégrité "
    "de ce message, la collectivité décline toute responsabilité au titre de ce message, dans "
    "l'hypothèse où il aurait été modifié.",
    "Pensez à l'environnement : n'imprimez ce courriel que si nécessaire.",
    "Conformément au règlement général sur la protection des données (RGPD), vous disposez d'un "
    "droit d'accès, de rectification et d'effacement des données vous concernant, que vous "
    "pouvez exercer auprès du délégué à la protection des données de la collectivité. Les "
    "informations recueillies font l'objet d'un traitement destiné à la gestion de votre "
    "demande et ne sont conservées que le temps nécessaire à son traitement.",
)

HELPDESK_SIGNATURE = ("Pôle de gestion publique – Service SPL PES\n"
                      "Direction départementale des Finances publiques de {name}")


# -- what people write --------------------------------------------------------------------

GREETINGS = ("Bonjour,", "Bonjour Madame, Monsieur,", "Madame, Monsieur,", "Bonjour à vous,",
             "Bonjour,", "Bjr,")
CLOSINGS = ("Cordialement,", "Bien cordialement,", "Merci d'avance,", "Bonne journée,",
            "Vous remerciant par avance, je vous prie d'agréer mes salutations distinguées.",
            "Merci de votre aide.\nCordialement,")


def forgotten_text(rng: random.Random, ident: str) -> str:
    return rng.choice((
        f"J'ai oublié mon mot de passe Chorus Pro (identifiant {ident}). Pourriez-vous le "
        "réinitialiser s'il vous plaît ?",
        f"Je n'arrive plus à me connecter à Chorus Pro : j'ai perdu mon mot de passe. Mon "
        f"identifiant est {ident}. Je n'ai pas enregistré de numéro de téléphone portable.",
        f"Suite à un changement de poste, je ne me souviens plus du mot de passe de mon compte "
        f"{ident}. Merci de bien vouloir me communiquer un nouveau mot de passe.",
        f"Mon compte Chorus Pro est bloqué après plusieurs essais, j'ai oublié le mot de passe. "
        f"Identifiant : {ident}\nPouvez-vous procéder à la réinitialisation ?",
        f"je ne retrouve plus mon mdp chorus, identifiant {ident}, merci de le réinitialiser",
    ))


def expired_text(rng: random.Random, ident: str) -> str:
    return rng.choice((
        f"Mon mot de passe Chorus Pro a expiré et je ne peux plus me connecter. Mon identifiant "
        f"est {ident}. Merci de le réinitialiser.",
        f"Lors de ma connexion, le portail m'indique « Votre mot de passe a expiré ». "
        f"Identifiant : {ident}. Je n'ai pas de numéro de mobile enregistré.",
        f"La date de validité de mon mot de passe est dépassée (compte {ident}). Pouvez-vous "
        "m'en attribuer un nouveau ?",
        f"Mot de passe expiré sur Chorus Pro, identifiant {ident}. J'ai aussi oublié l'ancien. "
        "Merci de votre retour rapide, nous avons des factures à déposer avant la fin du mois.",
    ))


def other_text(rng: random.Random) -> str:
    return rng.choice((
        "Une facture déposée le mois dernier a été rejetée par erreur par le service "
        "destinataire. Pouvez-vous nous indiquer la marche à suivre pour la déposer de nouveau ?",
        "Nous ne voyons plus les factures de nos fournisseurs dans l'espace « Factures reçues » "
        "depuis lundi. Est-ce un problème connu ?",
        "Comment créer un compte -xt pour notre nouvelle secrétaire ? Elle doit pouvoir valider "
        "les factures de la commune.",
        "Le numéro SIRET de notre structure a changé suite à la fusion des deux communes. Faut-il "
        "créer une nouvelle structure dans Chorus Pro ?",
        "Pouvez-vous nous dire où en est le paiement de la facture n° F2026-0412 transmise le "
        "3 mars ? Le délai global de paiement est dépassé.",
        "Le mandat a été émis mais le fournisseur nous dit ne pas avoir été payé. Pouvez-vous "
        "vérifier de votre côté ?",
    ))


def request(rng: random.Random, body: str, s: Sender, own_signature: bool = True) -> str:
    parts = [rng.choice(GREETINGS), "", body, "", rng.choice(CLOSINGS), ""]
    if own_signature:
        parts.append(signature(rng, s, full=rng.random() < 0.85))
        if rng.random() < 0.4:
            parts += ["", rng.choice(DISCLAIMERS)]
    if rng.random() < 0.08:
        parts += ["", "Envoyé de mon iPhone"]
    return "\n".join(parts)


def helpdesk_reply(rng: random.Random, code: str, topic: str = "password") -> str:
    if topic == "other":
        body = rng.choice((
            "Nous avons bien reçu votre question. Pouvez-vous nous transmettre le numéro de la "
            "facture concernée et le SIRET de votre structure ?",
            "Votre question relève du service gestionnaire de la collectivité : nous lui avons "
            "transmis votre message.",
        ))
        return (f"Bonjour,\n\n{body}\n\nCordialement,\n\n"
                + HELPDESK_SIGNATURE.format(name=DEPARTMENTS[code]))
    body = rng.choice((
        "Pour que nous puissions traiter votre demande, merci de nous indiquer votre identifiant "
        "Chorus Pro (de la forme jdupont-xt) et de nous écrire depuis votre adresse "
        "électronique nominative.",
        "Votre mot de passe a été réinitialisé. Vous allez recevoir un courriel de Chorus Pro "
        "vous invitant à en choisir un nouveau. Pensez à enregistrer votre numéro de téléphone "
        "portable dans votre compte pour pouvoir le faire vous-même à l'avenir.",
        "Nous avons bien reçu votre demande. Pouvez-vous nous préciser dans quel département "
        "votre compte a été créé ?",
    ))
    return (f"Bonjour,\n\n{body}\n\nCordialement,\n\n"
            + HELPDESK_SIGNATURE.format(name=DEPARTMENTS[code]))


def when(rng: random.Random, index: int) -> datetime:
    base = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    return base + timedelta(minutes=7 * index + rng.randrange(7), seconds=rng.randrange(60))


def quote_block(rng: random.Random, style: str, author: str, address: str, sent: datetime,
                subject: str, to: str, text: str) -> str:
    date = sent.strftime("%d/%m/%Y %H:%M")
    if style == "outlook":
        return ("\n\n-----Message d'origine-----\n"
                f"De : {author} <{address}>\nEnvoyé : {date}\nÀ : {to}\nObjet : {subject}\n\n"
                + text)
    if style == "gmail":
        header = f"Le {date}, {author} <{address}> a écrit :"
    else:
        header = f"Le {date}, {author} a écrit :"
    return f"\n\n{header}\n" + "\n".join("> " + line if line else ">" for line in
                                          text.splitlines())


def thread(rng: random.Random, new_text: str, s: Sender, code: str, subject: str,
           shape: str, target: int, sent: datetime, topic: str = "password",
           signed: bool = True) -> tuple[str, list[tuple[str, str]]]:
    """The new text followed by quoted earlier messages, while the body stays under ``target``.

    Returns the text and its (kind, text) blocks, from which the HTML alternative is made.
    """
    style = rng.choice(("outlook", "thunderbird", "gmail"))
    blocks: list[tuple[str, str]] = [("new", new_text)]
    previous = sent
    turn = 0
    while True:
        previous -= timedelta(days=rng.randrange(1, 6), minutes=rng.randrange(600))
        if turn % 2 == 0:
            earlier = helpdesk_reply(rng, code, topic)
            author, address = "DDFIP " + DEPARTMENTS[code], mailbox_of(code)
        else:
            if topic == "other":
                said = other_text(rng)
            else:
                said = rng.choice((forgotten_text, expired_text))(rng, identifier(rng, s))
            earlier = request(rng, said, s, own_signature=signed)
            author, address = f"{s.first} {s.last}", s.address
        block = quote_block(rng, style, author, address, previous,
                            ("RE: " if turn else "") + subject, mailbox_of(code), earlier)
        grown = list(blocks)
        if style != "outlook":  # each reply quotes the whole thread once more
            grown = [(k, t if k == "new" else "\n".join(">" + ln for ln in t.splitlines()))
                     for k, t in grown]
        grown.append(("quote", block))
        if body_size(shape, grown) > target:
            break
        blocks = grown
        turn += 1
    return "".join(t for _, t in blocks), blocks


def body_size(shape: str, blocks: list[tuple[str, str]]) -> int:
    """About how many bytes the body of these blocks takes once encoded."""
    text = sum(len(t.encode()) for _, t in blocks) * 1.1
    if shape == "plain":
        return int(text)
    html = len(to_html(blocks).encode()) * 1.05
    return int(html + (text if shape == "alternative" else 0))


# -- HTML ---------------------------------------------------------------------------------

OUTLOOK_STYLE = """<style><!--
/* Font Definitions */
@font-face {font-family:"Cambria Math"; panose-1:2 4 5 3 5 4 6 3 2 4;}
@font-face {font-family:Calibri; panose-1:2 15 5 2 2 2 4 3 2 4;}
@font-face {font-family:Aptos;}
/* Style Definitions */
p.MsoNormal, li.MsoNormal, div.MsoNormal {margin:0cm; font-size:11.0pt;
 font-family:"Calibri",sans-serif; mso-fareast-language:EN-US;}
a:link, span.MsoHyperlink {mso-style-priority:99; color:#0563C1; text-decoration:underline;}
span.EmailStyle17 {mso-style-type:personal-compose; font-family:"Calibri",sans-serif;
 color:windowtext;}
.MsoChpDefault {mso-style-type:export-only; font-family:"Calibri",sans-serif;
 mso-fareast-language:EN-US;}
@page WordSection1 {size:612.0pt 792.0pt; margin:70.85pt 70.85pt 70.85pt 70.85pt;}
div.WordSection1 {page:WordSection1;}
--></style><!--[if gte mso 9]><xml>
<o:shapedefaults v:ext="edit" spidmax="1026" />
</xml><![endif]--><!--[if gte mso 9]><xml>
<o:shapelayout v:ext="edit">
<o:idmap v:ext="edit" data="1" />
</o:shapelayout></xml><![endif]-->"""


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def paragraphs_html(text: str) -> str:
    out = []
    for line in text.splitlines():
        if line.strip():
            out.append(f'<p class="MsoNormal"><span style="font-size:11.0pt;font-family:'
                       f'&quot;Calibri&quot;,sans-serif">{escape(line)}<o:p></o:p></span></p>')
        else:
            out.append('<p class="MsoNormal"><o:p>&nbsp;</o:p></p>')
    return "\n".join(out)


def to_html(blocks: list[tuple[str, str]]) -> str:
    body = []
    for kind, text in blocks:
        if kind == "new":
            body.append(paragraphs_html(text))
        else:
            body.append('<div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt '
                        '0cm 0cm 0cm"><blockquote style="margin-left:4.8pt">'
                        + paragraphs_html(text) + "</blockquote></div>")
    return ('<html xmlns:v="urn:schemas-microsoft-com:vml" xmlns:o="urn:schemas-microsoft-com:'
            'office:office" xmlns:w="urn:schemas-microsoft-com:office:word">\n<head>\n'
            '<meta http-equiv="Content-Type" content="text/html; charset=utf-8">\n'
            '<meta name="Generator" content="Microsoft Word 15 (filtered medium)">\n'
            + OUTLOOK_STYLE + '\n</head>\n<body lang="FR" link="#0563C1" vlink="#954F72">\n'
            '<div class="WordSection1">\n' + "\n".join(body) + "\n</div>\n</body>\n</html>\n")


# -- MIME assembly ------------------------------------------------------------------------

def encoded_part(rng: random.Random, ctype: str, text: str, force: str | None = None) -> bytes:
    encoding = force or rng.choices(("qp", "b64", "8bit", "cp1252"), (6, 2, 1, 1))[0]
    if encoding == "cp1252":
        try:
            data = text.encode("cp1252")
            charset = "windows-1252"
        except UnicodeEncodeError:
            data, charset = text.encode(), "utf-8"
        body = quopri.encodestring(data)
        cte = "quoted-printable"
    else:
        data, charset = text.encode(), "utf-8"
        if encoding == "qp":
            body, cte = quopri.encodestring(data), "quoted-printable"
        elif encoding == "b64":
            body, cte = base64.encodebytes(data), "base64"
        else:
            body, cte = data, "8bit"
    return (f'Content-Type: {ctype}; charset="{charset}"\n'
            f"Content-Transfer-Encoding: {cte}\n\n").encode() + body


def boundary(rng: random.Random) -> str:
    return f"----=_NextPart_{rng.getrandbits(64):016X}_{rng.getrandbits(32):08X}"


def multipart(rng: random.Random, subtype: str, parts: list[bytes], extra: str = "") -> bytes:
    b = boundary(rng)
    out = [f'Content-Type: multipart/{subtype}; boundary="{b}"{extra}\n\n'.encode(),
           b"This is a multi-part message in MIME format.\n"]
    for p in parts:
        out += [f"\n--{b}\n".encode(), p]
    out.append(f"\n--{b}--\n".encode())
    return b"".join(out)


def attachment(rng: random.Random, size: int) -> bytes:
    kind = rng.choice(("pdf", "pdf", "png", "jpg", "docx"))
    name, ctype, magic = {
        "pdf": (f"scan_{rng.randrange(10**6):06d}.pdf", "application/pdf", b"%PDF-1.5\n"),
        "png": ("capture d'écran.png", "image/png", b"\x89PNG\r\n\x1a\n"),
        "jpg": (f"IMG_{rng.randrange(10**4):04d}.jpg", "image/jpeg", b"\xff\xd8\xff\xe0"),
        "docx": ("courrier.docx",
                 "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                 b"PK\x03\x04"),
    }[kind]
    data = magic + rng.randbytes(max(0, size - len(magic)))
    encoded_name = Header(name, "utf-8").encode() if not name.isascii() else name
    return (f'Content-Type: {ctype}; name="{encoded_name}"\n'
            f'Content-Disposition: attachment; filename="{encoded_name}"\n'
            "Content-Transfer-Encoding: base64\n\n").encode() + base64.encodebytes(data)


def header_value(text: str) -> str:
    return text if text.isascii() else Header(text, "utf-8").encode()


def address_header(display: str, address: str) -> str:
    if not display:
        return address
    if display.isascii():
        return f'"{display}" <{address}>' if any(c in display for c in ",.;") else (
            f"{display} <{address}>")
    return f"{Header(display, 'utf-8').encode()} <{address}>"


def trace_headers(rng: random.Random, to: str, domain: str, sent: datetime,
                  dmarc: str = "pass") -> list[str]:
    stamp = format_datetime(sent + timedelta(seconds=rng.randrange(2, 40)))
    ip = f"{rng.randrange(80, 200)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}"
    dkim_b = base64.b64encode(rng.randbytes(256)).decode()
    lines = [
        f"Return-Path: <bounce-{rng.getrandbits(32):08x}@{domain}>",
        f"Delivered-To: {to}",
        f"Received: from smtp.{domain} (smtp.{domain} [{ip}])\n by {AUTHSERV} (Postfix) with "
        f"ESMTPS id {rng.getrandbits(40):010X}\n for <{to}>; {stamp}",
        f"Authentication-Results: {AUTHSERV};\n spf=pass (sender SPF authorized) "
        f"smtp.mailfrom={domain};\n dkim=pass (2048-bit key) header.d={domain};\n"
        f" dmarc={dmarc} (p=quarantine dis=none) header.from={domain}",
        f"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d={domain}; s=default;\n"
        f" t={int(sent.timestamp())}; bh={base64.b64encode(rng.randbytes(32)).decode()};\n"
        " h=From:To:Subject:Date:Message-ID:MIME-Version:Content-Type;\n b="
        + "\n ".join(dkim_b[i:i + 70] for i in range(0, len(dkim_b), 70)),
        f"Received: from [192.168.{rng.randrange(256)}.{rng.randrange(256)}] (unknown [{ip}])"
        f"\n by smtp.{domain} with ESMTPSA; {format_datetime(sent)}",
    ]
    return lines


def assemble(rng: random.Random, headers: list[str], body: bytes) -> bytes:
    raw = ("\n".join(headers) + "\n").encode() + body
    if len(raw) < MIN_SIZE:
        # Short mail through Exchange carries its anti-spam report headers.
        noise = base64.b64encode(rng.randbytes((MIN_SIZE - len(raw)) * 3 // 4 + 60)).decode()
        extra = ("X-MS-Exchange-Organization-SCL: 1\nX-Forefront-Antispam-Report: CIP:"
                 f"{rng.randrange(256)}.{rng.randrange(256)}.0.1;CTRY:FR;LANG:fr;SCL:1;SRV:;"
                 "IPV:NLI;SFV:NSPM;\nX-Microsoft-Antispam-Message-Info:\n "
                 + "\n ".join(noise[i:i + 76] for i in range(0, len(noise), 76)) + "\n")
        raw = ("\n".join(headers) + "\n" + extra).encode() + body
    return raw


# -- the kinds ----------------------------------------------------------------------------

def pick_shape(rng: random.Random) -> str:
    return rng.choices(("alternative", "plain", "html"), (6, 3, 1))[0]


def body_for(rng: random.Random, text: str, blocks: list[tuple[str, str]],
             shape: str | None = None) -> bytes:
    shape = shape or pick_shape(rng)
    if shape == "plain":
        return encoded_part(rng, "text/plain", text)
    html = encoded_part(rng, "text/html", to_html(blocks), force="qp")
    if shape == "html":
        return html
    return multipart(rng, "alternative", [encoded_part(rng, "text/plain", text), html])


def person_message(rng: random.Random, index: int, kind: str, home: str,
                   target: int) -> tuple[list[str], bytes, str]:
    nominative = kind not in ("role_address",)
    s = make_sender(rng, home, nominative=nominative)
    ident = identifier(rng, s)
    if kind == "forgotten":
        body, subject = forgotten_text(rng, ident), rng.choice((
            "Mot de passe oublié Chorus Pro", f"Réinitialisation mot de passe {ident}",
            "Demande de réinitialisation", "chorus pro", "Accès Chorus Pro"))
    elif kind == "expired":
        body, subject = expired_text(rng, ident), rng.choice((
            "Mot de passe expiré", "Chorus Pro : mot de passe expiré",
            f"Compte {ident} expiré", "Expiration mot de passe"))
    elif kind == "role_address":
        body, subject = rng.choice((forgotten_text, expired_text))(rng, ident), rng.choice((
            "Mot de passe Chorus Pro", "Chorus Pro mot de passe expiré", "Demande"))
    elif kind == "two_departments":
        body, subject = forgotten_text(rng, ident), "Mot de passe oublié"
        s = Sender(s.display, s.address, s.first, s.last, s.role, "", s.place, True)
    else:
        body, subject = other_text(rng), rng.choice((
            "Facture rejetée", "Question Chorus Pro", "Création de compte", "Paiement facture",
            "Changement de SIRET"))
    sent = when(rng, index)
    own = kind != "two_departments"
    new_text = request(rng, body, s, own_signature=own)
    shape = pick_shape(rng)
    text, blocks = thread(rng, new_text, s, home, subject, shape, target - HEADER_BYTES, sent,
                          topic="other" if kind == "other" else "password", signed=own)
    if len(blocks) > 1:
        subject = rng.choice(("RE: ", "Re: ", "TR: ", "RE: RE: ")) + subject
    domain = s.address.split("@")[1]
    to = mailbox_of(home)
    headers = trace_headers(rng, to, domain, sent,
                            dmarc="fail" if kind == "dmarc_fail" else "pass")
    if kind == "two_departments":
        other = rng.choice([c for c in DEPARTMENTS if c != home])
        to_line = f"To: {to}, {mailbox_of(other)}"
    else:
        to_line = f"To: {to}"
    headers += [f"From: {address_header(s.display, s.address)}", to_line,
                f"Subject: {header_value(subject)}", f"Date: {format_datetime(sent)}",
                f"Message-ID: <{index:06d}.{rng.getrandbits(48):012x}@{domain}>"]
    mailer = rng.choice(MAILERS)
    if mailer:
        headers.append(f"X-Mailer: {mailer}")
    if subject.startswith(("RE", "Re")):
        ref = f"<{rng.getrandbits(64):016x}@dgfip.finances.gouv.fr>"
        headers += [f"In-Reply-To: {ref}", f"References: {ref}"]
    headers.append("MIME-Version: 1.0")
    return headers, body_for(rng, text, blocks, shape), domain


def out_of_office(rng: random.Random, index: int, home: str) -> tuple[list[str], bytes, str]:
    s = make_sender(rng, home)
    sent = when(rng, index)
    back = (sent + timedelta(days=rng.randrange(3, 20))).strftime("%d/%m/%Y")
    text = (f"Bonjour,\n\nJe suis absente du bureau jusqu'au {back} inclus. Pour toute demande "
            f"urgente, merci de contacter le secrétariat au {phone(rng)}.\n\nCordialement,\n\n"
            + signature(rng, s))
    domain = s.address.split("@")[1]
    headers = [*trace_headers(rng, mailbox_of(home), domain, sent),
        f"From: {address_header(s.display, s.address)}", f"To: {mailbox_of(home)}",
        f"Subject: {header_value(rng.choice(('Réponse automatique : ', 'Absence : ')))}"
        "Votre demande Chorus Pro",
        f"Date: {format_datetime(sent)}",
        f"Message-ID: <{index:06d}.{rng.getrandbits(48):012x}@{domain}>",
        "Auto-Submitted: auto-replied", "X-Auto-Response-Suppress: All", "MIME-Version: 1.0"]
    return headers, body_for(rng, text, [("new", text)]), domain


def bounce(rng: random.Random, index: int, home: str) -> tuple[list[str], bytes, str]:
    sent = when(rng, index)
    domain = rng.choice(PERSONAL_DOMAINS)
    lost = f"{slug(rng.choice(FIRST))}.{slug(rng.choice(LAST))}@{domain}"
    report = ("Reporting-MTA: dns; mx.dgfip.finances.gouv.fr\n\n"
              f"Final-Recipient: rfc822; {lost}\nAction: failed\nStatus: 5.1.1\n"
              f"Diagnostic-Code: smtp; 550 5.1.1 <{lost}>: Recipient address rejected\n")
    human = ("This is the mail system at host mx.dgfip.finances.gouv.fr.\n\nI'm sorry to have "
             "to inform you that your message could not be delivered to one or more recipients."
             f"\n\n<{lost}>: host mx.{domain} said: 550 5.1.1 user unknown\n")
    original = ("\n".join(trace_headers(rng, lost, "dgfip.finances.gouv.fr", sent)) +
                f"\nFrom: {mailbox_of(home)}\nTo: {lost}\nSubject: Votre demande\n")
    body = multipart(rng, "report", [
        b"Content-Type: text/plain; charset=us-ascii\n\n" + human.encode(),
        b"Content-Type: message/delivery-status\n\n" + report.encode(),
        b"Content-Type: text/rfc822-headers\n\n" + original.encode()],
        extra="; report-type=delivery-status")
    headers = [*trace_headers(rng, mailbox_of(home), "dgfip.finances.gouv.fr", sent),
        "From: MAILER-DAEMON@mx.dgfip.finances.gouv.fr (Mail Delivery System)",
        f"To: {mailbox_of(home)}", "Subject: Undelivered Mail Returned to Sender",
        f"Date: {format_datetime(sent)}",
        f"Message-ID: <{index:06d}.{rng.getrandbits(48):012x}@mx.dgfip.finances.gouv.fr>",
        "Auto-Submitted: auto-replied", "MIME-Version: 1.0"]
    return headers, body, "dgfip.finances.gouv.fr"


def newsletter(rng: random.Random, index: int, home: str,
               target: int) -> tuple[list[str], bytes, str]:
    sent = when(rng, index)
    domain = rng.choice(("cdg38.fr", "amf74.fr", "lettre.collectivites-locales.fr",
                         "info.chorus-pro.gouv.fr"))
    shape = pick_shape(rng)
    items: list[str] = []
    while True:
        item = rng.choice((
            "Dématérialisation : le calendrier de généralisation de la facture électronique "
            "entre les entreprises est confirmé. Les collectivités recevront les factures de "
            "leurs fournisseurs par la plateforme publique.",
            "Formation : inscrivez-vous aux sessions de printemps sur l'exécution budgétaire et "
            "la comptabilité M57, ouvertes aux secrétaires de mairie.",
            "Rappel : la date limite de transmission des comptes de gestion approche. Pensez à "
            "vérifier la concordance avec vos comptes administratifs.",
            "Nouveauté : l'espace « Factures reçues » permet désormais de filtrer par statut de "
            "traitement et d'exporter la liste au format tableur."))
        if items and body_size(shape, [("new", t) for t in [*items, item]]) > target - HEADER_BYTES:
            break
        items.append(item)
    text = "La lettre d'information\n\n" + "\n\n".join(items)
    headers = [*trace_headers(rng, mailbox_of(home), domain, sent),
        f"From: La lettre d'information <newsletter@{domain}>", f"To: {mailbox_of(home)}",
        f"Subject: {header_value('La lettre des collectivités – ' + sent.strftime('%B %Y'))}",
        f"Date: {format_datetime(sent)}",
        f"Message-ID: <{index:06d}.{rng.getrandbits(48):012x}@{domain}>",
        f"List-Id: <lettre.{domain}>",
        f"List-Unsubscribe: <mailto:unsubscribe@{domain}?subject=unsubscribe>",
        "Precedence: bulk", "MIME-Version: 1.0"]
    return headers, body_for(rng, text, [("new", t) for t in text.split("\n\n")], shape), domain


def own_mail(rng: random.Random, index: int, home: str) -> tuple[list[str], bytes, str]:
    sent = when(rng, index)
    text = helpdesk_reply(rng, home)
    domain = "dgfip.finances.gouv.fr"
    headers = [*trace_headers(rng, mailbox_of(home), domain, sent),
        f"From: DDFIP {DEPARTMENTS[home]} <{mailbox_of(home)}>", f"To: {mailbox_of(home)}",
        "Subject: TR: Votre demande Chorus Pro", f"Date: {format_datetime(sent)}",
        f"Message-ID: <{index:06d}.{rng.getrandbits(48):012x}@{domain}>", "MIME-Version: 1.0"]
    return headers, body_for(rng, text, [("new", text)]), domain


def bad_from(rng: random.Random, index: int, home: str,
             target: int) -> tuple[list[str], bytes, str]:
    headers, body, domain = person_message(rng, index, "forgotten", home, target)
    bad = rng.choice(("From: Secretariat mairie", "From: a@x.fr, b@y.fr",
                      "From: undisclosed-recipients:;"))
    return [bad if h.startswith("From:") else h for h in headers], body, domain


def _build(rng: random.Random, kind: str, index: int, home: str,
           target: int) -> tuple[list[str], bytes]:
    if kind == "out_of_office":
        headers, body, _ = out_of_office(rng, index, home)
    elif kind == "bounce":
        headers, body, _ = bounce(rng, index, home)
    elif kind == "newsletter":
        headers, body, _ = newsletter(rng, index, home, target)
    elif kind == "own_mail":
        headers, body, _ = own_mail(rng, index, home)
    elif kind == "bad_from":
        headers, body, _ = bad_from(rng, index, home, target)
    else:
        headers, body, _ = person_message(rng, index, kind, home, target)
    return headers, body


def make_message(seed: int, index: int, home: str = "38", huge: bool = True) -> Generated:
    """Message ``index`` of the corpus ``seed``, as delivered to the ``home`` mailbox.

    ``huge`` false leaves out the 10 to 25 MB attachments (those messages come without one),
    everything else being the same: the archive of ``bench/replay.py``."""
    rng = random.Random(f"triage-bench:{seed}:{index}")
    kind = rng.choices([k for k, _ in KINDS], [w for _, w in KINDS])[0]
    target = int(MIN_SIZE * (MAX_SIZE / MIN_SIZE) ** rng.random())
    roll = rng.random()
    attach = 0
    if roll < HUGE_SHARE:
        attach = rng.randrange(10_000_000, 25_000_001) if huge else 0
    elif roll < HUGE_SHARE + ATTACHMENT_SHARE:
        attach = rng.randrange(200_000, 2_000_001)
    for attempt in range(8):
        sub = random.Random(f"triage-bench:{seed}:{index}:{attempt}")
        headers, body = _build(sub, kind, index, home, target)
        raw = assemble(sub, headers, body)
        if len(raw) <= MAX_SIZE:
            break
        target = int(target * 0.9)  # the size estimate was short: a shorter thread
    if attach:
        body = multipart(sub, "mixed", [body, attachment(sub, attach)])
        raw = assemble(sub, headers, body)
    mid = next(h for h in headers if h.startswith("Message-ID:")).split(":", 1)[1].strip()
    return Generated(index, kind, mid.strip("<>"), raw, attach)


def crlf(raw: bytes) -> bytes:
    """The message with CRLF line ends, as IMAP carries it."""
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


# -- the corpus on disk -------------------------------------------------------------------

def write_corpus(out: Path, count: int, seed: int, home: str = "38",
                 quiet: bool = False, first: int = 0) -> Path:
    """Write messages ``first`` .. ``first + count - 1`` into ``out``.

    The folder is kept between runs: only what is missing is made.
    """
    out.mkdir(parents=True, exist_ok=True)
    manifest = out / "manifest.tsv"
    done: dict[int, str] = {}
    if manifest.exists():
        for line in manifest.read_text().splitlines()[1:]:
            fields = line.split("\t")
            if len(fields) == 7 and (out / fields[1]).exists():
                done[int(fields[0])] = line
    meta = out / "corpus.json"
    info = {"seed": seed, "home": home}
    if meta.exists() and json.loads(meta.read_text()) != info:
        raise SystemExit(f"{out} holds another corpus ({meta.read_text().strip()}); "
                         "use another folder")
    meta.write_text(json.dumps(info))
    start = time.monotonic()
    lines = dict(done)
    made = 0
    for i in range(first, first + count):
        if i in done:
            continue
        g = make_message(seed, i, home)
        name = f"{i:06d}.eml"
        (out / name).write_bytes(g.raw)
        crlf_size = len(g.raw) + g.raw.count(b"\n")
        lines[i] = (f"{i}\t{name}\t{g.kind}\t{len(g.raw)}\t{g.attachment}\t{g.message_id}\t"
                    f"{crlf_size}")
        made += 1
        if not quiet and made % 1000 == 0:
            print(f"  generated {made} messages ({time.monotonic() - start:.0f} s)",
                  file=sys.stderr)
    manifest.write_text("index\tfile\tkind\tsize\tattachment\tmessage_id\tcrlf_size\n"
                        + "\n".join(lines[i] for i in sorted(lines)) + "\n")
    return out


def summary(out: Path, count: int) -> dict[str, object]:
    rows = [line.split("\t") for line in (out / "manifest.tsv").read_text().splitlines()[1:]]
    rows = [r for r in rows if int(r[0]) < count]
    sizes = [int(r[3]) for r in rows]
    kinds: dict[str, int] = {}
    for r in rows:
        kinds[r[2]] = kinds.get(r[2], 0) + 1
    plain = sorted(int(r[3]) for r in rows if r[4] == "0")
    return {
        "messages": len(rows), "bytes": sum(sizes),
        "with_attachment": sum(1 for r in rows if 0 < int(r[4]) < 10_000_000),
        "with_huge_attachment": sum(1 for r in rows if int(r[4]) >= 10_000_000),
        "size_without_attachment": {"min": plain[0], "median": plain[len(plain) // 2],
                                    "max": plain[-1]} if plain else {},
        "kinds": dict(sorted(kinds.items())),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--home", default="38", choices=sorted(DEPARTMENTS))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    write_corpus(args.out, args.count, args.seed, args.home)
    print(json.dumps(summary(args.out, args.count), indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
