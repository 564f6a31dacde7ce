import copy

import gin
import pytest

from tpu_electra import gin_utils
from tpu_electra.finetuning import adapters
from tpu_electra.finetuning import runner  # noqa: F401  (registers what the task configs bind)
from tpu_electra.finetuning import tasks


def test_every_task_is_found_by_its_name_and_glue_tasks_by_their_directory_spelling():
  assert tasks.get_task("SST-2").name == "sst-2"
  assert tasks.get_task("stsb").name == "sts-b"
  assert tasks.get_task("squad2").name == "squad_v2"
  for name in tasks.task_names():
    assert tasks.get_task(name).name == name


def test_an_unknown_task_is_one_line_that_lists_the_known_ones():
  with pytest.raises(ValueError, match=r"unknown task 'cola2'; choose one of cola, sst-2, .*race") as error:
    tasks.get_task("cola2")
  assert "\n" not in str(error.value)


def test_a_task_registered_outside_the_package_is_found_and_cannot_take_another_tasks_name(monkeypatch):
  monkeypatch.setattr(tasks, "_TASKS", copy.deepcopy(tasks._TASKS))
  tasks.register_task("boolq", lambda: adapters.GlueTask("rte"), aliases=["BoolQ-v1"])
  assert "boolq" in tasks.task_names()
  assert tasks.get_task("boolqv1").name == "rte"
  with pytest.raises(ValueError, match="already taken by task 'mnli'"):
    tasks.register_task("mnli2", lambda: adapters.GlueTask("mnli"), aliases=["MNLI"])
  assert "mnli2" not in tasks.task_names() and tasks.get_task("mnli").name == "mnli"


@pytest.mark.parametrize("config,task,expected", [
    ("trec", "text_classification", {"train_file": "TREC/train.tsv", "dev_file": "TREC/dev.tsv", "text_column": "text",
                                     "label_column": "label", "primary_metric": "accuracy"}),
    ("conll03", "ner", {"train_file": "CoNLL03/train.txt", "dev_file": "CoNLL03/dev.txt", "chunked": True,
                        "primary_metric": "f1"}),
])
def test_the_embedded_task_configs_read_the_files_embedded_tasks_writes(config, task, expected):
  gin_utils.clear()
  try:
    gin_utils.parse([f"finetune/{config}.gin"], [])
    assert gin.query_parameter("TASK/macro.value") == task
    adapter = tasks.get_task(task)
    assert {name: getattr(adapter, name) for name in expected} == expected
    if config == "trec":
      assert gin.query_parameter("MAX_SEQ_LENGTH/macro.value") == 64
  finally:
    gin_utils.clear()
