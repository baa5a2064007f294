"""`ganzoo serve`: REST (uvicorn) and gRPC in one process, over one repository."""

import socket
import threading

from ganzoo.serving.repository import ModelRepository, VersionPolicy
from ganzoo.serving.rest import RestApp


class ModelServer:
    """TF Serving's REST API on `port` and, with `grpc_port`, its gRPC API,
    for the models under `base`. `serve_forever()` blocks until `shutdown()`
    (or Ctrl-C); port 0 picks a free port (`server_port`, `grpc_port`)."""

    def __init__(self, base, host="127.0.0.1", port=8501, grpc_port=None, max_batch=1024,
                 max_body_bytes=16 * 2**20, batching=None, policy=VersionPolicy(), poll_seconds=1.0,
                 labels=None, timeout_keep_alive=5, header_timeout=10.0, body_timeout=30.0,
                 limit_concurrency=1000):
        import uvicorn

        self.repository = ModelRepository(base, policy=policy, max_batch=max_batch, batching=batching,
                                          poll_seconds=poll_seconds, labels=labels)
        # Bound before anything loads, so a taken port fails at once.
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._socket.bind((host, port))
            self._socket.listen(2048)
        except OSError:
            self._socket.close()
            raise
        self.server_port = self._socket.getsockname()[1]
        self.host = host
        self._grpc = None
        self.grpc_port = None
        if grpc_port is not None:
            from ganzoo.serving import grpc_api

            try:
                self._grpc, self.grpc_port = grpc_api.make_server(self.repository, host, grpc_port, max_body_bytes)
            except BaseException:
                self._socket.close()
                raise
        self._app = RestApp(self.repository, max_body_bytes=max_body_bytes, body_timeout=body_timeout)
        config = uvicorn.Config(
            self._app,
            http=_protocol(header_timeout),
            lifespan="off", access_log=False, log_level="warning", server_header=False,
            timeout_keep_alive=timeout_keep_alive, limit_concurrency=limit_concurrency,
            h11_max_incomplete_event_size=64 * 1024, timeout_graceful_shutdown=2,
        )
        self._uvicorn = uvicorn.Server(config)
        self._stopped = threading.Event()
        try:
            self.repository.start()  # the models on disk now are loaded before the first request
            if self._grpc is not None:
                self._grpc.start()
        except BaseException:
            self.server_close()
            raise

    def serve_forever(self):
        try:
            self._uvicorn.run(sockets=[self._socket])
        finally:
            self._stopped.set()

    def open_connections(self):
        """How many HTTP connections are open now (for tests and health checks)."""
        return len(self._uvicorn.server_state.connections)

    def shutdown(self, timeout=30):
        """Stop serving (from another thread) and free the ports."""
        self._uvicorn.should_exit = True
        self._stopped.wait(timeout)
        self.server_close()

    def server_close(self):
        if self._grpc is not None:
            self._grpc.stop(grace=1).wait(5)
            self._grpc.pool.shutdown(wait=False, cancel_futures=True)
        self.repository.stop()
        self._app.close()
        self._socket.close()


def _protocol(header_timeout):
    """uvicorn's h11 protocol (the strict pure-Python parser: framing errors
    are refused, never guessed at) with a header timeout: uvicorn closes an
    idle connection only after a response, so a client that connects and
    sends nothing, or its headers a byte at a time, would hold its
    connection (and a `limit_concurrency` slot) forever."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class Protocol(H11Protocol):
        _header_timer = None

        def connection_made(self, transport):
            super().connection_made(transport)
            self._arm()

        def handle_events(self):
            cycle = self.cycle
            super().handle_events()
            if self.cycle is not cycle:  # a request's headers arrived whole
                self._disarm()

        def on_response_complete(self):
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()  # for the next request's headers (data_received stops the keep-alive timer)

        def connection_lost(self, exc):
            self._disarm()
            super().connection_lost(exc)

        def _arm(self):
            self._disarm()
            self._header_timer = self.loop.call_later(header_timeout, self._headers_too_slow)

        def _disarm(self):
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_too_slow(self):
            if (self.cycle is None or self.cycle.response_complete) and not self.transport.is_closing():
                self.transport.close()

    return Protocol


def make_server(base, **options):
    """A ModelServer for `base` (see its arguments); call `serve_forever()`."""
    return ModelServer(base, **options)
