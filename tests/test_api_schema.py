"""The OpenAPI schema documents lists as the pages they are, and every error with the one error component.

What the API answers is held to the schema by tests/security/test_fuzz_api.py; these check the schema's
shape where a fuzzer cannot tell a missing promise from a kept one.
"""

import pytest

pytestmark = pytest.mark.django_db

# Every list endpoint clients page through (API.md: "paginated lists put items under `results`").
LIST_OPERATIONS = [
    "/api/members",
    "/api/conversations",
    "/api/conversations/{conversation_id}/suggestions",
    "/api/knowledge/entries",
    "/api/knowledge/gaps",
    "/api/digests",
    "/api/suggestions/stats",
    "/api/tasks",
    "/api/knowledge/proposals",
]
PAGE_KEYS = {"results", "count", "next", "previous"}
ERROR_REF = {"$ref": "#/components/schemas/Error"}


@pytest.fixture
def openapi(api_client) -> dict:
    response = api_client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def resolve(openapi: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = openapi["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def body_schema(openapi: dict, response: dict) -> dict | None:
    content = response.get("content", {}).get("application/json")
    return resolve(openapi, content["schema"]) if content else None


def operations(openapi: dict):
    for path, methods in openapi["paths"].items():
        for method, operation in methods.items():
            yield method.upper(), path, operation


@pytest.mark.parametrize("path", LIST_OPERATIONS)
def test_each_list_is_documented_as_a_page(openapi, path):
    """results, count, next and previous, all required; results an array of objects; the page is a parameter."""
    operation = openapi["paths"][path]["get"]
    page = body_schema(openapi, operation["responses"]["200"])
    assert set(page["properties"]) >= PAGE_KEYS, page
    assert set(page.get("required", [])) | {"next", "previous"} >= PAGE_KEYS, page
    assert page["properties"]["next"].get("nullable") and page["properties"]["previous"].get("nullable")
    assert page["properties"]["results"]["type"] == "array"
    assert {"page", "page_size"} <= {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
    assert "404" in operation["responses"], "a page past the last one is a 404"


def test_no_success_is_documented_as_a_bare_array(openapi):
    """A list added later is a page too (or says why not): no 2xx body in the schema is a top-level array."""
    bare = [
        f"{method} {path} {status}"
        for method, path, operation in operations(openapi)
        for status, response in operation["responses"].items()
        if status < "300" and (body_schema(openapi, response) or {}).get("type") == "array"
    ]
    assert bare == []


def test_stats_page_documents_its_totals(openapi):
    page = body_schema(openapi, openapi["paths"]["/api/suggestions/stats"]["get"]["responses"]["200"])
    assert "totals" in page["required"]
    assert {"suggested", "accepted", "dismissed", "acceptance_rate"} <= set(page["properties"]["totals"]["properties"])


def test_rank_is_documented_as_its_results_not_as_a_page(openapi):
    """POST /api/knowledge/rank answers {"results": [...]} (clients read it so): the schema says exactly that."""
    body = body_schema(openapi, openapi["paths"]["/api/knowledge/rank"]["post"]["responses"]["200"])
    assert set(body["properties"]) == {"results"}
    assert body["properties"]["results"]["type"] == "array"
    item = resolve(openapi, body["properties"]["results"]["items"])
    assert {"entry_id", "rank", "score", "title", "body"} <= set(item["properties"])


def test_every_error_is_the_one_error_component(openapi):
    """Each documented 4xx/5xx body is a $ref to Error: {"error": {"code", "message", "fields"}}."""
    error = openapi["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    detail = resolve(openapi, error["properties"]["error"])
    assert set(detail["required"]) == {"code", "message", "fields"}
    wrong = [
        f"{method} {path} {status}"
        for method, path, operation in operations(openapi)
        for status, response in operation["responses"].items()
        if status >= "400" and response.get("content", {}).get("application/json", {}).get("schema") != ERROR_REF
    ]
    assert wrong == []


def test_authenticated_operations_document_401_403_and_503(openapi):
    """Derived from each view (project.openapi): every operation behind a member's token says how it refuses."""
    for method, path, operation in operations(openapi):
        if operation.get("security") and {} not in operation["security"]:
            assert {"401", "403"} <= set(operation["responses"]), f"{method} {path}"
        assert "503" in operation["responses"], f"{method} {path}"
        assert "Retry-After" in operation["responses"]["503"].get("headers", {}), f"{method} {path}"
