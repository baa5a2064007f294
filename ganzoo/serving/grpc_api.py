"""TF Serving's gRPC API: PredictionService (Predict, GetModelMetadata) and
ModelService (GetModelStatus), with the official protos of
`tensorflow-serving-api`, so its stubs talk to `ganzoo serve` unchanged.

Install the protos without their `tensorflow` requirement, which would put a
second TensorFlow over tensorflow-cpu (tensorflow/serving#1847):
`pip install --no-deps tensorflow-serving-api`.
"""

import logging
from concurrent import futures

from ganzoo.serving.errors import ServingError, invalid

_LOG = logging.getLogger("ganzoo.serving")
INSTALL_HINT = ('gRPC needs the protos of TF Serving: pip install --no-deps "tensorflow-serving-api>=2.16" '
                "(--no-deps: its tensorflow requirement would install a second TensorFlow over tensorflow-cpu).")


def _protos():
    try:
        from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2, model_service_pb2_grpc,
                                             predict_pb2, prediction_service_pb2_grpc)
    except ImportError as error:
        raise ImportError(INSTALL_HINT) from error
    return get_model_metadata_pb2, get_model_status_pb2, model_service_pb2_grpc, predict_pb2, prediction_service_pb2_grpc


def make_server(repository, host, port, max_message_bytes, workers=16):
    """A started-later `grpc.Server` on `host:port` (0: any free port);
    returns `(server, port)`."""
    import grpc

    metadata_pb2, status_pb2, model_grpc, predict_pb2, prediction_grpc = _protos()
    pool = futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ganzoo-grpc")
    server = grpc.server(pool,
                         # no SO_REUSEPORT: a second server on a taken port must fail, not share it
                         options=[("grpc.so_reuseport", 0),
                                  ("grpc.max_receive_message_length", max_message_bytes),
                                  ("grpc.max_send_message_length", 2**31 - 1)],
                         maximum_concurrent_rpcs=256)
    # The generated base classes answer the methods ganzoo lacks (Classify,
    # Regress, MultiInference, HandleReloadConfigRequest) with UNIMPLEMENTED.
    prediction = type("PredictionService", (_PredictionService, prediction_grpc.PredictionServiceServicer), {})
    models = type("ModelService", (_ModelService, model_grpc.ModelServiceServicer), {})
    prediction_grpc.add_PredictionServiceServicer_to_server(prediction(repository, metadata_pb2, predict_pb2), server)
    model_grpc.add_ModelServiceServicer_to_server(models(repository, status_pb2), server)
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError:
        bound = 0
    if not bound:
        pool.shutdown(wait=False)
        raise OSError(98, f"Cannot listen for gRPC on {host}:{port}")
    server.pool = pool  # grpc's stop() leaves the executor it was given running
    return server, bound


def _answer(context, call):
    """Run `call`; a ServingError becomes its gRPC status, as in TF Serving,
    and anything else INTERNAL with no detail (the log has it)."""
    import grpc

    try:
        return call()
    except ServingError as error:
        code = getattr(grpc.StatusCode, error.code, grpc.StatusCode.INVALID_ARGUMENT)
        context.abort(code, error.message)
    except Exception:
        _LOG.exception("Unexpected error in a gRPC call")
        context.abort(grpc.StatusCode.INTERNAL, "Internal error; the server log has the details.")


def _version(spec, repository):
    if spec.HasField("version"):
        return spec.version.value
    if spec.version_label:
        return repository.version_of_label(spec.name, spec.version_label)
    return None


def _decode(name, proto, spec, max_batch):
    """A TensorProto as an ndarray, refused before it is expanded when its
    dtype or shape is not the signature's: a 20-byte proto can name a
    [2000, 100000] tensor of one repeated value."""
    import numpy as np
    import tensorflow as tf

    if spec is None:
        raise invalid(f"Unknown input {name[:100]!r} for this signature.")
    if proto.dtype != spec.dtype.as_datatype_enum:
        try:
            got = tf.dtypes.as_dtype(proto.dtype).name
        except TypeError:
            got = f"DataType {proto.dtype}"
        raise invalid(f'Expects input "{name}" to be {spec.dtype.name} but {got} is provided.')
    shape = [d.size for d in proto.tensor_shape.dim]
    wanted = [-1 if d is None else d for d in spec.shape]
    if proto.tensor_shape.unknown_rank or not spec.shape.is_compatible_with(shape) or any(d < 0 for d in shape):
        raise invalid(f'Input "{name}" must have shape {wanted} (-1: any); got {shape}.')
    if shape and shape[0] > max_batch:
        raise invalid(f"A request may hold at most {max_batch} examples; got {shape[0]}. "
                      "Split it into smaller requests.")
    try:
        array = tf.make_ndarray(proto)
    except (TypeError, ValueError) as error:
        raise invalid(f'Input "{name}" is not a valid TensorProto: {str(error)[:200]}') from None
    return np.asarray(array)


class _PredictionService:
    def __init__(self, repository, metadata_pb2, predict_pb2):
        self.repository, self.metadata_pb2, self.predict_pb2 = repository, metadata_pb2, predict_pb2

    def Predict(self, request, context):
        return _answer(context, lambda: self._predict(request))

    def _predict(self, request):
        import tensorflow as tf

        spec = request.model_spec
        servable = self.repository.servable(spec.name, _version(spec, self.repository))
        signature = servable.signature(spec.signature_name)
        names = servable.output_names(signature)
        wanted = list(request.output_filter) or names
        unknown = [name for name in wanted if name not in names]
        if unknown:  # refused before the model runs
            raise invalid(f"output tensor alias not found in signature: {unknown[0][:100]} Outputs expected to be "
                          f"in the set {{{','.join(names)}}}.")
        arrays = {name: _decode(name, proto, signature.inputs.get(name), servable.max_batch)
                  for name, proto in request.inputs.items()}
        outputs = servable.run(signature, servable.check(signature, arrays))
        response = self.predict_pb2.PredictResponse()
        response.model_spec.name = spec.name
        response.model_spec.version.value = servable.version
        response.model_spec.signature_name = signature.name
        for name in wanted:
            response.outputs[name].CopyFrom(tf.make_tensor_proto(outputs[name]))
        return response

    def GetModelMetadata(self, request, context):
        return _answer(context, lambda: self._metadata(request))

    def _metadata(self, request):
        fields = list(request.metadata_field)
        if fields != ["signature_def"]:
            raise invalid("Metadata field(s) must be exactly [signature_def]; got "
                          f"{', '.join(fields)[:200] or 'none'}.")
        spec = request.model_spec
        servable = self.repository.servable(spec.name, _version(spec, self.repository))
        response = self.metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = spec.name
        response.model_spec.version.value = servable.version
        signatures = self.metadata_pb2.SignatureDefMap()
        for key, value in servable.signature_defs.items():
            signatures.signature_def[key].CopyFrom(value)
        response.metadata["signature_def"].Pack(signatures)
        return response


class _ModelService:
    def __init__(self, repository, status_pb2):
        self.repository, self.status_pb2 = repository, status_pb2

    def GetModelStatus(self, request, context):
        return _answer(context, lambda: self._status(request))

    def _status(self, request):
        from tensorflow_serving.apis import status_pb2 as util_status_pb2

        spec = request.model_spec
        version = _version(spec, self.repository)
        response = self.status_pb2.GetModelStatusResponse()
        states = self.status_pb2.ModelVersionStatus.State
        codes = _error_codes()
        for number, state in self.repository.status(spec.name, version):
            entry = response.model_version_status.add(version=number, state=states.Value(state.state))
            entry.status.CopyFrom(util_status_pb2.StatusProto(error_code=codes.get(state.error_code, 2),
                                                              error_message=state.error_message))
        return response


def _error_codes():
    """Canonical code name -> number (tensorflow.error.Code)."""
    from tensorflow.core.protobuf import error_codes_pb2

    return dict(error_codes_pb2.Code.items())
