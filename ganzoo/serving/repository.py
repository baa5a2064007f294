"""The models under a base folder, loaded in the background as TF Serving does.

A loader thread polls `BASE/<name>/<version>/` every `poll_seconds`. A
version the policy wants is loaded and warmed up off the request path, and
served only once both succeeded. One that fails (a half-copied variables
file, say) is reported with its error and tried again with back-off, or at
once when its files change; the version served before it stays served.
Requests only read a published table, so a broken version never slows the
others. Names in a URL are looked up in that table, never joined into a path.
"""

import re
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from ganzoo.export import versions as saved_versions
from ganzoo.serving.errors import ServingError, first_line, invalid, not_found, public_message
from ganzoo.serving.servable import Servable

_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_VERSION = re.compile(r"[0-9]{1,18}")  # ASCII digits only: "²".isdigit() is True


@dataclass(frozen=True)
class VersionPolicy:
    """TF Serving's `model_version_policy`: the `latest` N versions (default
    1), `all`, or `specific` version numbers."""

    kind: str = "latest"
    num_versions: int = 1
    versions: tuple = ()

    @classmethod
    def parse(cls, text):
        """`latest`, `latest:N`, `all` or `N[,N...]`."""
        text = str(text).strip()
        if text == "all":
            return cls("all")
        if text == "latest" or text.startswith("latest:"):
            count = text.partition(":")[2] or "1"
            if not _VERSION.fullmatch(count) or int(count) < 1:
                raise ValueError(f"latest:N needs a whole number N >= 1, got {text!r}.")
            return cls("latest", int(count))
        numbers = [part.strip() for part in text.split(",")]
        if not numbers or not all(_VERSION.fullmatch(n) for n in numbers):
            raise ValueError(f"A version policy is latest, latest:N, all or version numbers such as 1,3; "
                             f"got {text!r}.")
        return cls("specific", versions=tuple(sorted({int(n) for n in numbers})))

    def wanted(self, on_disk):
        if self.kind == "all":
            return list(on_disk)
        if self.kind == "specific":
            return [v for v in on_disk if v in self.versions]
        return sorted(on_disk)[-self.num_versions:]


@dataclass
class VersionState:
    """What the status call reports for one version."""

    state: str = "START"  # START, LOADING, AVAILABLE, END (TF Serving's ModelVersionStatus.State)
    error_code: str = "OK"
    error_message: str = ""
    servable: Servable = None
    attempts: int = 0
    retry_at: float = 0.0
    fingerprint: tuple = field(default=())


def _fingerprint(folder):
    """Sizes and times of every file: changes while a copy is under way."""
    try:
        return tuple(sorted((str(p.relative_to(folder)), s.st_size, s.st_mtime_ns)
                            for p in folder.rglob("*") if p.is_file() for s in [p.stat()]))
    except OSError:
        return ("unreadable",)


class ModelRepository:
    """The served models under `base`; call `start()` to load and watch them."""

    def __init__(self, base, policy=VersionPolicy(), max_batch=1024, batching=None, poll_seconds=1.0,
                 max_backoff_seconds=300.0, labels=None):
        self.base = Path(base).resolve()
        self.policy = policy
        self.max_batch = max_batch
        self.batching = batching
        self.poll_seconds = poll_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.labels = {name: dict(table) for name, table in (labels or {}).items()}  # name -> {label: version}
        self._states = {}  # name -> {version: VersionState}; written by the loader thread only
        self._serving = {}  # name -> {version: Servable}; replaced whole, read without a lock
        # What status reports: copies taken with `_serving`, so that a status
        # never shows a version the table does not serve yet, or a torn state.
        self._published_states = {}
        self._retired = []  # (close after, Servable): unloaded, but requests may still hold them
        self._stop = threading.Event()
        self._thread = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------ reading
    def names(self):
        """The models with at least one tracked version (loaded, loading or failed)."""
        return sorted(self._serving)

    def servable(self, name, version=None):
        """The Servable for a request. `version`: None (the newest served), a
        URL's text (ASCII digits, else INVALID_ARGUMENT) or gRPC's int64."""
        versions = self._serving.get(name) if isinstance(name, str) else None
        if version is None:
            if versions is None:
                raise not_found(f"Servable not found for request: Latest({str(name)[:100]})")
            if not versions:
                raise ServingError("UNAVAILABLE", f"No version of {name} is available yet: "
                                                  f"see GET /v1/models/{name} for why.")
            return versions[max(versions)]
        number = version if isinstance(version, int) else self.parse_version(version)
        if versions is None or number not in versions:
            raise not_found(f"Servable not found for request: Specific({str(name)[:100]}, {number})")
        return versions[number]

    def version_of_label(self, name, label):
        """The version a label (`--version-label NAME:LABEL=N`) points at."""
        if name not in self._serving:
            raise not_found(f"Servable not found for request: Latest({name})")
        version = self.labels.get(name, {}).get(label)
        if version is None:  # INVALID_ARGUMENT, as in TF Serving
            raise invalid(f"Unrecognized servable version label: {label[:100]}")
        return version

    @staticmethod
    def parse_version(version):
        text = str(version)
        if not _VERSION.fullmatch(text):
            raise invalid(f"Version must be a whole number (ASCII digits), got {text[:40]!r}.")
        return int(text)

    def status(self, name, version=None):
        """TF Serving's GetModelStatus: every tracked version, newest first."""
        states = self._published_states.get(name) if isinstance(name, str) else None
        if not states:
            raise not_found(f"Could not find any versions of model {str(name)[:100]}")
        chosen = dict(states)
        if version is not None:
            number = version if isinstance(version, int) else self.parse_version(version)
            if number not in chosen:
                raise not_found(f"Could not find version {version} of model {name}")
            chosen = {number: chosen[number]}
        return [(number, state) for number, state in sorted(chosen.items(), reverse=True)]

    # ------------------------------------------------------------ loading
    def start(self):
        """Load what is on disk now (so a server starts with its models), then
        keep watching in a background thread."""
        self.poll()
        self._thread = threading.Thread(target=self._watch, daemon=True, name="ganzoo-model-loader")
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        with self._lock:
            for states in self._states.values():
                for state in states.values():
                    if state.servable is not None:
                        state.servable.close()
            for _, servable in self._retired:
                servable.close()
            self._retired.clear()

    def _watch(self):
        while not self._stop.wait(self.poll_seconds):
            try:
                self.poll()
            except Exception:  # a folder vanishing mid-scan, say: the next poll sees the new state
                pass

    def _on_disk(self):
        models = {}
        for folder in self.base.iterdir():
            try:
                if not (_MODEL_NAME.fullmatch(folder.name) and folder.is_dir()):
                    continue
                versions = [v for v in saved_versions(folder) if v < 10**18]  # int64, as TF Serving's
            except OSError:  # an unreadable folder is skipped; the others still update
                continue
            if versions:
                models[folder.name] = versions
        return models

    def poll(self):
        """One pass: pick up new versions and models, retry failed ones, drop
        what vanished or the policy no longer wants (once its successor serves)."""
        with self._lock:
            if self._stop.is_set():
                return
            disk = self._on_disk()
            for name in list(self._states):
                if name not in disk:
                    self._unload(name, list(self._states[name]))
                    del self._states[name]
            for name, versions in disk.items():
                states = self._states.setdefault(name, {})
                wanted = self.policy.wanted(versions)
                for number in wanted:
                    self._maybe_load(name, number, states.setdefault(number, VersionState()))
                keep = set(wanted)
                if self.policy.kind == "latest" and not any(states[n].state == "AVAILABLE" for n in wanted):
                    # Availability first: while no wanted version serves (a
                    # half-copied newest one, say), the newest older version
                    # that loads serves instead, as TF Serving keeps the old
                    # version until its successor is available.
                    for number in sorted(set(versions) - keep, reverse=True):
                        state = states.setdefault(number, VersionState())
                        self._maybe_load(name, number, state)
                        keep.add(number)  # a failed one keeps its back-off and shows its error
                        if state.state == "AVAILABLE":
                            break
                self._unload(name, [n for n in states if n not in keep])
            self._publish()

    def _maybe_load(self, name, number, state):
        if state.state == "AVAILABLE":
            return
        folder = self.base / name / str(number)
        fingerprint = _fingerprint(folder)
        if state.state == "END" and fingerprint == state.fingerprint and time.monotonic() < state.retry_at:
            return
        state.state, state.fingerprint = "LOADING", fingerprint
        try:
            servable = Servable(folder, number, self.max_batch, self.batching)
        except Exception as error:
            state.attempts += 1
            state.state, state.error_code = "END", _code_of(error)
            state.error_message = public_message(first_line(getattr(error, "message", None) or error), self.base)
            state.retry_at = time.monotonic() + min(self.max_backoff_seconds, 5.0 * 2.0 ** (state.attempts - 1))
            return
        state.state, state.error_code, state.error_message = "AVAILABLE", "OK", ""
        state.servable, state.attempts = servable, 0

    def _unload(self, name, numbers):
        states = self._states.get(name, {})
        for number in numbers:
            state = states.pop(number, None)
            if state is not None and state.servable is not None:
                # Closed later: a request that picked it just before the
                # table changed still finishes on it.
                self._retired.append((time.monotonic() + 60.0, state.servable))

    def _publish(self):
        self._serving = {name: {n: s.servable for n, s in states.items() if s.state == "AVAILABLE"}
                         for name, states in self._states.items() if states}
        self._published_states = {name: {n: replace(s) for n, s in states.items()}
                                   for name, states in self._states.items() if states}
        now = time.monotonic()
        for _, servable in [r for r in self._retired if r[0] <= now]:
            servable.close()
        self._retired = [r for r in self._retired if r[0] > now]


def _code_of(error):
    """The canonical code of a load error, as TF Serving reports it."""
    name = type(error).__name__
    codes = {"DataLossError": "DATA_LOSS", "NotFoundError": "NOT_FOUND", "InvalidArgumentError": "INVALID_ARGUMENT",
             "FailedPreconditionError": "FAILED_PRECONDITION", "ResourceExhaustedError": "RESOURCE_EXHAUSTED",
             "OutOfRangeError": "OUT_OF_RANGE", "ServingError": getattr(error, "code", "UNKNOWN")}
    return codes.get(name, "UNKNOWN")
