import os

import pytest

from tpu_electra import fileio


def test_an_atomic_write_replaces_the_file_whole_and_leaves_no_temporary_file(tmp_path):
  path = str(tmp_path / "sub" / "report.json")
  fileio.write_atomic(path, "old")
  fileio.write_atomic(path, b"new bytes")
  assert open(path, "rb").read() == b"new bytes"
  assert os.listdir(tmp_path / "sub") == ["report.json"]


def test_a_failed_atomic_write_keeps_the_previous_file(tmp_path):
  path = str(tmp_path / "report.txt")
  fileio.write_atomic(path, "previous")
  with pytest.raises(TypeError):
    fileio.write_atomic(path, 12345)  # Neither text nor bytes: the write fails half way.
  assert open(path).read() == "previous" and os.listdir(tmp_path) == ["report.txt"]


def test_an_unusable_output_dir_is_one_line_naming_the_flag(tmp_path):
  blocker = tmp_path / "file"
  blocker.write_text("not a directory")
  with pytest.raises(fileio.OutputPathError, match=r"cannot write to --output_dir='.*file/out' \(.*\); choose") as error:
    fileio.make_output_dir(str(blocker / "out"), "--output_dir")
  assert "\n" not in str(error.value)
  fileio.make_output_dir(str(tmp_path / "fine"))
  assert os.listdir(tmp_path / "fine") == []


def test_json_that_is_not_an_object_is_one_line_with_the_remedy():
  assert fileio.parse_json_object('{"a": 1}', "x.json", ValueError) == {"a": 1}
  with pytest.raises(ValueError, match=r"^x.json is not valid JSON \(.*\); rebuild it$"):
    fileio.parse_json_object("{", "x.json", ValueError, "rebuild it")
  with pytest.raises(KeyError, match="x.json is not a JSON object"):
    fileio.parse_json_object("[1]", "x.json", KeyError)
