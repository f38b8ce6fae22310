"""The pure-Python word analysis (HTML to text: tests/test_html.py)."""

from apps.knowledge.text import lexemes_of, token_count


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
