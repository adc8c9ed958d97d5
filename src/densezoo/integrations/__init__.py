"""Wiring densezoo into the tools people already run (detectron2)."""
