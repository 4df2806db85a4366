"""Stateless tokens: keys, JWS, access tokens, refresh families, revocation."""
