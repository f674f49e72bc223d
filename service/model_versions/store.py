"""Loading registered versions from their folders, by version id or alias."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session

from service.errors import NotFoundError
from service.ml import artifacts
from service.ml.clv_model import ClvModel
from service.model_versions import repository
from service.model_versions.service import ArtifactRefusedError, get_version


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
        return version, artifacts.load(model_dir / version, device, expected_checksum=row.sha256)
    except artifacts.ArtifactError as error:
        raise ArtifactRefusedError(str(error)) from None
