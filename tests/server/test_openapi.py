"""``GET /openapi.json`` stays true: same operations as the app, a valid OpenAPI 3.1 document.

The statuses are held true by ``tests/fuzz/test_schemathesis.py`` (a real
server fuzzed against this document); here the shape: every JSON route of the
Starlette app is described, nothing else is, the document validates, and the
declarations beside the routes (:mod:`gatepass.server.apidoc`) cannot drift
from them: a route without its ``Operation``, or an ``Operation`` without its
route, fails the build of the document.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Route
from starlette.testclient import TestClient

import gatepass
from gatepass.server import (
    account_api,
    account_pages,
    api,
    apidoc,
    dbsc_routes,
    forward_auth,
    mfa_pages,
    mfa_routes,
    oauth_routes,
    openapi,
    pages,
    passkey_pages,
    passkey_routes,
    token_api,
)
from tests.server.conftest import make_client

#: Modules whose routes answer JSON: each must be in the document.
JSON_MODULES = {
    m.__name__
    for m in (
        api, token_api, forward_auth, mfa_routes, passkey_routes, account_api, openapi,
        dbsc_routes,
    )
}
#: Modules whose routes are not the JSON API: the HTML pages, and the OAuth
#: start/callback redirects (302s a browser follows).  A route from any other
#: module fails the test until someone decides which kind it is.
OTHER_MODULES = {m.__name__ for m in (pages, account_pages, mfa_pages, oauth_routes, passkey_pages)}
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
def served(tmp_path: Path) -> Iterator[TestClient]:
    with make_client(tmp_path) as c:
        yield c


@pytest.fixture
def routes(served: TestClient) -> list[BaseRoute]:
    app = served.app
    assert isinstance(app, Starlette)
    return list(app.routes)


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


def test_the_document_is_valid_openapi_3_1(routes: list[BaseRoute]) -> None:
    validate(openapi.document(routes, "http://127.0.0.1:8000"))


def test_the_validator_is_not_a_rubber_stamp(routes: list[BaseRoute]) -> None:
    broken = openapi.document(routes)
    broken["paths"]["/auth/me"]["get"]["responses"]["200"] = {"content": {}}  # no description
    with pytest.raises(OpenAPIValidationError):
        validate(broken)


def test_every_operation_documents_the_errors_any_route_can_give(routes: list[BaseRoute]) -> None:
    doc = openapi.document(routes)
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


def test_security_schemes(routes: list[BaseRoute]) -> None:
    schemes = openapi.document(routes)["components"]["securitySchemes"]
    assert schemes["sessionCookie"] == {
        **schemes["sessionCookie"], "type": "apiKey", "in": "cookie", "name": "__Host-gatepass",
    }  # fmt: skip
    assert schemes["csrfHeader"]["in"] == "header"
    assert schemes["csrfHeader"]["name"] == "X-CSRF-Token"
    assert schemes["bearerAuth"]["scheme"] == "bearer"
    assert schemes["bearerAuth"]["bearerFormat"] == "JWT"


def test_the_version_is_the_installed_package_s(served: TestClient) -> None:
    assert served.get("/openapi.json").json()["info"]["version"] == version("gatepass")
    assert gatepass.__version__ == version("gatepass")


def test_a_route_without_its_operation_fails_the_document(routes: list[BaseRoute]) -> None:
    # A new route in a documented module, declared nowhere.
    extra = Route("/auth/me/twin", api.me, methods=["GET"])
    with pytest.raises(apidoc.DocumentationError, match="GET /auth/me/twin has no Operation"):
        openapi.document([*routes, extra])
    # A documented route that gains a method without documenting it.
    widened = Route("/auth/me", api.me, methods=["GET", "DELETE"])
    with pytest.raises(apidoc.DocumentationError, match="DELETE /auth/me has no Operation"):
        openapi.document([widened, *routes])


def test_an_operation_without_its_route_fails_the_document(routes: list[BaseRoute]) -> None:
    gone = [r for r in routes if not (isinstance(r, Route) and r.path == "/auth/sessions")]
    assert len(gone) == len(routes) - 1
    with pytest.raises(apidoc.DocumentationError, match="GET /auth/sessions is documented"):
        openapi.document(gone)


def test_a_schema_name_is_declared_once(
    routes: list[BaseRoute], monkeypatch: pytest.MonkeyPatch
) -> None:
    twice = apidoc.ApiDocs(api.api_docs.operations, {**api.api_docs.schemas, "User": {}})
    monkeypatch.setattr(api, "api_docs", twice)
    with pytest.raises(apidoc.DocumentationError, match="'User' is declared twice"):
        openapi.document(routes)


def test_pages_are_not_the_json_api(routes: list[BaseRoute]) -> None:
    # Modules without declarations are left out, whatever they serve.
    pages_only = [r for r in routes if r.endpoint.__module__ in OTHER_MODULES]  # type: ignore[attr-defined]
    assert pages_only
    assert openapi.document(pages_only)["paths"] == {}


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_every_schema_is_used_and_every_reference_resolves(routes: list[BaseRoute]) -> None:
    doc = openapi.document(routes)
    schemas = doc["components"]["schemas"]
    named = {ref.rpartition("/")[2] for ref in _refs(doc)}
    assert named == set(schemas)


def test_the_document_is_built_fresh(routes: list[BaseRoute]) -> None:
    # A caller changing its copy does not change the declarations.
    first = openapi.document(routes)
    pristine = json.dumps(first)
    first["paths"]["/auth/me"]["get"]["security"].append({"x": []})
    first["components"]["schemas"]["User"]["properties"].clear()
    assert json.dumps(openapi.document(routes)) == pristine
