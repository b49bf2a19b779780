"""The platform's asset graph: one sub-package per ML system, composed in `definitions.py`."""
