"""Mutation testing of the security core: ``python -m tests.mutation`` (see README.md)."""
