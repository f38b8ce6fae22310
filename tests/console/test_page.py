"""The console page and its static files are served by Django itself (WhiteNoise on Lambda)."""


def test_console_page_is_served(client):
    response = client.get("/console/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "console/console.js" in html
    assert "console/vendor/mqtt/mqtt.min.js" in html


def test_console_static_files_are_served(client):
    for path in ("/static/console/console.js", "/static/console/vendor/mqtt/mqtt.min.js"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert b"".join(response.streaming_content)
