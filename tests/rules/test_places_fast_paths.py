"""The quick paths of the place finders give what the plain ones gave (issue 17).

Each one rests on a property of fold or of Python's re that is checked here, so that a change
to either shows up as a failing test rather than as a silent change of a department.
"""

import random
import re
import unicodedata
from typing import Any

from triage.rules import places
from triage.rules.communes import name_key
from triage.text import fold

# What str.splitlines splits on.
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


def test_fold_keeps_line_breaks_and_makes_none():
    """folded_lines: fold keeps each line break as it is and turns nothing else into one."""
    for c in range(0x110000):
        ch = chr(c)
        if unicodedata.category(ch) in ("Cn", "Co", "Cs"):
            continue  # unassigned, private or surrogate: nothing to decompose, no case
        folded = fold(ch)
        if ch in LINE_BREAKS:
            assert folded == ch
        else:
            assert not any(b in folded for b in LINE_BREAKS), hex(c)


def test_folded_lines_are_the_lines_folded():
    rng = random.Random(5)
    pool = [chr(c) for c in range(0x20, 0x3000)] + list(LINE_BREAKS) * 40 + [
        "\r\n", " ", "  ", "\t", "é", "É", "`", "’", "Σ", "\u0301", "\u0742"] * 20
    for text in ["", "\n", "a\r\nb\n", "ΑΣ\nΣ", "x \n y", "a\x0b\u0742", "\u0742\nb"]:
        lines = text.splitlines()
        assert places.folded_lines(text, lines) == [fold(line) for line in lines]
    for _ in range(20000):
        text = "".join(rng.choice(pool) for _ in range(rng.randint(0, 25)))
        lines = text.splitlines()
        assert places.folded_lines(text, lines) == [fold(line) for line in lines], repr(text)


def test_same_length_fold_is_the_translation():
    """account_places folds in place: each character of the table, whatever is around it."""
    table = str.maketrans(places._SAME_LENGTH)
    for c in (*range(0x80, 0x250), *range(0x2000, 0x2070), 0x130, 0x3A3, 0x1E9E):
        text = "aÉ" + chr(c) + "Z"
        assert places._same_length_fold(text) == text.translate(table).lower()


def test_siret_spells_out_the_cases_of_ignorecase():
    """_SIRET's letter classes are what re.IGNORECASE matches for each letter."""
    expected = {letter: {chr(c) for c in range(0x10000) if not 0xD800 <= c < 0xE000
                         and re.fullmatch(letter, chr(c), re.IGNORECASE)}
                for letter in "siretn"}
    assert expected["s"] == set("Ssſ") and expected["i"] == set("Iiİı")
    assert all(expected[x] == {x, x.upper()} for x in "retn")
    assert "[Ssſ]" in places._SIRET.pattern and "[Iiİı][Rr][Ee][TtNn]" in places._SIRET.pattern


def test_patterns_match_as_before():
    """The patterns rewritten for re's quick search find the same matches as the plain ones."""
    before = {
        places._POSTAL: re.compile(r"(?<![\d.,/\w])(\d{5})(?![\d,]|\.\d|/\d)"),
        places._SIRET: re.compile(r"\b(siret|siren)\b[^\d\n]{0,40}?((?:\d[\s.]?){9,14})",
                                  re.IGNORECASE),
        places._BARE_SIRET: re.compile(
            r"(?<![\d ])(2[1-8]\d{12}|2[1-8]\d[ .]\d{3}[ .]\d{3}[ .]\d{5})(?!\d)"),
        places._DIGITS: re.compile(r"\d{5}"),
    }
    rng = random.Random(3)
    parts = ["siret", "SIREN", "ſiret", "sİren", "xsiret", "siretx", "21", "2", "38", "74000",
             "73 230", "F-", " ", ".", ",", "/", "\n", "é", "1", "_", "a", "٣"]
    for _ in range(30000):
        text = "".join(rng.choice(parts) for _ in range(rng.randint(1, 14)))
        for new, old in before.items():
            assert ([(m.span(), m.groups()) for m in new.finditer(text)]
                    == [(m.span(), m.groups()) for m in old.finditer(text)]), (new, text)
        if places._POSTAL_SPACED.search(text):
            assert places._SPACED_DIGITS.search(text)
        assert bool(places._SPACED_DIGITS.search(text)) == bool(re.search(r"\d\d \d{3}", text))


def test_lines_holding_is_a_search_a_line():
    """commune_names keeps the lines where one search over them all found its pattern."""
    rng = random.Random(4)
    parts = ["38000", "1234", "mairie", "mairi", "ecole", "hotel de ville", "MAIRIE", "ville",
             "agent", "officeecole", " ", "é", "a", "٣", "\t"]
    for _ in range(20000):
        lines = ["".join(rng.choice(parts) for _ in range(rng.randint(0, 4)))
                 for _ in range(rng.randint(0, 6))]
        for pattern in (places._DIGITS, places._PLACE_WORDS):
            assert places._lines_holding(pattern, lines) == {
                i for i, line in enumerate(lines) if pattern.search(line)}, (pattern, lines)
        assert places._lines_holding(places._PLACE_WORDS, lines, places._ASCII_PLACE_WORDS) == {
            i for i, line in enumerate(lines) if places._PLACE_WORDS.search(line)}, lines


def test_re2_tests_never_miss():
    """The RE2 tests before re's searches find a match wherever re does."""
    rng = random.Random(11)
    parts = ["cree", "ouvert", "set up", "when i worked", "quand je travaillais", "a l'epoque",
             "mon ancienne mairie", "poste precedent", "my former job", "mairie", "ecole",
             "hotel de ville", " ", "\n", ".", "ø", "é", "σ", "ж", "_", "1", "x", "'", "ſ", "K",
             "İ", "CREE", "\u0301"]
    for _ in range(30000):
        text = "".join(rng.choice(parts) for _ in range(rng.randint(1, 8)))
        assert places._ANY_ACCOUNT_CLAUSE.search(text) or not places._ACCOUNT_CLAUSE.search(text)


def test_article_is_the_end_of_the_word_before():
    """commune_names looks for « du », « des », « au », « aux » only after a word whose key
    ends with one of them."""
    rng = random.Random(13)
    words = ["du", "des", "au", "aux", "Du", "DES", "aUx", "xdu", "eau", "Pont", "l'", "d'",
             "St", "İ", "é", "38000", "-", ",", "(", "'", "’"]
    seps = [" ", " ", "", "\t", "  ", "\xa0", "-", "'", "\u2003"]
    for _ in range(30000):
        line = "".join(rng.choice(words) + rng.choice(seps) for _ in range(rng.randint(1, 7)))
        tokens = list(places._TOKEN.finditer(line))
        for i, token in enumerate(tokens):
            if places._article_before(line, token.start()):
                assert i and name_key(tokens[i - 1].group(0)).endswith(places._ARTICLE_ENDINGS)


def test_line_keys_are_the_lines_keys():
    """line_keys: one pass over the folded lines gives each line's name_key (« st » and « ste »
    whole words at a line's edges included)."""
    from triage.rules.communes import line_keys
    rng = random.Random(6)
    pool = ["st", "ste", "St", "STE", "s", "t", "e", "x", " ", "-", "'", "’", "é", "1", "_", ".",
            "œ", "ﬀ", "\u0301", "\u0742", *LINE_BREAKS, "\r\n"]
    for _ in range(20000):
        text = "".join(rng.choice(pool) for _ in range(rng.randint(0, 12)))
        lines = text.splitlines()
        assert line_keys(places.folded_lines(text, lines)) == [name_key(line) for line in lines], \
            repr(text)
    assert name_key("St-Jean de ste Marie") == "saintjeandesaintemarie"
    assert name_key("Stes Maries, stéphane") == "stesmariesstephane"


def test_message_lines_are_body_then_signature_lines():
    """department.statements: the message's lines are its body's then its signature's when the
    body is empty or ends with « \\n »."""
    rng = random.Random(7)
    pool = ["a", " ", *LINE_BREAKS, "\r\n"]
    for _ in range(20000):
        body = "".join(rng.choice(pool) for _ in range(rng.randint(0, 6)))
        sig = "".join(rng.choice(pool) for _ in range(rng.randint(0, 6)))
        if not body or not sig or body.endswith("\n"):
            assert (body + sig).splitlines() == body.splitlines() + sig.splitlines()


def test_placed_name_is_the_plain_pattern():
    """_PLACED_NAME, its word boundary written after the first letter, finds what the pattern
    beginning with \\b found."""
    plain = re.compile(
        r"\b(?:[Mm]airie|MAIRIE|[Vv]ille|VILLE|[Cc]ommune|COMMUNE|CCAS|[Hh]ôtel de [Vv]ille)"
        + places._PLACED_NAME.pattern[places._PLACED_NAME.pattern.index(r"\s+(de"):],
        re.MULTILINE)
    rng = random.Random(8)
    pool = ["Mairie", "mairie", "MAIRIE", "mAIRIE", "Ville", "ville", "VILLE", "Commune",
            "commune", "COMMUNE", "CCAS", "ccas", "Hôtel de ville", "hôtel de Ville", " ", "\n",
            "de ", "d'", "du ", "des ", "Bozel", "x", "_", "é", "1", "74000", ",", "- ", "M", "h"]
    for _ in range(20000):
        text = "".join(rng.choice(pool) for _ in range(rng.randint(1, 10)))
        assert [(m.span(), m.groups()) for m in places._PLACED_NAME.finditer(text)] == \
            [(m.span(), m.groups()) for m in plain.finditer(text)], repr(text)


def test_holds_is_the_search():
    """_department_names's test for an office word gives re's answer, by RE2 or not."""
    rng = random.Random(8)
    parts = ["ddfip", "dgfi", "dep", "dpt", "finances publiques", "finances  publiques", "DEP",
             "d", "e", "p", " ", "\n", "é", "x" * 60, "٣"]
    for _ in range(20000):
        text = "".join(rng.choice(parts) for _ in range(rng.randint(0, 12)))
        assert places._holds(places._OFFICE, places._ASCII_OFFICE, text) == bool(
            places._OFFICE.search(text)), text


def test_department_name_patterns_match_as_before():
    """_literal's look-behind written after the first letter finds what it found before it."""
    names = ["Savoie", "Haute-Savoie", "Isère", "Côte-d'Or", "Ain"]
    before = {}
    for name in names:
        words = [re.escape(w) for w in re.split(r"[\s'-]+", fold(name)) if w]
        before[name] = re.compile(r"(?<![\w-])" + r"[\s'-]*".join(words) + r"(?![\w-])")
    rng = random.Random(9)
    parts = ["savoie", "haute", "isere", "cote", "d'or", "ain", "-", " ", "'", "x", "é", "_", "1",
             "\n", "s", "a"]
    for _ in range(20000):
        text = "".join(rng.choice(parts) for _ in range(rng.randint(0, 8)))
        for name in names:
            assert ([m.span() for m in places._literal(name).finditer(text)]
                    == [m.span() for m in before[name].finditer(text)]), (name, text)


def test_not_postal_before_matches_as_before():
    """_NOT_POSTAL_BEFORE, its words' boundaries written after their first letter, finds what
    the pattern with \\b before each word found."""
    plain = re.compile(
        r"(\bcs|\bbp|\btsa|n°|\bno\.?|\bnum(ero)?|\bref\.?|\bfacture|\bmandat|\bbordereau|"
        r"\bdossier|\bticket|\bdemande|\bcompte|\bsiret|\bsiren|\btel\.?|\bfax|\+33|€|"
        r"\bcommande|\bbc|\bdevis|\bmarche|\bengagement|\bej|\bmandat|\btitre|\bbon)\s*"
        r"(n°|no\.?|numero)?\s*:?\s*$")
    rng = random.Random(6)
    parts = ["cs", "bp", "tsa", "n°", "no", "no.", "num", "numero", "ref.", "facture", "bon",
             "bc", "ej", "+33", "€", "tel.", "siren", "compte", " ", "  ", ":", "\n", "a", "_",
             "1", "é", "x", "٣", "\t"]
    for _ in range(50000):
        text = "".join(rng.choice(parts) for _ in range(rng.randint(0, 8)))
        new, old = places._NOT_POSTAL_BEFORE.search(text), plain.search(text)
        assert (new and (new.span(), new.groups())) == (old and (old.span(), old.groups())), text


def test_office_patterns_match_as_before(settings: Any) -> None:
    """The geography's number and other-department patterns, their look-behinds written after
    the first letter, find what they found with the look-behind first."""
    geo = places.geography(settings.departments)
    assert geo.foreign_pattern is not None
    plain = {
        geo.number: re.compile(geo.number.pattern.replace(
            r"(d(?<![\w-]d)(?:dfip|gfip|rfip|epartement|ept|pt|ep))",
            r"(?<![\w-])(ddfip|dgfip|drfip|departement|dept|dpt|dep)")),
        geo.foreign_pattern: re.compile(geo.foreign_pattern.pattern.replace(
            r"(d(?<![\w-]d)(?:dfip|rfip|gfip)|f(?<![\w-]f)inances publiques|"
            r"d(?<![\w-]d)(?:epartement|ept))",
            r"(?<![\w-])(ddfip|drfip|dgfip|finances publiques|departement|dept)")),
    }
    assert all(new.pattern != old.pattern for new, old in plain.items())
    rng = random.Random(7)
    parts = ["ddfip", "dgfip", "drfip", "dep", "dept", "dpt", "departement", "finances publiques",
             "d", "f", "-", "x", "_", "é", " ", "\n", ".", "de la ", "du ", "de l'", "l'", "n°",
             "74", "73", "07", "7", "2a", "ain", "rhone", "puy de dome", "1"]
    for _ in range(30000):
        text = "".join(rng.choice(parts) for _ in range(rng.randint(1, 10)))
        for new, old in plain.items():
            assert ([(m.span(), m.groups()) for m in new.finditer(text)]
                    == [(m.span(), m.groups()) for m in old.finditer(text)]), text
