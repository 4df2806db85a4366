"""Forward auth for reverse proxies, the pure part: rules, the original request, headers.

The HTTP endpoint that uses it is :mod:`gatepass.server.forward_auth`.
"""

from gatepass.forward_auth.headers import ANONYMOUS_HEADERS, cache_headers, identity_headers
from gatepass.forward_auth.original import OriginalRequest, normalize_path, original_request
from gatepass.forward_auth.rules import (
    AccessRules,
    Caller,
    Decision,
    Outcome,
    Rule,
    decide,
    load_rules,
    parse_rules,
)

__all__ = [
    "ANONYMOUS_HEADERS",
    "AccessRules",
    "Caller",
    "Decision",
    "OriginalRequest",
    "Outcome",
    "Rule",
    "cache_headers",
    "decide",
    "identity_headers",
    "load_rules",
    "normalize_path",
    "original_request",
    "parse_rules",
]
