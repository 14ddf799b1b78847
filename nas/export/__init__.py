"""Export and deployment: ONNX under a deployment contract, INT8 quantization, structured pruning, other
formats as plugins (``nas.export.format``), and the model card. Modules import torch, ONNX and
torch-pruning lazily; the CLI (``nas.export.cli``) none.
"""

from nas.api import callable_package
from nas.export.format import ExportFormat
from nas.registry import Registry

FORMATS: Registry[ExportFormat] = Registry(
    "format",
    {
        "onnx": "nas.export.onnx:FORMAT",
        "tvm": "nas.export.tvm:FORMAT",
        "executorch": "nas.export.executorch:FORMAT",
    },
)

callable_package(__name__)  # nas.export(...) is nas.api.export
