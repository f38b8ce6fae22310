"""HTML to text and the pure-Python word analysis."""

from apps.knowledge.text import clean_html, html_to_text, lexemes_of, token_count


def test_html_to_text_drops_tags_scripts_and_decodes_entities():
    html = "<div><p>Hello&nbsp;<b>there</b> &amp; welcome</p><script>alert('x')</script><p>Bye</p></div>"
    assert html_to_text(html) == "Hello there & welcome\nBye"


def test_block_tags_separate_words():
    """<p>a</p><p>b</p> reads as two words, not one."""
    assert html_to_text("<p>reset</p><p>password</p>") == "reset\npassword"
    assert html_to_text("one<br>two<li>three</li>") == "one\ntwo\nthree"


def test_plain_text_and_empty_survive():
    assert html_to_text("5 < 6 and 7 > 3") == "5 < 6 and 7 > 3"
    assert html_to_text("") == ""
    assert html_to_text(None) == ""


def test_clean_html_removes_scripts_and_handlers():
    cleaned = clean_html('<p onclick="steal()">Hi<script>alert(1)</script></p>')
    assert "script" not in cleaned
    assert "onclick" not in cleaned
    assert "Hi" in cleaned


def test_lexemes_drop_stop_words_and_identifiers_and_stem():
    """Order numbers never become words to rank on; short numbers do."""
    counts = lexemes_of("I cancelled orders 113542617735902 and 404 twice, cancelling again")
    assert counts["cancel"] == 2
    assert counts["order"] == 1
    assert "404" in counts
    assert "113542617735902" not in counts
    assert "i" not in counts and "and" not in counts
    assert token_count("the order 12345678") == 1


def test_non_latin_text_is_analysed_without_error():
    assert lexemes_of("Как сбросить пароль? 如何重置密码 🙂")
