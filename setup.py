"""tpu_electra: TPU-first pretraining and fine-tuning of compute-efficient text encoders."""
import setuptools

# One tested, compatible set (see docs/STACK.md). protobuf / numpy / pillow are held below
# the newest releases so that the optional Apache Beam extra can join this environment.
INSTALL_REQUIRES = [
    "tensorflow==2.20.0",
    "tf-keras==2.20.1",
    "tensorflow-text==2.20.1",
    "tf-models-official==2.20.0",
    "sentencepiece==0.2.3",
    "gin-config==0.5.0",
    "absl-py==1.4.0",
    "protobuf==6.33.6",
    "numpy==2.4.6",
    "pillow==12.3.0",
    "mwparserfromhell==0.7.2",
    # tensorboard 2.20 (the one tensorflow 2.20 takes) imports pkg_resources, which setuptools 82 and later no
    # longer ship: 81.0.0 is the newest that does, so `tensorboard --logdir` starts in a fresh venv.
    "setuptools==81.0.0",
    # TFRecord framing (masked CRC32C) without TensorFlow: data_prep's workers never import it.
    "google-crc32c==1.9.0",
    # tpu_electra.convert reads model.safetensors with it, header validation included: one Rust
    # extension without dependencies, 1.3 MB installed (measured); transformers 4.57.6 resolves to it too.
    "safetensors==0.8.0",
]

EXTRAS_REQUIRE = {
    "test": ["pytest==9.0.3"],
    # Test-only: tests/test_export.py loads the Hugging Face export with transformers. torch 2.13.0
    # resolves to the CPU wheel where one is on the machine (as on ours and CI's).
    "hf": ["torch==2.13.0", "transformers==4.57.6"],
    "beam": [
        "apache-beam[tfrecord]==2.77.0",
        "pyarrow==25.0.1",
        "python-dateutil==2.9.0.post0",
    ],
    # --data_dir=tfds:[DIR] reads GLUE and SQuAD through TensorFlow Datasets (tpu_electra/finetuning/tfds_source.py);
    # the version tf-models-official 2.20.0 resolves to beside tensorflow 2.20.
    "tfds": ["tensorflow-datasets==4.9.10"],
}

setuptools.setup(
    name="tpu_electra",
    version="0.1.0",
    description="TPU-first pretraining and fine-tuning of ELECTRA-style text encoders.",
    # 3.11-3.13: the range every pinned binary wheel (tensorflow, tensorflow-text, numpy 2.4, ...)
    # is built for; numpy 2.4 needs >= 3.11, tensorflow 2.20 and tensorflow-text 2.20 stop at 3.13.
    python_requires=">=3.11,<3.14",
    # Installed import names: tpu_electra, data_prep, launch. benchmarks/ runs from a checkout
    # (`python -m benchmarks.X`) and is not installed.
    packages=setuptools.find_packages(include=["tpu_electra", "tpu_electra.*", "data_prep", "data_prep.*",
                                               "launch", "launch.*"]),
    # The gin configs are package data: a wheel install finds them by name from any directory.
    package_data={"tpu_electra": ["gin/*.gin", "gin/**/*.gin"]},
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
)
