"""Second factors: TOTP and recovery codes (:mod:`.totp`), secrets sealed at rest
(:mod:`.crypto`), the factor store (:mod:`.store` and its backends) and the
rules (:mod:`.service`).  See docs/mfa.md."""
