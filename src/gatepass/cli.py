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
import re
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from gatepass.accounts import check_role
from gatepass.errors import GatepassError, InvalidRequest
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


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="gatepass", description="Sessions, tokens and login.")
    parser.add_argument("--data-dir", type=Path, help="data directory (default ./.gatepass)")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the auth server")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--data-dir", type=Path, dest="serve_data_dir")
    serve.add_argument("--log-level", default="info")

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
    return parser


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        # Only the line ending goes: "\r\n" from a Windows-made file too.
        return line.removesuffix("\n").removesuffix("\r")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Repeat password: ") != first:
        raise SystemExit("Passwords do not match.")
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
            _print([
                {"id": u.id, "email": u.email, "roles": list(u.roles), "disabled": u.disabled,
                 "email_verified": u.email_verified}
                for u in await accounts.users.list(limit=100_000)
            ])
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

    await _admin(settings, go)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    overrides: dict[str, Any] = {"data_dir": args.data_dir}
    if args.command == "serve":
        overrides.update(host=args.host, port=args.port)
        overrides["data_dir"] = args.serve_data_dir or args.data_dir
    try:
        settings = Settings.load(overrides)
        if args.command == "serve":
            import copy

            import uvicorn
            from uvicorn.config import LOGGING_CONFIG

            from gatepass.server.app import create_app

            # gatepass's own loggers (refresh-token reuse, purges, key
            # rotation) through uvicorn's handler, with their level, at the
            # server's log level; otherwise only Python's last-resort handler
            # would print warnings, bare, and INFO would be lost.
            log_config = copy.deepcopy(LOGGING_CONFIG)
            log_config["loggers"]["gatepass"] = {
                "handlers": ["default"], "level": args.log_level.upper(), "propagate": False,
            }  # fmt: skip
            uvicorn.run(
                create_app(settings),
                host=settings.host,
                port=settings.port,
                log_level=args.log_level,
                log_config=log_config,
                server_header=False,
                proxy_headers=False,
            )
            return 0
        asyncio.run(_run_admin(args, settings))
        return 0
    except GatepassError as exc:
        print(f"gatepass: {exc.detail}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
