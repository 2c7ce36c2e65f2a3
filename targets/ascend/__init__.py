"""The ascend-sim target: chip descriptions, cube tiling and the per-pipe timing model.

The IR lowering, functional simulator and emitter build on these modules (issues 5 and 6).
"""
