"""A pretraining model directory, read back: what it is, its encoder, its objective, its tokenizer.

`python -m tpu_electra.pretrain` leaves in its model dir the checkpoints (items `model` = the
objective, `optimizer`, `encoder` = the network fine-tuning keeps) and run.json (tpu_electra.run_info:
the objective's registry name and resolved arguments, the kept encoder's EncoderConfig, the data).
Nothing here parses gin:

- `load_encoder` builds an encoder from the recorded EncoderConfig and restores the `encoder`
  item into it, for fine-tuning (no objective is built); `fresh_encoder` builds the same encoder and
  reads no weights, for fine-tuning from scratch;
- `load_objective` rebuilds the objective from the registry and its recorded arguments and restores
  the whole `model` item, for export, scoring and evaluation (heads included);
- `restore_available` restores into a configured objective whatever the checkpoint has of it
  (matched through the checkpoint's object graph, as tf.train.Checkpoint.restore matches), for
  continued pretraining (`pretrain --init_checkpoint`), and says which parts were restored.

A model dir written before run.json existed is refused with the command that writes one
(`python -m tpu_electra.pretrain --upgrade_run_dir=DIR`).
"""
import collections
import dataclasses
import importlib
import os
import shlex
from typing import Any, Dict, List, Optional, Tuple

from absl import logging
import tpu_electra  # noqa: F401
import tensorflow as tf

from tpu_electra import objectives
from tpu_electra import run_info
from tpu_electra.data import manifest as manifest_lib
from tpu_electra.data import tokenization
from tpu_electra.modeling import EncoderConfig, TransformerEncoder
from tpu_electra.training import trainer


class PretrainedModelError(ValueError):
  """A pretraining model dir that is missing, incomplete, or does not fit what it is used with."""


@dataclasses.dataclass
class PretrainingRun:
  """What fine-tuning, export, scoring and evaluation need to know about one pretraining run."""
  model_dir: str
  checkpoint: str
  info: Dict[str, Any]

  @property
  def info_path(self) -> str:
    return run_info.path_of(self.model_dir)

  @property
  def objective(self) -> str:
    """The objective's registry name ("electra")."""
    return self.info["objective"]["name"]

  @property
  def objective_name(self) -> str:
    """The objective's class name ("Electra")."""
    return self.info["objective"]["class"]

  @property
  def arguments(self) -> Dict[str, Any]:
    return dict(self.info["objective"]["arguments"])

  @property
  def data_dir(self) -> Optional[str]:
    return self.info["data"]["data_dir"]

  def setting(self, name: str, default: Any = None) -> Any:
    """A recorded setting of the run (seed, batch_size, seq_length, train_steps, eval_batches, ...)."""
    value = self.info.get(name)
    return default if value is None else value

  def encoder_config(self) -> EncoderConfig:
    return EncoderConfig(**self.info["encoder_config"])

  def vocab_size(self) -> int:
    return self.encoder_config().vocab_size

  def resolved_data_dir(self) -> Optional[str]:
    """DATA_DIR as written, or relative to the current directory or the repository root."""
    data_dir = self.data_dir
    if not data_dir:
      return None
    candidates = [data_dir]
    if not os.path.isabs(data_dir) and "://" not in data_dir:
      candidates.append(os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                     data_dir))
    for candidate in candidates:
      if tf.io.gfile.exists(os.path.join(candidate, manifest_lib.MANIFEST_NAME)):
        return candidate
    return None

  def manifest(self) -> Optional[manifest_lib.Manifest]:
    data_dir = self.resolved_data_dir()
    return manifest_lib.read_manifest(data_dir) if data_dir else None

  def objective_class(self):
    """The registered class of the run's objective; its module is imported when it is not yet
    registered (an objective defined outside tpu_electra)."""
    record = self.info["objective"]
    if record["name"] not in objectives.names():
      try:
        importlib.import_module(record["module"])
      except ImportError as e:
        raise PretrainedModelError(f"{self.info_path} names objective {record['name']!r} of module "
                                   f"{record['module']!r}, which cannot be imported here ({e})") from None
    try:
      return objectives.get(record["name"])
    except ValueError as e:
      raise PretrainedModelError(f"{self.info_path}: {e}") from None

  def build_objective(self) -> objectives.PretrainingObjective:
    """The run's objective with its recorded arguments and encoder config (not restored)."""
    return self.objective_class()(encoder_config=self.encoder_config(), **self.arguments)

  def vocab_path(self) -> Optional[str]:
    """The vocab the run's embeddings index: the one it carries (a converted run's vocab.txt), else
    its pretraining data's (DATA_DIR's manifest, when found here); None when neither is at hand."""
    carried = self.info["data"].get("vocab_file")
    if carried and tf.io.gfile.exists(os.path.join(self.model_dir, carried)):
      return os.path.join(self.model_dir, carried)
    data_dir = self.resolved_data_dir()
    if data_dir is not None:
      path = manifest_lib.read_manifest(data_dir).vocab_path(data_dir)
      if tf.io.gfile.exists(path):
        return path
    return None

  def identity(self) -> Dict[str, Any]:
    """Which run this is, as another run's run.json records it (e.g. its init_checkpoint)."""
    record = {"model_dir": self.model_dir, "checkpoint": self.checkpoint, "objective": self.objective,
              "encoder_config": self.info["encoder_config"]}
    for key in ("source", "init_checkpoint"):
      if self.info.get(key):
        record[key] = self.info[key]
    return record


def resolve_checkpoint(path: str) -> Tuple[str, str]:
  """(model dir, checkpoint prefix) for a model dir (its latest checkpoint) or a checkpoint prefix."""
  if tf.io.gfile.isdir(path):
    checkpoint = tf.train.latest_checkpoint(path)
    if checkpoint is None:
      raise PretrainedModelError(f"no checkpoint in {path!r}: pass a directory that has one, or pretrain into it "
                                 f"first, e.g. python -m tpu_electra.pretrain --gin_file=smoke/electra.gin "
                                 f"--model_dir={shlex.quote(path)}")
    return path, checkpoint
  if tf.io.gfile.exists(path + ".index"):
    return os.path.dirname(path), path
  raise PretrainedModelError(f"{path!r} is neither a model dir nor a checkpoint prefix (no {path}.index)")


def read_run(path: str) -> PretrainingRun:
  """Reads a pretraining model dir (or one checkpoint prefix inside it) and its run.json."""
  model_dir, checkpoint = resolve_checkpoint(path)
  try:
    info = run_info.read_run_info(model_dir)
  except run_info.RunInfoError as e:
    raise PretrainedModelError(str(e)) from None
  if info is None:
    if tf.io.gfile.exists(os.path.join(model_dir, trainer.OPERATIVE_CONFIG_NAME)):
      raise PretrainedModelError(f"{model_dir!r} was written before runs recorded {run_info.RUN_INFO_NAME}; write "
                                 f"it with: python -m tpu_electra.pretrain --upgrade_run_dir={model_dir}")
    raise PretrainedModelError(f"no {run_info.RUN_INFO_NAME} in {model_dir!r}: cannot tell what wrote {checkpoint}")
  if info.get("kind") != run_info.PRETRAINING:
    raise PretrainedModelError(f"{run_info.path_of(model_dir)} describes a {info.get('kind')!r} run, not a "
                               "pretraining run")
  return PretrainingRun(model_dir=model_dir, checkpoint=checkpoint, info=info)


def _restore(run: PretrainingRun, network: tf.keras.Model, what: str, **items) -> None:
  """Builds the encoder, then restores the checkpoint's `items`, strictly for what exists."""
  network(network.dummy_inputs(batch_size=1, seq_length=2))
  try:
    status = tf.train.Checkpoint(**items).restore(run.checkpoint).expect_partial()
    status.assert_existing_objects_matched()
  except (AssertionError, ValueError, tf.errors.OpError) as e:
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    raise PretrainedModelError(f"checkpoint {run.checkpoint} does not fit the {what} described by {run.info_path}: "
                               f"{first}") from None


def fresh_encoder(run: PretrainingRun) -> TransformerEncoder:
  """An encoder of the recorded EncoderConfig, built, with the fresh weights its initializers draw from
  the global generators (seed them first: `seeding.seed_everything`); nothing of the checkpoint is read.

  Fine-tuning `--from_scratch` starts from it: the no-pretraining baseline of the same shape and vocab.
  """
  encoder = TransformerEncoder(run.encoder_config(), name="encoder")
  encoder(encoder.dummy_inputs(batch_size=1, seq_length=2))
  return encoder


def load_encoder(run: PretrainingRun) -> TransformerEncoder:
  """An encoder of the recorded EncoderConfig with the checkpoint's `encoder` item restored into it.

  Built as `fresh_encoder` builds it, so both draw the same numbers from the global generators and
  whatever is drawn after them (a task head's initial weights) is the same either way.
  """
  encoder = fresh_encoder(run)
  _restore(run, encoder, "encoder", encoder=encoder)
  return encoder


def absent_parts(run: PretrainingRun) -> List[str]:
  """The parts of the run's objective its checkpoint does not hold (a converted encoder-only dir: the heads)."""
  return list((run.info.get("conversion") or {}).get("absent") or [])


def load_objective(run: PretrainingRun) -> objectives.PretrainingObjective:
  """The whole objective (encoder and pretraining heads), restored from the `model` item; from the
  `encoder` item alone when the checkpoint has no `model` (e.g. a converted encoder)."""
  objective = run.build_objective()
  absent = absent_parts(run)
  if absent:
    logging.warning("%s was converted without %s (run.json conversion.absent): those parts of the %s objective "
                    "keep their fresh initial weights", run.model_dir, ", ".join(absent), run.objective)
  keys = tf.train.load_checkpoint(run.checkpoint).get_variable_to_shape_map()
  if any(key.startswith("model/") for key in keys):
    _restore(run, objective.encoder, "objective", model=objective)
  else:
    _restore(run, objective.encoder, "encoder", encoder=objective.encoder)
  return objective


def checkpoint_variables(**items: tf.Module) -> Dict[str, tf.Variable]:
  """The variables of `items` by the key a tf.train.Checkpoint(**items) saves each under.

  A variable reachable along several paths (a shared embedding table) is saved once, under the
  first path TensorFlow's breadth-first traversal finds; these keys are computed by that same
  traversal, so they are the keys such a checkpoint holds.
  """
  # pylint: disable=g-import-not-at-top
  from tensorflow.python.checkpoint import graph_view
  from tensorflow.python.trackable import trackable_utils
  root = tf.train.Checkpoint(**items)  # Held here: the view keeps only a weak reference to it.
  objects, paths = graph_view.ObjectGraphView(root).breadth_first_traversal()
  return {trackable_utils.checkpoint_key(trackable_utils.object_path_to_string(paths[obj]), "VARIABLE_VALUE"): obj
          for obj in objects if isinstance(obj, tf.Variable)}


@dataclasses.dataclass
class InitRestore:
  """What `restore_available` restored into an objective (its parts: the objective's own attributes)."""
  items: List[str]
  restored: List[str]
  fresh: List[str]
  partial: Dict[str, str]
  unused: List[str]
  num_restored: int
  num_variables: int

  def summary(self) -> str:
    line = (f"restored from checkpoint item(s) {'+'.join(self.items)}: {', '.join(self.restored) or 'nothing'}; "
            f"freshly initialized: {', '.join(self.fresh) or 'nothing'}")
    if self.partial:
      line += "; partly restored: " + ", ".join(f"{part} ({how})" for part, how in self.partial.items())
    if self.unused:
      line += f"; in the checkpoint but not in the objective (not used): {', '.join(self.unused)}"
    return line + f" ({self.num_restored} of {self.num_variables} variables restored)"

  def record(self) -> Dict[str, Any]:
    return {"items": list(self.items), "restored": list(self.restored), "fresh": list(self.fresh),
            "partial": dict(self.partial), "unused": list(self.unused)}


def _unused_part(key: str) -> str:
  parts = key.split("/")
  return "/".join(parts[:2]) if len(parts) > 2 else parts[0]


def match_checkpoint(reader, **items: tf.Module) -> Tuple[Dict[int, Tuple[tf.Variable, str]], List[str]]:
  """Matches `items`' variables to a checkpoint's values as tf.train.Checkpoint(**items).restore would:
  along the checkpoint's object graph, by the names of the dependencies from each item down.

  Returns ({id(variable): (variable, checkpoint key)}, keys of the values under those items that no
  variable matched). Keys are where the *writer* saved a value (a shared table is saved once, under
  the first path to it in the writer's graph), so they cannot be computed from the reader's model.
  """
  from tensorflow.core.protobuf import trackable_object_graph_pb2  # pylint: disable=g-import-not-at-top
  graph = trackable_object_graph_pb2.TrackableObjectGraph()
  graph.ParseFromString(reader.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))
  nodes = graph.nodes
  roots = {child.local_name: child.node_id for child in nodes[0].children}
  queue = collections.deque((obj, roots[name]) for name, obj in items.items() if name in roots)
  matched: Dict[int, Tuple[tf.Variable, str]] = {}
  seen, reached = set(), set()
  while queue:
    obj, node_id = queue.popleft()
    if (id(obj), node_id) in seen:
      continue
    seen.add((id(obj), node_id))
    node = nodes[node_id]
    if isinstance(obj, tf.Variable):
      for attribute in node.attributes:
        if attribute.name == "VARIABLE_VALUE":
          matched[id(obj)] = (obj, attribute.checkpoint_key)
      continue
    children = {child.local_name: child.node_id for child in node.children}
    for name, child in tf.train.TrackableView.children(obj).items():
      if name in children:
        queue.append((child, children[name]))
  # Every value under the items, matched or not (a part the configured objective does not have).
  stack = [roots[name] for name in items if name in roots]
  while stack:
    node_id = stack.pop()
    if node_id in reached:
      continue
    reached.add(node_id)
    stack.extend(child.node_id for child in nodes[node_id].children)
  used = {key for _, key in matched.values()}
  unused = sorted(attribute.checkpoint_key for node_id in reached for attribute in nodes[node_id].attributes
                  if attribute.name == "VARIABLE_VALUE" and attribute.checkpoint_key not in used)
  return matched, unused


def restore_available(run: PretrainingRun, objective: objectives.PretrainingObjective,
                      whole_model: bool) -> InitRestore:
  """Restores into a built `objective` what `run`'s checkpoint has of it, for continued pretraining.

  With `whole_model` (the run's objective is the same registered objective and the checkpoint has
  a `model` item) every variable of the objective the checkpoint holds is restored (a converted
  discriminator-only dir has no generator: that stays as initialized); otherwise only the `encoder`
  item, into `objective.encoder`. Variables are matched as tf.train.Checkpoint.restore matches them
  (`match_checkpoint`). The encoder must be restored whole and every restored variable must have
  the checkpoint's shape (one-line PretrainedModelError otherwise, before anything is assigned).
  Optimizer state and step are never read.
  """
  items = {"encoder": objective.encoder, "model": objective} if whole_model else {"encoder": objective.encoder}
  reader = tf.train.load_checkpoint(run.checkpoint)
  shapes = reader.get_variable_to_shape_map()
  matched, unused_keys = match_checkpoint(reader, **items)
  for variable, key in matched.values():
    if list(shapes[key]) != variable.shape.as_list():
      raise PretrainedModelError(
          f"{key} of {run.checkpoint} has shape {list(shapes[key])} but the configured {type(objective).__name__}'s "
          f"{variable.name} has {variable.shape.as_list()}; configure the objective as {run.info_path} records it "
          f"(arguments {run.arguments}) or pretrain from scratch")
  missing_encoder = [v.name for v in objective.encoder.variables if id(v) not in matched]
  if missing_encoder:
    raise PretrainedModelError(f"checkpoint {run.checkpoint} lacks {len(missing_encoder)} variable(s) of the encoder, "
                               f"e.g. {missing_encoder[0]}: it does not hold the encoder {run.info_path} describes")
  for variable, key in matched.values():
    variable.assign(reader.get_tensor(key))
  # Parts: the objective's attributes. A part is judged by its own variables (those no other part
  # reaches: the generator's layers, not the embeddings it shares), or by all it reaches when it
  # owns none (the shared embeddings); a tied MLM head is judged by its transform and bias.
  reach = {name: {id(v) for v in checkpoint_variables(part=child).values()}
           for name, child in tf.train.TrackableView.children(objective).items()}
  reach = {name: ids for name, ids in reach.items() if ids}
  by_part: Dict[str, List[bool]] = {}
  for name, ids in reach.items():
    own = ids - set().union(*(other for other_name, other in reach.items() if other_name != name))
    by_part[name] = [i in matched for i in sorted(own or ids)]
  restored = [part for part, flags in by_part.items() if all(flags)]
  fresh = [part for part, flags in by_part.items() if not any(flags)]
  partial = {part: f"{sum(flags)} of {len(flags)} variables" for part, flags in by_part.items()
             if any(flags) and not all(flags)}
  objective_variables = set().union(*reach.values()) if reach else set()
  unused = sorted({_unused_part(key) for key in unused_keys})
  return InitRestore(items=sorted(items), restored=restored, fresh=fresh, partial=partial, unused=unused,
                     num_restored=len(matched), num_variables=len(objective_variables))


def save_pretraining_dir(objective: objectives.PretrainingObjective, model_dir: str, data_dir: Optional[str] = None,
                         objective_kwargs: Optional[Dict[str, Any]] = None, step: int = 0, **settings) -> str:
  """Writes a model dir as `pretrain` leaves it (checkpoint items `model` and `encoder`, run.json).

  For an objective built in Python, e.g. converted from elsewhere or in tests; returns the
  checkpoint path. Its arguments are those it recorded itself (`objective_kwargs`, when given, must
  agree with them); `settings` are extra run.json entries (seq_length, batch_size, ...). Keras
  builds layers on first use: the encoder is built here, heads are saved only if the objective has
  been called (trained) before.
  """
  arguments = objective.arguments
  differing = {k: v for k, v in (objective_kwargs or {}).items() if arguments.get(k) != v}
  if differing:
    raise ValueError(f"objective_kwargs {differing} differ from the arguments the objective was built with")
  objective.encoder(objective.encoder.dummy_inputs(batch_size=1, seq_length=2))
  tf.io.gfile.makedirs(model_dir)
  checkpoint = tf.train.Checkpoint(model=objective, encoder=objective.encoder)
  path = tf.train.CheckpointManager(checkpoint, model_dir, max_to_keep=1).save(checkpoint_number=step)
  run_info.write_run_info(model_dir, run_info.pretraining_record(objective, data_dir, **settings))
  return path


def load_tokenizer(run: PretrainingRun, vocab: Optional[str] = None, vocab_type: Optional[str] = None,
                   do_lower_case: Optional[bool] = None) -> tokenization.Tokenizer:
  """The pretraining data's tokenizer (DATA_DIR's manifest), or `vocab` when given.

  Either way its size must equal the encoder's embedding rows: token ids from another vocab
  would index the wrong embeddings without any error.
  """
  manifest = None
  data_dir = run.resolved_data_dir()
  if data_dir is not None:
    manifest = manifest_lib.read_manifest(data_dir)
  recorded = run.info["data"]
  if vocab:
    tokenizer = tokenization.load_tokenizer(
        vocab,
        vocab_type or (manifest.vocab_type if manifest else recorded.get("vocab_type", tokenization.WORDPIECE)),
        do_lower_case if do_lower_case is not None else (manifest.do_lower_case if manifest
                                                          else recorded.get("do_lower_case", True)))
    origin = vocab
  elif manifest is not None:
    tokenizer = tokenization.from_manifest(manifest, data_dir)
    origin = manifest.vocab_path(data_dir)
  elif recorded.get("vocab_file") and tf.io.gfile.exists(os.path.join(run.model_dir, recorded["vocab_file"])):
    # A run that carries its vocab (e.g. converted from another framework).
    origin = os.path.join(run.model_dir, recorded["vocab_file"])
    tokenizer = tokenization.load_tokenizer(origin, recorded.get("vocab_type", tokenization.WORDPIECE),
                                            recorded.get("do_lower_case", True))
  else:
    raise PretrainedModelError(f"the pretraining data dir {run.data_dir!r} named in {run.info_path} has no "
                               "manifest here; pass --vocab=<the vocab file the model was pretrained with>")
  vocab_size = run.vocab_size()
  if tokenizer.vocab_size != vocab_size:
    raise PretrainedModelError(f"vocab {origin} has {tokenizer.vocab_size} tokens but the checkpoint's embedding "
                               f"table has {vocab_size} rows; use the vocab the model was pretrained with")
  return tokenizer
