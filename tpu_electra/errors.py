"""The one line an error is reported in, wherever it is caught (CLIs, gin parsing, readers)."""


def first_line(error: BaseException) -> str:
  """The line that says what is wrong (gin and Keras append context on further lines)."""
  # tf.errors.OpError's str() starts with the op's context; its message is what went wrong.
  text = (getattr(error, "message", None) or str(error)).strip()
  return text.splitlines()[0] if text else type(error).__name__
