"""Errors as TF Serving reports them: a canonical status code and a message.

The same error reaches REST clients as an HTTP status with `{"error": msg}`
and gRPC clients as a status code with details, mapped as TF Serving maps
them (`tensorflow_serving/util/net_http/...` and its REST handler).
"""

import re

# canonical code -> HTTP status, as TF Serving's REST handler maps them.
HTTP_STATUS = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "NOT_FOUND": 404,
    "RESOURCE_EXHAUSTED": 429,
    "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
    "INTERNAL": 500,
    # HTTP's own answers, for what never reaches a model:
    "METHOD_NOT_ALLOWED": 405,
    "REQUEST_TIMEOUT": 408,
    "PAYLOAD_TOO_LARGE": 413,
}


class ServingError(Exception):
    """A request that cannot be answered; `code` is a gRPC canonical code name."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def http_status(self):
        return HTTP_STATUS.get(self.code, 500)


def invalid(message):
    return ServingError("INVALID_ARGUMENT", message)


def not_found(message):
    return ServingError("NOT_FOUND", message)


_ABSOLUTE_PATH = re.compile(r"(?<![\w.])/(?:[^\s/'\":,;()\[\]]+/)*([^\s/'\":,;()\[\]]+)")


def public_message(text, base=None):
    """`text` with no path of this machine in it: paths under `base` become
    relative to it, any other absolute path is cut to its last part."""
    text = str(text)
    if base is not None:
        text = text.replace(str(base).rstrip("/") + "/", "").replace(str(base), ".")
    return _ABSOLUTE_PATH.sub(lambda m: m.group(1), text)


def first_line(message):
    """The line of a TF error that says what is wrong: an assertion's text
    rather than "Graph execution error:" and the node trace around it."""
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    noise = ("Graph execution error", "Detected at node", "<stack traces", "[[", "Traceback", "File ")
    useful = [line for line in lines if not line.startswith(noise)]
    line = (useful or lines or ["invalid argument"])[0]
    match = re.match(r"assertion failed: \[(.*?)\]", line)
    return match.group(1) if match else line
