"""A trained model on disk: a folder with the weights (safetensors), ``config.json`` (everything
else: architecture, fitted pipeline, BTYD parameters, scaler, calibration, training window and
metrics) and ``checksum.sha256``.

Loading rebuilds the network through the architecture registry and refuses, with a clear error,
a folder whose files do not match their checksum, whose weights do not fit the architecture, or
whose feature schema differs from what its pipeline produces: a model is never half-loaded.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from service.ml.btyd.baseline import BtydBaseline
from service.ml.clv_model import ClvModel
from service.ml.examples import EXTRA_FEATURES
from service.ml.explain import Background
from service.ml.nets import create_model
from service.ml.portrait import FeaturePipeline
from service.ml.selection import Serving
from service.ml.training.report import TrainingReport

FORMAT = 3  # 2: the explanation background is saved with the weights; 3: what serves
WEIGHTS, CONFIG, CHECKSUM = "weights.safetensors", "config.json", "checksum.sha256"


class ArtifactError(ValueError):
    """The folder is not a loadable model; the message says why."""


def digest(folder: Path) -> str:
    """The sha256 of an artifact's files, as ``save`` records it and ``load`` checks it."""
    hasher = hashlib.sha256()
    for name in (WEIGHTS, CONFIG):
        hasher.update(name.encode())
        hasher.update((folder / name).read_bytes())
    return hasher.hexdigest()


def save(model: ClvModel, folder: Path, metrics: dict[str, Any] | None = None) -> str:
    """Write the model to ``folder`` (created); returns its sha256."""
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.net.state_dict().items()}
    if model.background is not None:
        state.update({k: v.cpu().contiguous() for k, v in model.background.tensors().items()})
    save_file(state, str(folder / WEIGHTS))
    config = {
        "format": FORMAT,
        "architecture": model.architecture,
        "net_config": model.net_config,
        "feature_names": model.feature_names,
        "scaler_mean": model.scaler_mean.tolist(),
        "scaler_std": model.scaler_std.tolist(),
        "sequence_length": model.sequence_length,
        "horizon_days": model.horizon_days,
        "trained_horizon_days": model.trained_horizon_days,
        "shortest_horizon_days": model.shortest_horizon_days,
        "log_calibration": model.log_calibration,
        "pipeline": model.pipeline.state(),
        "btyd": model.btyd.state(),
        "baselines": {name: baseline.state() for name, baseline in model.baselines.items()},
        "serving": model.serving.state() if model.serving is not None else None,
        "info": model.report.to_json(),
        "metrics": metrics or {},
    }
    (folder / CONFIG).write_text(json.dumps(config, indent=1, sort_keys=True, default=str))
    checksum = digest(folder)
    (folder / CHECKSUM).write_text(checksum + "\n")
    return checksum


def read_config(folder: Path) -> dict[str, Any]:
    config: dict[str, Any] = json.loads((folder / CONFIG).read_text())
    return config


def load(folder: Path, device: str = "cpu", expected_checksum: str | None = None) -> ClvModel:
    try:
        stored = (folder / CHECKSUM).read_text().strip()
        actual = digest(folder)
    except FileNotFoundError as missing:
        raise ArtifactError(
            f"{folder} is incomplete: {Path(missing.filename).name} is missing"
        ) from None
    if actual != stored or (expected_checksum and actual != expected_checksum):
        raise ArtifactError(f"{folder} is corrupt: its files do not match their sha256 checksum")
    try:
        config = read_config(folder)
        if config.get("format") != FORMAT:
            raise ArtifactError(
                f"{folder} has format {config.get('format')}, this service reads {FORMAT}; "
                "retrain it"
            )
        pipeline = FeaturePipeline.from_state(config["pipeline"])
        expected = [d.name for d in pipeline.definitions()] + list(EXTRA_FEATURES)
        if config["feature_names"] != expected:
            raise ArtifactError(
                f"{folder} was trained on a different feature schema than this version of the "
                "service computes; retrain it"
            )
        net = create_model(config["architecture"], **config["net_config"])
        tensors = load_file(str(folder / WEIGHTS))
        background = Background.from_tensors(tensors)
        report = TrainingReport.from_json(config["info"])
        net.load_state_dict(
            {k: v for k, v in tensors.items() if not k.startswith("background.")}, strict=True
        )
    except ArtifactError:
        raise
    except (KeyError, ValueError, RuntimeError, TypeError) as error:
        raise ArtifactError(f"{folder} cannot be loaded: {error}") from None
    return ClvModel(
        net=net.to(device).eval(),
        architecture=config["architecture"],
        net_config=config["net_config"],
        pipeline=pipeline,
        btyd=BtydBaseline.from_state(config["btyd"]),
        baselines={
            name: BtydBaseline.from_state(state) for name, state in config["baselines"].items()
        },
        serving=Serving.from_state(config["serving"]) if config["serving"] else None,
        feature_names=config["feature_names"],
        scaler_mean=np.asarray(config["scaler_mean"]),
        scaler_std=np.asarray(config["scaler_std"]),
        sequence_length=config["sequence_length"],
        horizon_days=config["horizon_days"],
        trained_horizon_days=config["trained_horizon_days"],
        shortest_horizon_days=config["shortest_horizon_days"],
        log_calibration=config["log_calibration"],
        device=device,
        training_report=report,
        background=background,
    )


def device_for(preference: str) -> str:
    """``auto`` means CUDA when present; ``cuda`` without a GPU is an error, not a silent CPU."""
    if preference == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if preference == "cuda" and not torch.cuda.is_available():
        raise ArtifactError("CLV_DEVICE=cuda but no CUDA device is available")
    return preference
