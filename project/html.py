"""HTML from Intercom and from knowledge-base editors: readable text to search and rank, safe HTML to show.

One place for every app: a customer's message and a saved reply are read the same way.
"""

import re
from html.parser import HTMLParser

import nh3

# Tags whose boundaries separate words and lines ("<p>a</p><p>b</p>" is "a" and "b", not "ab").
_BLOCK_TAGS = frozenset({
    "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "figcaption", "footer",
    "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "ol", "p", "pre", "section", "table",
    "td", "th", "tr", "ul",
})  # fmt: skip
# Their text is never something a person reads.
_SKIPPED_TAGS = frozenset({"script", "style", "template", "head", "title", "noscript"})
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")
_LINK = re.compile(r"^(https?://|mailto:)", re.IGNORECASE)


class _TextCollector(HTMLParser):
    def __init__(self, *, keep_links: bool = False) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0
        self._keep_links = keep_links
        self._links: list[tuple[str, int]] = []  # open <a>: its URL, and where its text starts in parts

    def handle_starttag(self, tag, attrs):
        if tag == "a" and self._keep_links:
            href = (dict(attrs).get("href") or "").strip()
            self._links.append((href if _LINK.match(href) else "", len(self.parts)))
        if tag in _SKIPPED_TAGS:
            self._skipping += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt:
                self.parts.append(f" {alt} ")

    def handle_startendtag(self, tag, attrs):
        """<br/> is one line break (the default would see a start and an end tag: two)."""
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")
        elif tag == "img":
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag):
        if tag == "a" and self._links:
            href, start = self._links.pop()
            text = "".join(self.parts[start:]).strip()
            if href and href.rstrip("/") != text.rstrip("/"):
                self.parts.append(f" ({href})" if text else href)
        if tag in _SKIPPED_TAGS:
            self._skipping = max(0, self._skipping - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self._skipping:
            self.parts.append(data)


def html_to_text(html: str | None, *, keep_links: bool = False) -> str:
    """Readable text of an HTML fragment (or of plain text): block elements become line breaks (a paragraph
    keeps its blank line), entities decoded, scripts and styles dropped, an image's alt text kept.

    keep_links: a link's absolute URL follows its text ("our guide (https://...)"), so text sent from it
    (a help article's) still leads where the link did.
    """
    if not html:
        return ""
    collector = _TextCollector(keep_links=keep_links)
    collector.feed(html)
    collector.close()
    lines = [_SPACES.sub(" ", line).strip() for line in "".join(collector.parts).split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def clean_html(html: str | None) -> str:
    """The HTML with scripts, event handlers, unknown tags and unsafe URLs removed: safe to show an agent or
    to post to Intercom."""
    return nh3.clean(html or "")


# Markdown's characters that would start emphasis, a link or an escape: written literally, they are escaped.
_MARKDOWN_SPECIALS = re.compile(r"([\\`*_\[\]])")
_SAFE_LINK = re.compile(r"^(https?://|mailto:)[^\s()<>]+$", re.IGNORECASE)


def markdown_escape(text: str) -> str:
    return _MARKDOWN_SPECIALS.sub(r"\\\1", text)


class _MarkdownCollector(_TextCollector):
    """The text, with what Canvas Kit's Markdown renders kept: bold (`**`), links (`[text](url)`), list bullets."""

    def __init__(self) -> None:
        super().__init__()
        # Its own name: the base class's _links holds (url, start) pairs, and still sees end tags while skipping.
        self._md_links: list[str | None] = []

    def handle_starttag(self, tag, attrs):
        if self._skipping or tag in _SKIPPED_TAGS:
            return super().handle_starttag(tag, attrs)
        if tag in {"strong", "b"}:
            self.parts.append("**")
        elif tag == "a":
            href = (dict(attrs).get("href") or "").strip()
            self._md_links.append(href if _SAFE_LINK.match(href) else None)
            if self._md_links[-1]:
                self.parts.append("[")
        elif tag == "li":
            self.parts.append("\n- ")
        else:
            super().handle_starttag(tag, attrs)

    def handle_endtag(self, tag):
        if self._skipping or tag in _SKIPPED_TAGS:
            return super().handle_endtag(tag)
        if tag in {"strong", "b"}:
            self.parts.append("**")
        elif tag == "a":
            href = self._md_links.pop() if self._md_links else None
            if href:
                self.parts.append(f"]({href})")
        elif tag != "li":
            super().handle_endtag(tag)

    def handle_data(self, data):
        if not self._skipping:
            self.parts.append(markdown_escape(data))


def html_to_markdown(html: str | None) -> str:
    """Markdown of an HTML fragment (or of plain text) for renderers that speak a little Markdown (Intercom's
    Canvas Kit: bold and links): entities decoded, blocks as lines, list items as `- `, bold and http(s)/mailto
    links kept, every other tag dropped, and characters Markdown would read as markup escaped."""
    if not html:
        return ""
    collector = _MarkdownCollector()
    collector.feed(html)
    collector.close()
    text = "".join(collector.parts).replace("****", "")
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
