"""Opening a user store from its URL: see :mod:`gatepass.drivers.opener`."""

from gatepass.drivers.opener import open_user_store

__all__ = ["open_user_store"]
