import pytest

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
  monkeypatch.setattr(tasks, "_TASK_FACTORIES", dict(tasks._TASK_FACTORIES))
  monkeypatch.setattr(tasks, "_TASK_ALIASES", dict(tasks._TASK_ALIASES))
  tasks.register_task("boolq", lambda: tasks.GlueTask("rte"), aliases=["BoolQ-v1"])
  assert "boolq" in tasks.task_names()
  assert tasks.get_task("boolqv1").name == "rte"
  with pytest.raises(ValueError, match="already taken by task 'mnli'"):
    tasks.register_task("mnli2", lambda: tasks.GlueTask("mnli"), aliases=["MNLI"])
  assert "mnli2" not in tasks.task_names() and tasks.get_task("mnli").name == "mnli"
