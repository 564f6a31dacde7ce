r"""Train-step throughput of our objectives against tf-models-official, in the same process.

  python -m benchmarks.train_step --objective=electra --size=small --batch_size=32 --seq_len=128
  python -m benchmarks.train_step --objective=electra --precision=bf16
  python -m benchmarks.train_step --objective=all          # the per-objective table

Prints tokens/s and model-FLOPs utilization (training FLOPs per step — counted as in the ELECTRA
paper but as the hardware executes them: backward = 2 x forward, and embedding lookups left out,
since they run as gathers, not one-hot matmuls — over the step time, over this machine's measured
dense-matmul peak), for ours and — for
ELECTRA — for tf-models-official's ElectraPretrainer with the same shapes, optimizer and loss.
Rounds alternate between the two so that machine noise hits both alike; medians are reported.
"""
import statistics
import time
from typing import Dict, List

from absl import flags
import tpu_electra  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import tensorflow as tf

from benchmarks import common
from tpu_electra import cli_utils
from tpu_electra import flops
from tpu_electra.data import pretraining
from tpu_electra.modeling import encoder_inputs
from tpu_electra.training import optimization, seeding, trainer
from tpu_electra.training import strategy as strategy_lib


def define_flags(flag_values: flags.FlagValues) -> None:
  """Defines the command's flags on `flag_values` (absl's FLAGS only when run as a program)."""
  flags.DEFINE_string("objective", "electra", "A registered objective (bert, electra, ale, teams, script, ...), "
                      "or all.", flag_values=flag_values)
  flags.DEFINE_string("size", "small", "A model size from tpu_electra/gin/models/.", flag_values=flag_values)
  flags.DEFINE_integer("batch_size", 32, "Global batch size.", flag_values=flag_values)
  flags.DEFINE_integer("seq_len", 128, "Sequence length.", flag_values=flag_values)
  flags.DEFINE_enum("precision", "fp32", list(strategy_lib.PRECISIONS), "Compute precision.", flag_values=flag_values)
  flags.DEFINE_integer("steps", 5, "Timed steps per round.", flag_values=flag_values)
  flags.DEFINE_integer("warmup_steps", 2, "Untimed steps (tracing, first-touch allocation) before timing.",
                       flag_values=flag_values)
  flags.DEFINE_integer("rounds", 3, "Alternating timing rounds per implementation.", flag_values=flag_values)
  flags.DEFINE_boolean("jit_compile", False, "XLA-compile the step (both implementations).", flag_values=flag_values)
  flags.DEFINE_boolean("peer", True, "Also time tf-models-official's ElectraPretrainer (ELECTRA only).",
                       flag_values=flag_values)


def ours(objective: str, size: str, batch: Dict[str, tf.Tensor], jit_compile: bool):
  """Our objective's train loop over a repeated batch: run_steps(n) -> per-step mean outputs."""
  objective_class, config = common.objective_and_config(objective, size)
  model = objective_class(encoder_config=config)
  optimizer = optimization.create_optimizer(name="adamw", learning_rate=1e-4, train_steps=10**6, warmup_steps=10)
  strategy = tf.distribute.get_strategy()
  # As the trainer runs it: sampling and dropout draw from the batch's stateless noise seed.
  batch = dict(batch, **{pretraining.NOISE_SEED: pretraining.example_noise_seeds(
      tf.constant([0, 0], tf.int64), batch["input_ids"].shape[0])})
  trainer.build_variables(model, optimizer, strategy, tf.nest.map_structure(tf.TensorSpec.from_tensor, batch))
  seeding.seed_dropout_per_step(model)
  loop = trainer.make_train_loop(model, optimizer, strategy, jit_compile=jit_compile)
  iterator = iter(tf.data.Dataset.from_tensors(batch).repeat())
  # Executed FLOPs: backward = 2 x forward and no lookups (the papers' budgets count backward =
  # forward and lookups as one-hot matmuls).
  batch_size, seq_length = batch["input_ids"].shape  # The callers' --batch_size and --seq_len.
  per_step_flops = flops.train_flops_per_step(model, config, batch_size=batch_size,
                                              seq_length=seq_length, arguments=model.arguments,
                                              backward_factor=2.0, lookups_as_matmuls=False)
  return (lambda n: loop(iterator, n)), model, per_step_flops


def tf_models_electra(size: str, batch: Dict[str, tf.Tensor], jit_compile: bool):
  """tf-models-official's ElectraPretrainer with our ELECTRA's shapes, loss and optimizer."""
  # pylint: disable=g-import-not-at-top
  from official.nlp.modeling import networks
  from official.nlp.modeling.models import electra_pretrainer
  # pylint: enable=g-import-not-at-top
  _, config = common.objective_and_config("electra", size)
  generator_config = config.scaled(0.25)

  # Its sampler adds float32 Gumbel noise to the logits: under bf16 that fails unless the logits
  # are float32 first (the same fix ours has built in).
  original_sampler = electra_pretrainer.sample_from_softmax
  electra_pretrainer.sample_from_softmax = lambda logits, disallow=None: original_sampler(
      tf.cast(logits, tf.float32), disallow)

  def encoder(c, embedding_layer=None):
    return networks.BertEncoder(
        vocab_size=c.vocab_size, hidden_size=c.hidden_size, num_layers=c.num_layers,
        num_attention_heads=c.num_heads, inner_dim=c.intermediate_size, inner_activation="gelu",
        embedding_width=c.embedding_width, max_sequence_length=c.max_position_embeddings,
        type_vocab_size=c.type_vocab_size, output_dropout=c.dropout_rate,
        attention_dropout=c.attention_dropout_rate, embedding_layer=embedding_layer, dict_outputs=True)

  generator = encoder(generator_config)
  discriminator = encoder(config, embedding_layer=generator.get_embedding_layer())
  model = electra_pretrainer.ElectraPretrainer(
      generator_network=generator, discriminator_network=discriminator, vocab_size=config.vocab_size,
      num_classes=2, num_token_predictions=batch["masked_lm_positions"].shape[1], mlm_activation="gelu",
      mlm_initializer=tf.keras.initializers.TruncatedNormal(stddev=0.02), output_type="logits")
  optimizer = optimization.create_optimizer(name="adamw", learning_rate=1e-4, train_steps=10**6, warmup_steps=10)
  inputs = dict(encoder_inputs(batch, batch["masked_input_ids"]), masked_lm_positions=batch["masked_lm_positions"],
                masked_lm_ids=batch["masked_lm_ids"])
  weights = batch["masked_lm_weights"]

  def step():
    with tf.GradientTape() as tape:
      outputs = model(inputs, training=True)
      mlm = tf.keras.losses.sparse_categorical_crossentropy(
          inputs["masked_lm_ids"], tf.cast(outputs["lm_outputs"], tf.float32), from_logits=True)
      mlm_loss = tf.reduce_sum(mlm * weights) / tf.reduce_sum(weights)
      disc = tf.nn.sigmoid_cross_entropy_with_logits(
          labels=tf.cast(outputs["disc_label"], tf.float32), logits=tf.cast(outputs["disc_logits"], tf.float32))
      mask = tf.cast(inputs["input_mask"], tf.float32)
      loss = mlm_loss + 50.0 * tf.reduce_sum(disc * mask) / tf.reduce_sum(mask)
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients([(g, v) for g, v in zip(grads, model.trainable_variables) if g is not None])
    return loss

  compiled_step = tf.function(step, jit_compile=True) if jit_compile else step

  @tf.function
  def run_steps(n):
    loss = compiled_step()
    for _ in tf.range(n - 1):
      loss = compiled_step()
    return {"loss": loss}

  return run_steps, model


def run(flag_values: flags.FlagValues) -> int:
  strategy_lib.set_precision(strategy_lib.PRECISIONS[flag_values.precision])
  peak_dtype = tf.float32 if flag_values.precision == "fp32" else tf.bfloat16
  peak = common.matmul_peak_flops(peak_dtype)
  batch = common.synthetic_batch(flag_values.batch_size, flag_values.seq_len)
  tokens = flag_values.batch_size * flag_values.seq_len
  print(f"machine: {len(tf.config.list_logical_devices('CPU'))} CPU device(s), measured "
        f"{peak_dtype.name} matmul peak {peak / 1e9:.0f} GFLOP/s; "
        f"batch {flag_values.batch_size} x seq {flag_values.seq_len}, "
        f"precision {flag_values.precision}, jit_compile={flag_values.jit_compile}")

  objectives = common.objective_names() if flag_values.objective == "all" else (flag_values.objective,)
  runners, rows = {}, []
  for name in objectives:
    run_steps, model, per_step_flops = ours(name, flag_values.size, batch, flag_values.jit_compile)
    runners[f"tpu_electra {name}"] = (run_steps, per_step_flops, common.count_params(model.trainable_variables))
  if flag_values.peer and "electra" in objectives:
    run_steps, model = tf_models_electra(flag_values.size, batch, flag_values.jit_compile)
    electra_flops = runners["tpu_electra electra"][1]
    runners["tf-models-official ElectraPretrainer"] = (run_steps, electra_flops,
                                                       common.count_params(model.trainable_variables))

  times: Dict[str, List[float]] = {name: [] for name in runners}
  for name, (run_steps, _, _) in runners.items():
    tick = time.perf_counter()
    run_steps(tf.constant(flag_values.warmup_steps))["loss"].numpy()
    print(f"warmed up {name}: {flag_values.warmup_steps} steps + tracing in {time.perf_counter() - tick:.1f} s",
          flush=True)
  for round_index in range(flag_values.rounds):
    for name, (run_steps, _, _) in runners.items():
      times[name].extend(common.time_steps(run_steps, flag_values.steps, warmup_steps=1))
      print(f"round {round_index + 1}/{flag_values.rounds} {name}: {times[name][-1]:.3f} s/step", flush=True)

  baseline = times.get("tf-models-official ElectraPretrainer")
  for name, (_, per_step_flops, params) in runners.items():
    step_time = statistics.median(times[name])
    row = [name, f"{params / 1e6:.1f}M", f"{per_step_flops / 1e9:.0f}", f"{step_time:.3f}",
           f"{tokens / step_time:.0f}", f"{per_step_flops / step_time / peak:.2f}"]
    # The peer runs ELECTRA; the other objectives do other work, so only ELECTRA gets a ratio.
    same_math = name in ("tpu_electra electra", "tf-models-official ElectraPretrainer")
    row.append(f"{statistics.median(baseline) / step_time:.2f}x" if baseline and same_math else "")
    rows.append(row)
  print(common.markdown_table(
      ["implementation", "params", "executed GFLOP/step", "s/step (median)", "tokens/s", "MFU", "vs tf-models"], rows))
  if "tpu_electra electra" in times and "tpu_electra script" in times:
    ratio = statistics.median(times["tpu_electra script"]) / statistics.median(times["tpu_electra electra"])
    print(f"SCRIPT/ELECTRA step-time ratio {ratio:.2f} (paper, TPU: 31.3/22.7 it/s = {31.3 / 22.7:.2f})")
  for name in runners:
    print(f"tokens_per_s[{name}]={tokens / statistics.median(times[name]):.0f}")
  return 0


cli = cli_utils.command_line(define_flags, run)

if __name__ == "__main__":
  cli_utils.run_as_program(define_flags, "benchmarks.train_step")
