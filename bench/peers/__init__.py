"""Peer apps, one per file, each with ``/plain``, ``/me`` and ``POST /_bench/login``.

``POST /_bench/login`` signs a benchmark user in the way the library does it
and either sets the library's cookie or answers with the whole header line to
send (``Authorization: Bearer …``).  ``/me`` answers 401 without credentials.
Redis-backed peers read ``BENCH_REDIS``; everything listens on loopback.
"""
