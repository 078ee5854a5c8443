"""The one call pipeline (pipeline.py) and the checks a call passes before it is forwarded."""
