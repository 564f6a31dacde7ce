"""The registry that objectives and fine-tuning tasks share: names, aliases, conflicts, one-line errors."""
import pytest

from tpu_electra import registry


def _first():
  return 1


def _second():
  return 2


def _names():
  names = registry.Registry("task", normalize=lambda name: name.lower().replace("-", ""))
  names.register("sst2", _first, aliases=["SST-2"])
  names.register("mnli", _second)
  return names


def test_entries_are_found_by_name_or_alias_through_normalize_and_listed_in_order():
  names = _names()
  assert names.get("sst-2") is _first and names.get("SST2") is _first and names.get("MNLI") is _second
  assert names.names() == ["sst2", "mnli"]


def test_an_unknown_name_is_one_line_that_lists_the_names_and_suggests_the_nearest():
  with pytest.raises(ValueError) as error:
    _names().get("mnl")
  assert str(error.value) == "unknown task 'mnl'; choose one of sst2, mnli; did you mean 'mnli'?"
  with pytest.raises(ValueError, match=r"choose one of sst2, mnli$"):
    _names().get("squad")


def test_a_name_or_alias_of_another_entry_or_another_definition_is_refused_and_registers_nothing():
  names = _names()
  with pytest.raises(ValueError, match="task name 'sst2' is already taken by task 'sst2'"):
    names.register("sentiment", _second, aliases=["SST-2"])
  with pytest.raises(ValueError, match=r"task name 'mnli' is already taken by .*test_registry._second"):
    names.register("mnli", _first)
  assert names.names() == ["sst2", "mnli"] and names.get("mnli") is _second
  # The same definition again (its module imported again) replaces the entry.
  names.register("mnli", _second, aliases=["mnli-m"])
  assert names.get("mnlim") is _second
