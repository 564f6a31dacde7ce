"""Fine-tuning tasks: readers, feature conversion, official metrics and reports.

The reader/metric modules are model-independent and need no TensorFlow (the standard library and
NumPy): the task modules turn raw files into examples and examples into padded integer features
(one example at a time, the reference, and in vectorized batches where a task is large), and turn
model outputs back into predictions and scores. The model-side half (heads, training, the `--seeds` loop)
consumes these functions.

Modules:
  metrics  — accuracy, binary F1, Matthews correlation, Pearson, Spearman (average ranks for ties).
  glue     — GLUE readers, task registry, pair features, the 8-task average and the GLUE score.
  squad    — SQuAD 1.1/2.0 reader and doc-stride features.
  squad_decode — SQuAD n-best span decoding of the model's start/end logits.
  squad_metrics — SQuAD's official EM/F1 (1.1, and 2.0 with the no-answer threshold sweep).
  tagging  — CoNLL reader, first-sub-token features, word accuracy and conlleval's entity-level F1.
  race     — RACE reader, per-option features with article-only truncation, accuracy.
  text_classification — any single-text TSV (columns named by its header), label set, accuracy, macro-F1.
  report   — multi-seed aggregation, JSON and Markdown writers, the GLUE report.
  fileio   — the few file operations the above need, local or `gs://`.
  features — the tokenizer protocol and padding helpers shared by the task modules.
  pretrained — a pretraining model dir read back: operative config, encoder restore, tokenizer.
  models   — task models (encoder + task_heads), loss and outputs (TensorFlow).
  task_base — what every task adapter shares: the contract, TaskData, the feature-writing helpers.
  adapters — per-task batched feature preparation, model choice and scoring of model outputs.
  prefetch — a preparation stage in a thread of its own, a few items ahead.
  tasks    — the tasks by name: register_task, get_task.
  feature_cache — features prepared once into TFRecord shards keyed by what they were made from,
             checked, and found again.
  feature_records — the cache's record format: rows of numpy features as bytes, batches decoded.
  feature_streams — a split's cached features streamed per host for training, in order for evaluation.
  prediction — a model's outputs over a split's rows in whole batches, padding rows dropped.
  runner   — per-seed train/eval loop, multi-seed reports, GLUE summary.
  plots    — learning-curve PNGs.
"""
