"""Ray's dashboard REST API for Serve: apply a config and read Serve's state, as ``serve deploy`` does.

``PUT /api/serve/applications/`` is Ray's public route for declarative Serve configs (KubeRay's RayService
controller uses it too); ``GET`` on the same path gives every application, deployment and replica. A Ray
with token authentication (the default of a ``ray start`` that finds a token) wants the token Ray keeps in
``RAY_AUTH_TOKEN``, the file ``RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``, sent as a bearer header.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DEFAULT_DASHBOARD_PORT = 8265
DEFAULT_DASHBOARD = f"http://127.0.0.1:{DEFAULT_DASHBOARD_PORT}"
"""Where ``voxstack serve`` puts Ray's dashboard, and where ``voxstack deploy`` looks by default."""

APPLICATIONS = "/api/serve/applications/"


class DashboardError(ConnectionError):
    """The dashboard could not be reached, refused the token, or rejected the config (its words are kept)."""


def auth_token() -> str | None:
    """The Ray token this machine has, looked up where Ray looks (None: none, send no header)."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return os.environ["RAY_AUTH_TOKEN"].strip()
    path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def normalise(address: str) -> str:
    """``host:port`` or a URL, as an ``http://`` URL without a trailing slash."""
    address = address.strip().rstrip("/")
    return address if "://" in address else f"http://{address}"


class Dashboard:
    """One Ray dashboard, by URL (``http://HOST:PORT``)."""

    def __init__(self, address: str = DEFAULT_DASHBOARD, timeout_s: float = 30.0) -> None:
        self.url = normalise(address)
        self.timeout_s = timeout_s

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @staticmethod
    def auth_headers() -> dict[str, str]:
        token = auth_token()
        return {} if token is None else {"Authorization": f"Bearer {token}"}

    def _call(self, method: str, path: str, body: Any = None) -> bytes:
        headers = {"Accept": "application/json", **self.auth_headers()}
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return bytes(response.read())
        except urllib.error.HTTPError as error:
            detail = error.read().decode("utf-8", errors="replace").strip()
            hint = " (the token in ~/.ray/auth_token or RAY_AUTH_TOKEN is missing or not this cluster's)" \
                if error.code == 401 else ""
            raise DashboardError(f"Ray's dashboard at {self.url} answered {method} {path} with "
                                 f"{error.code}{hint}: {detail[-2000:]}") from None
        except (OSError, TimeoutError) as error:
            raise DashboardError(f"cannot reach Ray's dashboard at {self.url}: {error} "
                                 "(voxstack serve prints the address to give --address)") from None

    def answers(self) -> bool:
        """Whether the dashboard is up and takes this machine's token."""
        try:
            self._call("GET", "/api/version")
        except DashboardError:
            return False
        return True

    def apply(self, raw: dict[str, Any]) -> None:
        """Hand Serve a whole config (every application it lists; others are deleted); returns at once."""
        self._call("PUT", APPLICATIONS, raw)

    def serve_details(self) -> dict[str, Any]:
        """Serve's state: applications with their deployments and replicas, proxies, HTTP options."""
        answer: dict[str, Any] = json.loads(self._call("GET", APPLICATIONS) or b"{}")
        return answer

    def node_resources(self) -> list[dict[str, float]]:
        """Each live node's total resources, through Ray's public state API (given the token explicitly)."""
        from ray.util.state.api import StateApiClient
        from ray.util.state.common import ListApiOptions, StateResource

        client = StateApiClient(address=self.url, headers=self.auth_headers())
        nodes = client.list(StateResource.NODES, ListApiOptions(detail=True), raise_on_missing_output=False)
        return [dict(n.resources_total or {}) for n in nodes if n.state == "ALIVE"]
