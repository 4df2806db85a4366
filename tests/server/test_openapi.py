"""``GET /openapi.json`` stays true: same operations as the app, a valid OpenAPI 3.1 document.

The statuses are held true by ``tests/fuzz/test_schemathesis.py`` (a real
server fuzzed against this document); here the shape: every JSON route of the
Starlette app is described, nothing else is, and the document validates.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from gatepass.server import (
    account_api,
    account_pages,
    api,
    dbsc_routes,
    forward_auth,
    mfa_routes,
    oauth_routes,
    openapi,
    pages,
    token_api,
)
from tests.server.conftest import make_client

#: Modules whose routes answer JSON: each must be in the document.
JSON_MODULES = {
    m.__name__
    for m in (api, token_api, forward_auth, mfa_routes, account_api, openapi, dbsc_routes)
}
#: Modules whose routes are not the JSON API: the HTML pages, and the OAuth
#: start/callback redirects (302s a browser follows).  A route from any other
#: module fails the test until someone decides which kind it is.
OTHER_MODULES = {m.__name__ for m in (pages, account_pages, oauth_routes)}
METHODS = {"get", "post", "put", "patch", "delete"}


def _shape(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


def app_operations(client: TestClient) -> set[tuple[str, str]]:
    app = client.app
    assert isinstance(app, Starlette)
    found = set()
    for route in app.routes:
        assert isinstance(route, Route), route  # no mounts: everything is a plain route
        module = route.endpoint.__module__
        assert module in JSON_MODULES | OTHER_MODULES, f"{route.path}: JSON API or not?"
        if module in OTHER_MODULES:
            continue
        for method in route.methods or ():
            if method != "HEAD":  # Starlette adds HEAD to every GET
                found.add((method.lower(), _shape(route.path)))
    return found


def doc_operations(doc: dict[str, object]) -> set[tuple[str, str]]:
    paths = doc["paths"]
    assert isinstance(paths, dict)
    return {
        (method, _shape(path))
        for path, item in paths.items()
        for method in item
        if method in METHODS
    }


@pytest.fixture
def served(tmp_path: Path) -> TestClient:
    with make_client(tmp_path) as c:
        yield c


def test_the_document_is_served(served: TestClient) -> None:
    r = served.get("/openapi.json")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    doc = r.json()
    assert doc["openapi"].startswith("3.1")
    assert doc["servers"] == [{"url": served.app.state.gatepass.settings.public_url}]  # type: ignore[attr-defined]


def test_every_json_route_is_described_and_nothing_else(served: TestClient) -> None:
    in_app = app_operations(served)
    in_doc = doc_operations(served.get("/openapi.json").json())
    assert in_app - in_doc == set(), "routes missing from /openapi.json"
    assert in_doc - in_app == set(), "/openapi.json describes routes the app does not have"
    # The contract's JSON API, as listed in SPEC.md.
    assert {
        ("post", "/auth/register"), ("post", "/auth/login"), ("post", "/auth/logout"),
        ("get", "/auth/me"), ("get", "/auth/csrf"), ("get", "/auth/sessions"),
        ("delete", "/auth/sessions/{}"), ("post", "/auth/sessions/revoke-others"),
        ("post", "/auth/token"), ("post", "/auth/refresh"), ("post", "/auth/revoke"),
        ("get", "/.well-known/jwks.json"), ("get", "/auth/verify"), ("get", "/admin/users"),
        ("get", "/healthz"), ("get", "/readyz"), ("get", "/openapi.json"),
    } <= in_app  # fmt: skip


def test_path_parameters_match_the_routes(served: TestClient) -> None:
    doc = served.get("/openapi.json").json()
    for path, item in doc["paths"].items():
        names = set(re.findall(r"\{([^}]+)\}", path))
        for method, op in item.items():
            declared = {p["name"] for p in op.get("parameters", ()) if p["in"] == "path"}
            assert declared == names, (method, path)


def test_the_document_is_valid_openapi_3_1() -> None:
    validate(openapi.document("http://127.0.0.1:8000"))


def test_the_validator_is_not_a_rubber_stamp() -> None:
    broken = openapi.document()
    broken["paths"]["/auth/me"]["get"]["responses"]["200"] = {"content": {}}  # no description
    with pytest.raises(OpenAPIValidationError):
        validate(broken)


def test_every_operation_documents_the_errors_any_route_can_give() -> None:
    doc = openapi.document()
    for path, item in doc["paths"].items():
        for method, op in item.items():
            statuses = set(op["responses"])
            assert {"401", "413", "431", "503"} <= statuses, (method, path)
            # Credentials in the body, or (DBSC) a proof over a challenge: no CSRF check.
            if method != "get" and path not in (
                "/auth/token", "/auth/refresh", "/auth/revoke", "/auth/dbsc/register",
            ):  # fmt: skip
                assert "403" in statuses, (method, path)  # CSRF
            if "requestBody" in op:
                assert "400" in statuses, (method, path)
            for status, answer in op["responses"].items():
                if status.startswith(("4", "5")) and path != "/readyz":
                    schema = answer["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}, (method, path, status)
    for path in ("/auth/login", "/auth/token"):
        assert "Retry-After" in doc["paths"][path]["post"]["responses"]["429"]["headers"]


def test_security_schemes() -> None:
    schemes = openapi.document()["components"]["securitySchemes"]
    assert schemes["sessionCookie"] == {
        **schemes["sessionCookie"], "type": "apiKey", "in": "cookie", "name": "__Host-gatepass",
    }  # fmt: skip
    assert schemes["csrfHeader"]["in"] == "header"
    assert schemes["csrfHeader"]["name"] == "X-CSRF-Token"
    assert schemes["bearerAuth"]["scheme"] == "bearer"
    assert schemes["bearerAuth"]["bearerFormat"] == "JWT"
