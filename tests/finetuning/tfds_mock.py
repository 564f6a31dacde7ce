"""TensorFlow Datasets mocked offline with the data of given files, as TFDS itself would store it.

`tfds.testing.mock_data` serves each split as the examples TFDS's own GLUE and SQuAD builders
generate from a file (`_generate_examples`, then the builder's feature encoding), in file order:
the TFDS source and the file readers then hold the same data.
"""
import numpy as np

import tpu_electra  # noqa: F401
import tensorflow as tf
import tensorflow_datasets as tfds
from tensorflow_datasets.datasets.squad import squad_dataset_builder
from tensorflow_datasets.question_answering import qa_utils


def _tfds_examples(name, path, split):
  """What TFDS's builder of `name` stores for `path`: its own reader's examples, encoded by its features."""
  builder = tfds.builder(name)
  if builder.name == "glue":
    generated = builder._generate_examples(path, split)  # pylint: disable=protected-access
  elif builder.builder_config.name == "v2.0":
    generated = squad_dataset_builder._generate_v2_examples(path)  # pylint: disable=protected-access
  else:
    generated = qa_utils.generate_squadlike_examples(path)
  return [_plain(builder.info.features.encode_example(example)) for _, example in generated]


def _plain(value):
  """An encoded example as `from_generator` takes it: TFDS encodes text as object arrays of str, and a
  sequence as a list of 0-d arrays."""
  if isinstance(value, dict):
    return {key: _plain(item) for key, item in value.items()}
  if isinstance(value, list):
    return [_plain(item) for item in value]
  if isinstance(value, np.ndarray) and value.dtype == object:
    return [_plain(item) for item in value] if value.ndim else _plain(value.item())
  return value.encode("utf-8") if isinstance(value, str) else value


def mock_tfds(name, files):
  """TFDS mocked offline: dataset `name`'s splits (`{split: file}`) served as TFDS would store them, in file order."""
  # Generated before mocking: the mock redirects file reads to a temporary file system.
  stored = {split: _tfds_examples(name, path, split) for split, path in files.items()}

  def as_dataset(builder, split, **kwargs):  # pylint: disable=unused-argument
    assert f"{builder.name}/{builder.builder_config.name}" == name
    return tf.data.Dataset.from_generator(lambda: iter(stored[split]),
                                          output_signature=builder.info.features.get_tensor_spec())
  return tfds.testing.mock_data(as_dataset_fn=as_dataset)
