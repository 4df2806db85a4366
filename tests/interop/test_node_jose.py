"""Access tokens of a real ``gatepass serve``, verified by npm ``jose`` v6 in Node.

A Node resource server fetches ``/.well-known/jwks.json`` over loopback HTTP
and runs ``jwtVerify`` with issuer, audience, ``typ: at+jwt`` and an algorithm
allow-list: the tokens must verify with every algorithm gatepass signs with
publicly, across key rotation, and stop verifying once the old key is retired
and pruned.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.interop.conftest import NodeJose
from tests.interop.serving import PUBLIC_URL, GatepassServer

TTL = 12  # seconds: retire_after = TTL + the codec's leeway stays short


def _segment(token: str, index: int) -> dict[str, object]:
    part = token.split(".")[index]
    decoded: dict[str, object] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


Result = dict[str, Any]


def _verify(
    node: NodeJose,
    server: GatepassServer,
    token: str,
    alg: str,
    at: float | None = None,
    **kw: str,
) -> Result:
    """Node's answer, by default as of one second after the token was issued.

    A slow machine must not turn "the old key still verifies" into "the
    token expired": the key ring is what these tests exercise, so the
    clock of the ``exp`` check is pinned to the token's own ``iat``
    (``test_node_checks_expiry_by_the_clock_it_is_given`` shows it is used).
    """
    if at is None:
        iat = _segment(token, 1)["iat"]
        assert isinstance(iat, int)
        at = iat + 1
    return node.verify(
        f"{server.url}/.well-known/jwks.json",
        token,
        issuer=kw.get("issuer", PUBLIC_URL),
        audience=kw.get("audience", PUBLIC_URL),
        algorithms=[kw.get("algorithms", alg)],
        at=at,
    )


def _assert_verified(result: Result, token: str, alg: str, kid: str, user_id: str) -> None:
    assert result["ok"] is True, result
    payload = result["payload"]
    # Node saw exactly the claims that were signed…
    assert payload == _segment(token, 1)
    assert result["protectedHeader"] == _segment(token, 0)
    assert result["protectedHeader"] == {"alg": alg, "typ": "at+jwt", "kid": kid}
    # …and they are the right ones.
    assert payload["sub"] == user_id
    assert payload["iss"] == PUBLIC_URL
    assert payload["aud"] in (PUBLIC_URL, [PUBLIC_URL])
    assert payload["exp"] - payload["iat"] == TTL
    assert isinstance(payload["jti"], str) and len(payload["jti"]) >= 16


def _node_accepts(
    node: NodeJose, server: GatepassServer, token: str, alg: str, kid: str, user_id: str
) -> None:
    _assert_verified(_verify(node, server, token, alg), token, alg, kid, user_id)


def _keys_list(server: GatepassServer) -> dict[str, dict[str, object]]:
    listed = json.loads(server.cli("keys", "list").stdout)
    return {k["kid"]: k for k in listed}


def _rotate(server: GatepassServer) -> str:
    kid: str = json.loads(server.cli("keys", "rotate").stdout)["active"]
    return kid


def _start(tmp_path: Path, name: str, alg: str) -> GatepassServer:
    server = GatepassServer(
        tmp_path / name, GATEPASS_JWT_ALGORITHM=alg, GATEPASS_ACCESS_TOKEN_TTL=str(TTL)
    )
    return server.start()


def _token(server: GatepassServer, email: str) -> str:
    """An access token, issued (``iat``) while the request was in flight."""
    before = int(time.time())
    access = server.token(email)["access_token"]
    after = time.time()
    assert isinstance(access, str)
    assert before <= _segment(access, 1)["iat"] <= after  # type: ignore[operator]
    return access


def _login(server: GatepassServer, email: str) -> tuple[str, str]:
    server.add_user(email)
    access = _token(server, email)
    me = server.me(access)
    assert me.status_code == 200, me.text
    return access, me.json()["id"]


def test_rs256_verifies_in_node_across_rotation_until_the_old_key_is_pruned(
    node_jose: NodeJose, tmp_path: Path
) -> None:
    server = _start(tmp_path, "rs256", "RS256")
    try:
        # 1. The first token verifies in Node against the served JWKS.
        [first_kid] = server.jwks_kids()
        first, user_id = _login(server, "node-rs256@example.com")
        _node_accepts(node_jose, server, first, "RS256", first_kid, user_id)

        # Node really checks what it is told to: these must fail.
        wrong_aud = _verify(node_jose, server, first, "RS256", audience=PUBLIC_URL + ".evil")
        assert wrong_aud["ok"] is False and wrong_aud["code"] == "ERR_JWT_CLAIM_VALIDATION_FAILED"
        wrong_iss = _verify(node_jose, server, first, "RS256", issuer="https://auth.gatepass")
        assert wrong_iss["ok"] is False and wrong_iss["code"] == "ERR_JWT_CLAIM_VALIDATION_FAILED"
        wrong_alg = _verify(node_jose, server, first, "RS256", algorithms="ES256")
        assert wrong_alg["ok"] is False and wrong_alg["code"] == "ERR_JOSE_ALG_NOT_ALLOWED"
        tampered = first[:-4] + ("AAAA" if not first.endswith("AAAA") else "BBBB")
        bad_sig = _verify(node_jose, server, tampered, "RS256")
        assert bad_sig["ok"] is False and bad_sig["code"] == "ERR_JWS_SIGNATURE_VERIFICATION_FAILED"

        # 2. Rotate with the CLI; the running server reloads the key file.
        second_kid = _rotate(server)
        assert second_kid != first_kid
        kids = server.wait_for_jwks(lambda kids: second_kid in kids)
        assert kids == {first_kid, second_kid}  # the old key is retired but listed

        # The old token still verifies (its key is retired, not gone)…
        _node_accepts(node_jose, server, first, "RS256", first_kid, user_id)
        # …and a new token is signed by the new key and verifies too.
        second = _token(server, "node-rs256@example.com")
        assert _segment(second, 0)["kid"] == second_kid
        _node_accepts(node_jose, server, second, "RS256", second_kid, user_id)

        # 3. Past the old key's verify_until (TTL + leeway after the rotation),
        # the next rotation prunes it from the key file and the JWKS drops it.
        ring = _keys_list(server)
        assert ring[first_kid]["state"] == "retired"
        verify_until = ring[first_kid]["verify_until"]
        assert isinstance(verify_until, float | int)
        assert verify_until - time.time() <= TTL + 10  # bounded by the short TTL
        time.sleep(max(0.0, verify_until - time.time()) + 0.5)
        third_kid = _rotate(server)
        assert first_kid not in _keys_list(server)  # pruned from the file
        kids = server.wait_for_jwks(lambda kids: third_kid in kids and first_kid not in kids)
        assert kids == {second_kid, third_kid}

        # Node now finds no key for the old token.
        gone = _verify(node_jose, server, first, "RS256")
        assert gone["ok"] is False, gone
        assert gone["code"] == "ERR_JWKS_NO_MATCHING_KEY", gone

        # The newest key works end to end.
        third = _token(server, "node-rs256@example.com")
        _node_accepts(node_jose, server, third, "RS256", third_kid, user_id)
    finally:
        server.close()


@pytest.mark.parametrize("alg", ["EdDSA", "ES256"])
def test_other_algorithms_verify_in_node(node_jose: NodeJose, tmp_path: Path, alg: str) -> None:
    server = _start(tmp_path, alg.lower(), alg)
    try:
        jwks = server.jwks()["keys"]
        [jwk] = jwks
        assert jwk["alg"] == alg and jwk["use"] == "sig"
        assert jwk["kty"] == ("OKP" if alg == "EdDSA" else "EC")
        token, user_id = _login(server, f"node-{alg.lower()}@example.com")
        _node_accepts(node_jose, server, token, alg, jwk["kid"], user_id)
        other = "ES256" if alg == "EdDSA" else "EdDSA"
        refused = _verify(node_jose, server, token, alg, algorithms=other)
        assert refused["ok"] is False and refused["code"] == "ERR_JOSE_ALG_NOT_ALLOWED"
    finally:
        server.close()


def test_node_checks_expiry_by_the_clock_it_is_given(node_jose: NodeJose, tmp_path: Path) -> None:
    """The pinned clock of ``_verify`` is really used: past ``exp`` Node refuses."""
    server = _start(tmp_path, "expiry", "EdDSA")
    try:
        token, user_id = _login(server, "node-expiry@example.com")
        [kid] = server.jwks_kids()
        exp = _segment(token, 1)["exp"]
        assert isinstance(exp, int)
        _assert_verified(_verify(node_jose, server, token, "EdDSA", at=exp - 1), token, "EdDSA",
                         kid, user_id)  # fmt: skip
        late = _verify(node_jose, server, token, "EdDSA", at=exp + 1)
        assert late["ok"] is False and late["code"] == "ERR_JWT_EXPIRED", late
    finally:
        server.close()
