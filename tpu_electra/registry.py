"""Named classes or functions of one kind (pretraining objectives, fine-tuning tasks): register, names, get.

A name is looked up through the registry's `normalize` (task names ignore case, "-" and ".", so "SST-2"
finds "sst2"), and an entry may have aliases, other names that find it. No two entries share a name
or an alias. Registering a name again with the same definition (the same module and qualified name,
as when a module is imported again) replaces the entry; with another definition it is an error, so
that a plugin cannot silently take a built-in's name.
"""
import difflib
from typing import Any, Callable, Dict, Generic, List, Sequence, TypeVar

T = TypeVar("T")


def _definition(value: Any) -> str:
  return f"{value.__module__}.{value.__qualname__}"


class Registry(Generic[T]):
  """The entries of one kind, by name, in registration order."""

  def __init__(self, kind: str, normalize: Callable[[str], str] = str):
    """`kind` names the entries in errors ("objective", "task")."""
    self.kind = kind
    self._normalize = normalize
    self._entries: Dict[str, T] = {}
    # Every normalized name and alias -> the name of the entry it finds.
    self._keys: Dict[str, str] = {}

  def register(self, name: str, value: T, aliases: Sequence[str] = ()) -> T:
    """Registers `value` as `name` (and `aliases`) and returns it.

    Raises ValueError, registering nothing, when a name or alias is another entry's. (A decorator is
    the caller's: `objectives.register` checks the class before it registers it.)
    """
    keys = [self._normalize(key) for key in (name, *aliases)]
    for key in keys:
      owner = self._keys.get(key, name)
      if owner != name:
        raise ValueError(f"{self.kind} name {key!r} is already taken by {self.kind} {owner!r}")
    existing = self._entries.get(name)
    if existing is not None and _definition(existing) != _definition(value):
      raise ValueError(f"{self.kind} name {name!r} is already taken by {_definition(existing)}")
    self._keys.update(dict.fromkeys(keys, name))
    self._entries[name] = value
    return value

  def names(self) -> List[str]:
    """The registered names (not aliases), in registration order."""
    return list(self._entries)

  def get(self, name: str) -> T:
    """The entry that `name` or an alias finds; else a one-line ValueError with the nearest name."""
    owner = self._keys.get(self._normalize(name))
    if owner is None:
      close = difflib.get_close_matches(self._normalize(name), list(self._keys), n=1)
      hint = f"; did you mean {self._keys[close[0]]!r}?" if close else ""
      raise ValueError(f"unknown {self.kind} {name!r}; choose one of {', '.join(self._entries)}{hint}")
    return self._entries[owner]
