r"""Converts a released BERT/ELECTRA checkpoint into a tpu_electra run directory.

  python -m tpu_electra.convert --source=huggingface:DIR --output_dir=OUT
  python -m tpu_electra.convert --source=huggingface:DISCRIMINATOR_DIR --generator=huggingface:GENERATOR_DIR \
      --output_dir=OUT
  python -m tpu_electra.convert --source=electra:CHECKPOINT --output_dir=OUT
  python -m tpu_electra.convert --source=tf_models:CHECKPOINT --output_dir=OUT

Sources (KIND:PATH):
- `huggingface`: a directory with `config.json` and `model.safetensors` (or `pytorch_model.bin`,
  read without torch: it is a zip of one pickle and raw storages, unpickled with an allow-list) and
  `vocab.txt` or `tokenizer.json`. Architectures: BertModel, BertForMaskedLM, BertForPreTraining,
  ElectraModel, ElectraForPreTraining (with its replaced-token detector), ElectraForMaskedLM (a
  generator). `--generator=huggingface:DIR` adds an ElectraForMaskedLM generator to an
  ElectraForPreTraining discriminator (transformers ships the two as separate models).
- `electra`: a google-research/electra TF1 checkpoint (its model dir, or one checkpoint prefix),
  variable names as its `model/modeling.py` and `run_pretraining.py` create them (`electra/...`
  discriminator, `generator/...`, `discriminator_predictions/...`, `generator_predictions/...`),
  with `vocab.txt` beside it. Sizes come from a `bert_config.json`/`config.json` beside it when
  there is one, otherwise from the tensors' shapes, with ELECTRA's 64-wide attention heads.
- `tf_models`: a tf-models-official checkpoint (model dir or prefix): an ElectraPretrainer or
  BertPretrainerV2 run with its `params.yaml` (beside the checkpoint or one directory up), or a
  bare BertEncoder with `bert_config.json`; `vocab.txt` beside it. The network is rebuilt with
  tf-models-official's own classes and restored from its object graph, then mapped by name.
  tf-models' "gelu" is the tanh approximation: the EncoderConfig gets APPROXIMATE_GELU.

OUT becomes a run directory as `pretrain` leaves one: checkpoint items `encoder` (always) and
`model` (the objective, where the source has pretraining heads), `vocab.txt`, and `run.json`
recording the source (kind, path, architecture, sha256 of the weights file), the vocab's type and
casing, and what was converted, left out and freshly initialized. What each architecture becomes:

  BertModel, ElectraModel, BertEncoder    encoder only (a BERT pooler is left out); run.json names
                                          the bert / electra objective, heads "absent"
  BertForMaskedLM, ElectraForMaskedLM,    bert objective: encoder + tied MLM head
  BertPretrainerV2
  BertForPreTraining                      bert objective with next-sentence prediction
  ElectraForPreTraining                   encoder, and `model` holding the electra objective's
                                          discriminator, embeddings and RTD head (generator absent)
  ElectraForPreTraining + --generator,    electra objective (generator, discriminator, both heads)
  electra TF1 / ElectraPretrainer         (or discriminator only, from what the checkpoint holds)

Hugging Face and TF1 names are mapped through one table (`LAYER_TENSORS`, the per-layer names;
the TF1 names are first renamed to Hugging Face ones as transformers' own loader does). Dense
kernels: torch Linear weights [out, in] are transposed; attention kernels are reshaped to the
official layers' [H, heads, head_size] / [heads, head_size, H]. Unknown architectures, missing
tensors and shape mismatches are one-line errors naming the tensor.
"""
