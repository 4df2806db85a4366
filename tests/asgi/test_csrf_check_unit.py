"""CSRFMiddleware.check called directly: each refusal names its check.

The reason never reaches the client (the response is one fixed 403) but it is
what the logs say; and the bindings and form parsing under the checks are
pinned here, for the mutation run (tests/mutation).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import pytest

from gatepass.asgi.csrf import CSRFMiddleware, CSRFState, _bearer, _form_field, binding_of
from gatepass.csrf import ANONYMOUS_BINDING, CSRFSigner
from gatepass.errors import CSRFFailed
from gatepass.identity import Identity
from gatepass.tokens.access import AccessClaims

ORIGIN = "https://app.example"


async def _app(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("not called by check()")


def middleware() -> CSRFMiddleware:
    return CSRFMiddleware(_app, signer=CSRFSigner([b"k" * 32]), trusted_origins=[ORIGIN])


def scope(headers: dict[str, str], **extra: Any) -> dict[str, Any]:
    raw = [(k.encode(), v.encode()) for k, v in headers.items()]
    return {"type": "http", "method": "POST", "path": "/x", "headers": raw, **extra}


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


def bearer(fid: str | None = "f1", scheme: str = "bearer") -> Identity:
    claims = AccessClaims(sub="u", jti="j", iat=0, exp=1, nbf=None, iss="i", aud="a", roles=(),
                          scopes=(), fid=fid, gen=0, raw=MappingProxyType({}))  # fmt: skip
    return Identity("u", frozenset(), frozenset(), scheme, claims=claims)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"sec-fetch-site": "cross-site"}, "cross-site"),
        ({"origin": "https://evil.example"}, "origin"),
        ({"referer": "https://evil.example/"}, "referer"),
        ({}, "token"),
        ({"x-csrf-token": "!" * 43}, "token"),
    ],
)
async def test_each_refusal_names_its_check(headers: dict[str, str], reason: str) -> None:
    mw = middleware()
    with pytest.raises(CSRFFailed) as info:
        await mw.check(scope(headers), _receive, CSRFState(mw, None))
    assert info.value.reason == reason


async def test_anonymous_token_must_match_the_cookie() -> None:
    mw = middleware()
    token = mw.signer.token_for(ANONYMOUS_BINDING)
    other = mw.signer.token_for(ANONYMOUS_BINDING)
    with pytest.raises(CSRFFailed) as info:
        await mw.check(scope({"x-csrf-token": token}), _receive, CSRFState(mw, other))
    assert info.value.reason == "double-submit"
    await mw.check(scope({"x-csrf-token": token}), _receive, CSRFState(mw, token))


def test_token_families_bind_bearer_browsers() -> None:
    assert binding_of(scope({}, user=bearer("f1"))) == "family:f1"
    assert binding_of(scope({}, user=bearer(None))) == ANONYMOUS_BINDING
    assert binding_of(scope({})) == ANONYMOUS_BINDING


def test_only_bearer_identities_skip_csrf() -> None:
    assert _bearer(scope({}, user=bearer())) is True
    assert _bearer(scope({}, user=bearer(scheme="session"))) is False
    assert _bearer(scope({})) is False


@pytest.mark.parametrize(
    ("body", "value"),
    [
        (b"csrf_token=abc", "abc"),
        (b"a=1&csrf_token=abc&b=2", "abc"),
        (b"csrf_token=&csrf_token=abc", None),  # a blank duplicate still counts as a second value
        (b"csrf_token=abc&csrf_token=abc", None),
        (b"csrf_token=", ""),
        (b"other=abc", None),
        (b"\xff=1&csrf_token=abc", None),
        ("&".join(["x=1"] * 49 + ["csrf_token=abc"]).encode(), "abc"),  # 50 fields
        ("&".join(["x=1"] * 50 + ["csrf_token=abc"]).encode(), None),  # 51: refused unread
    ],
)
def test_form_field(body: bytes, value: str | None) -> None:
    assert _form_field(body, "csrf_token") == value
