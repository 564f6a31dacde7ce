r"""Checks built pretraining data against its manifest: the vocab, every shard's size, every checksum.

  python -m data_prep.verify --data_dir=gs://bucket/data/wiki_books_owt

Reads every byte of every shard (training and held-out) once, so run it after copying data to a
new place, or when a run reports a DataLossError. Prints a line per shard, then `OK` and the counts;
exits 1 with one line naming the first problem. The trainer itself only compares sizes at start
(tpu_electra.data.manifest.check_shard_sizes), which is cheap; this reads the bytes.
"""
# pylint: disable=g-import-not-at-top,wrong-import-position  (flags are checked before the imports)
from absl import flags

from tpu_electra import cli_utils
from tpu_electra import errors


def define_flags(flag_values: flags.FlagValues) -> None:
  """Defines the command's flags on `flag_values` (absl's FLAGS only when run as a program)."""
  flags.DEFINE_string("data_dir", None, "A directory written by python -m data_prep.build (local or gs://).",
                      flag_values=flag_values)


def check_flags(flag_values: flags.FlagValues) -> None:
  """The flags' errors found before the imports below (cli_utils.run_as_program)."""
  cli_utils.require(flag_values, "data_dir")


if __name__ == "__main__":
  cli_utils.run_as_program(define_flags, "data_prep.verify", check_flags)

import sys
import time

from tpu_electra import fileio
from tpu_electra.data import manifest as manifest_lib

MB = 1 << 20


class _Progress:
  """One line per verified shard: how far, how fast."""

  def __init__(self):
    self._start = time.monotonic()
    self._bytes = 0

  def __call__(self, done: int, total: int, name: str, info: manifest_lib.ShardInfo) -> None:
    self._bytes += info.num_bytes
    rate = self._bytes / MB / max(time.monotonic() - self._start, 1e-9)
    print(f"[{done}/{total}] {name}: {info.num_records} records, {info.num_bytes / MB:.1f} MB, sha256 OK "
          f"({rate:.0f} MB/s)", flush=True)


def verify(data_dir: str) -> str:
  """Runs every check; the summary line (raises DataError on the first problem)."""
  manifest = manifest_lib.read_manifest(data_dir)
  manifest_lib.check_vocab(manifest, data_dir)
  print(f"vocab {manifest.vocab_file}: {manifest.vocab_size} entries, special-token ids as the manifest says",
        flush=True)
  if not manifest.shard_info:
    return (f"OK (vocab only): {data_dir} records no shard sizes or checksums (data built by an older data_prep); "
            "rebuild it with python -m data_prep.build to get these checks")
  manifest_lib.check_shard_sizes(manifest, data_dir)
  manifest_lib.verify_checksums(manifest, data_dir, progress=_Progress())
  total_bytes = sum(info.num_bytes for info in manifest.shard_info.values())
  return (f"OK: {len(manifest.shards)} training shard(s) with {manifest.num_examples} examples, "
          f"{len(manifest.eval_shards)} held-out shard(s) with {manifest.num_eval_examples} examples, "
          f"{total_bytes / MB:.1f} MB, every sha256 matches")


@cli_utils.one_line_errors(manifest_lib.DataError)
def run(flag_values: flags.FlagValues) -> int:
  """Verifies --data_dir; the exit status (1, with one line, for the first problem found)."""
  check_flags(flag_values)
  try:
    print(verify(flag_values.data_dir))
  except fileio.errors() as e:
    print(f"error: cannot read {flag_values.data_dir} ({type(e).__name__}: {errors.first_line(e)})", file=sys.stderr)
    return 1
  return 0


cli = cli_utils.command_line(define_flags, run)
