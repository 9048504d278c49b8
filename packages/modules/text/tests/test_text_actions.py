from __future__ import annotations

from pathlib import Path

import pytest
from acme_text import slugify as make_slug
from acme_text import tokenize
from acme_text import truncate as cut
from acme_text.actions import render_markdown, slugify, summarize, truncate
from switchyard import InvalidInputError, Registry, call_action, load_config
from switchyard.testing import make_registry, run, use_registry

ACTIONS = ("text.slugify", "text.render_markdown", "text.summarize", "text.truncate")


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("Crème Brûlée — Straße 5", "creme-brulee-strasse-5"),
        ("  Hello,   World!!  ", "hello-world"),
        ("ﬁancé Ærø Łódź", "fiance-aero-lodz"),
        ("snake_case and CamelCase", "snake-case-and-camelcase"),
        ("🙂🙂", ""),
    ],
)
def test_slugify_transliterates_to_ascii(text, slug):
    assert run(slugify, {"text": text}).slug == slug


def test_slugify_keeps_unicode_letters_when_asked():
    out = run(slugify, {"text": "Привет, МИР 2024", "allow_unicode": True})
    assert out.slug == "привет-мир-2024"


def test_slugify_cuts_at_a_separator_within_the_limit():
    out = run(slugify, {"text": "one two three four five six", "max_length": 13, "separator": "_"})
    assert out.slug == "one_two_three"
    assert make_slug("x" * 50, max_length=10) == "x" * 10


def test_render_markdown_escapes_raw_html_and_renders_tables():
    source = "# Title\n\n<script>alert(1)</script>\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n~~old~~"
    out = run(render_markdown, {"markdown": source})
    assert '<h1 id="title">Title</h1>' in out.html
    assert "<script>" not in out.html
    assert "&lt;script&gt;" in out.html
    assert "<table>" in out.html
    assert "<td>1</td>" in out.html
    assert "<s>old</s>" in out.html


def test_render_markdown_drops_script_links():
    out = run(
        render_markdown, {"markdown": "[click](javascript:alert(1)) [ok](https://a.example/)"}
    )
    assert 'href="javascript' not in out.html
    assert "<p>[click](javascript:alert(1))" in out.html  # left as text, not made a link
    assert '<a href="https://a.example/">ok</a>' in out.html


def test_render_markdown_gives_headings_unique_ids():
    source = "# Intro\n\n## Setup *fast*\n\n## Setup fast\n\ntext"
    out = run(render_markdown, {"markdown": source})
    assert [(h.level, h.text, h.id) for h in out.headings] == [
        (1, "Intro", "intro"),
        (2, "Setup fast", "setup-fast"),
        (2, "Setup fast", "setup-fast-1"),
    ]
    assert '<h2 id="setup-fast-1">' in out.html
    plain = run(render_markdown, {"markdown": source, "heading_ids": False, "tables": False})
    assert "id=" not in plain.html


def test_summarize_markdown_counts_words_not_syntax():
    source = (
        "# A title\n\nSome **bold** words and a [link](https://example.com).\n\n```\ncode x\n```"
    )
    out = run(summarize, {"text": source, "format": "markdown"})
    # "A title" + "Some bold words and a link." + "code x"
    assert out.words == 10
    assert "**" not in out.excerpt
    assert "https" not in out.excerpt
    assert out.reading_minutes == 1


def test_summarize_reading_time_rounds_up():
    text = " ".join(["word"] * 461)
    out = run(summarize, {"text": text, "words_per_minute": 230, "excerpt_chars": 20})
    assert (out.words, out.reading_minutes) == (461, 3)
    assert out.excerpt == "word word word word…"
    assert run(summarize, {"text": ""}).reading_minutes == 0


def test_truncate_at_word_boundary():
    out = run(truncate, {"text": "The quick brown fox jumps", "max_chars": 14})
    assert out == truncate.output_model(text="The quick…", truncated=True)
    same = run(truncate, {"text": "short  text", "max_chars": 50, "ellipsis": "..."})
    assert (same.text, same.truncated) == ("short text", False)
    assert cut("abcdefghij", 5, ellipsis="..") == "abc.."


def test_tokenize_folds_case_and_keeps_contractions():
    assert tokenize("Don't STOP — state-of-the-art, ﬁne!") == [
        "don't",
        "stop",
        "state-of-the-art",
        "fine",
    ]


@pytest.mark.parametrize(
    ("act", "data", "field"),
    [
        (slugify, {"text": "x", "separator": "/"}, "separator"),
        (slugify, {"text": ""}, "text"),
        (slugify, {"text": "x", "max_length": 1000}, "max_length"),
        (slugify, {"text": "x", "lang": "en"}, "lang"),
        (render_markdown, {"markdown": "x" * 200_001}, "markdown"),
        (summarize, {"text": "x", "format": "html"}, "format"),
        (truncate, {"text": "abc", "max_chars": 2, "ellipsis": "..."}, "max_chars"),
    ],
)
def test_bad_input_names_the_field(act, data, field):
    with pytest.raises(InvalidInputError) as info:
        run(act, data)
    assert [e.loc for e in info.value.errors] == [field]
    assert field in str(info.value)
    assert act.name in str(info.value)


def test_call_action_through_an_in_memory_registry():
    with use_registry(make_registry(slugify, truncate)):
        assert call_action("text.slugify", '{"text": "Hi there"}').slug == "hi-there"


def test_actions_are_registered_as_entry_points():
    registry = Registry.from_entry_points()
    for name in ACTIONS:
        assert registry.info(name).distribution == "acme-text"
    assert registry.resolve("text.slugify") is slugify


def test_root_routing_puts_the_actions_on_a_shared_queue():
    config = load_config(Path(__file__).parent)
    assert config.route("text.slugify") == "interactive"
