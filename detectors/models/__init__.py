"""River online models, one per view, learning on every evaluated key.

:func:`default_models` builds the model set the engine runs: a
:class:`~detectors.models.hst.HalfSpaceDetector` per view over the view's
fraud-relevant features, each with its own scaling caps.
"""

from __future__ import annotations

from detectors.config import EngineConfig
from detectors.models.hst import HalfSpaceDetector

__all__ = ["HalfSpaceDetector", "default_models", "MODEL_FEATURES"]

#: (view, entity type) -> {feature: cap}; cap 1.0 marks a share in [0, 1]
MODEL_FEATURES: dict[tuple[str, str], dict[str, float]] = {
    ("merchant", "merchant"): {
        "pair_users": 50, "token_users": 50, "token_share": 1.0, "amount_top_share": 1.0,
        "delay_cv": 3.0, "paid_like_share": 1.0, "token_pay_share": 1.0, "coupon_share": 1.0,
    },
    ("merchant", "target"): {
        "fresh": 50, "fresh_share": 1.0, "users_per_device": 10, "top_ip_share": 1.0,
        "users_per_ip": 10,
        "token_users": 50, "token_share": 1.0, "delay_cv": 3.0,
    },
    ("ip", "ip"): {
        "like_users": 200, "top_target_users": 100, "top_target_share": 1.0,
        "fresh_share": 1.0, "users_per_other": 10, "token_pay_share": 1.0,
    },
    ("device", "device"): {
        "users": 50, "recent_users": 20, "fresh_share": 1.0, "top_target_share": 1.0,
        "token_pay_share": 1.0,
    },
    ("lockstep", "target"): {
        "top_shared": 100, "top_share": 1.0, "second_share": 1.0, "specificity": 1.0,
    },
}


def default_models(config: EngineConfig) -> list[HalfSpaceDetector]:
    """One unfitted model per (view, entity type), configured from ``config``."""
    return [
        HalfSpaceDetector(
            name=f"{view}_{etype}_hst" if view != etype else f"{view}_hst",
            view=view,
            entity_type=etype,
            features=feats,
            warmup=config.warmup,
            quantile=config.model_quantile,
            floor=config.model_floor,
            seed=config.seed,
            corroboration=config.lockstep_corroboration if view == "lockstep"
            else config.corroboration,
        )
        for (view, etype), feats in MODEL_FEATURES.items()
    ]
