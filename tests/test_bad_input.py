"""Hostile and broken input: every message gets a clear outcome, in bounded time and memory.

The big inputs are generated here, never committed. Each case goes through
:func:`triage.pipeline.triage_bytes` (the code behind ``triage explain``) and must come out with
a decision and no internal error: limits exceeded give a quarantine whose reason, in French,
names the limit; broken but bounded input is decided like any other message.
"""

from __future__ import annotations

import email.feedparser as feedparser
import email.message
import email.parser
import email.policy
import json
import random
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from triage.config import Limits, Settings, load_settings
from triage.parse import parse_message
from triage.parse.mime import (
    SafeMessage,
    _BoundaryTest,
    _FeedparserRe,
    _TailLineEnd,
    parse_bytes,
    split_params,
)
from triage.parse.prescan import scan
from triage.pipeline import Outcome, triage_bytes
from triage.rules import label

HEAD = (b"From: Jeanne Martin <jeanne.martin@mairie-bozel.fr>\r\n"
        b"To: ddfip73.pgp.spl-pes@dgfip.finances.gouv.fr\r\n"
        b"Subject: Mot de passe Chorus Pro\r\n"
        b"Message-ID: <bad-input@mairie-bozel.fr>\r\n")
REQUEST = ("Bonjour, j'ai oublié mon mot de passe Chorus Pro, mon identifiant est "
           "jmartin-xt. Merci, Jeanne Martin\r\n").encode()
#: Seconds one case may take (the slowest takes under one second on a 2-core machine).
MAX_SECONDS = 5.0
#: Address space the whole set of cases must fit in, inputs included (about 300 MB are used).
MAX_ADDRESS_SPACE = 1024 * 1024 * 1024


@pytest.fixture(scope="module")
def config() -> Settings:
    return load_settings()


def nested_multipart(depth: int) -> bytes:
    out = [HEAD, b"MIME-Version: 1.0\r\n"]
    for i in range(depth):
        out.append(b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i))
    out.append(b"Content-Type: text/plain\r\n\r\n" + REQUEST)
    out.extend(b"--b%d--\r\n" % i for i in reversed(range(depth)))
    return b"".join(out)


def nested_messages(depth: int) -> bytes:
    """A message attached in a message, ``depth`` times (no boundaries at all)."""
    return HEAD + b"Content-Type: message/rfc822\r\n\r\n" * depth + b"\r\n" + REQUEST


def many_parts(count: int) -> bytes:
    out = [HEAD, b'Content-Type: multipart/mixed; boundary="zz"\r\n\r\n']
    out.extend(b"--zz\r\nContent-Type: text/plain\r\n\r\npart %d\r\n" % i for i in range(count))
    return b"".join(out) + b"--zz--\r\n"


def big_message(size: int) -> bytes:
    line = b"A" * 76 + b"\r\n"
    return HEAD + b"\r\n" + REQUEST + line * (size // len(line))


def deep_and_long(depth: int, lines: int) -> bytes:
    """Nested multiparts with many body lines: the parser tests every line at every level."""
    out = [HEAD]
    for i in range(depth):
        out.append(b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i))
    out.append(b"Content-Type: text/plain\r\n\r\n" + b"ligne de texte\r\n" * lines)
    return b"".join(out)


def mime(content_type: bytes, body: bytes, encoding: bytes = b"8bit") -> bytes:
    return (HEAD + b"MIME-Version: 1.0\r\nContent-Type: " + content_type + b"\r\n"
            b"Content-Transfer-Encoding: " + encoding + b"\r\n\r\n" + body)


def random_bytes(size: int) -> bytes:
    data = bytearray(random.Random(2026).randbytes(size))
    data[::97] = b"\x00" * len(data[::97])  # NUL bytes, for sure
    return bytes(data)


# (name, generator, substring of a limits reason, or None when the message must be decided
# normally; the reason is matched case-insensitively).
CASES: list[tuple[str, Callable[[], bytes], str | None]] = [
    ("empty file", lambda: b"", None),
    ("binary with NUL bytes", lambda: random_bytes(1 << 20), None),
    ("50 MB message", lambda: big_message(50 * 1024 * 1024), "octets, au-delà de la limite"),
    ("MIME nested 500 levels", lambda: nested_multipart(500), "imbrication mime"),
    ("MIME nested 1,000 levels", lambda: nested_multipart(1000), "imbrication mime"),
    ("message/rfc822 nested 1,000 levels", lambda: nested_messages(1000), "imbri"),
    ("10,000 parts", lambda: many_parts(10_000), "parties mime"),
    ("400,000 empty parts", lambda: HEAD + b'Content-Type: multipart/mixed; boundary="z"'
     b"\r\n\r\n" + b"--z\r\n\r\n" * 400_000, "parties mime"),
    ("nested 29 levels, 900,000 lines", lambda: deep_and_long(29, 900_000), None),
    ("30 MB of empty lines", lambda: HEAD + b"\r\n" + REQUEST + b"\n" * (29 * 1024 * 1024),
     "lignes, au-delà de la limite"),
    ("header line of 1 MB", lambda: HEAD + b"X-Long: " + b"a" * (1 << 20) + b"\r\n\r\n" + REQUEST,
     "en-têtes de"),
    ("100,000 headers", lambda: HEAD + b"X-H: v\r\n" * 100_000 + b"\r\n" + REQUEST, "en-têtes"),
    ("header folded 300,000 times", lambda: HEAD + b"X-Folded: a\r\n" + b" a\r\n" * 300_000
     + b"\r\n" + REQUEST, "en-têtes de"),
    ("base64 part that is not base64",
     lambda: mime(b"text/plain; charset=utf-8", b"!!! ceci n'est pas du base64 ***\r\n" + REQUEST,
                  b"base64"), None),
    ("unknown charset", lambda: mime(b"text/plain; charset=x-klingon", REQUEST), None),
    ("declared UTF-8 with invalid bytes",
     lambda: mime(b"text/plain; charset=utf-8", b"Bonjour \xe9\xff\xfe\xc3(\r\n" + REQUEST), None),
    ("only headers, no body", lambda: HEAD, None),
    ("bare CR line ends", lambda: (HEAD + b"\r\n" + REQUEST).replace(b"\r\n", b"\r"), None),
    # The quadratic corners of Python's email and html packages, each over 200 kB.
    ("boundary with 250,000 quoted semicolons",
     lambda: HEAD + b'Content-Type: multipart/mixed; boundary="x' + b";" * 250_000 + b'"\r\n\r\n'
     + REQUEST, None),
    ("HTML with 40,000 unclosed attributes",
     lambda: mime(b"text/html; charset=utf-8", b"<p>" + REQUEST + b"</p>" + b"<a b='" * 40_000),
     None),
    ("HTML with 40,000 unclosed comments",
     lambda: mime(b"text/html; charset=utf-8", b"<p>" + REQUEST + b"</p>" + b"<!--" * 40_000),
     None),
    ("subject of 15,000 encoded words",
     lambda: HEAD.replace(b"Subject: Mot", b"Subject: " + b"=?utf-8?q?a?= " * 15_000 + b"Mot")
     + b"\r\n" + REQUEST, None),
    ("Cc with 10,000 addresses", lambda: HEAD + b"Cc: " + b", ".join(
        b"u%d@example.fr" % i for i in range(10_000)) + b"\r\n\r\n" + REQUEST, None),
    ("Cc with 2,000 colons in encoded words", lambda: HEAD + b"Cc: a@b.fr,\r\n"
     + b"\t=?utf-8?q?date=3E10:08:28?=\r\n" * 2_000 + b"\r\n" + REQUEST, None),
    ("RFC 2231 section number of 5,000 digits",
     lambda: mime(b'text/plain; charset*' + b"9" * 5000 + b'*="utf-8"', REQUEST), None),
    # Found by fuzzing: Python's get_payload() raises on these when the body is 8-bit.
    ("RFC 2231 charset parameter over an 8-bit body",
     lambda: mime(b"text/plain; charset*=utf-8''%75tf-8", b"caf\xe9\r\n" + REQUEST), None),
    ("NUL byte in the charset over an 8-bit body",
     lambda: mime(b'text/plain; charset="ut\x00f-8"', b"caf\xe9\r\n" + REQUEST), None),
    ("text of 20 MB on one line",
     lambda: mime(b"text/plain; charset=utf-8", REQUEST + b"x" * (20 * 1024 * 1024)), None),
]


def run_case(raw: bytes, config: Settings) -> tuple[Outcome, float]:
    started = time.perf_counter()
    outcome = triage_bytes(raw, config)
    return outcome, time.perf_counter() - started


@pytest.mark.slow
@pytest.mark.parametrize("make, limit_reason", [(c[1], c[2]) for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_input_gets_a_clear_outcome(config, make, limit_reason):
    """Broken or hostile input is decided, or quarantined for a named limit, within seconds,
    never with an internal error."""
    raw = make()
    outcome, elapsed = run_case(raw, config)
    assert outcome.error is None, outcome.error
    assert outcome.message is not None
    reasons = [str(r) for r in outcome.decision.reasons]
    if limit_reason is not None:
        assert outcome.decision.action.value == "quarantine"
        assert outcome.decision.link == "limits"
        assert any(r.startswith(f"{label('limits')} :") and limit_reason in r.lower()
                   for r in reasons), reasons
    else:
        assert not outcome.message.violations, outcome.message.violations
        assert outcome.decision.link != "limits"
    assert elapsed < MAX_SECONDS, f"{elapsed:.2f} s"


@pytest.mark.slow
def test_bad_input_fits_in_bounded_memory():
    """Every case, its generated input included, runs in a process limited to 1 GiB of address
    space (a subprocess, since the limit cannot be lifted once set)."""
    code = textwrap.dedent(f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, ({MAX_ADDRESS_SPACE}, {MAX_ADDRESS_SPACE}))
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_bad_input import CASES
        from triage.config import load_settings
        from triage.pipeline import triage_bytes
        config = load_settings()
        for name, make, _reason in CASES:
            outcome = triage_bytes(make(), config)
            print(name, "error" if outcome.error else "ok", flush=True)
        print("peak", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=False, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.splitlines()
    assert lines[:-1] == [f"{name} ok" for name, _make, _reason in CASES]


def test_limits_are_read_from_the_configuration():
    """Smaller configured limits quarantine smaller messages, and the reason quotes them."""
    limits = Limits(max_message_bytes=1000, max_parts=5, max_depth=3, max_header_count=10)
    raw = big_message(5000)
    assert parse_message(raw, limits).violations == (
        f"message de {len(raw)} octets, au-delà de la limite de 1000 octets",)
    assert "plus de 5 parties MIME" in parse_message(many_parts(6), Limits(max_parts=5)
                                                     ).violations[0]
    assert "3 niveaux" in parse_message(nested_multipart(4), Limits(max_depth=3)).violations[0]
    assert "plus de 10 en-têtes" in parse_message(
        HEAD + b"X-H: v\r\n" * 10 + b"\r\nx", Limits(max_header_count=10)).violations[0]


def test_over_limit_message_keeps_its_headers(config):
    """A quarantined over-limit message still shows who sent it and its subject to the agent."""
    view = triage_bytes(nested_multipart(1000), config).message
    assert view is not None
    assert view.sender_address is not None
    assert view.sender_address.address == "jeanne.martin@mairie-bozel.fr"
    assert view.subject == "Mot de passe Chorus Pro"
    assert view.text == ""


def test_bare_cr_message_reads_like_crlf(config):
    """A message with CR-only line ends parses to the same sender, subject and text as CRLF."""
    crlf = parse_message(HEAD + b"\r\n" + REQUEST * 2)
    cr = parse_message((HEAD + b"\r\n" + REQUEST * 2).replace(b"\r\n", b"\r"))
    assert cr.sender_address == crlf.sender_address
    assert cr.subject == crlf.subject == "Mot de passe Chorus Pro"
    assert cr.text == crlf.text and "jmartin-xt" in cr.text


def test_invalid_utf8_body_is_still_read():
    """A body declared UTF-8 with invalid bytes is decoded (never dropped) and says so."""
    view = parse_message(mime(b"text/plain; charset=utf-8", b"Mot de passe oubli\xe9\r\n"))
    assert "Mot de passe oublié" in view.text
    assert any("utf-8" in d and "wrong" in d for d in view.defects)


def test_not_base64_body_is_not_lost():
    """A base64 part whose content is not base64 yields what could be decoded, no exception."""
    view = parse_message(mime(b"text/plain; charset=utf-8", b"@@@@\r\n", b"base64"))
    assert view.violations == ()
    assert isinstance(view.text, str)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet='ab;"\\= \t', max_size=40))
def test_split_params_matches_the_standard_library(value):
    """Our linear parameter splitter gives what ``email.message._parseparam`` gives."""
    import email.message

    assert split_params(value) == email.message._parseparam(value)  # type: ignore[attr-defined]


def _mime_tree(msg: email.message.Message) -> list[object]:
    """Everything the parser leaves in a message tree, in order, to compare two parses."""
    out: list[object] = []
    stack = [msg]
    while stack:
        node = stack.pop()
        out.append((node.get_unixfrom(), node.items(), node.get_default_type(), node.preamble,
                    node.epilogue, [type(d).__name__ for d in node.defects]))
        payload = node._payload  # type: ignore[attr-defined]
        if isinstance(payload, list):
            out.append(len(payload))
            stack.extend(reversed(payload))
        else:
            out.append(payload)
    return out


MIME_STARTS = [b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n', b"",
               b"Content-Type: multipart/digest; boundary=b\n\n--b\n",
               b"Content-Type: message/rfc822\r\n\r\n"]
MIME_TOKENS = [b"--b\r\n", b"--b\n", b"--b--\r\n", b"\r--b\r", b"\n--b--", b"--c\n", b"--c--",
               b"\r", b"\n", b"\r\n", b"\r\n", b"\n", b"QUJD", b"-", b"--", b" \t", b"X: y\n",
               b"Content-Type: multipart/alternative; boundary=c\n",
               b"Content-Type: application/pdf\r\n", b"Content-Type: text/plain\n",
               b"Content-Type: message/rfc822\n\n", b"Content-Type: message/delivery-status\n\n",
               b"Content-Type: multipart/mixed\n"]


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(MIME_STARTS), st.lists(st.sampled_from(MIME_TOKENS), max_size=40),
       st.booleans())
def test_mime_parse_matches_the_standard_library(start, tokens, headers_only):
    """Our parser (its line buffer hands leaf bodies over in runs) builds the tree the standard
    ``BytesParser`` builds, whatever the boundaries, line ends and part types; so it does with
    the delimiter lines the prescan found."""
    raw = start + b"".join(tokens)
    ours = parse_bytes(raw, headers_only=headers_only)
    with pytest.MonkeyPatch.context() as patch:  # the standard parser as shipped
        patch.setattr(feedparser, "re", re)
        patch.setattr(feedparser, "NLCRE_eol", re.compile(r"(\r\n|\r|\n)\Z"))
        standard = email.parser.BytesParser(SafeMessage, policy=email.policy.compat32
                                            ).parsebytes(raw, headersonly=headers_only)
    assert _mime_tree(ours) == _mime_tree(standard)
    pre = scan(raw, Limits())
    if not pre.headers_only:
        assert pre.delimiters is not None
        ours = parse_bytes(raw, headers_only=headers_only, delimiters=pre.delimiters)
        assert _mime_tree(ours) == _mime_tree(standard)


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet="-b()[]*.\\ \t\r\n\udcff", max_size=6),
       st.text(alphabet="-b \t\r\nx", max_size=12))
def test_boundary_test_matches_the_compiled_pattern(boundary, line):
    """The parser's boundary test, built without compiling the boundary, matches what the
    pattern the parser asks for matches, with the same groups."""
    separator = "--" + boundary
    pattern = ("(?P<sep>" + re.escape(separator)
               + r")(?P<end>--)?(?P<ws>[ \t]*)(?P<linesep>\r\n|\r|\n)?$")
    ours = _FeedparserRe.compile(pattern)
    assert isinstance(ours, _BoundaryTest)
    standard = re.compile(pattern)
    for text in (line, separator + line, separator):
        got, expected = ours.match(text), standard.match(text)
        assert (got is None) == (expected is None)
        if got and expected:
            assert got.end() == expected.end()
            assert [got.group(g) for g in ("end", "ws", "linesep")] == [
                expected.group(g) for g in ("end", "ws", "linesep")]


def test_other_patterns_are_compiled_by_re():
    pattern = "(?P<sep>" + "--b)|(x" + r")(?P<end>--)?(?P<ws>[ \t]*)(?P<linesep>\r\n|\r|\n)?$"
    assert isinstance(_FeedparserRe.compile(pattern), re.Pattern)
    assert _FeedparserRe.compile("a+", re.I) == re.compile("a+", re.I)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="\r\nab", max_size=8))
def test_payload_line_end_matches_the_regex(text):
    """The parser's payload line-end search, done on the last two characters, finds what the
    standard regex finds on the whole string."""
    ours = _TailLineEnd(re.compile(r"(\r\n|\r|\n)\Z")).search(text)
    standard = re.search(r"(\r\n|\r|\n)\Z", text)
    assert (ours and ours.group(0)) == (standard and standard.group(0))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_never_raise(raw):
    """Any bytes parse to a view without an exception (the parser never gives up)."""
    view = parse_message(raw)
    assert view.raw_size == len(raw)


FIXTURES = sorted((Path(__file__).parent / "data" / "parse").glob("*.eml"))
TOKENS = [b"=?", b"?=", b"=?utf-8?q?", b"=?utf-8?b?", b"\r", b"\n", b"\r\n\r\n", b"\x00", b"\xff",
          b";", b'"', b"\\", b"(", b")", b"<", b">", b":", b",", b"@", b"--", b"boundary=",
          b'Content-Type: multipart/mixed; boundary="x"\n', b"\n--x\n", b"charset*0*=",
          b"Content-Type: message/rfc822\n\n", b"filename*=", b"<!--", b"<a b='", b"&#",
          b"<blockquote>", b"<script>", b"<head>", b"\n> ", b"De : ", b"Le 1 a \xc3\xa9crit :\n"]


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(FIXTURES), st.lists(st.tuples(st.floats(0, 1), st.sampled_from(TOKENS),
                                                     st.sampled_from([1, 2, 50])), max_size=6))
def test_mutated_fixtures_never_raise(config, fixture, edits):
    """Real messages with hostile tokens spliced in are decided without an internal error."""
    data = bytearray(fixture.read_bytes())
    for where, token, times in edits:
        pos = int(where * len(data))
        data[pos:pos] = token * times
    outcome = triage_bytes(bytes(data), config)
    assert outcome.error is None, outcome.error


@pytest.mark.slow
def test_cli_explains_bad_files(tmp_path):
    """``triage explain --json`` on a folder of bad files exits 0 with one JSON line per file."""
    chosen = {"empty file", "binary with NUL bytes", "50 MB message", "MIME nested 1,000 levels",
              "10,000 parts", "header line of 1 MB", "100,000 headers", "bare CR line ends",
              "only headers, no body"}
    for i, (_name, make, _reason) in enumerate(c for c in CASES if c[0] in chosen):
        (tmp_path / f"{i:02d}.eml").write_bytes(make())
    started = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "triage", "explain", "--json", str(tmp_path)],
                         capture_output=True, text=True, check=False, timeout=120)
    elapsed = time.perf_counter() - started
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    rows = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(rows) == len(chosen)
    for row in rows:
        assert row["action"] in ("ignore", "quarantine", "human", "draft")
        assert not any(r.startswith(f"{label('pipeline')} :") for r in row["reasons"]), row
        if Path(row["source"]).stem in ("02", "03", "04", "05", "06"):
            assert row["action"] == "quarantine"
            assert any(r.startswith(f"{label('limits')} :") for r in row["reasons"])
    assert elapsed < 10 * MAX_SECONDS


# UTF-7 is the one charset whose Python decoder lets a lone surrogate through ("+2D0-" is
# U+D83D alone): no UTF-8 encoder, RE2's included, accepts such a text.
LONE_SURROGATE_REQUEST = (
    b"Bonjour, j'ai oubli+AOk- mon mot de passe Chorus Pro +2D0- mon identifiant est "
    b"jmartin-xt. Merci, Jeanne Martin\r\n")


def _surrogates(text: str) -> list[str]:
    return [ch for ch in text if 0xD800 <= ord(ch) <= 0xDFFF]


def test_lone_surrogate_never_reaches_the_view():
    """A lone surrogate a charset decodes to (UTF-7, in a body or an encoded word) becomes
    U+FFFD in the view, with a defect that says so: the view is always text UTF-8 can carry."""
    raw = mime(b"text/plain; charset=utf-7", LONE_SURROGATE_REQUEST * 3, b"7bit").replace(
        b"Subject: Mot de passe Chorus Pro",
        b"Subject: =?utf-7?Q?Mot_de_passe_+2D0-_Chorus_Pro?=")
    view = parse_message(raw)
    for field in (view.text, view.new_text, view.subject, *(v for _k, v in view.headers)):
        assert not _surrogates(field), field
    assert "oublié mon mot de passe Chorus Pro \ufffd mon identifiant" in view.text
    assert view.subject == "Mot de passe \ufffd Chorus Pro"
    assert any("surrogate" in d for d in view.defects), view.defects
    view.text.encode("utf-8")  # what the store, the logs and RE2 do with it


def test_lone_surrogate_is_decided_as_the_same_message_without_it(config):
    """The request with a lone surrogate in it gets the decision it gets without, not an
    internal error (it was quarantined with « UnicodeEncodeError »)."""
    with_it = triage_bytes(mime(b"text/plain; charset=utf-7", LONE_SURROGATE_REQUEST * 3,
                                b"7bit"), config)
    without = triage_bytes(mime(b"text/plain; charset=utf-7",
                                LONE_SURROGATE_REQUEST.replace(b" +2D0-", b"") * 3,
                                b"7bit"), config)
    assert with_it.error is None, with_it.error
    assert without.decision.action.value == "draft"
    assert with_it.decision.action == without.decision.action
    assert with_it.decision.intent == without.decision.intent
