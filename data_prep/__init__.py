"""Command-line tools that turn raw corpora into a vocab, TFRecord shards and a manifest."""
