"""What the SavedModel and Hugging Face exports share: the error and writing a file (local or gs://)."""
import tensorflow as tf


class ExportError(ValueError):
  """An export that cannot be done as asked."""


def write_bytes(path: str, data: bytes) -> None:
  with tf.io.gfile.GFile(path, "wb") as f:
    f.write(data)


def write_text(path: str, text: str) -> None:
  with tf.io.gfile.GFile(path, "w") as f:
    f.write(text)

