"""HTML bodies to plain text, keeping quoted blocks recognisable.

Only the text is kept: scripts, styles and the head are dropped; block elements become line
breaks; ``<blockquote>`` and the quote containers of common webmails (Gmail's ``gmail_quote``,
Outlook's ``divRplyFwdMsg``) become ``>``-prefixed lines, so the quote splitter treats HTML and
plain-text replies alike.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

_BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul",
          "ol", "pre", "hr", "section", "article", "header", "footer", "address", "center"}
_SKIP = {"script", "style", "head", "title", "xml", "o:p"}
_VOID = {"br", "hr", "img", "meta", "link", "input", "area", "base", "col", "embed", "source",
         "wbr", "param", "track"}


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.current: list[str] = []
        self.skip = 0
        self.quote = 0
        self.stack: list[tuple[str, bool]] = []

    def _newline(self) -> None:
        line = "".join(self.current).strip()
        self.current = []
        if self.quote:
            line = "> " * self.quote + line if line else ">" * self.quote
        self.lines.append(line)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        tag = tag.lower()
        if tag in _SKIP:
            self.skip += 1
            return
        attr = {k.lower(): (v or "") for k, v in attrs}
        quoting = tag == "blockquote" or "gmail_quote" in attr.get("class", "") or attr.get(
            "id", "") in ("divRplyFwdMsg", "appendonsend")
        if tag in _BLOCK or quoting:
            self._newline()
        if quoting:
            self.quote += 1
        if tag not in _VOID:
            self.stack.append((tag, quoting))

    def handle_endtag(self, tag: str) -> None:
        tag = tag.lower()
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)
            return
        # Pop to the matching open tag; tolerate the unbalanced markup of real mail.
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                for _t, quoting in self.stack[i:]:
                    if quoting:
                        if self.current:
                            self._newline()
                        self.quote = max(0, self.quote - 1)
                del self.stack[i:]
                break
        if tag in _BLOCK:
            self._newline()

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.current.append(re.sub(r"\s+", " ", data))


def html_to_text(markup: str) -> str:
    """The readable text of an HTML document, one block per line."""
    parser = _TextExtractor()
    try:
        parser.feed(markup)
        parser.close()
    except (AssertionError, ValueError):  # pragma: no cover - HTMLParser is very tolerant
        return html.unescape(markup)
    parser._newline()
    text = "\n".join(parser.lines).replace("\u00a0", " ")
    # Collapse the runs of empty lines that nested blocks leave behind.
    out: list[str] = []
    for line in text.splitlines():
        if line.strip() or (out and out[-1].strip()):
            out.append(line.rstrip())
    return "\n".join(out).strip()
