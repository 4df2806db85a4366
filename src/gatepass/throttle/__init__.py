"""Login throttling: the policy (:mod:`.policy`), its store contract
(:mod:`.store`) and one backend per store URL scheme (:mod:`.urls`)."""

from gatepass.throttle.policy import ACCOUNT, ADDRESS, PAIR, LoginThrottle, Rule
from gatepass.throttle.store import Hit, ThrottleStore
from gatepass.throttle.urls import open_throttle_store

__all__ = [
    "ACCOUNT",
    "ADDRESS",
    "PAIR",
    "Hit",
    "LoginThrottle",
    "Rule",
    "ThrottleStore",
    "open_throttle_store",
]
