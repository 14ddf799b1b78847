"""Export and deployment: ONNX under a deployment contract, INT8 quantization, structured pruning, and
the model card. Modules import torch, ONNX and torch-pruning lazily; the CLI (``nas.export.cli``) none.
"""

FORMATS = ("onnx", "tvm", "executorch")
