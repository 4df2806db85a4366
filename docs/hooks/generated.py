"""MkDocs hooks: pages generated at build time, so they cannot drift.

* ``http-api.md`` and ``openapi.json``: the server is started in-process (on a
  throw-away SQLite data directory) and its own ``GET /openapi.json`` is
  fetched, kept as a static copy and rendered as a page.
* ``benchmark-results.md`` and ``results.png``: the committed benchmark run.
* Pages other engineers own (``storage.md``, ``forward-auth.md``,
  ``mail.md``) join the nav when their files exist.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]
OPTIONAL_PAGES = {
    "storage.md": "Storage backends",
    "forward-auth.md": "Forward auth (nginx, Caddy, Traefik)",
    "mail.md": "Mail",
}


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    docs = Path(config.docs_dir)
    extra = [{title: name} for name, title in OPTIONAL_PAGES.items() if (docs / name).exists()]
    if extra and config.nav is not None:
        for section in config.nav:
            if isinstance(section, dict) and "Guides" in section:
                section["Guides"].extend(extra)
    return config


def _served_openapi() -> dict[str, Any]:
    from starlette.testclient import TestClient

    from gatepass.server.app import create_app
    from gatepass.server.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), public_url="https://auth.example.com")
        with TestClient(create_app(settings), base_url="https://testserver") as client:
            answer = client.get("/openapi.json")
            answer.raise_for_status()
            doc: dict[str, Any] = answer.json()
    return doc


def _schema_name(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return f"`{schema['$ref'].rpartition('/')[2]}`"
    if "anyOf" in schema:
        return " or ".join(_schema_name(s) for s in schema["anyOf"])
    return f"`{schema.get('type', 'object')}`"


def _render(doc: dict[str, Any]) -> str:
    lines = [
        "# HTTP API",
        "",
        f"The JSON API of `gatepass serve` {doc['info']['version']}, rendered from the "
        "server's own [`/openapi.json`](openapi.json) at build time. "
        + doc["info"]["description"],
        "",
        "State-changing requests that a cookie authenticates also need the CSRF "
        "token in `X-CSRF-Token` (see [Concepts](concepts.md#csrf)).",
        "",
    ]
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            lines += [f"## `{method.upper()} {path}`", "", op.get("summary", ""), ""]
            if op.get("description"):
                lines += [op["description"], ""]
            security = op.get("security") or []
            names = sorted({name for requirement in security for name in requirement})
            lines += [f"**Authentication:** {', '.join(names) if names else 'none'}", ""]
            body = op.get("requestBody", {}).get("content", {})
            if body:
                kinds = ", ".join(f"`{k}` {_schema_name(v.get('schema', {}))}"
                                  for k, v in body.items())  # fmt: skip
                lines += [f"**Body:** {kinds}", ""]
            lines += ["| status | meaning |", "|---|---|"]
            for status, answer in op.get("responses", {}).items():
                text = answer.get("description", "").replace("|", "\\|").replace("\n", " ")
                lines.append(f"| {status} | {text} |")
            lines.append("")
    return "\n".join(lines)


def on_files(files: Files, config: MkDocsConfig) -> Files:
    doc = _served_openapi()
    files.append(File.generated(config, "openapi.json", content=json.dumps(doc, indent=2)))
    files.append(File.generated(config, "http-api.md", content=_render(doc)))
    results = ROOT / "bench" / "results"
    files.append(
        File.generated(
            config,
            "benchmark-results.md",
            content="# Benchmark results\n\nThe committed run, as `bench/run.py` wrote it.\n\n"
            + (results / "results.md").read_text(),
        )
    )
    files.append(File.generated(config, "results.png", abs_src_path=str(results / "results.png")))
    return files
