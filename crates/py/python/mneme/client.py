"""KATOClient: the client of KATO's documentation (session-based API)."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Dict, List, Optional, Tuple

_engines: Dict[str, Any] = {}
_engines_lock = threading.Lock()


class KATOError(Exception):
    """A KATO request answered with an error status: ``status`` and the decoded ``detail``."""

    def __init__(self, status: int, detail: Any, method: str = "", path: str = ""):
        self.status = status
        self.detail = detail
        super().__init__(f"{method} {path} -> {status}: {detail}")


def _engine(data_dir: Optional[str]):
    """One in-process engine per data directory (the pattern store allows one opener)."""
    from ._native import Kato

    import os

    key = os.path.abspath(data_dir or os.environ.get("MNEME_DATA_DIR", ".mneme"))
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            engine = Kato(key)
            _engines[key] = engine
        return engine


class _Http:
    def __init__(self, base_url: str, timeout: float, api_key: Optional[str]):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.headers = {"Content-Type": "application/json"}
        if api_key:
            self.headers["X-API-Key"] = api_key

    def request(self, method: str, path: str, query: str, body: Optional[bytes]) -> Tuple[int, bytes]:
        url = self.base_url + path + (("?" + query) if query else "")
        req = urllib.request.Request(url, data=body, method=method, headers=self.headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()


class _InProcess:
    def __init__(self, data_dir: Optional[str]):
        self.engine = _engine(data_dir)

    def request(self, method: str, path: str, query: str, body: Optional[bytes]) -> Tuple[int, bytes]:
        return self.engine.request(method, path, query, body)


class KATOClient:
    """``KATOClient(base_url=None, node_id="default", ttl_seconds=None, metadata=None,
    config=None, timeout=30, api_key=None, data_dir=None, auto_session=True)``.

    A session is created at construction (``auto_session``); the methods act on it and return
    KATO's JSON answers as dicts. An error status raises ``KATOError``; bad arguments raise
    ``ValueError``/``TypeError`` before any request.
    """

    def __init__(
        self,
        base_url: Optional[str] = None,
        node_id: str = "default",
        ttl_seconds: Optional[int] = None,
        metadata: Optional[Dict[str, Any]] = None,
        config: Optional[Dict[str, Any]] = None,
        timeout: float = 30.0,
        api_key: Optional[str] = None,
        data_dir: Optional[str] = None,
        auto_session: bool = True,
    ):
        if not isinstance(node_id, str) or not node_id:
            raise ValueError("node_id must be a non-empty string")
        self.base_url = base_url
        self.node_id = node_id
        self._transport = _Http(base_url, timeout, api_key) if base_url else _InProcess(data_dir)
        self.session_id: Optional[str] = None
        self.session_info: Optional[Dict[str, Any]] = None
        if auto_session:
            self.create_session(node_id, metadata=metadata, ttl_seconds=ttl_seconds, config=config)

    # -- transport -------------------------------------------------------------------------

    def raw_request(self, method: str, path: str, params: Optional[Dict[str, Any]] = None, body: Any = None) -> Tuple[int, bytes]:
        """One request: ``(status, body bytes)``, as the server answered."""
        query = urllib.parse.urlencode(params or {})
        data = None if body is None else json.dumps(body).encode()
        return self._transport.request(method, path, query, data)

    def _call(self, method: str, path: str, params: Optional[Dict[str, Any]] = None, body: Any = None) -> Any:
        status, data = self.raw_request(method, path, params, body)
        try:
            decoded = json.loads(data) if data else None
        except ValueError:
            decoded = data.decode("utf-8", "replace")
        if status >= 400:
            detail = decoded.get("detail", decoded) if isinstance(decoded, dict) else decoded
            raise KATOError(status, detail, method, path)
        return decoded

    def _session_path(self, action: str = "") -> str:
        if self.session_id is None:
            raise RuntimeError("no session: call create_session() first")
        sid = urllib.parse.quote(self.session_id, safe="")
        return f"/sessions/{sid}" + (f"/{action}" if action else "")

    # -- sessions --------------------------------------------------------------------------

    def create_session(
        self,
        node_id: Optional[str] = None,
        metadata: Optional[Dict[str, Any]] = None,
        ttl_seconds: Optional[int] = None,
        config: Optional[Dict[str, Any]] = None,
    ) -> Dict[str, Any]:
        body: Dict[str, Any] = {"node_id": node_id or self.node_id, "metadata": metadata or {}}
        if ttl_seconds is not None:
            body["ttl_seconds"] = ttl_seconds
        if config is not None:
            body["config"] = config
        info = self._call("POST", "/sessions", body=body)
        self.session_id = info["session_id"]
        self.session_info = info
        return info

    def get_session_info(self) -> Dict[str, Any]:
        return self._call("GET", self._session_path())

    def session_exists(self) -> Dict[str, Any]:
        return self._call("GET", self._session_path("exists"))

    def extend_session(self, ttl_seconds: int = 3600) -> Dict[str, Any]:
        return self._call("POST", self._session_path("extend"), params={"ttl_seconds": ttl_seconds})

    def delete_session(self) -> Dict[str, Any]:
        answer = self._call("DELETE", self._session_path())
        self.session_id = None
        return answer

    def get_session_count(self) -> int:
        return self._call("GET", "/sessions/count")["active_session_count"]

    # -- observing and learning ------------------------------------------------------------

    def observe(
        self,
        strings: Optional[List[str]] = None,
        vectors: Optional[List[List[float]]] = None,
        emotives: Optional[Dict[str, float]] = None,
        metadata: Optional[Dict[str, Any]] = None,
    ) -> Dict[str, Any]:
        if strings is not None and (isinstance(strings, str) or not all(isinstance(s, str) for s in strings)):
            raise TypeError("strings must be a list of str")
        body = {"strings": list(strings or []), "vectors": vectors or [], "emotives": emotives or {}, "metadata": metadata or {}}
        return self._call("POST", self._session_path("observe"), body=body)

    def observe_sequence(
        self,
        observations: List[Dict[str, Any]],
        learn_after_each: bool = False,
        learn_at_end: bool = False,
        clear_stm_between: bool = False,
    ) -> Dict[str, Any]:
        body = {
            "observations": observations,
            "learn_after_each": learn_after_each,
            "learn_at_end": learn_at_end,
            "clear_stm_between": clear_stm_between,
        }
        return self._call("POST", self._session_path("observe-sequence"), body=body)

    def learn(self) -> Dict[str, Any]:
        return self._call("POST", self._session_path("learn"))

    def get_stm(self) -> List[List[str]]:
        return self._call("GET", self._session_path("stm"))["stm"]

    def clear_stm(self) -> Dict[str, Any]:
        return self._call("POST", self._session_path("clear-stm"))

    def clear_all(self) -> Dict[str, Any]:
        return self._call("POST", self._session_path("clear-all"))

    def get_predictions(self) -> List[Dict[str, Any]]:
        return self._call("GET", self._session_path("predictions"))["predictions"]

    def get_predictions_full(self) -> Dict[str, Any]:
        """The whole predictions answer (``predictions``, ``future_potentials``, ``count``, ...)."""
        return self._call("GET", self._session_path("predictions"))

    def get_percept_data(self) -> Dict[str, Any]:
        return self._call("GET", self._session_path("percept-data"))["percept_data"]

    def get_cognition_data(self) -> Dict[str, Any]:
        return self._call("GET", self._session_path("cognition-data"))["cognition_data"]

    def finalize_training(self) -> Dict[str, Any]:
        return self._call("POST", self._session_path("finalize-training"))

    # -- configuration ---------------------------------------------------------------------

    def get_session_config(self) -> Dict[str, Any]:
        return self._call("GET", self._session_path("config"))["config"]

    def update_session_config(self, config: Dict[str, Any]) -> Dict[str, Any]:
        if not isinstance(config, dict):
            raise TypeError("config must be a dict")
        return self._call("POST", self._session_path("config"), body={"config": config})

    def set_recall_threshold(self, value: float) -> Dict[str, Any]:
        if not isinstance(value, (int, float)) or value != value or not 0.0 <= value <= 1.0:
            raise ValueError("recall_threshold must be between 0.0 and 1.0")
        return self.update_session_config({"recall_threshold": value})

    def set_max_pattern_length(self, value: int) -> Dict[str, Any]:
        return self.update_session_config({"max_pattern_length": value})

    # -- node-level ------------------------------------------------------------------------

    def get_pattern(self, pattern_id: str) -> Dict[str, Any]:
        pid = urllib.parse.quote(pattern_id, safe="")
        return self._call("GET", f"/pattern/{pid}", params={"node_id": self.node_id})["pattern"]

    def get_symbol_stats(self) -> Dict[str, Any]:
        return self._call("GET", "/symbols/stats", params={"node_id": self.node_id})["symbols"]

    def get_affinities(self) -> Dict[str, Any]:
        return self._call("GET", "/symbols/affinity", params={"node_id": self.node_id})["affinities"]

    # -- lifetime --------------------------------------------------------------------------

    def close(self) -> None:
        if self.session_id is not None:
            try:
                self.delete_session()
            except KATOError:
                self.session_id = None
        if isinstance(self._transport, _InProcess):
            self._transport.engine.flush()

    def __enter__(self) -> "KATOClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
