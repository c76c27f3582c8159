"""Measurement: statistics over seeds, Grad-CAM scored against manipulation masks, detectors scored on other
data, display labels, and the notebooks' figures."""
