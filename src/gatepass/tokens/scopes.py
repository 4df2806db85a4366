"""Which scopes a token may carry: granted by policy, never self-chosen.

A client asks for scopes at ``/auth/token``; what it gets is the requested
set intersected with what the user's roles allow (RFC 6749 §3.3 lets the
server narrow a request, and the token response then names the scopes it
carries).  A scope the policy does not know at all is ``invalid_scope``: a
typo should fail loudly rather than yield a token that silently lacks it.

``"*"`` in the policy names the scopes every signed-in user may have.  An
empty policy grants nothing: a deployment that protects routes with
``RequireScopes`` says which roles may ask for what.

Pure: no I/O.  Re-applied at every refresh with the user's current roles,
so a revoked role stops yielding its scopes at the next refresh.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from gatepass.errors import ConfigurationError, InvalidScope

#: RFC 6749 scope-token: printable ASCII except space, '"' and '\\'.
_SCOPE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,128}")
EVERYONE = "*"


class ScopePolicy:
    def __init__(self, grants: Mapping[str, Iterable[str]] | None = None) -> None:
        self._grants: dict[str, frozenset[str]] = {}
        for role, scopes in (grants or {}).items():
            values = frozenset(scopes)
            for scope in values:
                if not isinstance(scope, str) or not _SCOPE.fullmatch(scope):
                    raise ConfigurationError(f"Invalid scope name for role {role!r}.")
            self._grants[role] = values
        self.known: frozenset[str] = frozenset().union(*self._grants.values())
        self._cache: dict[tuple[str, ...], frozenset[str]] = {}

    @classmethod
    def parse(cls, text: str) -> ScopePolicy:
        """``"admin=users:read users:write; *=profile"``: role=scopes, ``;``-separated."""
        grants: dict[str, set[str]] = {}
        for part in text.split(";"):
            if not part.strip():
                continue
            role, sep, scopes = part.partition("=")
            role = role.strip()
            if not sep or not role:
                raise ConfigurationError(
                    "GATEPASS_TOKEN_SCOPES is 'role=scope scope; role=scope', e.g. "
                    "'admin=users:read users:write; *=profile'."
                )
            grants.setdefault(role, set()).update(s for s in scopes.split() if s)
        return cls(grants)

    def allowed(self, roles: Iterable[str]) -> frozenset[str]:
        """Every scope a user with ``roles`` may hold."""
        key = tuple(sorted(roles))
        cached = self._cache.get(key)
        if cached is None:
            cached = self._grants.get(EVERYONE, frozenset()).union(
                *(self._grants.get(role, frozenset()) for role in key)
            )
            if len(self._cache) < 4096:
                self._cache[key] = cached
        return cached

    def grant(self, roles: Iterable[str], requested: Iterable[str]) -> tuple[str, ...]:
        """The requested scopes this user may have, in request order.

        Raises InvalidScope for a scope the policy does not know.
        """
        wanted = tuple(dict.fromkeys(requested))
        unknown = [s for s in wanted if s not in self.known]
        if unknown:
            raise InvalidScope("Unknown scope requested.")
        allowed = self.allowed(roles)
        return tuple(s for s in wanted if s in allowed)

    def narrow(self, roles: Iterable[str], held: Iterable[str]) -> tuple[str, ...]:
        """``held`` (a family's scopes) less what ``roles`` no longer allow."""
        allowed = self.allowed(roles)
        return tuple(s for s in held if s in allowed)
