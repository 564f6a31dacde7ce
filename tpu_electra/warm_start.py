"""Continued pretraining's start (`pretrain --init_checkpoint`): restores into a configured objective
whatever a pretraining run's checkpoint has of it, matched through the checkpoint's object graph as
tf.train.Checkpoint.restore matches, and says which parts were restored (run.json's init_checkpoint).
"""
import collections
import dataclasses
from typing import Any, Dict, List, Tuple

import tensorflow as tf

from tpu_electra import objectives
from tpu_electra import runs


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


def restore_available(run: runs.PretrainingRun, objective: objectives.PretrainingObjective,
                      whole_model: bool) -> InitRestore:
  """Restores into a built `objective` what `run`'s checkpoint has of it, for continued pretraining.

  With `whole_model` (the run's objective is the same registered objective and the checkpoint has
  a `model` item) every variable of the objective the checkpoint holds is restored (a converted
  discriminator-only dir has no generator: that stays as initialized); otherwise only the `encoder`
  item, into `objective.encoder`. Variables are matched as tf.train.Checkpoint.restore matches them
  (`match_checkpoint`). The encoder must be restored whole and every restored variable must have
  the checkpoint's shape (one-line runs.RunError otherwise, before anything is assigned).
  Optimizer state and step are never read.
  """
  items = {"encoder": objective.encoder, "model": objective} if whole_model else {"encoder": objective.encoder}
  reader = tf.train.load_checkpoint(run.checkpoint)
  shapes = reader.get_variable_to_shape_map()
  matched, unused_keys = match_checkpoint(reader, **items)
  for variable, key in matched.values():
    if list(shapes[key]) != variable.shape.as_list():
      raise runs.RunError(
          f"{key} of {run.checkpoint} has shape {list(shapes[key])} but the configured {type(objective).__name__}'s "
          f"{variable.name} has {variable.shape.as_list()}; configure the objective as {run.info_path} records it "
          f"(arguments {run.arguments}) or pretrain from scratch")
  missing_encoder = [v.name for v in objective.encoder.variables if id(v) not in matched]
  if missing_encoder:
    raise runs.RunError(f"checkpoint {run.checkpoint} lacks {len(missing_encoder)} variable(s) of the encoder, "
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
