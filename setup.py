"""tpu_electra: TPU-first pretraining and fine-tuning of compute-efficient text encoders."""
import setuptools

# One tested, compatible set (see ../shared/STACK.md). protobuf / numpy / pillow are held below
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
]

EXTRAS_REQUIRE = {
    "test": ["pytest==9.0.3"],
    # Test-only: tests/test_export.py loads the Hugging Face export with transformers. torch 2.13.0
    # resolves to the CPU wheel where one is on the machine (as on ours and CI's).
    "hf": ["torch==2.13.0", "transformers==4.57.6"],
    "beam": [
        "apache-beam[tfrecord]==2.77.0",
        "google-crc32c==1.9.0",
        "pyarrow==25.0.1",
        "python-dateutil==2.9.0.post0",
    ],
}

setuptools.setup(
    name="tpu_electra",
    version="0.1.0",
    description="TPU-first pretraining and fine-tuning of ELECTRA-style text encoders.",
    python_requires=">=3.11,<3.12",
    # gin/ stays at the top of the checkout; install with `pip install -e .` so it is found.
    packages=setuptools.find_packages(include=["tpu_electra", "tpu_electra.*", "data_prep", "data_prep.*",
                                               "benchmarks", "benchmarks.*", "launch", "launch.*"]),
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
)
