"""Loading registered versions, by version id or alias, from the model store through the
local cache (``artifact_store``)."""

from __future__ import annotations

import logging
import math
import threading
import time
from pathlib import Path

from sqlalchemy.orm import Session

from service.errors import NotFoundError
from service.ml import artifacts
from service.ml.clv_model import ClvModel
from service.model_versions import artifact_store, repository
from service.model_versions.service import ArtifactRefusedError, get_version
from service.ops import metrics

logger = logging.getLogger(__name__)


class ModelUnavailableError(ArtifactRefusedError):
    """The alias names an artifact that cannot be loaded, and no model was loaded before it to
    keep serving: nothing can be scored. A fault on the server's side (its files), not in the
    request, so 503 with ``Retry-After`` (when the artifact is tried again), not the 409 a refused
    promotion gets. A subclass, so what catches a refusal catches this too."""

    status_code = 503
    code = "model_unavailable"


def resolve(session: Session, name: str) -> str:
    """A version id from a version id or an alias (champion, challenger)."""
    aliases = repository.aliases(session)
    if name in aliases:
        return aliases[name]
    return get_version(session, name).version


def load_version(session: Session, model_dir: Path, name: str, device: str) -> tuple[str, ClvModel]:
    try:
        version = resolve(session, name)
    except NotFoundError:
        raise NotFoundError(
            f"no model version or alias {name!r}; train one with clv train"
        ) from None
    row = get_version(session, version)
    try:
        return version, artifact_store.load(session, model_dir, row, device)
    except artifacts.ArtifactError as error:
        raise ArtifactRefusedError(str(error)) from None


class AliasFollower:
    """The model behind an alias, loaded once per process and swapped when the alias moves.

    ``current`` reads the alias row (one primary-key lookup) and reloads only when it names
    another version, so a promotion or rollback made by any process reaches every process on
    its next call, without a restart; or, with ``max_age``, within that many seconds: a caller
    answering reads may skip the lookup (a round trip per request, a fifth of a stored read's
    server samples under load in a py-spy profile), one that stores what it computes may not.

    When the newly aliased artifact cannot be loaded (deleted or corrupted after promotion),
    the model already loaded keeps serving and the failure is logged once per version. With
    nothing loaded yet, the refusal is raised to every caller, and the artifact is tried again
    (and the refusal logged) at most every ``RETRY_SECONDS``, so a repaired file is picked up
    without reading a broken one per request.
    """

    RETRY_SECONDS = 30.0

    def __init__(self, model_dir: Path, device: str, alias: str = "champion") -> None:
        self.model_dir, self.device, self.alias = model_dir, device, alias
        self._loaded: tuple[str, ClvModel] | None = None
        self._refused: dict[str, str] = {}
        self._retry_at = 0.0
        self._checked_at = -math.inf  # when the alias was last read (monotonic)
        self._lock = threading.Lock()

    def current(self, session: Session, max_age: float = 0.0) -> tuple[str, ClvModel]:
        loaded, now = self._loaded, time.monotonic()
        if loaded is not None and now - self._checked_at < max_age:
            return loaded
        wanted = repository.aliases(session).get(self.alias)
        self._checked_at = now
        loaded = self._loaded
        if wanted is None and loaded is None:
            raise NotFoundError(f"no version is {self.alias}; train one with clv train")
        if loaded is not None and (
            wanted is None or wanted == loaded[0] or wanted in self._refused
        ):  # a refused version is not retried while another serves
            return loaded
        with self._lock:
            if self._loaded is not None and self._loaded[0] == wanted:
                return self._loaded
            waiting = time.monotonic() < self._retry_at
            if self._loaded is None and wanted in self._refused and waiting:
                raise self._unavailable(str(wanted), self._refused[wanted])
            previous = self._loaded[0] if self._loaded is not None else None
            try:
                self._loaded = load_version(session, self.model_dir, str(wanted), self.device)
            except ArtifactRefusedError as error:
                metrics.MODEL_REFUSED.labels(self.alias).inc()
                self._refused[str(wanted)] = error.message
                self._retry_at = time.monotonic() + self.RETRY_SECONDS
                if self._loaded is None:
                    logger.error("%s %s refused; nothing to serve: %s", self.alias, wanted, error)
                    raise self._unavailable(str(wanted), error.message) from None
                logger.error(
                    "%s %s refused; %s keeps serving: %s",
                    self.alias,
                    wanted,
                    self._loaded[0],
                    error,
                )
                return self._loaded
            self._refused.pop(str(wanted), None)
            metrics.model_loaded(self.alias, self._loaded[0], previous)
            return self._loaded

    def _unavailable(self, version: str, reason: str) -> ModelUnavailableError:
        retry_after = max(1, math.ceil(self._retry_at - time.monotonic()))
        return ModelUnavailableError(
            f"{self.alias} {version} cannot be loaded and no earlier model is loaded to serve "
            f"in its place: {reason}. GET /v1/serving shows the refusal; promote or roll back to "
            f"a version that loads, or repair the artifact (tried again every "
            f"{self.RETRY_SECONDS:.0f} s).",
            headers={"Retry-After": str(retry_after)},
        )

    def state(self) -> tuple[str | None, dict[str, str]]:
        """The version this process serves (None before the first load) and the versions it
        refused, with the reasons."""
        loaded = self._loaded
        return (loaded[0] if loaded is not None else None), dict(self._refused)
