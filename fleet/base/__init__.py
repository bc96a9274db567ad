"""Base layer: what every other layer stands on; imports nothing of the project above it."""
