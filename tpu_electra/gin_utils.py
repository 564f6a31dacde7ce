"""Strict gin parsing for the command-line entry points.

A typo must never fall back silently to a default: an unknown configurable or parameter is an
error (gin's own check), and so is a macro set on the command line that no loaded config reads.
Errors are one line that names the offending binding or file.
"""
import difflib
import logging
import os
import re
from typing import Iterable, Sequence, Set

import gin
import gin.config

from tpu_electra import errors
from tpu_electra import configs

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
# The configs ship inside the package (package data), so they are found from any directory and
# from a wheel install as well as from a checkout.
GIN_DIR = configs.GIN_DIR
# The checkout root when running from one (`pip install -e .`): run artefacts may name data dirs
# relative to it (runs/data/...). In a non-editable install it is the site-packages directory,
# where such a relative path simply is not found.
REPO_DIR = os.path.dirname(PACKAGE_DIR)
_MACRO_BINDING = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=")


class _QuietIncludeLookups(logging.Filter):
  """Drops gin's 'Path not found' log lines: includes are looked up on the search path next."""

  def filter(self, record):
    return not record.pathname.endswith(os.path.join("gin", "resource_reader.py"))


logging.getLogger().addFilter(_QuietIncludeLookups())


class GinConfigError(ValueError):
  """A gin file or binding that does not fit the registered configurables."""


def resolve_gin_file(path: str) -> str:
  """A gin file by path, or by its name in the package's gin directory ('smoke/electra.gin').

  A name not found gets the nearest shipped names as suggestions.
  """
  for candidate in (path, os.path.join(GIN_DIR, path)):
    if os.path.isfile(candidate):
      return candidate
  close = configs.nearest(path)
  hint = (f"did you mean {' or '.join(close)}?" if close else "python -m tpu_electra.configs lists the shipped ones")
  raise GinConfigError(f"gin file {path!r} not found (looked in the current directory and in {GIN_DIR}); {hint}")


def parse(gin_files: Sequence[str], gin_params: Sequence[str]) -> None:
  """Parses files then bindings (later wins); raises GinConfigError with a one-line message."""
  gin.add_config_file_search_path(GIN_DIR)
  files = [resolve_gin_file(f) for f in gin_files]
  for path in files:
    try:
      gin.parse_config_file(path, skip_unknown=False)
    except (ValueError, KeyError, IOError, SyntaxError) as e:
      raise GinConfigError(f"in gin file {path}: {errors.first_line(e)}") from None
  for binding in gin_params:
    try:
      gin.parse_config(binding, skip_unknown=False)
    except (ValueError, KeyError, SyntaxError) as e:
      raise GinConfigError(f"in --gin_param {binding!r}: {errors.first_line(e)}") from None
  used = referenced_macros()
  for binding in gin_params:
    for line in binding.splitlines():
      match = _MACRO_BINDING.match(line)
      if match and match.group(1) not in used:
        name = match.group(1)
        close = difflib.get_close_matches(name, sorted(used), n=1)
        hint = f"did you mean {close[0]}?" if close else "check the spelling"
        raise GinConfigError(
            f"--gin_param sets macro {name} but no loaded gin file uses %{name}; {hint} "
            f"(macros the loaded files use: {', '.join(sorted(used)) or 'none'})")


def bound_value(binding_key: str):
  """A bound gin value with macro references followed to the value they name."""
  value = gin.query_parameter(binding_key)
  while isinstance(value, gin.config.ConfigurableReference) and value.configurable.name == "macro":
    value = gin.query_parameter("%" + "/".join(value.scopes))
  return value


def referenced_macros() -> Set[str]:
  """Names of every macro that some binding (or another macro) reads with %NAME."""
  found: Set[str] = set()
  for bindings in gin.config._CONFIG.values():  # pylint: disable=protected-access
    for value in bindings.values():
      for ref in _references(value):
        if ref.configurable.name == "macro":
          found.update(ref.scopes)
  return found


def _references(value) -> Iterable[gin.config.ConfigurableReference]:
  if isinstance(value, gin.config.ConfigurableReference):
    yield value
  elif isinstance(value, dict):
    for item in list(value.keys()) + list(value.values()):
      yield from _references(item)
  elif isinstance(value, (list, tuple, set)):
    for item in value:
      yield from _references(item)


def clear() -> None:
  """Forgets every binding (tests parse several configs in one process)."""
  gin.clear_config(clear_constants=False)

