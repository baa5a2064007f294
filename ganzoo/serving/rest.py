"""TF Serving's REST API as an ASGI application (served by uvicorn).

HTTP itself (framing, Content-Length and chunked bodies, keep-alive, idle
timeouts, malformed requests) is uvicorn's and h11's job. This module routes
the four TF Serving URLs, refuses bodies over the limit before reading them,
and answers every error as TF Serving does: its status code and
`{"error": "..."}`.
"""

import asyncio
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import unquote

from ganzoo.serving import json_api
from ganzoo.serving.errors import ServingError, invalid

# Matched on the raw path and decoded part by part afterwards (as TF
# Serving does), so "%2F" or "%3A" in a name cannot forge a separator or verb.
_ROUTE = re.compile(
    r"/v1/models/(?P<name>[^/:]+)"
    r"(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?"
    r"(?P<rest>/metadata|:predict|:classify|:regress)?"
)
_LOG = logging.getLogger("ganzoo.serving")


class RestApp:
    """The ASGI app: `repository` answers, `max_body_bytes` and
    `body_timeout` bound what a client may send."""

    def __init__(self, repository, max_body_bytes=16 * 2**20, body_timeout=30.0, workers=64):
        self.repository = repository
        self.max_body_bytes = max_body_bytes
        self.body_timeout = body_timeout
        # Parsing and the model call run here, off the event loop. Enough
        # threads that concurrent requests can meet in one dynamic batch.
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ganzoo-rest")

    async def _in_thread(self, function, *args):
        return await asyncio.get_running_loop().run_in_executor(self._pool, function, *args)

    def close(self):
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        request = {"body_read": not _has_body(scope)}
        try:
            status, payload = 200, await self._handle(scope, receive, request)
        except ServingError as error:
            status, payload = error.http_status, {"error": error.message}
        except Exception:  # never a traceback to the client, never the server down
            _LOG.exception("Unexpected error answering %s %s", scope["method"], scope["path"][:200])
            status, payload = 500, {"error": "Internal error; the server log has the details."}
        body = await self._in_thread(json_api.dumps, payload) if status == 200 else json_api.dumps(payload)
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if not request["body_read"]:
            # The unread rest of a body cannot be told from a next request
            # (request smuggling): answer, then close.
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _handle(self, scope, receive, request):
        method = scope["method"]
        path = scope.get("raw_path", scope["path"].encode()).decode("latin-1").partition("?")[0]
        route = _ROUTE.fullmatch(path)
        verb = route and route["rest"]
        if route is None or method not in ("GET", "POST") or (method == "POST") != (
                verb in (":predict", ":classify", ":regress")):
            raise invalid(f"Malformed request: {method[:20]} {unquote(path)[:200]}. Use GET /v1/models/NAME, "
                          "GET /v1/models/NAME/metadata or POST /v1/models/NAME:predict.")
        route = {key: None if value is None else unquote(value) for key, value in route.groupdict().items()}
        name, version = route["name"], route["version"]
        if route["label"] is not None:
            version = self.repository.version_of_label(name, route["label"])
        if verb is None:
            return status_json(self.repository, name, version)
        if verb == "/metadata":
            return metadata_json(self.repository.servable(name, version), name)
        if verb != ":predict":
            raise invalid(f"{verb[1:]} needs a classification or regression signature; ganzoo's models have "
                          "predict signatures: POST /v1/models/NAME:predict.")
        servable = self.repository.servable(name, version)  # 404 before the body is read
        body = await self._read_body(scope, receive)
        request["body_read"] = True
        return await self._in_thread(self._predict, servable, body)

    def _predict(self, servable, body):
        request = json_api.parse(body, servable.max_batch)
        signature = servable.signature(request.get("signature_name"))
        arrays = servable.check(signature, json_api.inputs(request, signature.inputs))
        return json_api.outputs(servable.run(signature, arrays), row_format="instances" in request)

    async def _read_body(self, scope, receive):
        declared = _header(scope, b"content-length")
        if declared is not None and int(declared) > self.max_body_bytes:
            raise ServingError("PAYLOAD_TOO_LARGE", f"The request body is {int(declared)} bytes; the limit is "
                                                    f"{self.max_body_bytes} (--max-body-mb). Split the batch.")
        try:
            return await asyncio.wait_for(self._receive_body(receive), self.body_timeout)
        except asyncio.TimeoutError:
            raise ServingError("REQUEST_TIMEOUT", f"The request body did not arrive within "
                                                  f"{self.body_timeout:g} s.") from None

    async def _receive_body(self, receive):
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise invalid("The client closed the connection before sending the whole body.")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:  # a chunked body has no Content-Length to check first
                raise ServingError("PAYLOAD_TOO_LARGE", f"The request body is over the limit of "
                                                        f"{self.max_body_bytes} bytes (--max-body-mb). "
                                                        "Split the batch.")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _header(scope, name):
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


def _has_body(scope):
    length = _header(scope, b"content-length")
    return _header(scope, b"transfer-encoding") is not None or (length is not None and int(length) > 0)


def status_json(repository, name, version=None):
    """GetModelStatus in TF Serving's JSON."""
    return {"model_version_status": [
        {"version": str(number), "state": state.state,
         "status": {"error_code": state.error_code, "error_message": state.error_message}}
        for number, state in repository.status(name, version)
    ]}


def metadata_json(servable, name):
    """GetModelMetadata in TF Serving's JSON: the SignatureDefs as protobuf's
    JSON printer writes them (proto field names, DataType enum names)."""
    from google.protobuf import json_format

    defs = {key: json_format.MessageToDict(value, preserving_proto_field_name=True,
                                           always_print_fields_with_no_presence=True)
            for key, value in servable.signature_defs.items()}
    return {"model_spec": {"name": name, "signature_name": "", "version": str(servable.version)},
            "metadata": {"signature_def": {"signature_def": defs}}}
