"""Device latency lookup tables: block keys, measurement backends, tables, calibration, validation.

Heavy dependencies (onnx, onnxruntime, TVM) are imported only by the backend that needs them.
"""
