"""Network architectures, registered by name (``create_model("gru_ziln", ...)``).

Trained versions live elsewhere (``service.model_versions``); this registry only knows how to
build an untrained network from its configuration, which is how saved weights are loaded back.
"""

from service.ml.nets import architectures  # noqa: F401  (registers the architectures)
from service.ml.nets.architectures import output_layer
from service.ml.nets.registry import create_model, list_models, register_model

__all__ = ["create_model", "list_models", "output_layer", "register_model"]
