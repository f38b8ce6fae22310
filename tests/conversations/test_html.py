"""Message bodies: sanitised HTML to show, clean text to read and search."""

from apps.conversations.html import clean_html, html_to_text


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
