"""value: the dataclass form of the core's per-decision values (Decision, Evidence, OptionCost, ...).

They are values: made once, never changed, compared and hashed by their fields. They are not
`frozen`, because a frozen dataclass's __init__ sets each field through object.__setattr__: 7.6x
slower to build (17 fields: 6.3 against 0.83 us on this project's 2-core machine), and one decision
builds a dozen of them, which was 13 % of a No-Wait simulation (py-spy). Nothing in the core or its
callers changes one after it is made; dataclasses.replace() makes a changed copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, TypeVar, dataclass_transform, overload

T = TypeVar("T")


@overload
@dataclass_transform(eq_default=True, field_specifiers=(field,))
def value(cls: type[T], /) -> type[T]: ...


@overload
def value(*, eq: bool = True) -> Callable[[type[T]], type[T]]: ...


def value(cls: type[T] | None = None, /, *, eq: bool = True) -> type[T] | Callable[[type[T]], type[T]]:
    """@value or @value(eq=False) (the class defines __eq__ and __hash__ itself): a slotted
    dataclass, hashable by its fields when it compares by them."""
    def wrap(c: type[T]) -> type[T]:
        return dataclass(c, slots=True, eq=eq, unsafe_hash=eq)
    return wrap if cls is None else wrap(cls)
