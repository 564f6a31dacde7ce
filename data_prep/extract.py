"""Stage 1 of a build, extract: each input part's documents -> sentences staged as text, with the part's summary.

  parts ──extract_part──▶ _work/text/part-N.txt (+ .json)

One task per input part; with several local workers, one per file of a part (extract_work,
extract_piece), then joined (join_pieces). See data_prep.pipeline for the stages that follow.
"""
import dataclasses
import hashlib
import os
import shutil
import time
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from absl import logging

from data_prep import corpus_readers
from data_prep import executor as executor_lib
from data_prep import segment
from data_prep import shards as shards_lib
from data_prep import sources
from data_prep.build_config import BuildConfig, ExtractTask, HELD_OUT_BUCKETS, MB, read_json, work_dir, write_json
from tpu_electra import fileio


# Stage 1: extract.


def extract_tasks(parts: Sequence[sources.Part], config: BuildConfig) -> List[ExtractTask]:
  # Without a held-out split, text that must never be trained on has nowhere to go.
  parts = [part for part in parts if config.held_out_fraction > 0 or not part.held_out]
  return [ExtractTask(i, part, work_dir(config.output_dir), config.skip_bad_files, int(config.work_unit_mb * MB))
          for i, part in enumerate(parts)]


def document_bucket(sentences: Sequence[str]) -> int:
  """The held-out bucket of a document: a hash of its text, the same wherever and whenever it is read."""
  return bucket_of_bytes("\n".join(sentences).encode("utf-8"))


def bucket_of_bytes(text: bytes) -> int:
  """document_bucket of the document whose sentences joined by newlines are `text` (UTF-8)."""
  digest = hashlib.sha256(text).digest()
  return int.from_bytes(digest[:8], "big") * HELD_OUT_BUCKETS >> 64


def staged_path(directory: str, index: int) -> str:
  return os.path.join(directory, "text", f"part-{index:05d}.txt")


def extract_part(task: ExtractTask) -> Dict:
  """Writes the sentences of one part (one per line, a blank line after each document).

  Returns the part's summary: counts, bad files skipped, the byte offsets at which the work
  units of the examples stage start (document boundaries about `unit_bytes` apart), and the text
  bytes per held-out bucket ([bucket, bytes] pairs).
  """
  path = staged_path(task.work_dir, task.index)
  summary_path = path[:-len(".txt")] + ".json"
  if fileio.exists(summary_path):
    return read_json(summary_path)
  bad: Optional[List[str]] = [] if task.skip_bad_files else None
  summary = {"index": task.index, "path": path, "documents": 0, "sentences": 0, "blocks": [0], "bytes": 0,
             "bad_files": [], "input_bytes": task.part.size, "buckets": [], "held_out": task.part.held_out}
  buckets: Dict[int, int] = {}
  tmp = path + shards_lib.TMP_SUFFIX
  try:
    with fileio.open_file(tmp, "wb") as out:
      staged = _stage_documents(sources.read_part(task.part, bad), out)
    summary.update(documents=len(staged.sizes), sentences=staged.sentences, bytes=sum(staged.sizes),
                   blocks=_block_starts(staged.sizes, task.unit_bytes))
    buckets = staged.buckets
  except corpus_readers.SourceError as e:
    if not task.skip_bad_files:
      fileio.remove(tmp)
      raise
    # The whole part is dropped: what it wrote before the error is not kept.
    logging.warning("skipping bad input: %s", e)
    with fileio.open_file(tmp, "wb"):
      pass
    summary.update(documents=0, sentences=0, blocks=[0], bytes=0)
    buckets = {}
    bad = list(bad or []) + [task.part.paths[0]]
  except BaseException:
    if fileio.exists(tmp):
      fileio.remove(tmp)
    raise
  else:
    for name in bad or []:
      logging.warning("skipped bad input %s", name)
  summary["bad_files"] = sorted(set(bad or []))
  summary["buckets"] = sorted([b, n] for b, n in buckets.items())
  fileio.rename(tmp, path)
  write_json(summary_path, summary)
  return summary


@dataclasses.dataclass
class _Staged:
  sizes: List[int]  # Bytes of each document staged.
  sentences: int
  buckets: Dict[int, int]  # Held-out bucket -> bytes.


def _stage_documents(documents: Iterable[corpus_readers.Document], out) -> _Staged:
  """Writes the sentences of each document, a newline after each and a blank line after the document."""
  staged = _Staged([], 0, {})
  for document in documents:
    sentences = segment.split_document(document.paragraphs)
    if not sentences:
      continue
    data = ("\n".join(sentences) + "\n\n").encode("utf-8")
    out.write(data)
    staged.sizes.append(len(data))
    staged.sentences += len(sentences)
    bucket = bucket_of_bytes(data[:-2])
    staged.buckets[bucket] = staged.buckets.get(bucket, 0) + len(data)
  return staged


def _block_starts(sizes: Sequence[int], unit_bytes: int) -> List[int]:
  """Offsets of the work units: a unit ends at the first document boundary at least unit_bytes after its start."""
  blocks = [0]
  offset = 0
  for size in sizes:
    if offset - blocks[-1] >= unit_bytes:
      blocks.append(offset)
    offset += size
  return blocks


@dataclasses.dataclass(frozen=True)
class ExtractPiece:
  """One file of a part of several files: extracted on its own, then joined with the others (join_pieces)."""
  task: ExtractTask
  file_index: int


def extract_work(tasks: Sequence[ExtractTask]) -> List:
  """What run_extract hands to workers: a part of one file whole, a part of several files file by file.

  Small files are grouped into parts of --input_split_mb, so a corpus of a few dozen files has few
  parts of very different sizes; file by file, workers share the work evenly. The staged text and
  summary of a part are the same bytes either way (tests/data_prep/test_pipeline.py).
  """
  work: List = []
  for task in tasks:
    if len(task.part.paths) > 1 and not fileio.exists(_summary_path(task)):
      work.extend(ExtractPiece(task, i) for i in range(len(task.part.paths)))
    else:
      work.append(task)
  return work


def _summary_path(task: ExtractTask) -> str:
  return staged_path(task.work_dir, task.index)[:-len(".txt")] + ".json"


def _piece_path(piece: ExtractPiece) -> str:
  return staged_path(piece.task.work_dir, piece.task.index)[:-len(".txt")] + f".file-{piece.file_index:05d}.txt"


def extract_work_item(item) -> Dict:
  """extract_part of an ExtractTask, extract_piece of an ExtractPiece (a top-level function: workers run it)."""
  return extract_piece(item) if isinstance(item, ExtractPiece) else extract_part(item)


def extract_piece(piece: ExtractPiece) -> Dict:
  """Stages the documents of one file of a part, as extract_part would within the part."""
  path = _piece_path(piece)
  summary_path = path[:-len(".txt")] + ".json"
  if fileio.exists(summary_path):
    return read_json(summary_path)
  task = piece.task
  name = task.part.paths[piece.file_index]
  bad: Optional[List[str]] = [] if task.skip_bad_files else None
  try:
    # As sources.read_part reads a file of a part of several: whole, or skipped when bad.
    documents = list(sources.read_part(sources.Part(task.part.kind, (name,), held_out=task.part.held_out), bad))
  except corpus_readers.SourceError:
    if bad is None:
      raise
    bad.append(name)
    documents = []
  tmp = path + shards_lib.TMP_SUFFIX
  try:
    with fileio.open_file(tmp, "wb") as out:
      staged = _stage_documents(documents, out)
  except BaseException:
    if fileio.exists(tmp):
      fileio.remove(tmp)
    raise
  fileio.rename(tmp, path)
  summary = {"piece": path, "part": task.index, "file_index": piece.file_index, "documents": len(staged.sizes),
             "sentences": staged.sentences, "sizes": staged.sizes, "bad_files": bad or [],
             "buckets": sorted([b, n] for b, n in staged.buckets.items())}
  write_json(summary_path, summary)
  return summary


def join_pieces(task: ExtractTask, pieces: Sequence[Dict]) -> Dict:
  """The staged text and summary of a part from those of its files, as extract_part writes them."""
  path = staged_path(task.work_dir, task.index)
  if fileio.exists(_summary_path(task)):
    return read_json(_summary_path(task))
  pieces = sorted(pieces, key=lambda p: p["file_index"])
  tmp = path + shards_lib.TMP_SUFFIX
  with fileio.open_file(tmp, "wb") as out:
    for piece in pieces:
      _append_file(piece["piece"], out, local=not fileio.is_url(tmp))
  sizes = [size for piece in pieces for size in piece["sizes"]]
  buckets: Dict[int, int] = {}
  for piece in pieces:
    for bucket, size in piece["buckets"]:
      buckets[bucket] = buckets.get(bucket, 0) + size
  bad = [name for piece in pieces for name in piece["bad_files"]]
  for name in bad:
    logging.warning("skipped bad input %s", name)
  summary = {"index": task.index, "path": path, "documents": len(sizes),
             "sentences": sum(p["sentences"] for p in pieces),
             "blocks": _block_starts(sizes, task.unit_bytes), "bytes": sum(sizes), "bad_files": sorted(set(bad)),
             "input_bytes": task.part.size, "buckets": sorted([b, n] for b, n in buckets.items()),
             "held_out": task.part.held_out}
  fileio.rename(tmp, path)
  write_json(_summary_path(task), summary)
  for piece in pieces:
    fileio.remove(piece["piece"])
    fileio.remove(piece["piece"][:-len(".txt")] + ".json")
  return summary


def _append_file(source: str, out, local: bool) -> None:
  """Appends the bytes of `source` to the open file `out`; between local files inside the kernel
  (sendfile), which copies faster than reading and writing them through Python."""
  if not (local and not fileio.is_url(source) and hasattr(os, "sendfile")):
    with fileio.open_file(source, "rb") as f:
      shutil.copyfileobj(f, out, 1 << 20)
    return
  out.flush()
  with open(source, "rb") as f:
    size, offset = os.fstat(f.fileno()).st_size, 0
    while offset < size:
      sent = os.sendfile(out.fileno(), f.fileno(), offset, size - offset)
      if not sent:
        raise OSError(f"{source} ended at byte {offset} of {size} while being copied")
      offset += sent


def _join_item(item: Tuple["ExtractTask", List[Dict]]) -> Dict:
  """join_pieces of (task, pieces) (a top-level function: workers run it)."""
  return join_pieces(*item)


def run_extract(executor: executor_lib.Executor, tasks: Sequence[ExtractTask],
                timings: Optional[Dict[str, float]] = None) -> List[Dict]:
  """The summaries of all parts, in order; several workers share the parts of several files file by file."""
  work = extract_work(tasks) if executor.num_workers > 1 else list(tasks)
  weights = [w.part.size if isinstance(w, ExtractTask) else fileio.size(w.task.part.paths[w.file_index])
             for w in work]
  results = executor_lib.run_stage("extract", executor, extract_work_item, work, weights, "B",
                      lambda s: {"documents": s["documents"], "sentences": s["sentences"]}, timings)
  pieces: Dict[int, List[Dict]] = {}
  summaries: Dict[int, Dict] = {}
  for item, result in zip(work, results):
    if isinstance(item, ExtractPiece):
      pieces.setdefault(item.task.index, []).append(result)
    else:
      summaries[item.index] = result
  start = time.monotonic()
  # Parts are joined from their files' pieces in parallel (each join writes only its own part).
  joins = [(task, pieces[task.index]) for task in tasks if task.index in pieces]
  for summary in executor.imap_unordered(_join_item, joins):
    summaries[summary["index"]] = summary
  if timings is not None:
    timings["extract"] += time.monotonic() - start
  return [summaries[task.index] for task in tasks]


