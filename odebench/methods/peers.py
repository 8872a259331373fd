"""Peer implementations from other packages, registered as ``method@backend`` when installed."""

from __future__ import annotations


def register_all(registry) -> None:
    """Register every peer whose package imports; the others as unavailable, with the reason."""
