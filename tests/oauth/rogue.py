"""A small adversarial OpenID issuer, in Python, on a loopback port.

It serves discovery, a JWKS, an authorization endpoint that approves at
once, and a token endpoint that checks PKCE for real and then answers with
an ID token broken in the way ``mode`` says.  Tokens are signed with the
project's own JOSE code (:mod:`gatepass.tokens.jws`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from gatepass.tokens import jws
from gatepass.tokens.keys import SigningKey, b64url, generate_key
from tests.conftest import free_port

CLIENT_ID = "rogue-client"


class Rogue:
    def __init__(self, port: int) -> None:
        self.issuer = f"http://127.0.0.1:{port}"
        self.port = port
        self.mode = "ok"
        self.key = generate_key("RS256", now=time.time(), kid="k1")
        self.codes: dict[str, dict[str, str]] = {}
        self.token_requests: list[dict[str, str]] = []

    def discovery(self, issuer: str) -> dict[str, Any]:
        return {
            "issuer": issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "authorization_response_iss_parameter_supported": True,
        }

    def id_token(self, nonce: str) -> str:
        now = time.time()
        claims: dict[str, Any] = {
            "iss": self.issuer, "sub": "rogue-subject", "aud": CLIENT_ID, "nonce": nonce,
            "iat": int(now), "exp": int(now) + 300, "email": "rogue@example.com",
            "email_verified": False,
        }  # fmt: skip
        key: SigningKey = self.key
        mode = self.mode
        if mode == "wrong_aud":
            claims["aud"] = "someone-else"
        elif mode == "multi_aud_no_azp":
            claims["aud"] = [CLIENT_ID, "someone-else"]
        elif mode == "expired":
            claims.update(iat=int(now) - 7200, exp=int(now) - 3600)
        elif mode == "wrong_iss":
            claims["iss"] = "http://127.0.0.1:1"
        elif mode == "wrong_nonce":
            claims["nonce"] = secrets.token_urlsafe(32)
        elif mode == "no_nonce":
            del claims["nonce"]
        elif mode == "bad_signature":
            key = generate_key("RS256", now=now, kid="k1")  # same kid, other key
        elif mode == "unknown_kid":
            key = generate_key("RS256", now=now, kid="k2")
        elif mode == "hs256":
            key = SigningKey("k1", "HS256", secrets.token_bytes(32), created_at=now)
        elif mode == "alg_none":
            head = b64url(json.dumps({"alg": "none", "kid": "k1", "typ": "JWT"}).encode())
            return f"{head}.{b64url(json.dumps(claims).encode())}."
        return jws.encode(claims, key, typ="JWT")

    def app(self) -> Starlette:
        async def discovery(request: Request) -> Response:
            return JSONResponse(self.discovery(self.issuer))

        async def mixup(request: Request) -> Response:
            # Served for the issuer ".../mixup" but claiming to be the root one.
            return JSONResponse(self.discovery(self.issuer))

        async def jwks(request: Request) -> Response:
            return JSONResponse({"keys": [self.key.public_jwk()]})

        async def authorize(request: Request) -> Response:
            q = request.query_params
            code = secrets.token_urlsafe(24)
            self.codes[code] = dict(q)
            iss = "http://127.0.0.1:1" if self.mode == "bad_iss_param" else self.issuer
            target = (
                q["redirect_uri"] + "?" + urlencode({"code": code, "state": q["state"], "iss": iss})
            )
            return RedirectResponse(target, status_code=302)

        async def token(request: Request) -> Response:
            # Parsed by hand: python-multipart (Starlette's form parser) is no
            # dependency of gatepass, and urlencoded needs none.
            form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
            self.token_requests.append({k: str(v) for k, v in form.items()})
            if self.mode == "token_500":
                return Response("upstream on fire", status_code=500)
            asked = self.codes.pop(str(form.get("code")), None)
            verifier = str(form.get("code_verifier", ""))
            challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(
                b"="
            )
            if asked is None or asked.get("code_challenge") != challenge.decode():
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            return JSONResponse({
                "access_token": secrets.token_urlsafe(24), "token_type": "Bearer",
                "expires_in": 300, "id_token": self.id_token(asked["nonce"]),
            })  # fmt: skip

        return Starlette(routes=[
            Route("/.well-known/openid-configuration", discovery),
            Route("/mixup/.well-known/openid-configuration", mixup),
            Route("/jwks", jwks),
            Route("/authorize", authorize),
            Route("/token", token, methods=["POST"]),
        ])  # fmt: skip


@contextmanager
def serve_rogue() -> Iterator[Rogue]:
    rogue = Rogue(free_port())
    config = uvicorn.Config(rogue.app(), host="127.0.0.1", port=rogue.port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the rogue issuer did not start"
        time.sleep(0.02)
    try:
        yield rogue
    finally:
        server.should_exit = True
        thread.join(timeout=10)
