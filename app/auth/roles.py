"""The role hierarchy: a higher role may do everything a lower one may."""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class Role(StrEnum):
    """Stored by value; ordered by rank (NAVIGATOR < MANAGER < ADMIN), not alphabetically."""

    NAVIGATOR = "navigator"
    MANAGER = "manager"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    @property
    def label(self) -> str:
        return self.value.capitalize()

    def includes(self, required: Role) -> bool:
        """Whether someone with this role may do what `required` may."""
        return self.rank >= required.rank

    def __lt__(self, other: Any) -> bool:
        if not isinstance(other, Role):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: Any) -> bool:
        if not isinstance(other, Role):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: Any) -> bool:
        if not isinstance(other, Role):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: Any) -> bool:
        if not isinstance(other, Role):
            return NotImplemented
        return self.rank >= other.rank

    __hash__ = StrEnum.__hash__


_RANKS = {Role.NAVIGATOR: 1, Role.MANAGER: 2, Role.ADMIN: 3}
