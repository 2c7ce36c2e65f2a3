"""The test suite verifies the IR after every pass that changes it, so a pass that breaks it is
named (compile's default verifies once, after the pipeline: see PipelineOptions.verify_each)."""

import os

os.environ.setdefault("GRAPHOPT_VERIFY_EACH", "1")
