"""`Registry`: name -> class, filled by a decorator; unknown names get the valid list and a suggestion."""
from __future__ import annotations

import difflib
from typing import Callable, Dict, List


class Registry:
    """A named collection of classes (quantizer presets, search spaces).

    Arguments:
        kind: what an entry is, for messages (e.g. "search space").
        plural: the plural used in messages (e.g. "spaces").
    """

    def __init__(self, kind: str, plural: str):
        self.kind = kind
        self.plural = plural
        self._entries: Dict[str, type] = {}

    def register(self, name: str) -> Callable[[type], type]:
        """Class decorator: registers the class under `name` and sets its `name` attribute.

        Raises:
            ValueError: if `name` is already registered.
        """

        def decorator(cls: type) -> type:
            if name in self._entries:
                raise ValueError(f"{self.kind.capitalize()} {name!r} is already registered.")
            cls.name = name
            self._entries[name] = cls
            return cls

        return decorator

    def names(self) -> List[str]:
        """The registered names, sorted."""
        return sorted(self._entries)

    def lookup(self, name: str) -> type:
        """The class registered as `name`.

        Raises:
            ValueError: on an unknown name, listing the valid ones and the closest match.
        """
        if name not in self._entries:
            close = difflib.get_close_matches(str(name), list(self._entries), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"Unknown {self.kind} {name!r}; valid {self.plural} are {', '.join(self.names())}.{hint}")
        return self._entries[name]
