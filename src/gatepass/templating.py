"""The one Jinja2 environment behind the server's pages and mails.

Templates ship in ``gatepass/templates``; an operator brands them by pointing
``GATEPASS_TEMPLATES_DIR`` at a folder of overrides, searched first (a
``ChoiceLoader``), so overriding ``base.html`` alone restyles every page.
Autoescaping is on for ``.html`` templates and for templates from strings;
the ``.txt`` mail parts are plain text and are not HTML-escaped.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import jinja2

from gatepass.errors import ConfigurationError


def make_environment(override_dir: Path | None = None) -> jinja2.Environment:
    loaders: list[jinja2.BaseLoader] = []
    if override_dir is not None:
        if not override_dir.is_dir():
            raise ConfigurationError("GATEPASS_TEMPLATES_DIR must name an existing folder.")
        loaders.append(jinja2.FileSystemLoader(override_dir))
    loaders.append(jinja2.PackageLoader("gatepass", "templates"))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html",), default_for_string=True, default=False
        ),
        # A misspelt variable in an override is an error, not an empty string.
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    # One query-string value, every reserved character escaped (Jinja's own
    # ``urlencode`` keeps "/", which is right for paths, not for ``?next=``).
    env.filters["q"] = lambda value: quote(str(value), safe="")
    return env
