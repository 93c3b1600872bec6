"""bl_keras: Big-Little Net (ICLR 2019) in Keras 3 / TensorFlow."""

import pathlib
import re

from setuptools import find_packages, setup

HERE = pathlib.Path(__file__).parent
VERSION = re.search(r'__version__ = "([^"]+)"', (HERE / "bl_keras" / "__init__.py").read_text())[1]

setup(
    name="bl_keras",
    version=VERSION,
    description="Big-Little Net (bL-Net) for TensorFlow / Keras 3: layers, models, training, export",
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["bl_keras", "bl_keras.*", "train", "train.*"]),
    # TensorFlow comes as an extra so CPU-only and GPU machines pick their own build:
    # pip install "bl_keras[cpu]"   or   pip install "bl_keras[gpu]"
    install_requires=[
        "keras>=3.10",
        "numpy>=1.26",
        "absl-py>=2.1",
        "pillow>=10.0",
        "tensorflow-datasets>=4.9.7",
        "tensorboard>=2.16",
        "kaldiio>=2.18",
    ],
    extras_require={
        "cpu": ["tensorflow-cpu>=2.21,<2.22"],
        "gpu": ["tensorflow[and-cuda]>=2.21,<2.22"],
        # KerasHub's detectors (bl_keras.detection). keras-hub requires tensorflow-text, which
        # requires the `tensorflow` distribution (it runs on CPU and GPU): install this extra
        # alone or with [gpu], not with [cpu] (tensorflow-cpu and tensorflow would both own the
        # `tensorflow` package).
        "detection": ["keras-hub>=0.32,<0.33", "pycocotools>=2.0.8"],
        # `python -m bl_keras.export --format onnx` (Keras' ONNX export runs tf2onnx) and
        # ONNX Runtime to run the file.
        "onnx": ["tf2onnx>=1.17,<1.18", "onnxruntime>=1.20"],
        # the plot of `python -m bl_keras.benchmark --report`, and the engines of `--peers`
        "bench": ["matplotlib>=3.8", "onnxruntime>=1.20", "openvino>=2025.0"],
        "test": ["pytest>=8.0", "matplotlib>=3.8", "tf2onnx>=1.17,<1.18", "onnxruntime>=1.20"],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
