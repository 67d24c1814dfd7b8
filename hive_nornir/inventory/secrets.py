"""Masking of secret variables, so tables, reports and exports for humans never show them."""

from __future__ import annotations

from typing import Any

from .constants import _SECRET_HINTS, MASK, SECRET_KEYS


def is_secret_key(key: str) -> bool:
    """True for SECRET_KEYS and names that plainly hold a secret (…password, …token)."""
    low = key.lower()
    return key in SECRET_KEYS or any(h in low for h in _SECRET_HINTS)


def mask_secrets(value: Any) -> Any:
    """A copy of nested data with every secret value replaced by a mask."""
    if isinstance(value, dict):
        return {k: MASK if isinstance(k, str) and is_secret_key(k) else mask_secrets(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [mask_secrets(v) for v in value]
    return value
