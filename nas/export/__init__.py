"""Export and deployment: ONNX under a deployment contract, INT8 quantization, structured pruning, other
formats as plugins (``nas.export.format``), and the model card. Modules import torch, ONNX and
torch-pruning lazily; the CLI (``nas.export.cli``) none.
"""

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

from nas.api import callable_package  # noqa: E402  (nas.export(...) is nas.api.export)

callable_package(__name__)
