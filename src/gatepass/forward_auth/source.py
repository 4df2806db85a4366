"""The live access rules: loaded at start-up, reloaded on demand (SIGHUP).

A reload that fails keeps the rules in force and logs why: a typo in the
file must not open everything up, nor lock everybody out, nor stop the
server.
"""

from __future__ import annotations

import logging
from pathlib import Path

from gatepass.errors import ConfigurationError
from gatepass.forward_auth.rules import AccessRules, load_rules

logger = logging.getLogger("gatepass.forward_auth")


class RulesSource:
    def __init__(self, path: str | Path | None) -> None:
        """Loads ``path`` now (ConfigurationError if it is bad); None: no rules."""
        self.path = Path(path) if path else None
        self.current = load_rules(self.path) if self.path else AccessRules()

    def reload(self) -> bool:
        """Read the file again; True if the new rules are in force."""
        if self.path is None:
            return False
        try:
            rules = load_rules(self.path)
        except ConfigurationError as exc:
            logger.error("access rules not reloaded, the previous ones stay: %s", exc.detail)
            return False
        self.current = rules
        logger.info("access rules reloaded: %d rules from %s", len(rules.rules), self.path)
        return True
