"""Fine-tuning tasks by name: what `finetune.task` takes, each name making its adapter.

The nine GLUE tasks (cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli), squad_v1, squad_v2, pos
(tagging, word accuracy), ner (tagging, entity F1), race (multiple choice) and text_classification
(any single-text TSV, its columns and files set by gin); `register_task` adds one. GLUE and SQuAD also
read TensorFlow Datasets (`--data_dir=tfds:[DIR]`, `tfds_source`): the same examples, so the same
features, cache layout and scores. The adapters are in `finetuning.adapters`, their contract in
`finetuning.task_base`.
"""
from typing import Callable, Sequence, Tuple

from tpu_electra import registry
from tpu_electra.finetuning import glue
from tpu_electra.finetuning.adapters import GlueTask, RaceTask, SquadTask, TaggingTask, TextClassificationTask
from tpu_electra.finetuning.task_base import CachedFeaturesTask


def _lookup_key(name: str) -> str:
  return name.lower().replace("-", "").replace(".", "")


# Task name -> a function that makes its adapter (a CachedFeaturesTask), in the order they are listed.
_TASKS: registry.Registry[Callable[[], CachedFeaturesTask]] = registry.Registry("task", normalize=_lookup_key)


def register_task(name: str, factory: Callable[[], CachedFeaturesTask], aliases: Sequence[str] = ()) -> None:
  """Makes a task known to `finetune.task` (and `--gin_param="TASK = '<name>'"`) by `name` and `aliases`.

  A task defined outside this package registers itself when its module is imported, e.g. by an
  `import my_package.my_task` line in the gin file that names it.
  """
  _TASKS.register(name, factory, aliases)


def task_names() -> Tuple[str, ...]:
  return tuple(_TASKS.names())


def get_task(name: str) -> CachedFeaturesTask:
  """A task adapter by name; GLUE names also accept the directory spelling ("SST-2", "sts-b")."""
  return _TASKS.get(name)()


for _glue_name, _glue_task in glue.TASKS.items():
  register_task(_glue_name, lambda name=_glue_name: GlueTask(name), aliases=[_glue_task.directory])
register_task("squad_v1", lambda: SquadTask(version_2=False), aliases=["squad1", "squadv1", "squad_v11", "squad11"])
register_task("squad_v2", lambda: SquadTask(version_2=True), aliases=["squad2", "squadv2", "squad_v20", "squad20"])
register_task("pos", lambda: TaggingTask(name="pos", chunked=False))
register_task("ner", lambda: TaggingTask(name="ner", chunked=True))
register_task("race", RaceTask)
register_task("text_classification", TextClassificationTask)
