"""Real components for the proxy tests: a test certificate, ``gatepass serve``
over TLS, nginx and Caddy on loopback with configs rendered from the snippets
in ``docs/forward-auth.md``, and a tiny upstream app that nginx itself serves.

Every server binds 127.0.0.1 on a free port and is stopped by the fixture
that started it.  The snippets are taken from the docs verbatim; only the
literal addresses, ports and certificate paths listed in ``render`` are
replaced, and each must be present (so a docs edit cannot silently drift
from what runs).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import os
import re
import shutil
import signal
import ssl
import subprocess
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import IN_CI, free_port
from tests.serving import ServeProcess

DOCS = Path(__file__).resolve().parents[2] / "docs" / "forward-auth.md"
PASSWORD = "correct horse battery staple"


def unavailable(message: str) -> None:
    if IN_CI:
        pytest.fail(f"{message} (CI=true: proxy tests must run, not skip)")
    pytest.skip(f"{message}; install it to run the proxy tests")


def require_binary(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin")
    if found is None:
        package = "nginx-light" if name == "nginx" else name
        unavailable(f"{name} is not installed (apt-get install {package})")
    assert found is not None
    return found


def snippet(name: str, kind: str = "tested") -> str:
    """The fenced block after ``<!-- {kind}: {name} -->`` in the docs."""
    text = DOCS.read_text()
    match = re.search(rf"<!-- {kind}: {name} -->\n```[a-z]*\n(.*?)```", text, re.DOTALL)
    assert match, f"no '{kind}: {name}' snippet in {DOCS}"
    return match.group(1)


def render(template: str, replacements: dict[str, str]) -> str:
    for literal, value in replacements.items():
        assert literal in template, f"the docs snippet no longer contains {literal!r}"
        template = template.replace(literal, value)
    return template


# --------------------------------------------------------------------------
# The certificate: one P-256 key for *.example.test (gatepass and the proxies)


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path
    #: base64 SHA-256 of the SPKI, for --ignore-certificate-errors-spki-list.
    spki: str

    def context(self) -> ssl.SSLContext:
        """A client context that trusts exactly this certificate."""
        return ssl.create_default_context(cafile=str(self.cert))


def make_certificate(directory: Path) -> Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "example.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("example.test"), x509.DNSName("*.example.test")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "example.test.pem", directory / "example.test.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    digest = base64.b64encode(hashlib.sha256(spki).digest()).decode()
    return Certificate(cert_path, key_path, digest)


# --------------------------------------------------------------------------
# gatepass serve, over TLS


class Gatepass(ServeProcess):
    def __init__(self, root: Path, certificate: Certificate, rules: str, **extra_env: str) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.rules = root / "rules.toml"
        self.rules.write_text(rules)
        self.certificate = certificate
        port = free_port()
        self.public_url = f"https://auth.example.test:{port}"
        super().__init__(
            root,
            name="gatepass",
            port=port,
            log_level="info",
            ready=Gatepass._answers,
            never_logged=[PASSWORD],
            GATEPASS_PUBLIC_URL=self.public_url,
            GATEPASS_TLS_CERT=str(certificate.cert),
            GATEPASS_TLS_KEY=str(certificate.key),
            GATEPASS_TRUSTED_PROXIES="127.0.0.1",
            GATEPASS_ACCESS_RULES=str(self.rules),
            GATEPASS_COOKIE_DOMAIN="example.test",
            **extra_env,
        )
        self.root = root

    def _answers(self) -> bool:
        """Ready over TLS, by name (SNI and certificate checked)."""
        with self.client() as client, suppress(httpx.TransportError):
            return client.get(f"{self.public_url}/readyz").status_code == 200
        return False

    def add_user(self, email: str, *roles: str) -> None:
        flags = [arg for role in roles for arg in ("--role", role)]
        self.cli("users", "add", email, "--password-stdin", *flags, stdin=PASSWORD + "\n")

    def client(self) -> httpx.Client:
        """Talks to gatepass directly, as auth.example.test (SNI and certificate checked)."""
        return http_client(self.certificate, {"auth.example.test": self.port})

    def start(self) -> Gatepass:
        super().start()
        return self

    def reload(self) -> None:
        self.signal(signal.SIGHUP)


def http_client(certificate: Certificate, ports: dict[str, int]) -> httpx.Client:
    """An HTTPS client that reaches ``host`` at 127.0.0.1:``ports[host]`` with
    the right SNI and certificate check: the test hosts never need DNS."""

    class Loopback(httpx.HTTPTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            host = request.url.host
            if host not in ports:
                raise AssertionError(f"unexpected host {host}")
            request.extensions["sni_hostname"] = host
            request.url = request.url.copy_with(host="127.0.0.1")
            return super().handle_request(request)

    return httpx.Client(
        transport=Loopback(verify=certificate.context()), follow_redirects=False, timeout=10
    )


# --------------------------------------------------------------------------
# The proxies


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    import socket

    deadline = time.monotonic() + 20
    while True:
        if process.poll() is not None:
            raise AssertionError(f"the proxy exited:\n{log.read_text() if log.exists() else ''}")
        with suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the proxy did not listen:\n{log.read_text()}")
        time.sleep(0.05)


#: What the upstream app answers: the identity headers that reached it.
NGINX_ECHO = (
    "app host=$host uri=$request_uri user=[$http_x_auth_user_id] "
    "email=[$http_x_auth_email] roles=[$http_x_auth_roles]"
)
CADDY_ECHO = (
    "app host={host} uri={uri} user=[{header.X-Auth-User-Id}] "
    "email=[{header.X-Auth-Email}] star=[{http.request.header.X-Auth-Email*}] "
    "roles=[{header.X-Auth-Roles}]"
)


class Proxy:
    """nginx or Caddy in front of two app hosts, with an upstream it serves itself."""

    kind: str

    def __init__(self, root: Path, certificate: Certificate, gatepass: Gatepass,
                 hosts: tuple[str, ...]) -> None:  # fmt: skip
        self.root = root
        self.certificate = certificate
        self.gatepass = gatepass
        self.hosts = hosts
        self.port = free_port()
        self.upstream = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log = root / f"{self.kind}.log"

    def url(self, host: str, path: str = "/") -> str:
        return f"https://{host}:{self.port}{path}"

    def site(self, host: str) -> str:
        raise NotImplementedError

    def config(self) -> str:
        raise NotImplementedError

    def command(self, config: Path) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        config = self.root / ("nginx.conf" if self.kind == "nginx" else "Caddyfile")
        config.write_text(self.config())
        env = {**os.environ, "HOME": str(self.root), "XDG_DATA_HOME": str(self.root / "data"),
               "XDG_CONFIG_HOME": str(self.root / "config")}  # fmt: skip
        with (self.root / f"{self.kind}.out").open("wb") as out:
            self.process = subprocess.Popen(
                self.command(config), cwd=self.root, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        for port in (self.port, self.upstream):
            wait_for_port(port, self.process, self.root / f"{self.kind}.out")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def client(self) -> httpx.Client:
        """Reaches the app hosts through the proxy and gatepass directly."""
        ports = dict.fromkeys(self.hosts, self.port)
        ports["auth.example.test"] = self.gatepass.port
        return http_client(self.certificate, ports)


class Nginx(Proxy):
    kind = "nginx"
    #: With the docs' proxy_cache snippet added (its http part and its
    #: location part, split where the docs' comments say).
    cache = False

    def cache_parts(self) -> tuple[str, str]:
        text = render(snippet("nginx-cache"), {
            "/var/cache/nginx/gatepass": str(self.root / "cache"),
            "proxy_cache_valid 200 5s;": "proxy_cache_valid 200 2s;",
        })  # fmt: skip
        http, location = text.split("# in location = /_gatepass {}")
        return http.replace("# in http {}", ""), location

    def site(self, host: str) -> str:
        site = self._site(host)
        if self.cache:
            marker = "location = /_gatepass {\n        internal;\n"
            assert marker in site
            site = site.replace(marker, marker + self.cache_parts()[1])
        return site

    def _site(self, host: str) -> str:
        return render(snippet("nginx"), {
            "listen 443 ssl;": f"listen 127.0.0.1:{self.port} ssl;",
            "server_name app.example.test;": f"server_name {host};",
            "/etc/ssl/example.test.pem": str(self.certificate.cert),
            "/etc/ssl/example.test.key": str(self.certificate.key),
            "https://127.0.0.1:9443": f"https://127.0.0.1:{self.gatepass.port}",
            "http://127.0.0.1:3000": f"http://127.0.0.1:{self.upstream}",
        })  # fmt: skip

    def config(self) -> str:
        d = self.root
        sites = "\n".join(self.site(host) for host in self.hosts)
        temp = "\n".join(
            f"    {name}_temp_path {d}/{name};" for name in
            ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )  # fmt: skip
        cache_http = self.cache_parts()[0] if self.cache else ""
        # As root, nginx's workers would run as "nobody" and could not enter
        # pytest's private (0700) temporary directories for the cache files.
        user = "user root root;" if os.geteuid() == 0 else ""
        return f"""
{user}
worker_processes 1;
error_log {self.log} info;
pid {d}/nginx.pid;
events {{ worker_connections 64; }}
http {{
    access_log {d}/access.log;
{temp}
{cache_http}
    # The upstream app: nginx itself, echoing what reached it (no Python).
    server {{
        listen 127.0.0.1:{self.upstream};
        location / {{
            default_type text/plain;
            return 200 "{NGINX_ECHO}";
        }}
    }}
{sites}
}}
"""

    def command(self, config: Path) -> list[str]:
        return [require_binary("nginx"), "-p", str(self.root), "-c", str(config),
                "-e", str(self.log), "-g", "daemon off;"]  # fmt: skip


class Caddy(Proxy):
    kind = "caddy"

    def site(self, host: str) -> str:
        return render(snippet("caddy"), {
            "app.example.test {": f"https://{host}:{self.port} {{",
            "/etc/ssl/example.test.pem": str(self.certificate.cert),
            "/etc/ssl/example.test.key": str(self.certificate.key),
            "https://127.0.0.1:9443": f"https://127.0.0.1:{self.gatepass.port}",
            "127.0.0.1:3000": f"127.0.0.1:{self.upstream}",
        })  # fmt: skip

    def config(self) -> str:
        sites = "\n".join(self.site(host) for host in self.hosts)
        return f"""{{
    # Never reach outside: no ACME, no admin endpoint, no trust store changes.
    auto_https off
    admin off
    skip_install_trust
    default_bind 127.0.0.1
    storage file_system {self.root}/storage
    log {{
        output file {self.log}
        level DEBUG
    }}
}}

# The upstream app: Caddy itself, echoing what reached it (no Python).
http://:{self.upstream} {{
    respond "{CADDY_ECHO}"
}}

{sites}
"""

    def command(self, config: Path) -> list[str]:
        return [require_binary("caddy"), "run", "--config", str(config), "--adapter", "caddyfile"]
