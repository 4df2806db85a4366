"""Mail settings, redaction, rendering and the outbox: pure parts, no server."""

from __future__ import annotations

import os
import stat
from email.message import EmailMessage
from pathlib import Path

import pytest

from gatepass.drivers.redact import redact as redact_url
from gatepass.errors import ConfigurationError
from gatepass.mail import MailComposer, Outbox, default_sender, parse_sender, parse_smtp_url
from gatepass.server.settings import Settings
from gatepass.templating import make_environment

TOKEN = "tok_" + "A" * 40


def composer(
    tmp_path: Path | None = None, public_url: str = "https://id.example.com"
) -> MailComposer:
    return MailComposer(
        make_environment(tmp_path),
        public_url=public_url,
        sender="Example <login@example.com>",
        clock=lambda: 1_800_000_000.0,
    )


@pytest.mark.parametrize(
    ("url", "security", "host", "port", "user", "password"),
    [
        ("smtp://127.0.0.1:2525", "plain", "127.0.0.1", 2525, None, None),
        ("smtp://mail.example.com", "plain", "mail.example.com", 25, None, None),
        ("smtp+starttls://u:p@mail.example.com", "starttls", "mail.example.com", 587, "u", "p"),
        ("smtp://u:p@localhost:2525", "plain", "localhost", 2525, "u", "p"),
        ("smtps://u%40x:p%3Aw%2F@mail.example.com:4650", "tls", "mail.example.com", 4650,
         "u@x", "p:w/"),
        ("SMTPS://[::1]:465", "tls", "::1", 465, None, None),
    ],
)  # fmt: skip
def test_smtp_urls(
    url: str, security: str, host: str, port: int, user: str | None, password: str | None
) -> None:
    target = parse_smtp_url(url)
    assert (target.security, target.host, target.port) == (security, host, port)
    assert (target.username, target.password) == (user, password)
    assert "p:w" not in repr(target) and "u@x" not in repr(target)
    assert "@" not in str(target)


@pytest.mark.parametrize(
    "url",
    [
        "http://mail.example.com",
        "smtp://",
        "smtp://:secretpw@mail.example.com",
        "smtp://u:secretpw@mail.example.com/path",
        "smtp://u:secretpw@mail.example.com?x=1",
        "smtp://u:secretpw@mail.example.com:99999",
        "smtp+ssl://u:secretpw@mail.example.com",
        "smtp://u:secretpw@mail.example.com:25",  # a password in clear over the network
    ],
)
def test_bad_smtp_urls_are_refused_without_echoing_them(url: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_smtp_url(url)
    assert "secretpw" not in str(info.value)
    with pytest.raises(ConfigurationError) as info:
        Settings(smtp_url=url, mail_from="a@example.com")
    assert "secretpw" not in str(info.value)


def test_settings_need_a_sender_with_smtp_and_hide_the_url() -> None:
    with pytest.raises(ConfigurationError, match="GATEPASS_MAIL_FROM"):
        Settings(smtp_url="smtp://127.0.0.1:25")
    s = Settings(smtp_url="smtps://u:secretpw@mail.example.com", mail_from="a@example.com")
    assert "secretpw" not in repr(s)


def test_settings_from_environment(tmp_path: Path) -> None:
    s = Settings.load(
        environ={
            "GATEPASS_SMTP_URL": "smtps://u:pw@mail.example.com",
            "GATEPASS_MAIL_FROM": "Example <login@example.com>",
            "GATEPASS_MAIL_RETRY_DELAYS": "0.5, 1",
            "GATEPASS_TEMPLATES_DIR": str(tmp_path),
        }
    )
    assert s.mail_retry_delays == (0.5, 1.0)
    assert s.templates_dir == tmp_path
    with pytest.raises(ConfigurationError):
        Settings.load(environ={"GATEPASS_MAIL_RETRY_DELAYS": "1,soon"})
    with pytest.raises(ConfigurationError):
        Settings.load(environ={"GATEPASS_MAIL_RETRY_DELAYS": "-1"})


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("smtp://user:pw@mail.example.com:25", "smtp://mail.example.com:25"),
        ("redis://:pw@10.0.0.1:6379/0?prefix=x", "redis://10.0.0.1:6379"),
        ("postgresql://u:pw@db/app", "postgresql://db"),
        ("smtp://u:pw@[::1]:25", "smtp://[::1]:25"),
        ("not a url", "(a value without a recognisable scheme://)"),
        ("smtp://u:pw@host:notaport", "smtp://"),
    ],
)
def test_redaction_keeps_only_scheme_host_and_port(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("login@example.com", True),
        ("Example Login <login@example.com>", True),
        ("login@example.com\r\nBcc: victim@example.com", False),
        ("nobody", False),
        ("<>", False),
        ("a@b@c", False),
    ],
)
def test_sender(value: str, ok: bool) -> None:
    if ok:
        assert "login@example.com" in parse_sender(value)
    else:
        with pytest.raises(ConfigurationError):
            parse_sender(value)


def test_default_sender() -> None:
    assert default_sender("http://127.0.0.1:8000") == "gatepass <gatepass@localhost>"
    assert default_sender("https://id.example.com") == "gatepass <gatepass@id.example.com>"


def _parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())


def test_reset_mail_has_both_parts_and_an_absolute_link_on_the_public_url() -> None:
    out = composer(public_url="https://id.example.com/auth/").password_reset(
        "ada@example.com", TOKEN
    )
    msg = out.message
    assert msg.get_content_type() == "multipart/alternative"
    assert msg["Subject"] == "Reset your gatepass password"
    assert msg["From"] == "Example <login@example.com>"
    assert msg["To"] == "ada@example.com"
    assert msg["Message-ID"].endswith("@example.com>")
    text, html = _parts(msg)
    link = f"https://id.example.com/auth/password/reset?token={TOKEN}"
    assert link in text
    assert f'href="{link}"' in html
    assert "30 minutes" in text


def test_each_mail_kind_renders(tmp_path: Path) -> None:
    c = composer()
    verify = c.email_verification("ada@example.com", TOKEN)
    assert "https://id.example.com/email/verify?token=" + TOKEN in _parts(verify.message)[0]
    assert "48 hours" in _parts(verify.message)[0]
    changed = c.password_changed("ada@example.com", ip="203.0.113.9")
    text, html = _parts(changed.message)
    assert "2027-01-15 08:00 UTC" in text and "203.0.113.9" in html
    assert "https://id.example.com/password/forgot" in text


def test_html_part_escapes_values() -> None:
    out = composer().render(
        "password_changed", "ada@example.com", when="<b>now</b>", ip="<script>x</script>",
        forgot_link="https://id.example.com/password/forgot",
        account_link="https://id.example.com/account",
    )  # fmt: skip
    text, html = _parts(out.message)
    assert "<script>x</script>" not in html and "&lt;script&gt;" in html
    assert "<script>x</script>" in text  # plain text is not HTML


def test_links_are_never_built_on_anything_but_the_public_url() -> None:
    c = composer()
    with pytest.raises(ValueError):
        c.link("//evil.example/x")
    with pytest.raises(ValueError):
        c.link("https://evil.example/x")


def test_operator_overrides_a_mail_template(tmp_path: Path) -> None:
    (tmp_path / "mail").mkdir()
    (tmp_path / "mail" / "password_reset.txt").write_text(
        '{% set subject = "Acme: new password" %}Acme says: {{ link }}\n'
    )
    out = composer(tmp_path).password_reset("ada@example.com", TOKEN)
    assert out.message["Subject"] == "Acme: new password"
    assert _parts(out.message)[0].startswith("Acme says: https://id.example.com/")


def test_a_template_without_a_subject_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "mail").mkdir()
    (tmp_path / "mail" / "password_reset.txt").write_text("{{ link }}\n")
    with pytest.raises(ConfigurationError, match="subject"):
        composer(tmp_path).password_reset("ada@example.com", TOKEN)


def test_missing_override_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        make_environment(tmp_path / "nope")


def test_outbox_files_are_private_and_whole(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox")
    (tmp_path / "outbox").mkdir(mode=0o755)
    os.chmod(tmp_path / "outbox", 0o755)  # noqa: S103 (an operator's lax folder, tightened)
    out = composer().password_reset("ada@example.com", TOKEN)
    path = outbox.write(out.message, kind=out.kind)
    assert stat.S_IMODE(os.stat(tmp_path / "outbox").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert path.suffix == ".eml" and "password_reset" in path.name
    assert outbox.list() == [path]
    assert [p.name for p in (tmp_path / "outbox").iterdir()] == [path.name]  # no .part left
    kept = outbox.write(out.message, kind=out.kind, undelivered=True)
    assert kept.name.startswith("undelivered-")


def test_a_recipient_cannot_inject_headers() -> None:
    with pytest.raises(ValueError):
        composer().password_reset("ada@example.com\r\nBcc: eve@evil.example", TOKEN)
