"""Okta-looking object ids: 20 characters, a type prefix (00u user, 00g group, 0oa app)."""

from __future__ import annotations

import hashlib
import secrets
import string

ALPHABET = string.ascii_letters + string.digits


def stable_id(prefix: str, key: str) -> str:
    """An id derived from ``key``: the same across restarts (seeded users keep theirs)."""
    digest = hashlib.sha256(key.encode()).digest()
    return prefix + "".join(ALPHABET[b % len(ALPHABET)] for b in digest[:17])


def random_id(prefix: str, length: int = 17) -> str:
    return prefix + "".join(secrets.choice(ALPHABET) for _ in range(length))
