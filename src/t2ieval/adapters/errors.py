"""Errors raised while importing a public dataset; messages name the file, row and field."""

from __future__ import annotations


class AdapterError(ValueError):
    """The source cannot be imported (bad location, wrong schema, nothing left to write...)."""


class RowError(AdapterError):
    """One row (or one image of a row) of the source is unusable."""

    def __init__(self, where: str, field: str, message: str) -> None:
        self.where = where
        self.field = field
        self.message = message
        super().__init__(f"{where}, field {field!r}: {message}")
