"""dflite: a reproducible study and toolkit for lightweight deepfake detection."""

import warnings

__version__ = "0.1.0"

# timm (through huggingface_hub) and Torch-Pruning import tqdm.auto, which warns inside Jupyter when
# ipywidgets is absent; dflite shows no widget bars in notebooks, so the warning is only noise in
# stored outputs (nbval compares stderr).
warnings.filterwarnings("ignore", message="IProgress not found")
