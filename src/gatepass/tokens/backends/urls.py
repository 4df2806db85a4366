"""Opening the refresh and revocation stores: see :mod:`gatepass.drivers.opener`."""

from gatepass.drivers.opener import open_refresh_store, open_revocation_store

__all__ = ["open_refresh_store", "open_revocation_store"]
