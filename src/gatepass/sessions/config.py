"""Session lifetimes, validated once."""

from __future__ import annotations

from dataclasses import dataclass

from gatepass.errors import ConfigurationError


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """How long sessions live.

    The defaults follow OWASP's session management guidance for an ordinary
    web application: 30 minutes of inactivity end a session, and no session
    outlives 8 hours of use.  "Remember me" sessions trade that for a
    persistent cookie, 7 days idle and 30 days at most.

    Sliding renewal writes to the store at most once per ``renew_interval``
    (by default a quarter of the idle timeout, capped at 60 s), so an active
    session stays alive even with an idle timeout of a few seconds, while a
    busy one costs one store write a minute rather than one per request.
    """

    idle_timeout: int = 30 * 60
    absolute_timeout: int = 8 * 60 * 60
    remember_idle_timeout: int = 7 * 24 * 60 * 60
    remember_absolute_timeout: int = 30 * 24 * 60 * 60
    renew_interval: float | None = None

    def __post_init__(self) -> None:
        for name in ("idle_timeout", "absolute_timeout", "remember_idle_timeout",
                     "remember_absolute_timeout"):  # fmt: skip
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ConfigurationError(f"{name} must be a positive number of seconds.")
        if self.idle_timeout > self.absolute_timeout:
            raise ConfigurationError("idle_timeout cannot exceed absolute_timeout.")
        if self.remember_idle_timeout > self.remember_absolute_timeout:
            raise ConfigurationError(
                "remember_idle_timeout cannot exceed remember_absolute_timeout."
            )
        if self.renew_interval is not None and not 0 <= self.renew_interval < self.idle_timeout:
            raise ConfigurationError("renew_interval must be less than idle_timeout.")

    def renew_after(self, idle_timeout: int) -> float:
        """Seconds of activity after which a session's deadline is rewritten."""
        if self.renew_interval is not None:
            return min(self.renew_interval, idle_timeout / 4)
        return min(60.0, idle_timeout / 4)
