r"""Exports a pretraining run's encoder, or a fine-tuned task model: a TensorFlow SavedModel, or Hugging Face weights.

  python -m tpu_electra.export --model_dir=PRETRAIN_DIR --format=saved_model --output_dir=OUT
  python -m tpu_electra.export --model_dir=PRETRAIN_DIR --format=huggingface --output_dir=OUT
  python -m tpu_electra.export --model_dir=FINETUNE_RUN [--seed=S] --format=saved_model --output_dir=OUT
  python -m tpu_electra.export --model_dir=FINETUNE_RUN [--seed=S] --format=huggingface --output_dir=OUT

--model_dir is a pretraining model dir (its latest checkpoint) or one checkpoint prefix in it, whose
objective is rebuilt from the dir's run.json; or a fine-tuning run dir (run.json of kind
"finetuning"), whose task model is rebuilt from run.json and restored from `seed_<S>/final/model`
(default S: the run's first seed).

saved_model, pretraining run: one serving signature taking `input_word_ids`, `input_mask`,
`input_type_ids` (int32 [batch, length]) and returning `sequence_output` [batch, length, H] and, for
an objective that is a ReplacedTokenDetector (ELECTRA, ALE, TEAMS), `rtd_logits` [batch, length]
(the detector's logits; for TEAMS those of its RTD branch, which has a top layer of its own).

saved_model, fine-tuning run: GLUE tasks' `serving_default` takes raw text, `text` (string
[batch]) for single-sentence tasks or `text_a` + `text_b` for pair tasks, tokenizes it inside the
graph with tensorflow_text (the run's vocab, shipped as assets/vocab.txt, and casing), packs
`[CLS] a [SEP] (b [SEP])` truncated as the runner's features are (longest side first) and padded to
the run's max_seq_length, and returns `probabilities`, `logits`, `label_id` and `label`
(classification) or `score` (regression). `encode` returns the packed ids for the same inputs;
`serve_features` takes ids. Tagging runs (POS, NER) take `words` (string [batch, words], padded with
"") and return `tags` per word (words cut off by max_seq_length, and pads, get O). SQuAD runs take
`question` and `context` (string [batch]), window each context as the runner's features (doc stride,
max query length, max-context flags; any number of windows per question, run as one flat batch) and
decode as the runner does (top n-best starts x ends, max answer length, 2.0's null score against the
run's threshold; settings from the run's run.json), returning `answer` ("" for none),
`answer_start` / `answer_end` (character offsets into the context, -1 for none), `score`,
`has_answer`, `num_windows` and for 2.0 `null_score` and `null_score_diff`. RACE runs take
`article`, `question` (string [batch]) and `options` (string [batch, options]) and return
`probabilities`, `logits`, `answer_index` and `answer` (the letter). Loading needs
`import tensorflow_text` (it registers the ops).

huggingface: `config.json` and `model.safetensors` in the layout of a transformers class:
- ELECTRA, ALE: `ElectraForPreTraining` (the detector is exactly its discriminator head on the last
  layer); cross-layer sharing (ALE) is written out as L copies of the shared layer.
- BERT, SCRIPT: their MLM head too, `BertForMaskedLM` when E = H, `ElectraForMaskedLM` (names
  `generator_predictions.*`, `generator_lm_head`) otherwise (BERT's classes have no embedding
  projection).
- TEAMS: `ElectraModel`, the encoder alone: its RTD branch reads layer L - 1 through a layer of its
  own, which no transformers class holds.
- fine-tuned: `ElectraForSequenceClassification` (GLUE; num_labels 1 for STS-B regression; its head
  is dense + GELU + out_proj on [CLS] as ours), `ElectraForTokenClassification` (tagging),
  `ElectraForQuestionAnswering` (SQuAD; ours also sets padding logits to -10000),
  `ElectraForMultipleChoice` (RACE; its sequence summary on the first token, dense H -> H + activation,
  then its H -> 1 classifier, is our [CLS] scorer). BertForSequenceClassification is never written:
  its pooler is dense + tanh.
The WordPiece vocab is copied as `vocab.txt` with a tokenizer config when reachable.

Mapping, per transformer layer i (official TransformerEncoderBlock → Hugging Face):
  self_attention/{query,key,value}/kernel [H, heads, d] → attention.self.{query,key,value}.weight [H, H]
  self_attention/attention_output/kernel [heads, d, H]  → attention.output.dense.weight [H, H]
  self_attention_layer_norm                             → attention.output.LayerNorm
  intermediate, output                                  → intermediate.dense, output.dense
  output_layer_norm                                     → output.LayerNorm
Dense kernels [in, out] become torch Linear weights [out, in]. Output goes to a temporary directory
renamed into place at the end, so a failed export never leaves a half-written OUT.
"""
