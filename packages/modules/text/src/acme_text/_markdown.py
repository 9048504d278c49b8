"""Markdown to HTML with markdown-it-py (CommonMark, plus tables and strikethrough).

Raw HTML in the source is escaped, never passed through, so rendered user content is safe to
embed. Headings get stable ``id`` attributes (slugs, de-duplicated) for links and a table of
contents.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from markdown_it import MarkdownIt
from markdown_it.token import Token

from acme_text._slug import slugify


@dataclass(frozen=True, slots=True)
class Heading:
    """One heading of a rendered document."""

    level: int
    text: str
    id: str


@dataclass(frozen=True, slots=True)
class Rendered:
    """The HTML of a document and its headings, in order."""

    html: str
    headings: tuple[Heading, ...]


@functools.cache
def _parser(*, tables: bool) -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable("strikethrough")
    if tables:
        md.enable("table")
    return md


def _inline_text(token: Token) -> str:
    parts: list[str] = []
    for child in token.children or ():
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
    return "".join(parts)


def render(source: str, *, tables: bool = True, heading_ids: bool = True) -> Rendered:
    """Render ``source`` to HTML and collect its headings."""
    md = _parser(tables=tables)
    tokens = md.parse(source)
    headings: list[Heading] = []
    seen: dict[str, int] = {}
    for i, token in enumerate(tokens):
        if token.type != "heading_open":
            continue
        text = _inline_text(tokens[i + 1])
        base = slugify(text) or "section"
        n = seen.get(base, 0)
        seen[base] = n + 1
        anchor = base if n == 0 else f"{base}-{n}"
        if heading_ids:
            token.attrSet("id", anchor)
        headings.append(Heading(level=int(token.tag[1]), text=text, id=anchor))
    html = md.renderer.render(tokens, md.options, {})
    return Rendered(html=html, headings=tuple(headings))


def plain_text(source: str) -> str:
    """The readable text of a markdown document: inline text of every block, code included."""
    blocks: list[str] = []
    for token in _parser(tables=True).parse(source):
        if token.type == "inline":
            blocks.append(_inline_text(token))
        elif token.type in ("code_block", "fence"):
            blocks.append(token.content.rstrip("\n"))
    return "\n".join(b for b in blocks if b)
