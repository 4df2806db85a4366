"""Opening a throttle store from its URL: see :mod:`gatepass.drivers.opener`.

Throttle state must be shared by every server instance, so in a deployment
with more than one process this is normally the session store's URL (and
then the same connection).
"""

from gatepass.drivers.opener import open_throttle_store

__all__ = ["open_throttle_store"]
