"""TF Serving's REST and gRPC APIs for SavedModels in its layout.

`ganzoo serve BASE [--grpc-port N] [--batching]` answers, for every
`BASE/<name>/<version>/`:

- `GET  /v1/models/{name}[/versions/{v}|/labels/{l}]`: version status;
- `GET  /v1/models/{name}[/versions/{v}]/metadata`: signature defs;
- `POST /v1/models/{name}[/versions/{v}]:predict` with `{"instances": ...}`
  (row format) or `{"inputs": ...}` (columnar) and optional `"signature_name"`;
- gRPC `PredictionService.Predict`, `.GetModelMetadata` and
  `ModelService.GetModelStatus` with TF Serving's own protos,

so client code written for TF Serving works unchanged. Modules: `errors`
(codes), `servable` (one loaded version, its input checks), `repository`
(background loading, version policy), `batching`, `json_api` (TF Serving's
JSON), `rest` (the ASGI app), `grpc_api`, `server` (both, one process).
"""

from ganzoo.serving.batching import BatchingParameters
from ganzoo.serving.errors import ServingError
from ganzoo.serving.repository import ModelRepository, VersionPolicy
from ganzoo.serving.server import ModelServer, make_server

__all__ = ["BatchingParameters", "ModelRepository", "ModelServer", "ServingError", "VersionPolicy", "make_server"]
