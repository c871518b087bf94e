"""Installs ``stemseg_fast`` with ``kernels/`` and ``training/`` as its subpackages.

The two top-level folders install as ``stemseg_fast.kernels`` and ``stemseg_fast.training``,
never as top-level ``kernels``/``training``: a PyPI package named ``kernels`` exists and other
ML libraries import it.
"""

import os

from setuptools import find_packages, setup

SUBPACKAGE_FOLDERS = {"stemseg_fast.kernels": "kernels", "stemseg_fast.training": "training"}


def _packages_under(prefix, folder):
    """Dotted names of the package at ``folder`` and every package below it."""
    names = [prefix]
    names += [f"{prefix}.{sub}" for sub in find_packages(where=folder)]
    return names


packages = find_packages(include=["stemseg_fast", "stemseg_fast.*"])
for prefix, folder in SUBPACKAGE_FOLDERS.items():
    packages += _packages_under(prefix, folder)

here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "README.md"), encoding="utf-8") as readme:
    long_description = readme.read()

setup(
    name="stemseg_fast",
    version="0.1.0",
    description="STEm-Seg video instance segmentation with Triton kernels for its hot paths",
    long_description=long_description,
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=packages,
    package_dir=SUBPACKAGE_FOLDERS,
    package_data={"stemseg_fast.training": ["configs/*.yaml"], "stemseg_fast": ["assets/*"]},
    # Lower bounds: the GPU machine has torch 2.11, triton 3.6 and Python 3.12; CI takes
    # torch 2.13 (CPU wheel) and triton 3.6 (its interpreter runs the kernels on CPU).
    # OpenCV: the headless wheel, because the desktop wheel needs libGL/X11 libraries that
    # servers and containers often lack (import cv2 fails there), and we never open windows.
    install_requires=[
        "torch>=2.11",
        "triton>=3.6",
        "numpy>=1.26",
        "scipy>=1.11",
        "pycocotools>=2.0.7",
        "opencv-python-headless>=4.9",
        "pyyaml>=6.0",
        "tqdm>=4.66",
        "tensorboard>=2.14",
        "pillow>=9.1",  # DAVIS palette PNGs (OpenCV cannot write indexed PNGs)
    ],
    extras_require={
        # The triton 3.6 interpreter (CPU tests) converts 1-element arrays to Python ints, which
        # NumPy 2.4 turned into an error: loops with run-time bounds fail there.
        "test": [
            "pytest>=8.0",
            "pytest-benchmark>=4.0",
            "numpy<2.4",
            "scikit-image>=0.22",
            "ruff>=0.15",
        ],
        # KITTI-MOTS and DAVIS metrics run through trackeval, which goes in with --no-deps (see
        # the Makefile): its metadata pins the desktop opencv-python, whose wheel needs libGL and
        # clobbers our headless cv2; the metrics use only cv2.dilate. trackeval omits its real
        # need scikit-image (skimage.morphology.disk for the DAVIS F measure).
        "eval": ["scikit-image>=0.22"],
        "bench": ["pytest>=8.0", "pytest-benchmark>=4.0"],
    },
    entry_points={"console_scripts": ["stemseg-fast=stemseg_fast.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Image Recognition",
    ],
)
