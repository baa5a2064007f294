"""TF Serving's JSON request and response formats, mapped to ndarrays.

`{"instances": [...]}` (row format) or `{"inputs": ...}` (columnar), with an
optional `"signature_name"`; answers are `{"predictions": ...}` or
`{"outputs": ...}`. Limits come before parsing: nesting depth and the
example count are read from the raw bytes with NumPy, so a 16 MiB body of
100,000 examples is refused in milliseconds instead of being parsed first.
"""

import base64
import json
import re

import numpy as np

from ganzoo.serving.errors import invalid

MAX_DEPTH = 32  # deeper than any tensor a GAN signature takes (rank <= 4, inside 3 levels of JSON)


_INPUTS_OBJECT = re.compile(rb'"inputs"\s*:\s*\{')
_QUOTE, _SLASH, _OPEN, _CLOSE, _COMMA = 1, 2, 3, 4, 5
_CODES = np.zeros(256, np.int8)
_CODES[[ord('"'), ord("\\"), ord("["), ord("{"), ord("]"), ord("}"), ord(",")]] = [1, 2, 3, 3, 4, 4, 5]


def scan(body, max_batch):
    """Refuse, from the raw bytes, bodies nested deeper than MAX_DEPTH or
    with more than `max_batch` examples: the items of `instances` or of a
    list given as `inputs` (depth 2), or the rows of each input of an
    `inputs` object (depth 3, shared among its keys). Works on the
    structural characters only: about 65 ms for 8 MiB of numbers here,
    half the time of json.loads on it."""
    codes = _CODES[np.frombuffer(body, np.uint8)]
    where = np.flatnonzero(codes)
    kind = codes[where]
    quotes = kind == _QUOTE
    slashes = kind == _SLASH
    if slashes.any():  # a quote right after an odd run of backslashes is inside its string
        index = np.arange(kind.size, dtype=np.int64)
        follows = np.r_[False, slashes[:-1] & (np.diff(where) == 1)]  # the entry before is a backslash next to it
        run_start = np.maximum.accumulate(np.where(slashes & ~(follows & slashes), index, 0))
        run_length = np.where(slashes, index - run_start + 1, 0)
        quotes &= ~(follows & (np.r_[0, run_length[:-1]] % 2 == 1))
    outside = (np.cumsum(quotes, dtype=np.int32) % 2 == 0) | quotes
    step = np.where(outside & (kind == _OPEN), 1, np.where(outside & (kind == _CLOSE), -1, 0)).astype(np.int8)
    depth = np.cumsum(step, dtype=np.int32)
    if depth.size and depth.max() > MAX_DEPTH:
        raise invalid(f"The JSON is nested more than {MAX_DEPTH} levels deep.")
    commas = outside & (kind == _COMMA)
    at_two = int(np.count_nonzero(commas & (depth == 2)))
    examples = at_two + 1
    if b'"instances"' not in body and _INPUTS_OBJECT.search(body):
        # {"inputs": {"z": [...], "labels": [...]}}: k keys (k - 1 commas at
        # depth 2) share the depth-3 commas, one fewer than rows per input.
        examples = int(np.count_nonzero(commas & (depth == 3))) // (at_two + 1) + 1
    if examples > max_batch:
        raise invalid(f"A request may hold at most {max_batch} examples; got about {examples}. "
                      "Split it into smaller requests.")


def parse(body, max_batch):
    """The request object of a predict body, or INVALID_ARGUMENT."""
    scan(body, max_batch)
    try:
        request = json.loads(body, parse_constant=_non_finite)
    except (ValueError, RecursionError) as error:  # JSONDecodeError, UnicodeDecodeError, int digit limit
        raise invalid(f"Malformed JSON in the request body: {str(error)[:200]}") from None
    if not isinstance(request, dict):
        raise invalid('The request body must be a JSON object with "instances" or "inputs".')
    unknown = sorted(set(request) - {"instances", "inputs", "signature_name"})
    if unknown:
        raise invalid(f"Unknown key(s) in the request: {', '.join(map(str, unknown))[:200]}; "
                      'expected "instances" or "inputs", and optionally "signature_name".')
    if ("instances" in request) == ("inputs" in request):
        raise invalid('The request must have exactly one of "instances" (row format) or "inputs" '
                      "(columnar format).")
    name = request.get("signature_name", "")
    if not isinstance(name, str):
        raise invalid('"signature_name" must be a string.')
    return request


def _non_finite(token):
    raise invalid(f"{token} is not a number a generator can take: every input value must be finite.")


def inputs(request, specs):
    """`{input name: ndarray of the signature's dtype}` from either format."""
    names = sorted(specs)
    row_format = "instances" in request
    data = request["instances"] if row_format else request["inputs"]
    if row_format:
        if not isinstance(data, list) or not data:
            raise invalid('"instances" must be a non-empty list, one entry per example.')
        if all(isinstance(item, dict) for item in data):
            missing = sorted({n for item in data for n in names if n not in item})
            if missing:
                raise invalid(f'Every instance needs the input(s) {", ".join(missing)} (inputs: {", ".join(names)}).')
            columns = {name: [item[name] for item in data] for name in names}
            extra = sorted({str(key) for item in data for key in item} - set(names))
        elif len(names) == 1 and not any(isinstance(item, dict) for item in data):
            columns, extra = {names[0]: data}, []
        else:
            raise invalid(f"This signature takes {', '.join(names)}: give each instance as an object, "
                          'e.g. {"z": [...], "labels": 3}.')
    elif isinstance(data, dict):
        missing = [name for name in names if name not in data]
        if missing:
            raise invalid(f'"inputs" lacks {", ".join(missing)} (inputs: {", ".join(names)}).')
        columns, extra = {name: data[name] for name in names}, sorted(set(data) - set(names))
    elif len(names) == 1:
        columns, extra = {names[0]: data}, []
    else:
        raise invalid(f'"inputs" must be an object with {", ".join(names)}.')
    if extra:
        raise invalid(f"Unknown input(s) {', '.join(extra)[:200]}; this signature takes {', '.join(names)}.")
    return {name: to_array(name, value, specs[name]) for name, value in columns.items()}


def to_array(name, value, spec):
    """A JSON value as an ndarray of `spec`'s dtype. Integers are range-checked
    before any cast (2**32 must not wrap to class 0); floats that overflow
    the dtype are caught by the finiteness check in `Servable.check`."""
    dtype = spec.dtype.as_numpy_dtype
    try:
        cells = np.asarray(value, dtype=object)
    except (ValueError, RuntimeError):  # RuntimeError: more than NumPy's 32 dimensions
        raise invalid(f'Input "{name}" is ragged or nested too deeply: every example must have the same '
                      f"shape, of rank {spec.shape.rank}.") from None
    if cells.ndim != spec.shape.rank:
        wanted = [-1 if d is None else d for d in spec.shape]
        raise invalid(f'Input "{name}" must have shape {wanted} (-1: any); got {list(cells.shape)}.')
    kinds = {type(cell) for cell in cells.flat}
    if not kinds <= {int, float}:  # true/false would pass as 1/0 in a NumPy cast
        found = ", ".join(sorted({"true/false" if k is bool else "null" if k is type(None) else
                                  "text" if k is str else "objects" for k in kinds - {int, float}}))
        raise invalid(f'Input "{name}" must hold numbers ({spec.dtype.name}); got {found}.')
    if kinds == {int}:
        big = max(cells.flat, key=abs, default=0)
        if abs(big) >= 2**63:
            raise invalid(f'Input "{name}" holds a value outside the range of {spec.dtype.name}.')
    try:
        array = np.asarray(value)
    except OverflowError:  # an integer beyond float64 beside floats
        raise invalid(f'Input "{name}" holds a value outside the range of {spec.dtype.name}.') from None
    kind = array.dtype.kind
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        if kind == "f" and (not np.isfinite(array).all() or np.any(array != np.round(array))):
            raise invalid(f'Input "{name}" must hold integers ({spec.dtype.name}).')
        if array.size and (array.min() < info.min or array.max() > info.max):
            raise invalid(f'Input "{name}" holds a value outside the range of {spec.dtype.name} '
                          f"([{info.min}, {info.max}]).")
    with np.errstate(over="ignore"):
        return array.astype(dtype)


def outputs(arrays, row_format):
    """The response object for a predict call's outputs."""
    arrays = {name: _jsonable(value) for name, value in arrays.items()}
    if row_format:
        if len(arrays) == 1:
            return {"predictions": next(iter(arrays.values()))}
        count = len(next(iter(arrays.values())))
        return {"predictions": [{name: value[i] for name, value in arrays.items()} for i in range(count)]}
    if len(arrays) == 1:
        return {"outputs": next(iter(arrays.values()))}
    return {"outputs": arrays}


def _jsonable(value):
    if value.dtype.kind == "f" and not np.isfinite(value).all():
        # JSON has no NaN: TF Serving writes bare NaN / Infinity tokens,
        # which strict parsers refuse; ganzoo writes them as strings.
        cells = value.astype(object)
        cells[np.isnan(value)] = "NaN"
        cells[np.isposinf(value)] = "Infinity"
        cells[np.isneginf(value)] = "-Infinity"
        return cells.tolist()
    if value.dtype.kind in "SUO":
        return np.vectorize(_text, otypes=[object])(value).tolist()
    return value.tolist()


def _text(item):
    """A string tensor's element: text, or `{"b64": ...}` for bytes that are
    not UTF-8 (TF Serving's encoding of binary values)."""
    if isinstance(item, bytes):
        try:
            return item.decode("utf-8")
        except UnicodeDecodeError:
            return {"b64": base64.b64encode(item).decode("ascii")}
    return str(item)


def dumps(payload):
    return json.dumps(payload, allow_nan=False, separators=(",", ":")).encode()
