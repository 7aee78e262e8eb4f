"""A frozen dataclass with some fields changed, as `dataclasses.replace` makes it, at a fraction
of its cost: the folds make ~50 new states per create, and `replace` was ~7 % of a site's CPU.

`replace` calls the class's `__init__` with every field read back by name; here the new object
gets the old one's attributes and the changes directly. That is the same object as long as
`__init__` only assigns its arguments: no `__post_init__`, no field left out of `__init__`
(checked per class on first use; such a class goes through `replace`). A name that is not a
field is refused with TypeError, as `replace` refuses it.
"""

from __future__ import annotations

import dataclasses

_PLAIN: dict[type, frozenset[str] | None] = {}  # class -> its fields, or None: use replace


def _plain_fields(cls: type) -> frozenset[str] | None:
    fields = dataclasses.fields(cls)
    if hasattr(cls, "__post_init__") or hasattr(cls, "__slots__") or not all(f.init for f in fields):
        return None
    return frozenset(f.name for f in fields)


def evolve(obj, **changes):
    cls = type(obj)
    try:
        names = _PLAIN[cls]
    except KeyError:
        names = _PLAIN[cls] = _plain_fields(cls)
    if names is None:
        return dataclasses.replace(obj, **changes)
    if not names.issuperset(changes):
        unknown = ", ".join(sorted(set(changes) - names))
        raise TypeError(f"{cls.__name__} has no field {unknown}")
    new = object.__new__(cls)
    attributes = new.__dict__
    attributes.update(obj.__dict__)
    attributes.update(changes)
    return new
