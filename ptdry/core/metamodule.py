"""Metamodule: a small part of a Module that serializes itself for the database."""

from __future__ import annotations

from typing import Any, TypeVar

__all__ = ["Metamodule"]

T = TypeVar("T", bound="Metamodule")


class Metamodule:
    """Base of Configuration-like parts: ``to_document()`` gives BSON-safe data, and
    ``from_document()`` reads it back, so the DB layer stores every metamodule alike."""

    __slots__ = ()

    def to_document(self) -> dict[str, Any]:
        raise NotImplementedError(f"{type(self).__name__} must implement to_document()")

    @classmethod
    def from_document(cls: type[T], doc: dict[str, Any]) -> T:
        raise NotImplementedError(f"{cls.__name__} must implement from_document()")
