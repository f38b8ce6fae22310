"""The console page and its static files are served by Django itself (WhiteNoise on Lambda)."""

import pytest
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


def test_root_leads_to_the_console(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/console/"


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_under_a_stage_every_url_of_the_page_starts_with_the_stage(lambda_handler, version):
    """Through the real Zappa handler as API Gateway calls it (SCRIPT_NAME /dev from the stage): static files,
    the API the script calls (data-root) and the API docs link; and / redirects into the stage."""
    from tests.support.events import apigw_v1, apigw_v2

    event = {"v1": apigw_v1, "v2": apigw_v2}[version]
    if version == "v1":
        # First a request on a custom domain (no stage in the URL), then one on the stage's URL: the
        # static URLs follow each request, not the container's first one.
        plain = lambda_handler(event("GET", "/console/", headers={"Host": "localhost"}))
        assert 'href="/static/console/console.css"' in plain["body"]
    staged = lambda_handler(event("GET", "/console/"))
    html = staged["body"]
    assert staged["statusCode"] == 200, html[:300]
    assert 'data-root="/dev/"' in html
    assert 'src="/dev/static/console/console.js"' in html
    assert 'href="/dev/static/console/console.css"' in html
    assert 'href="/dev/api/docs/"' in html
    home = lambda_handler(event("GET", "/"))
    assert home["statusCode"] == 302
    assert _header(home, "location") == "/dev/console/"
    assert lambda_handler(event("GET", "/static/console/console.css"))["statusCode"] == 200
    docs = lambda_handler(event("GET", "/api/docs/"))
    assert docs["statusCode"] == 200
    assert "/dev/static/drf_spectacular_sidecar/swagger-ui-dist/" in docs["body"]
    assert '"/dev/api/schema/"' in docs["body"] or "/dev/api/schema/" in docs["body"]


def _header(result: dict, name: str) -> str | None:
    if "multiValueHeaders" in result:
        return {k.lower(): v[-1] for k, v in result["multiValueHeaders"].items()}.get(name)
    return {k.lower(): v for k, v in result["headers"].items()}.get(name)


def test_forms_post_to_nowhere_but_the_page(client):
    """No form has an action, and every one posts: without the script, a password goes in a body, not a URL."""
    import re

    html = client.get("/console/").content.decode()
    forms = re.findall(r"<form\b[^>]*>", html)
    assert len(forms) >= 6
    for form in forms:
        assert 'method="post"' in form, form
        assert "action=" not in form, form
    assert client.post("/console/", {"email": "a@example.com", "password": "x"}).status_code == 405
