"""ASGI integration: the middleware, the dependencies, and the error mapping."""

from gatepass.asgi.dependencies import (
    RequireMFA,
    RequirePermissions,
    RequireRecentAuth,
    RequireRoles,
    RequireScopes,
    auth_of,
    current_user,
    require_user,
    requires_user,
)
from gatepass.asgi.middleware import AuthMiddleware, RequestAuth

__all__ = [
    "AuthMiddleware",
    "RequestAuth",
    "RequireMFA",
    "RequirePermissions",
    "RequireRecentAuth",
    "RequireRoles",
    "RequireScopes",
    "auth_of",
    "current_user",
    "require_user",
    "requires_user",
]
