"""The ``gatepass`` command: the server and its administration.

Passwords are never taken from arguments (they would land in shell history
and in every process listing): ``--password-stdin`` reads one line from
standard input, otherwise the user is prompted without echo.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import re
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any, NoReturn

import gatepass
from gatepass.accounts import check_role
from gatepass.errors import ConfigurationError, GatepassError, InvalidRequest
from gatepass.server.components import Components
from gatepass.server.settings import Settings


class _Parser(argparse.ArgumentParser):
    """No abbreviated options (``--password`` must not mean ``--password-stdin``)
    and no echo of unrecognized arguments or invalid choices (one may be a
    password typed by mistake; usage errors end up in terminals and CI logs).

    Subparsers are built with the parent's class, so this holds for every command.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments"):
            message = (
                "unrecognized arguments (not shown: one may be a secret); passwords are "
                "read with --password-stdin or prompted for, never taken as arguments"
            )
        # "invalid choice: 'VALUE' (choose from …)": the value goes, the choices stay.
        message = re.sub(r"invalid choice: .*? \(choose from", "invalid choice (choose from",
                         message, flags=re.DOTALL)  # fmt: skip
        super().error(message)


def _role(value: str) -> str:
    try:
        return check_role(value)
    except InvalidRequest as exc:
        raise argparse.ArgumentTypeError(exc.detail) from None


#: Commands that only read: they must not create a data directory.
READ_ONLY = {("users", "list"), ("sessions", "list"), ("keys", "list")}


def _settings_help() -> str:
    """Every setting, from the Settings dataclass itself, so the list cannot drift."""
    lines = ["settings (flags override GATEPASS_* variables, which override defaults):"]
    for f in fields(Settings):
        if f.name == "extra":
            continue
        default = f.default if f.default is not MISSING else ""
        if isinstance(default, tuple):
            default = ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in default)
        if f.name == "database_url":
            default = "sqlite:///<data dir>/gatepass.db"
        elif f.name == "session_store_url":
            default = "the database URL"
        elif f.name == "public_url":
            default = "http://HOST:PORT"
        elif f.name == "secret_key":
            default = "generated into <data dir>/secret.key"
        if isinstance(default, bool):
            default = str(default).lower()
        shown = "none" if default in ("", None) else str(default)
        lines.append(f"  {'GATEPASS_' + f.name.upper():<36}{shown}")
    lines.append(f"  {'GATEPASS_OAUTH_<NAME>_*':<36}sign-in providers (see the docs)")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="gatepass", description="Sessions, tokens and login.")
    parser.add_argument("--version", action="version", version=f"gatepass {gatepass.__version__}")
    parser.add_argument("--data-dir", type=Path, help="data directory (default ./.gatepass)")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser(
        "serve",
        help="run the auth server",
        description="Run the auth server: the JSON API, the sign-in pages, JWKS and "
        "forward auth, on http://HOST:PORT.",
        epilog=_settings_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--host", help="address to listen on (GATEPASS_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (GATEPASS_PORT, default 8000)")
    serve.add_argument("--data-dir", type=Path, dest="serve_data_dir",
                       help="data directory (GATEPASS_DATA_DIR, default ./.gatepass)")  # fmt: skip
    serve.add_argument("--log-level", default="info", help="uvicorn's log level (default info)")
    serve.add_argument(
        "--workers", type=_workers, default=1,
        help="worker processes sharing the port (default 1); their caches stay exact "
        "across them through the stores' change signals (not with memory:// stores)",
    )  # fmt: skip
    serve.add_argument("--tls-cert", help="serve HTTPS: PEM certificate chain (GATEPASS_TLS_CERT)")
    serve.add_argument("--tls-key", help="serve HTTPS: PEM private key (GATEPASS_TLS_KEY)")

    users = sub.add_parser("users", help="manage accounts").add_subparsers(
        dest="action", required=True
    )
    add = users.add_parser("add", help="create an account")
    add.add_argument("email")
    add.add_argument("--password-stdin", action="store_true")
    add.add_argument(
        "--role", action="append", default=[], type=_role, help="grant a role (repeatable)"
    )
    users.add_parser("list", help="list accounts")
    users.add_parser("disable", help="disable an account and end its sessions").add_argument(
        "email"
    )
    users.add_parser("enable", help="enable a disabled account").add_argument("email")
    users.add_parser("verify", help="mark the account's email verified").add_argument("email")
    setpw = users.add_parser("set-password", help="set a password and end all sessions")
    setpw.add_argument("email")
    setpw.add_argument("--password-stdin", action="store_true")

    roles = sub.add_parser("roles", help="grant and revoke roles").add_subparsers(
        dest="action", required=True
    )
    for name in ("grant", "revoke"):
        p = roles.add_parser(name)
        p.add_argument("email")
        # Revoking stays possible for any role already stored.
        p.add_argument("role", type=_role if name == "grant" else str)

    keys = sub.add_parser("keys", help="token signing keys").add_subparsers(
        dest="action", required=True
    )
    keys.add_parser("list", help="the key ring: kid, algorithm, state")
    rotate_keys = keys.add_parser("rotate", help="make a new signing key; the old one verifies on")
    rotate_keys.add_argument("--algorithm", choices=["EdDSA", "ES256", "RS256", "HS256"])

    sessions = sub.add_parser("sessions", help="inspect and end sessions").add_subparsers(
        dest="action", required=True
    )
    sessions.add_parser("list").add_argument("email")
    revoke = sessions.add_parser("revoke")
    revoke.add_argument("email")
    which = revoke.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true")
    which.add_argument("session_id", nargs="?")

    mfa = sub.add_parser("mfa", help="second factors").add_subparsers(dest="action", required=True)
    mfa.add_parser(
        "reset", help="remove a user's second factors (passkeys too) and end every login"
    ).add_argument("email")
    return parser


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        # Only the line ending goes: "\r\n" from a Windows-made file too.
        return line.removesuffix("\n").removesuffix("\r")
    if not sys.stdin.isatty():
        # getpass would fall back to reading stdin, echo a warning, and end
        # in EOFError; say what to do instead.
        raise InvalidRequest(
            "No terminal to prompt for the password: pipe it in with --password-stdin."
        )
    try:
        first = getpass.getpass("Password: ")
        if getpass.getpass("Repeat password: ") != first:
            raise InvalidRequest("The passwords do not match.")
    except EOFError:
        raise InvalidRequest("No password given.") from None
    return first


async def _admin(settings: Settings, action: Callable[[Components], Awaitable[Any]]) -> Any:
    parts = await Components.open(settings)
    try:
        return await action(parts)
    finally:
        await parts.close()


def _logins(count: int) -> str:
    return f"{count} login" if count == 1 else f"{count} logins"


def _print(value: Any) -> None:
    print(json.dumps(value, indent=2))


async def _run_admin(args: argparse.Namespace, settings: Settings) -> None:
    cmd, action = args.command, args.action

    async def go(parts: Components) -> None:
        accounts = parts.accounts
        if cmd == "users" and action == "add":
            password = _read_password(args.password_stdin)
            user = await accounts.register(args.email, password, tuple(args.role))
            _print({"id": user.id, "email": user.email, "roles": list(user.roles)})
        elif cmd == "users" and action == "list":
            listed = []
            for u in await accounts.users.list(limit=100_000):
                methods = await parts.mfa.methods(u.id)
                listed.append({
                    "id": u.id, "email": u.email, "roles": list(u.roles), "disabled": u.disabled,
                    "email_verified": u.email_verified, "mfa": list(methods),
                })  # fmt: skip
            _print(listed)
        elif cmd == "users" and action == "disable":
            user = await accounts.get(args.email)
            count = await accounts.disable(user)
            print(f"{user.email}: disabled; {_logins(count)} ended")
        elif cmd == "users" and action == "enable":
            user = await accounts.get(args.email)
            await accounts.enable(user)
            print(f"{user.email}: enabled")
        elif cmd == "users" and action == "verify":
            user = await accounts.get(args.email)
            await accounts.users.set_email_verified(user.id, True)
            print(f"{user.email}: email verified")
        elif cmd == "users" and action == "set-password":
            user = await accounts.get(args.email)
            count = await accounts.set_password(user, _read_password(args.password_stdin))
            print(f"{user.email}: password set; {_logins(count)} ended")
        elif cmd == "roles":
            user = await accounts.get(args.email)
            change = accounts.grant_role if action == "grant" else accounts.revoke_role
            user = await change(user, args.role)
            _print({"email": user.email, "roles": list(user.roles)})
        elif cmd == "keys" and action == "list":
            now = parts.tokens.codec.clock()
            ring = parts.keys()
            _print([
                {
                    "kid": k.kid,
                    "alg": k.alg,
                    "state": "active" if k.kid == ring.active.kid
                    else ("retired" if k.verifies_at(now) else "expired"),
                    "created_at": k.created_at,
                    "verify_until": k.verify_until,
                }
                for k in ring
            ])  # fmt: skip
        elif cmd == "keys" and action == "rotate":
            ring = parts.keys.rotate(
                parts.settings.access_token_ttl + parts.tokens.codec.leeway, args.algorithm
            )
            _print({"active": ring.active.kid, "alg": ring.active.alg})
        elif cmd == "sessions" and action == "list":
            # Every kind of login: cookie sessions, browser-JWT logins, API tokens.
            user = await accounts.get(args.email)
            _print([login.as_json(current=False) for login in await accounts.logins.list(user.id)])
        elif cmd == "sessions" and action == "revoke":
            user = await accounts.get(args.email)
            if args.all:
                count = await accounts.logins.end_all(user.id)
                print(f"{user.email}: {_logins(count)} ended")
            else:
                await accounts.logins.end(user.id, args.session_id)
                print(f"{user.email}: 1 login ended")
        elif cmd == "mfa" and action == "reset":
            user = await accounts.get(args.email)
            removed = await parts.mfa.reset(user.id)
            # A login made with the removed factors must not outlive them.
            count = await accounts.logins.end_all(user.id)
            state = "second factors removed" if removed else "no second factor"
            print(f"{user.email}: {state}; {_logins(count)} ended")

    await _admin(settings, go)


def _check_tls(cert: str, key: str) -> None:
    import ssl

    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        # The library's reason ("key values mismatch", "no start line"),
        # never the key's contents.
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or "unreadable"
        raise ConfigurationError(f"GATEPASS_TLS_CERT/GATEPASS_TLS_KEY cannot be used: {reason}.") \
            from None  # fmt: skip


def _workers(value: str) -> int:
    try:
        count = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a whole number") from None
    if not 1 <= count <= 64:
        raise argparse.ArgumentTypeError("must be between 1 and 64")
    return count


def _check_shared_stores(settings: Settings) -> None:
    """Several workers need stores they all see: never in-process memory."""
    for name in ("database_url", "session_store_url"):
        if getattr(settings, name).startswith("memory:"):
            raise ConfigurationError(
                f"--workers needs stores every worker shares; GATEPASS_{name.upper()} "
                "is memory://, which lives inside one process."
            )


def _export_overrides(overrides: Mapping[str, Any]) -> None:
    """The flags, as the ``GATEPASS_*`` variables the worker processes read
    (each builds its settings with :meth:`Settings.load`)."""
    for name, value in overrides.items():
        if value is not None:
            resolved = value.resolve() if isinstance(value, Path) else value
            os.environ[f"GATEPASS_{name.upper()}"] = str(resolved)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    overrides: dict[str, Any] = {"data_dir": args.data_dir}
    if args.command == "serve":
        overrides.update(host=args.host, port=args.port, tls_cert=args.tls_cert,
                         tls_key=args.tls_key)  # fmt: skip
        overrides["data_dir"] = args.serve_data_dir or args.data_dir
    try:
        settings = Settings.load(overrides)
        data_dir = settings.data_dir.resolve()
        # Said every time: an admin run from the wrong directory must see it
        # before adding a user to the wrong database.
        print(f"gatepass: using data directory {data_dir}", file=sys.stderr)
        if (args.command, getattr(args, "action", None)) in READ_ONLY and not data_dir.is_dir():
            raise ConfigurationError(
                f"No data directory at {data_dir}; give --data-dir or GATEPASS_DATA_DIR "
                "(nothing was created)."
            )
        if args.command == "serve":
            import copy

            import uvicorn
            from uvicorn.config import LOGGING_CONFIG

            from gatepass.forward_auth import load_rules
            from gatepass.server.app import create_app

            # Checked before listening: a bad file is a clear message and
            # exit 1, not a failure later at the first request.
            if settings.access_rules:
                load_rules(settings.access_rules)
            if settings.tls_cert:
                _check_tls(settings.tls_cert, settings.tls_key)

            # gatepass's own loggers (refresh-token reuse, purges, key
            # rotation) through uvicorn's handler, with their level, at the
            # server's log level; otherwise only Python's last-resort handler
            # would print warnings, bare, and INFO would be lost.
            log_config = copy.deepcopy(LOGGING_CONFIG)
            log_config["loggers"]["gatepass"] = {
                "handlers": ["default"], "level": args.log_level.upper(), "propagate": False,
            }  # fmt: skip
            server: dict[str, Any] = {
                "host": settings.host,
                "port": settings.port,
                "log_level": args.log_level,
                "log_config": log_config,
                "server_header": False,
                "proxy_headers": False,
                "ssl_certfile": settings.tls_cert or None,
                "ssl_keyfile": settings.tls_key or None,
            }
            if args.workers == 1:
                uvicorn.run(create_app(settings), **server)
                return 0
            # Several processes, each with its own socket on the port (see
            # gatepass.server.workers).  Each worker builds the app from the
            # same settings: the flags go to them as GATEPASS_* variables.
            from gatepass.server.workers import run_workers

            _check_shared_stores(settings)
            _export_overrides(overrides)
            return run_workers(args.workers, server)
        asyncio.run(_run_admin(args, settings))
        return 0
    except GatepassError as exc:
        print(f"gatepass: {exc.detail}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
