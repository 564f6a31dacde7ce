"""Launchers for tpu_electra jobs: Cloud TPU VMs (`launch.tpu`) and GPU hosts (`launch.gpu`).

Both print the exact commands they run; `--dry_run` prints them and runs nothing.
"""
