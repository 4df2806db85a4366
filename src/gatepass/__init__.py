"""gatepass: sessions, tokens and login for Python web apps.

The names an app needs, in one place::

    import gatepass
    from gatepass import Identity, require_user, RequireRoles

    auth = gatepass.install(app, store_url="sqlite:///app.db", public_url="https://app.example")

Names are imported on first use (PEP 562), so ``import gatepass`` and
``gatepass --version`` stay cheap.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gatepass.asgi.csrf import csrf_token
    from gatepass.asgi.dependencies import (
        RequirePermissions,
        RequireRoles,
        RequireScopes,
        auth_of,
        current_user,
        require_user,
    )
    from gatepass.asgi.middleware import RequestAuth
    from gatepass.asgi.stack import Layers
    from gatepass.errors import (
        ConfigurationError,
        GatepassError,
        NotAuthenticated,
        PermissionDenied,
    )
    from gatepass.identity import Identity, RolePermissions
    from gatepass.integration import Gatepass, GatepassMiddleware, install
    from gatepass.logins import Login, Logins, current_login_id
    from gatepass.server.settings import Settings

try:
    #: One source: the version in pyproject.toml, as installed.
    __version__ = version("gatepass")
except PackageNotFoundError:  # pragma: no cover - running from an uninstalled tree
    __version__ = "0+unknown"

_HOMES = {
    "Gatepass": "gatepass.integration",
    "GatepassMiddleware": "gatepass.integration",
    "install": "gatepass.integration",
    "Layers": "gatepass.asgi.stack",
    "Settings": "gatepass.server.settings",
    "Identity": "gatepass.identity",
    "RolePermissions": "gatepass.identity",
    "RequestAuth": "gatepass.asgi.middleware",
    "auth_of": "gatepass.asgi.dependencies",
    "current_user": "gatepass.asgi.dependencies",
    "require_user": "gatepass.asgi.dependencies",
    "RequireRoles": "gatepass.asgi.dependencies",
    "RequirePermissions": "gatepass.asgi.dependencies",
    "RequireScopes": "gatepass.asgi.dependencies",
    "csrf_token": "gatepass.asgi.csrf",
    "GatepassError": "gatepass.errors",
    "ConfigurationError": "gatepass.errors",
    "NotAuthenticated": "gatepass.errors",
    "PermissionDenied": "gatepass.errors",
    "Login": "gatepass.logins",
    "Logins": "gatepass.logins",
    "current_login_id": "gatepass.logins",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'gatepass' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # once: later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])


__all__ = [
    "ConfigurationError",
    "Gatepass",
    "GatepassError",
    "GatepassMiddleware",
    "Identity",
    "Layers",
    "Login",
    "Logins",
    "NotAuthenticated",
    "PermissionDenied",
    "RequestAuth",
    "RequirePermissions",
    "RequireRoles",
    "RequireScopes",
    "RolePermissions",
    "Settings",
    "__version__",
    "auth_of",
    "csrf_token",
    "current_login_id",
    "current_user",
    "install",
    "require_user",
]
