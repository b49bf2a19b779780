"""The serving layer: one FastAPI app, one router per system, always answering with the latest promoted models."""
