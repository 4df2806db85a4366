"""Opening a session store from its URL: see :mod:`gatepass.drivers.opener`."""

from gatepass.drivers.opener import open_session_store

__all__ = ["open_session_store"]
