"""Reading pretraining shards and fine-tuning features with tf.data."""
