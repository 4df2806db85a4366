"""Passkeys (WebAuthn): credentials, their stores and the ceremonies."""
