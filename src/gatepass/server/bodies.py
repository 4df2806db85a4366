"""Reading request bodies with limits, before any parsing.

A body larger than the limit is refused with 413 from its declared length,
or as soon as the stream passes the limit, and is never parsed or hashed.
JSON endpoints accept ``application/json`` only: ``text/plain`` and form
encodings are "simple" requests a cross-site page can send without a CORS
preflight, so a JSON endpoint that took them would be open to CSRF.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request

from gatepass.errors import InvalidRequest, PayloadTooLarge

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise InvalidRequest("Invalid Content-Length.")
        if int(declared) > limit:
            raise PayloadTooLarge()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def read_fields(
    request: Request, limit: int, *, allow_form: bool = False, allow_empty: bool = False
) -> dict[str, Any]:
    """The request's fields from a JSON object (or a urlencoded form, if allowed).

    ``allow_empty``: a request without a body has no fields (``{}``).
    """
    kind = media_type(request)
    if allow_empty and request.headers.get("content-length") in (None, "0") and not kind:
        return {}
    if kind != JSON and not (allow_form and kind == FORM):
        expected = "application/json or a form" if allow_form else "application/json"
        raise InvalidRequest(f"Content-Type must be {expected}.")
    body = await read_body(request, limit)
    if kind == FORM:
        try:
            pairs = parse_qsl(
                body.decode("utf-8"), keep_blank_values=True, strict_parsing=False,
                max_num_fields=50,
            )  # fmt: skip
        except (UnicodeDecodeError, ValueError):
            raise InvalidRequest("The form is malformed.") from None
        fields: dict[str, Any] = {}
        for name, value in pairs:
            if name in fields:
                raise InvalidRequest("A form field appears twice.")
            fields[name] = value
        return fields
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InvalidRequest("The body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise InvalidRequest("The body must be a JSON object.")
    return data


def string_field(fields: dict[str, Any], name: str, *, required: bool = True) -> str:
    value = fields.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and value == ""):
        raise InvalidRequest(f"The field {name!r} must be a non-empty string.")
    return value


def bool_field(fields: dict[str, Any], name: str) -> bool:
    value = fields.get(name, False)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value in ("", "on", "true", "1", "false", "0"):
        return value in ("on", "true", "1")
    raise InvalidRequest(f"The field {name!r} must be a boolean.")
