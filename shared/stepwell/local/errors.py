"""The local stack's error for a template it cannot run."""

from __future__ import annotations


class TemplateError(ValueError):
    """The template holds something the local stack cannot run (with what and where)."""
