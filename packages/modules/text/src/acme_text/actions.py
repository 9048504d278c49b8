"""The text actions: ``text.slugify``, ``text.render_markdown``, ``text.summarize``,
``text.truncate``."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from switchyard import action

from acme_text._markdown import plain_text, render
from acme_text._slug import slugify as make_slug
from acme_text._words import reading_minutes, word_count
from acme_text._words import truncate as cut_text

_MAX_DOCUMENT = 200_000  # characters; larger documents belong in a bulk job, not a request

Separator = Annotated[str, Field(pattern=r"^[-_.~]$", description="one of - _ . ~")]


class SlugifyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=2_000)
    separator: Separator = "-"
    max_length: int = Field(default=80, ge=8, le=255)
    allow_unicode: bool = False


class SlugifyOut(BaseModel):
    slug: str


@action("text.slugify", description="Make a URL-safe slug from text (Unicode-normalized).")
def slugify(data: SlugifyIn) -> SlugifyOut:
    slug = make_slug(
        data.text,
        separator=data.separator,
        max_length=data.max_length,
        allow_unicode=data.allow_unicode,
    )
    return SlugifyOut(slug=slug)


class RenderMarkdownIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    markdown: str = Field(max_length=_MAX_DOCUMENT)
    tables: bool = True
    heading_ids: bool = True


class HeadingOut(BaseModel):
    level: int
    text: str
    id: str


class RenderMarkdownOut(BaseModel):
    html: str
    headings: list[HeadingOut]


@action(
    "text.render_markdown",
    description="Render CommonMark (with tables) to HTML; raw HTML is escaped.",
)
def render_markdown(data: RenderMarkdownIn) -> RenderMarkdownOut:
    rendered = render(data.markdown, tables=data.tables, heading_ids=data.heading_ids)
    headings = [HeadingOut(level=h.level, text=h.text, id=h.id) for h in rendered.headings]
    return RenderMarkdownOut(html=rendered.html, headings=headings)


class SummarizeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(max_length=_MAX_DOCUMENT)
    format: Literal["plain", "markdown"] = "plain"
    words_per_minute: int = Field(default=230, ge=50, le=1_000)
    excerpt_chars: int = Field(default=160, ge=10, le=2_000)


class SummarizeOut(BaseModel):
    words: int
    characters: int
    reading_minutes: int
    excerpt: str


@action(
    "text.summarize",
    description="Count words and characters, estimate reading time, and cut an excerpt.",
)
def summarize(data: SummarizeIn) -> SummarizeOut:
    text = plain_text(data.text) if data.format == "markdown" else data.text
    words = word_count(text)
    return SummarizeOut(
        words=words,
        characters=len(text),
        reading_minutes=reading_minutes(words, words_per_minute=data.words_per_minute),
        excerpt=cut_text(text, data.excerpt_chars),
    )


class TruncateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(max_length=_MAX_DOCUMENT)
    ellipsis: str = Field(default="…", max_length=8)
    max_chars: int = Field(ge=1, le=100_000)

    @field_validator("max_chars")
    @classmethod
    def _room_for_ellipsis(cls, value: int, info: ValidationInfo) -> int:
        ellipsis = info.data.get("ellipsis", "")
        if value < len(ellipsis):
            raise ValueError(f"must be at least the length of the ellipsis {ellipsis!r}")
        return value


class TruncateOut(BaseModel):
    text: str
    truncated: bool


@action("text.truncate", description="Cut text to a length at a word boundary, with an ellipsis.")
def truncate(data: TruncateIn) -> TruncateOut:
    out = cut_text(data.text, data.max_chars, ellipsis=data.ellipsis)
    return TruncateOut(text=out, truncated=out != " ".join(data.text.split()))
