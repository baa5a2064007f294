"""One loaded SavedModel version: its signatures, checked inputs, and calls.

Every check that does not depend on the wire format lives here, so REST and
gRPC refuse the same inputs with the same words before the graph runs.
"""

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ganzoo.serving.errors import ServingError, first_line, invalid

DEFAULT_SIGNATURE = "serving_default"


@dataclass
class Signature:
    """A serving signature: its callable and what it takes and gives."""

    name: str
    function: object
    inputs: dict  # input name -> tf.TensorSpec
    batcher: object = field(default=None, repr=False)


class Servable:
    """A SavedModel version folder, loaded and warmed up (TF Serving's
    "servable"). `info` is ganzoo's assets/ganzoo.json when there is one."""

    def __init__(self, path, version, max_batch, batching=None):
        import tensorflow as tf
        from tensorflow.core.protobuf import saved_model_pb2

        path = Path(path)
        self.version = version
        self.max_batch = max_batch
        self._loaded = tf.saved_model.load(os.fspath(path))
        # The SignatureDefs exactly as TF Serving reports them (tensor names,
        # DataType enums), read from the graph file rather than rebuilt.
        graph = saved_model_pb2.SavedModel.FromString((path / "saved_model.pb").read_bytes())
        self.signature_defs = graph.meta_graphs[0].signature_def
        meta = path / "assets" / "ganzoo.json"
        self.info = json.loads(meta.read_text()) if meta.is_file() else {}
        self.signatures = {}
        try:
            for name, function in self._loaded.signatures.items():
                signature = Signature(name, function, dict(function.structured_input_signature[1]))
                self.signatures[name] = signature
                if batching is not None:
                    signature.batcher = batching.batcher(lambda arrays, s=signature: self.call(s, arrays))
            for signature in self.signatures.values():
                self._warm_up(signature)
        except BaseException:
            self.close()  # the batch threads of a version that never serves
            raise

    def _warm_up(self, signature):
        """One call with a single zero example, so that a version is only
        served once its graph runs (and the first client does not pay for
        tracing)."""
        arrays = {}
        for name, spec in signature.inputs.items():
            shape = [1 if d is None else d for d in spec.shape]
            arrays[name] = np.zeros(shape, spec.dtype.as_numpy_dtype)
        self.call(signature, arrays)

    def output_names(self, signature):
        return sorted(self.signature_defs[signature.name].outputs) if signature.name in self.signature_defs else []

    def signature(self, name):
        name = name or DEFAULT_SIGNATURE
        if name not in self.signatures:
            raise invalid(f'Serving signature name: "{name}" not found in signature def')
        return self.signatures[name]

    def check(self, signature, arrays):
        """`arrays` ({input name: ndarray of the signature's dtype}) checked
        against the signature: names, shapes, batch sizes, finite floats and
        class ids. Returns them; raises INVALID_ARGUMENT."""
        names = sorted(signature.inputs)
        missing = [n for n in names if n not in arrays]
        extra = sorted(set(arrays) - set(names))
        if missing or extra:
            raise invalid(("Missing input(s) " + ", ".join(missing) + "; " if missing else "")
                          + (f"Unknown input(s) {', '.join(extra)}; " if extra else "")
                          + f"signature {signature.name} takes {', '.join(names)}.")
        sizes = {}
        for name in names:
            array, spec = arrays[name], signature.inputs[name]
            if array.dtype != spec.dtype.as_numpy_dtype:
                raise invalid(f'Expects input "{name}" to be {spec.dtype.name} but {array.dtype.name} is provided.')
            if not spec.shape.is_compatible_with(array.shape):
                wanted = [-1 if d is None else d for d in spec.shape]
                raise invalid(f'Input "{name}" must have shape {wanted} (-1: any); got {list(array.shape)}.')
            if array.ndim:
                if len(array) == 0:
                    raise invalid(f'Input "{name}" is empty.')
                if len(array) > self.max_batch:
                    raise invalid(f"A request may hold at most {self.max_batch} examples; got {len(array)}. "
                                  "Split it into smaller requests.")
                sizes[name] = len(array)
            if array.dtype.kind == "f" and not np.isfinite(array).all():
                raise invalid(f'Input "{name}" holds NaN or infinity (or a number too large for '
                              f"{spec.dtype.name}); every value must be finite.")
            classes = self.info.get("num_classes")
            if name == "labels" and classes and array.size and (array.min() < 0 or array.max() >= classes):
                raise invalid(f"labels must lie in [0, {classes}) for this model (num_classes={classes}); "
                              f"got values from {array.min()} to {array.max()}.")
        if len(set(sizes.values())) > 1:
            raise invalid(f"The inputs have different batch sizes: {sizes}.")
        return arrays

    def run(self, signature, arrays):
        """The signature's outputs for checked `arrays`, as ndarrays; through
        the dynamic batcher when batching is on."""
        if signature.batcher is not None:
            return signature.batcher.run(arrays)
        return self.call(signature, arrays)

    @staticmethod
    def call(signature, arrays):
        import tensorflow as tf

        try:
            outputs = signature.function(**{n: tf.constant(a) for n, a in arrays.items()})
        except (tf.errors.InvalidArgumentError, ValueError, TypeError) as error:
            raise invalid(first_line(getattr(error, "message", None) or str(error))) from None
        except tf.errors.OpError as error:  # its canonical code: RESOURCE_EXHAUSTED is 429, OUT_OF_RANGE 400
            code = {tf.errors.RESOURCE_EXHAUSTED: "RESOURCE_EXHAUSTED", tf.errors.OUT_OF_RANGE: "OUT_OF_RANGE",
                    tf.errors.FAILED_PRECONDITION: "FAILED_PRECONDITION"}.get(error.error_code, "INTERNAL")
            raise ServingError(code, first_line(error.message)) from None
        return {name: value.numpy() for name, value in outputs.items()}

    def close(self):
        for signature in self.signatures.values():
            if signature.batcher is not None:
                signature.batcher.close()
