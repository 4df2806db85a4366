"""Without redis, asyncpg or pymongo installed, the core imports and says what to install."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    sys.modules["redis"] = None      # as if not installed: import raises
    sys.modules["asyncpg"] = None
    sys.modules["pymongo"] = None
    import gatepass, gatepass.drivers, gatepass.stores.urls, gatepass.users.urls
    import gatepass.throttle, gatepass.tokens.backends.urls, gatepass.oauth.identities
    from gatepass.drivers import open_session_store, open_user_store
    from gatepass.errors import ConfigurationError

    async def main() -> None:
        for opener, url in ((open_session_store, "redis://:hunter2@h:6379/0"),
                            (open_session_store, "redis+cluster://h:7000/"),
                            (open_user_store, "postgresql://u:hunter2@h/db"),
                            (open_session_store, "mongodb://u:hunter2@h:27017/db"),
                            (open_user_store, "mongodb+srv://u:hunter2@cluster.example/db")):
            try:
                await opener(url)
            except ConfigurationError as exc:
                print(exc)
            else:
                raise SystemExit("opened without its driver")
        store = await open_session_store("memory://")
        await store.close()
        assert "redis" not in sys.modules or sys.modules["redis"] is None
        assert sys.modules["pymongo"] is None

    asyncio.run(main())
    """
)


def test_core_runs_without_optional_drivers() -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 5
    assert all("pip install 'gatepass[redis]'" in line for line in lines[:2])
    assert "pip install 'gatepass[postgres]'" in lines[2]
    assert all("pip install 'gatepass[mongodb]'" in line for line in lines[3:])
    assert "hunter2" not in out.stdout
