"""The one redaction rule, table-driven: what may be shown, what never is."""

from __future__ import annotations

import pytest

from gatepass.drivers.redact import UNRECOGNISED, redact

SHOWN = [
    ("postgresql://u:pw@db:5432/app?sslpassword=pw", "postgresql://db:5432"),
    ("POSTGRES://u@DB.example.com/app", "postgres://db.example.com"),
    ("redis://:pw@[::1]:6379/0", "redis://[::1]:6379"),
    ("rediss://default:pw@cache.internal:6380/2?prefix=app:", "rediss://cache.internal:6380"),
    ("redis+cluster://u:pw@10.0.0.1:7000,10.0.0.2:7001/", "redis+cluster://10.0.0.1:7000,10.0.0.2:7001"),
    ("sqlite:////var/lib/gatepass/app.db", "sqlite://"),
    ("memory://", "memory://"),
    ("mysql://admin:pw@db.example.com:3306/users", "mysql://db.example.com:3306"),
]

# Each holds "pw" or "hunter2" somewhere a careless redaction would echo it.
NEVER_ECHOED = [
    "hunter2",
    "admin:hunter2@db.example.com",
    "mysql:hunter2",
    "mysql:root:hunter2@db",
    "postgresql:/admin:hunter2@db.example.com/x",
    "redis://:hunter2@[::1/0",
    "redis://:hunter2@host:notaport/0",
    "sqlite:///users.db?password=hunter2",
    "sqlite://hunter2@host/users.db",
    "http://u:hunter2@h",
    "postgresql://db/app?password=hunter2",
    "postgresql://db/hunter2",
    "postgresql://db#hunter2",
    "redis://hunter2%40x@host/0",
    "x://hunter2 with spaces@",
    "redis://hunter2$weird@",
    "",
]


@pytest.mark.parametrize(("url", "shown"), SHOWN)
def test_scheme_host_and_port_at_most(url: str, shown: str) -> None:
    assert redact(url) == shown


@pytest.mark.parametrize("value", NEVER_ECHOED)
def test_secrets_are_never_echoed(value: str) -> None:
    out = redact(value)
    assert "hunter2" not in out and "admin" not in out and "root" not in out


@pytest.mark.parametrize("value", ["hunter2", "mysql:root:hunter2@db", "", "://x", "1x://h"])
def test_a_value_without_a_scheme_is_named_not_shown(value: str) -> None:
    assert redact(value) == UNRECOGNISED
