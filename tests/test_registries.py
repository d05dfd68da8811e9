"""Each registry owns its names (issue 20 item 3): score functions, LR models, calibrators, bounders,
LR systems and detectors. Every other list (schema choices, settings, the results grid) equals the
registry's names; every calibrator and model saves and loads itself (bit-identical LLRs); an unknown
name is an error naming the choices."""
from __future__ import annotations

import json

import numpy as np
import pytest

from common import schema
from common.registry import Registry
from slr import settings as slr_settings
from slr.calibration import CALIBRATORS, calibrator_from_state, make_calibrator
from slr.elub import BOUNDERS
from slr.interface import SYSTEMS, SystemInterface
from slr.models import MODELS, model_from_state
from slr.scores import SCORES, score_values
from slr.settings import Settings
from training.detectors import REGISTRY as DETECTORS
from training.detectors import detector_class
from training.detectors.base import Detector


@pytest.mark.parametrize("key,registry,extra", [("slr.protocol", SYSTEMS, ()), ("slr.model", MODELS, ("auto",)),
                                                ("slr.calibration", CALIBRATORS, ()), ("slr.score", SCORES, ("fusion",)),
                                                ("slr.bounds", BOUNDERS, ())])
def test_schema_choices_are_the_registry_names(key, registry, extra):
    """``extra``: choices that are not components (slr.model auto chooses among the registered models; slr.score
    fusion fuses other runs' scores, slr/fused_stage.py)."""
    assert tuple(schema.BY_NAME[key].choices) == registry.names() + extra


def test_settings_and_results_grid_lists_derive_from_the_registries():
    from results_grid import config as experiments

    assert slr_settings.PROTOCOLS == SYSTEMS.names() and slr_settings.MODELS == MODELS.names() + ("auto",)
    assert slr_settings.CALIBRATIONS == CALIBRATORS.names() and slr_settings.SCORES == SCORES.names()
    assert experiments.SCORES == SCORES.names() and experiments.MODELS == MODELS.names()
    assert slr_settings.BOUNDS == BOUNDERS.names()


def _calib_data(seed=0, n=300):
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], n)
    return np.where(y == 0, 1.0, -1.0) + rng.normal(size=2 * n), y


def _through_json(meta: dict, arrays: dict) -> tuple[dict, dict]:
    """As LRSystem.save/load store them: meta as JSON, arrays as float64 copies."""
    return json.loads(json.dumps(meta)), {k: np.array(v, dtype=np.float64) for k, v in arrays.items()}


@pytest.mark.parametrize("name", CALIBRATORS.names())
def test_every_calibrator_saves_and_loads_itself(name):
    llr, y = _calib_data()
    cal = make_calibrator(name).fit(llr, y)
    meta, arrays = cal.state()
    assert meta["name"] == name
    back = calibrator_from_state(*_through_json(meta, arrays))
    grid = np.r_[np.linspace(-4, 4, 101), llr]
    np.testing.assert_array_equal(back.transform(grid), cal.transform(grid))


@pytest.mark.parametrize("name", MODELS.names())
def test_every_lr_model_saves_and_loads_itself(name):
    x, y = _calib_data(seed=1)
    settings = Settings(model=name, grid=np.geomspace(0.05, 1.0, 6), n_folds=3)
    model = MODELS.get(name).from_settings(settings).fit(x, y, np.array([f"v{i // 5}" for i in range(len(x))]))
    meta, arrays = model.state()
    back = model_from_state(*_through_json(meta, arrays))
    grid = np.linspace(-5, 5, 201)
    np.testing.assert_array_equal(back.llr(grid), model.llr(grid))


@pytest.mark.parametrize("name", SCORES.names())
def test_every_score_function_is_defined_by_its_registry_entry(name):
    f = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    got = score_values(name, features=f, centroid=np.array([1.0, 0.0]), logit=[-1.0, 0.0, 2.0],
                       fake_probability=[0.1, 0.5, 0.9])
    expected = {"cosine_centroid": [1.0, 0.0, 1 / np.sqrt(2)], "logit": [-1.0, 0.0, 2.0],
                "fake_probability": [0.1, 0.5, 0.9]}[name]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-15)
    assert SCORES.get(name).description and SCORES.get(name).axis


def test_bounder_and_system_registries_resolve_their_names():
    llr, y = _calib_data(seed=2)
    b = BOUNDERS.get("elub")().fit(llr, y)
    assert b.lower_log10 <= 0 <= b.upper_log10
    for name in SYSTEMS.names():
        cls = SYSTEMS.get(name)
        assert issubclass(cls, SystemInterface) and cls.protocol == name


def test_an_unknown_name_names_the_choices():
    with pytest.raises(ValueError, match="unknown calibrator 'isotonic'; choose one of none, pav, logistic"):
        make_calibrator("isotonic")
    with pytest.raises(KeyError, match="model.name: unknown detector 'nope'; known: meso4"):
        detector_class("nope")
    reg = Registry("widget", {"a": 1})
    assert reg.register("b", 2) == 2 and reg.names() == ("a", "b") and "b" in reg and len(reg) == 2


@pytest.mark.parametrize("name", DETECTORS.names())
def test_every_registered_detector_keeps_the_contract(name):
    """The detector contract, over the registry: built with its default options, a Detector whose
    forward gives logits (B, 2), prob = softmax class 1 and the feature of ``feature_dim`` values
    (a video detector takes (B, T, 3, H, W) windows). Full shapes and gradients: test_detectors_models."""
    import torch
    import torch.nn.functional as F

    from training.detectors import build_detector

    torch.manual_seed(0)
    det = build_detector(name).eval()
    assert isinstance(det, Detector) and callable(det.training_step)
    size = det.input_size
    shape = (1, 2, 3, size, size) if hasattr(det, "window_length") else (1, 3, size, size)
    with torch.no_grad():
        out = det(torch.randn(*shape))
    assert out["logits"].shape == (1, 2) and out["feature"].shape == (1, det.feature_dim)
    torch.testing.assert_close(out["prob"], F.softmax(out["logits"], dim=1)[:, 1])
    assert torch.isfinite(out["logits"]).all()
