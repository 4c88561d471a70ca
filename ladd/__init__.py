"""LADD Studio core: Label-Augmented Dataset Distillation in plain PyTorch.

The package knows nothing of its front ends: importing it never imports Streamlit.
"""

__version__ = "0.1.0"
