"""05 - top-2 mixture of experts.

Router MatMul -> Softmax -> TopK(k=2) -> renormalise; four expert FFNs computed
densely, stacked, the top-2 picked with GatherElements and mixed by the gate weights;
the dense gate matrix (ScatterElements) is a second output.  Integer-valued TopK
indices flow through Unsqueeze/Expand into GatherElements and ScatterElements.

    python examples/05_moe.py
"""

import sys

from _common import check_model, finish, model_path


def main() -> int:
    return finish(check_model("moe", model_path("moe")))


if __name__ == "__main__":
    sys.exit(main())
