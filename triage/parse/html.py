"""HTML bodies to plain text, keeping quoted blocks recognisable, in linear time.

Only the text is kept: scripts, styles, the head and comments are dropped; block elements
become line breaks; ``<blockquote>`` and the quote containers of common webmails (Gmail's
``gmail_quote``, Outlook's ``divRplyFwdMsg``) become ``>``-prefixed lines, so the quote splitter
treats HTML and plain-text replies alike.

The tokenizer is ours, not :class:`html.parser.HTMLParser`: on malformed input the standard
parser is quadratic (``<a b='`` repeated takes minutes on 250 kB; CVE-2025-6069, fixed only in
later Python releases). Here every construct is closed by one forward ``find`` from its start,
and an unclosed one ends the document, so the work is linear in the input.
"""

from __future__ import annotations

import html
import re

_BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul",
          "ol", "pre", "hr", "section", "article", "header", "footer", "address", "center",
          "dd", "dt", "dl", "blockquote"}
_CELL = {"td", "th"}
_SKIP = {"script", "style", "head", "title", "xml", "template", "noscript"}
_VOID = {"br", "hr", "img", "meta", "link", "input", "area", "base", "col", "embed", "source",
         "wbr", "param", "track"}
# The next "<" that opens something: an end tag ("/" and its name), a start tag (its name),
# or a comment or declaration ("!" or "?"). A name is read within 79 characters of the "<".
# Any other "<" is text.
_NEXT_TAG = re.compile(r"<(?:(/)([a-zA-Z][^\s/>]{0,77})|([a-zA-Z][^\s/>]{0,78})|[!?])")
_ATTRIBUTE = re.compile(r"""([^\s"'>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?""")
_MAX_TAG = 4096  # a quoted attribute value is looked for within this many characters
_QUOTE_MARKS = ("gmail_quote", "divrplyfwdmsg", "appendonsend", "moz-cite-prefix",
                "yahoo_quoted", "protonmail_quote")
_QUOTE_MARK = re.compile("|".join(map(re.escape, _QUOTE_MARKS)))  # any of them, in one search


class _Text:
    """The text being built: lines, the current line, and the depth of quoting."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.current: list[str] = []
        self.quote = 0
        self.stack: list[tuple[str, bool]] = []

    def newline(self) -> None:
        line = "".join(self.current).strip()
        self.current = []
        if self.quote:
            line = "> " * self.quote + line if line else ">" * self.quote
        self.lines.append(line)

    def data(self, text: str) -> None:
        if text.isspace():  # the line ends between tags, mostly: \s+ is str.isspace's set
            self.current.append(" ")
        elif text:
            if "&" in text:  # else html.unescape returns it as it is
                text = "\u00a0" if text == "&nbsp;" else html.unescape(text)
            self.current.append(_one_space(text))

    def start(self, tag: str, quoting: bool) -> None:
        if tag in _BLOCK or quoting:
            self.newline()
        elif tag in _CELL and self.current:
            self.current.append(" ")  # « Identifiant » | « jdupont-xt »: two words, not one
        if quoting:
            self.quote += 1
        if tag not in _VOID:
            self.stack.append((tag, quoting))
            if len(self.stack) > 10_000:  # unclosed tags of a hostile document
                del self.stack[:5_000]

    def end(self, tag: str) -> None:
        # Pop to the matching open tag, among the 199 innermost; tolerate the unbalanced markup
        # of real mail. Most often it is the innermost.
        stack = self.stack
        i = len(stack) - 1
        bottom = max(-1, i - 199)
        while i > bottom:
            if stack[i][0] == tag:
                for _tag, quoting in stack[i:]:
                    if quoting:
                        if self.current:
                            self.newline()
                        self.quote = max(0, self.quote - 1)
                del stack[i:]
                break
            i -= 1
        if tag in _BLOCK:
            self.newline()


def _one_space(text: str) -> str:
    """``re.sub(r"\\s+", " ", text)``, three times faster: str.split() splits at the characters
    of re's \\s (both are str.isspace's set)."""
    words = text.split()
    if not words:
        return " " if text else ""
    joined = " ".join(words)
    if text[0].isspace():
        joined = " " + joined
    return joined + " " if text[-1].isspace() else joined


def _is_quote_container(tag: str, markup: str) -> bool:
    if tag == "blockquote":
        return True
    if not markup or not _QUOTE_MARK.search(markup.lower()):
        return False
    for match in _ATTRIBUTE.finditer(markup):
        name = match.group(1).lower()
        value = (match.group(2) or match.group(3) or match.group(4) or "").lower()
        if name == "class" and any(m in value.split() for m in _QUOTE_MARKS):
            return True
        if name == "id" and value in ("divrplyfwdmsg", "appendonsend"):
            return True
    return False


def _tag_end(markup: str, start: int) -> int:
    """The ``>`` that ends the tag whose attributes begin at ``start``, or -1.

    A ``>`` inside a quoted attribute value (``href="mailto:<a@b>"``) does not end the tag;
    the closing quote is looked for within a bounded window only, so that hostile markup full
    of unclosed quotes stays linear.
    """
    close = markup.find(">", start)
    limit = start + _MAX_TAG
    for _ in range(8):
        if close < 0 or close > limit:
            return close
        quote = ('"' if markup.count('"', start, close) % 2 else
                 "'" if markup.count("'", start, close) % 2 else None)
        if quote is None:
            return close
        end_quote = markup.find(quote, close, limit)
        if end_quote < 0:
            return close
        following = markup.find(">", end_quote)
        if following < 0:
            return close
        close = following
    return close


def _skip_to_end(lowered: str, tag: str, pos: int) -> int:
    """Where the text resumes after a skipped element (script, style, head …) opened at ``pos``.

    An unclosed ``<head>`` ends where ``<body>`` begins (mailers omit ``</head>``); other
    unclosed elements run to the end of the document, as in a browser.
    """
    ends = [e for e in (lowered.find(f"</{tag}", pos),
                        lowered.find("<body", pos) if tag == "head" else -1) if e >= 0]
    if not ends:
        return len(lowered)
    end = min(ends)
    if lowered.startswith("<body", end):
        return end
    close = lowered.find(">", end)
    return len(lowered) if close < 0 else close + 1


def html_to_text(markup: str) -> str:
    """The readable text of an HTML document, one block per line."""
    out = _Text()
    lowered = markup.lower()
    # Offsets in ``markup`` are offsets in ``lowered`` unless it holds "İ", the one character
    # whose lower case is two (then the attributes are lowered one tag at a time).
    aligned = len(lowered) == len(markup)
    # Without any quote mark in the document, only a blockquote quotes (most documents).
    marked = any(mark in lowered for mark in _QUOTE_MARKS)
    n = len(markup)
    pos = 0
    # Bound once: the loop runs once per tag and text run (hundreds per message).
    find, count, data = markup.find, markup.count, out.data
    next_tag, quote_mark = _NEXT_TAG.search, _QUOTE_MARK.search
    while pos < n:
        opening = next_tag(markup, pos)
        lt = n if opening is None else opening.start()
        while pos < lt:  # the text before it, where a "<" that opens nothing is a piece
            lone = find("<", pos, lt)
            if lone < 0:
                data(markup[pos:lt])
                break
            if lone > pos:
                data(markup[pos:lone])
            data("<")
            pos = lone + 1
        if opening is None:
            break
        name = opening.group(2) or opening.group(3)
        if name is None:  # "<!" or "<?"
            if markup.startswith("<!--", lt):
                close = find("-->", lt + 4)
                pos = n if close < 0 else close + 3
            else:
                close = find(">", lt + 2)
                pos = n if close < 0 else close + 1
            continue
        start = opening.end()
        close = find(">", start)
        # _tag_end's first step, inline: the first ">" ends the tag unless it lies inside a
        # quoted value (an odd number of quotes before it).
        if (0 <= close <= start + _MAX_TAG
                and (count('"', start, close) % 2 or count("'", start, close) % 2)):
            close = _tag_end(markup, start)
        if close < 0:
            break  # an unclosed tag ends the document
        tag = name.lower()
        pos = close + 1
        if opening.group(1):
            out.end(tag)
            continue
        if tag in _SKIP:
            if markup[close - 1] != "/":
                pos = _skip_to_end(lowered, tag, pos)
            continue
        # A quote container is a blockquote or a tag whose attributes name a quote mark; the
        # mark is looked for in the document lowered once.
        quoting = tag == "blockquote" or (
            marked and start < close and (quote_mark(lowered, start, close) if aligned else True)
            and _is_quote_container(tag, markup[start:close]))
        out.start(tag, bool(quoting))
    out.newline()
    text = "\n".join(out.lines).replace("\u00a0", " ")
    # Collapse the runs of empty lines that nested blocks leave behind.
    lines: list[str] = []
    for line in text.splitlines():
        if line.strip() or (lines and lines[-1].strip()):
            lines.append(line.rstrip())
    return "\n".join(lines).strip()


#: What the review page keeps of an HTML body: structure and links, nothing that runs or loads.
_CLEAN_TAGS = {"p", "br", "div", "span", "b", "strong", "i", "em", "u", "ul", "ol", "li", "table",
               "thead", "tbody", "tr", "td", "th", "blockquote", "pre", "h1", "h2", "h3", "h4",
               "a", "hr"}


def clean_html(markup: str, max_chars: int = 500_000) -> str:
    """HTML cleaned with an allow-list (no script, style, event handler, remote load), for
    display under the page's Content-Security-Policy."""
    import nh3

    return nh3.clean(markup[:max_chars], tags=_CLEAN_TAGS, attributes={"a": {"href", "title"}},
                     url_schemes={"http", "https", "mailto"},
                     link_rel="noopener noreferrer nofollow")
