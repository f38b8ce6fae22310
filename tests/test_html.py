"""project.html: the one reading of HTML for messages and knowledge entries (text to rank, safe HTML to show)."""

import pytest

from project.html import clean_html, html_to_markdown, html_to_text


def test_text_keeps_paragraphs_lists_and_entities():
    html = "<p>Hi&nbsp;there,</p><p>Two things:</p><ul><li>refund &amp; credit</li><li>a&lt;b</li></ul>line<br>break"
    assert html_to_text(html) == "Hi there,\n\nTwo things:\n\nrefund & credit\n\na<b\n\nline\nbreak"


def test_text_drops_scripts_and_styles_and_keeps_image_alt():
    assert html_to_text('<style>p{}</style><script>x()</script><p>ok <img src="a.png" alt="logo"></p>') == "ok logo"


def test_empty_bodies():
    assert html_to_text(None) == html_to_text("") == clean_html(None) == ""


def test_clean_html_removes_what_could_run():
    cleaned = clean_html('<p onclick="x()">a <a href="javascript:x()">b</a><iframe src="e"></iframe><b>c</b></p>')
    assert "onclick" not in cleaned and "javascript" not in cleaned and "iframe" not in cleaned
    assert "<b>c</b>" in cleaned


def test_block_tags_separate_words():
    """<p>a</p><p>b</p> reads as two words, not one; <br/> is one line break, not two."""
    assert html_to_text("<p>reset</p><p>password</p>") == "reset\n\npassword"
    assert html_to_text("one<br>two<li>three</li>") == "one\ntwo\nthree"
    assert html_to_text("one<br/>two<br />three") == "one\ntwo\nthree"
    assert html_to_text("<section>a</section><td>b</td><img alt='c'/>") == "a\n\nb\nc"


def test_plain_text_survives_and_entities_are_decoded_once():
    assert html_to_text("5 < 6 and 7 > 3") == "5 < 6 and 7 > 3"
    assert html_to_text("&amp;lt;b&amp;gt; is how you write <b>") == "&lt;b&gt; is how you write"


def test_non_breaking_spaces_and_runs_of_blank_lines_are_tidied():
    assert html_to_text("a&nbsp;&nbsp; b\n\n\n\n\nc") == "a b\n\nc"


@pytest.mark.parametrize("skipped", ["template", "noscript"])
@pytest.mark.parametrize("href", ["https://example.com/guide", "ab", "javascript:alert(1)"])
def test_markdown_survives_a_link_closed_inside_a_skipped_tag(skipped, href):
    """An </a> inside <template> or <noscript> reaches the text collector's own end-tag handling; the Markdown
    collector's open links must not be mistaken for its (url, start) pairs (it crashed on saved replies like this)."""
    markdown = html_to_markdown(f'<a href="{href}">guide<{skipped}></a></{skipped}> after')
    assert "guide" in markdown and "after" in markdown
    assert "alert" not in markdown
