"""MODERATION_MODEL_DEVICE: every torch signal on the device it names; fp16 on CUDA."""

from __future__ import annotations

import pytest

from moderation.config import ConfigError, load_settings
from moderation.scoring import scorer_for_model, scorer_from_settings
from moderation.scoring.bilstm import BiLSTMSignal
from moderation.scoring.detoxify_scorer import DetoxifyScorer
from tests.support import MODEL_PATH

torch = pytest.importorskip("torch")
NO_CUDA = "no CUDA device here: the GPU path (MODERATION_MODEL_DEVICE=cuda, fp16) was not run"


def torch_signals(scorer) -> list:
    return [s.scorer if hasattr(s, "scorer") else s for s in scorer.signals[:2]]


def test_the_setting_reaches_every_torch_signal():
    settings = load_settings(model=str(MODEL_PATH), model_device="cuda", env="test")
    scorer = scorer_from_settings(settings)
    minilm, bilstm = torch_signals(scorer)
    assert isinstance(minilm, DetoxifyScorer) and isinstance(bilstm, BiLSTMSignal)
    assert (minilm.device, bilstm.device) == ("cuda", "cuda")
    assert minilm.chunk_size > DetoxifyScorer.chunk_size  # larger batches on a GPU


def test_an_unknown_device_stops_at_start():
    with pytest.raises(ConfigError, match="MODERATION_MODEL_DEVICE"):
        load_settings(model_device="tpu", env="test")


def test_int8_is_refused_on_cuda():
    with pytest.raises(ValueError, match="MODERATION_MODEL_QUANTIZE=int8"):
        scorer_for_model(str(MODEL_PATH), quantize="int8", device="cuda")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_asking_for_cuda_without_it_fails_with_the_variable_name():
    scorer = scorer_for_model(str(MODEL_PATH), device="cuda")
    with pytest.raises(RuntimeError, match="MODERATION_MODEL_DEVICE=cuda"):
        scorer.score_batch(["a comment"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)
def test_cuda_scores_in_fp16_agree_with_the_cpu():
    texts = ["Clear and fair, thank you.", "You are an idiot and everyone knows it."] * 8
    on_cpu = scorer_for_model(str(MODEL_PATH)).score_batch(texts)
    on_gpu = scorer_for_model(str(MODEL_PATH), device="cuda").score_batch(texts)
    for cpu_row, gpu_row in zip(on_cpu, on_gpu, strict=True):
        assert max(abs(cpu_row[label] - gpu_row[label]) for label in cpu_row) < 0.02
