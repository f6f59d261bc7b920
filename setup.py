from setuptools import find_packages, setup

setup(
    name="paddle_strategy",
    version="0.1.0",
    description="PaddleHub 1.x fine-tuning strategies (ULMFiT, L2-SP, AdamWeightDecay, ...) on Paddle 3",
    packages=find_packages(include=["paddle_strategy", "paddle_strategy.*"]),
    python_requires=">=3.9",
    install_requires=["paddlepaddle>=3.3,<3.4", "numpy>=1.24"],
    extras_require={"test": ["pytest>=7"]},
)
