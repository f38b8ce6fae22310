"""The console page and its static files are served by Django itself (WhiteNoise on Lambda)."""

from django.http import HttpResponse


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


def test_static_files_are_indexed_on_the_first_request_for_one(rf):
    """A cold start answering the API never walks the static folders; the first static URL builds the index."""
    from project.middleware import StaticFilesMiddleware

    middleware = StaticFilesMiddleware(lambda request: HttpResponse("from the view"))
    assert middleware.files == {}

    assert middleware(rf.get("/api/me")).content == b"from the view"
    assert middleware.files == {}

    response = middleware(rf.get("/static/admin/css/base.css"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/css")
    assert "/static/console/console.js" in middleware.files
    assert middleware(rf.get("/static/console/missing.js")).content == b"from the view"
