"""dflite: a reproducible study and toolkit for lightweight deepfake detection."""

__version__ = "0.1.0"
