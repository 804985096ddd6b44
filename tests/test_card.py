"""ser/hub/card.py: the model card's YAML parses and carries both protocols' metrics, the labels, the
data and its licence (the strictest of the corpora), limitations and how to call the model; no local
path leaks; the stored studies of the model's recipe appear when there are any."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from huggingface_hub import ModelCard

from ser.hub.card import build_card, refresh_card

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def bundled_metadata() -> dict:
    """The bundled MLP's metadata.json, with a local source folder that must not reach the card."""
    meta = json.loads((REPO / "models" / "mlp" / "metadata.json").read_text(encoding="utf-8"))
    meta["data"]["source"] = "/secret/local/path"
    return meta


def test_card_yaml_parses_and_holds_both_protocols(bundled_metadata, tmp_path):
    meta = bundled_metadata
    path = tmp_path / "README.md"
    build_card(meta, repo_id="alice/ser-mlp").save(path)
    card = ModelCard.load(path)
    data = card.data
    assert data.license == "cc-by-nc-sa-4.0"
    assert {"audio-classification", "speech-emotion-recognition"} <= set(data.tags)
    assert data.library_name == "sklearn" and data.pipeline_tag == "audio-classification"
    assert data.datasets == ["ravdess"]
    results = {(r.dataset_config, r.metric_type): r.metric_value for r in data.eval_results}
    for protocol in ("speaker_independent", "stratified"):
        m = meta["metrics"][protocol]
        assert results[(protocol, "accuracy")] == pytest.approx(m["accuracy"], abs=1e-4)
        assert results[(protocol, "f1")] == pytest.approx(m["macro_f1"], abs=1e-4)
        assert results[(protocol, "recall")] == pytest.approx(m["uar"], abs=1e-4)
    # The YAML is plain data (safe_load) and the model-index has one result per protocol.
    header = yaml.safe_load(card.content.split("---")[1])
    assert len(header["model-index"][0]["results"]) == 2
    text = card.text
    for needle in ("calm", "neutral", "acted", "phone", "gradio_client", "Recognizer.from_pretrained",
                   "alice/ser-mlp", meta["version"], "16000 Hz", "1440", "CC BY-NC-SA 4.0", "Livingstone",
                   "Most confused pairs"):
        assert needle in text, needle
    assert "/secret/local/path" not in card.content


def test_card_carries_the_stored_studies_of_its_recipe(tmp_path, monkeypatch):
    meta = {"model": "mlp", "version": "v1", "files": {}, "data": {"corpora": {"ravdess": 1440}}}
    monkeypatch.setenv("SER_REPORTS_DIR", str(tmp_path))
    assert "Beyond the training data" not in str(build_card(meta))  # no reports: no section
    rob = {"chance_uar": 0.125, "results": {"standard": {"clean": {"accuracy": 0.5}, "telephone": {"accuracy": 0.3}}}}
    (tmp_path / "robustness.json").write_text(json.dumps(rob))
    text = str(build_card(meta))
    section = text[text.index("## Beyond the training data"):text.index("## Intended use")]
    assert "| telephone | 30.0 (-20.0) |" in section and "not this exact model" in section
    assert "Beyond the training data" not in str(build_card(meta, studies=""))
    assert "my own table" in str(build_card(meta, studies="my own table"))


def test_card_licence_is_the_strictest_of_the_corpora():
    meta = {"model": "mlp", "version": "v1", "files": {},
            "data": {"corpora": {"ravdess": 10, "tess": 10},
                     "licences": {"ravdess": "CC BY-NC-SA 4.0", "tess": "CC BY-NC-ND 4.0"}}}
    card = build_card(meta)
    assert card.data.license == "cc-by-nc-nd-4.0"
    assert "without\nderivatives" in card.text or "without derivatives" in card.text


def test_card_shows_the_degraded_test_audio_rows_and_names_the_ensembles_members():
    meta = json.loads((REPO / "models" / "smile" / "metadata.json").read_text(encoding="utf-8"))
    meta["robustness"] = {"telephone": {"accuracy": 0.4321, "macro_f1": 0.41, "uar": 0.4123, "n_test": 1440}}
    card = build_card(meta, studies="")
    assert "| speaker-independent, telephone test audio | 0.432 | 0.410 | 0.412 | n/a | 1440 |" in card.text
    assert "degraded copy of each test clip (telephone; never trained on)" in card.text.replace("\n", " ")
    assert len(card.data.eval_results) == 8  # 4 metrics x the two protocols: degraded audio is not a dataset
    assert "openSMILE's ComParE_2016" in card.text
    without = build_card({k: v for k, v in meta.items() if k != "robustness"}, studies="")
    assert "test audio" not in without.text
    ensemble = {"model": "ensemble", "version": "v1", "files": {},
                "params": {"members": {"cnn": {}, "smile": {}}}}
    assert "an ensemble of the CNN and the openSMILE model that labels" in build_card(ensemble, studies="").text


@pytest.mark.parametrize("kind", ["mlp", "cnn", "smile", "ensemble"])
def test_the_bundled_cards_are_current(kind, tmp_path):
    """``ser report`` rewrote each bundled model's card from its metadata (else the card lies)."""
    for name in ("metadata.json", "README.md"):
        shutil.copy(REPO / "models" / kind / name, tmp_path / name)
    assert not refresh_card(tmp_path), f"models/{kind}/README.md is stale: run `python -m ser report`"
