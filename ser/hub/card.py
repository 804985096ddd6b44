"""Model cards: the ``README.md`` of a model folder, built from its ``metadata.json``.

The card carries the licence bound by the training data, the labels, the preprocessing, both
protocols' metrics as ``model-index`` results, the data and counts, the limitations, how to call
the model, and what the stored studies say about models of its recipe (:func:`ser.reports.card_section`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ..audio.corpora import corpus_licence, corpus_name
from ..reports import card_section
from .artifacts import is_unsafe

__all__ = ["build_card", "refresh_card"]

#: Most restrictive last: a model trained on several corpora is bound by the strictest licence.
_LICENCE_ORDER = ("cc-by-4.0", "cc-by-sa-4.0", "cc-by-nc-4.0", "cc-by-nc-sa-4.0", "cc-by-nc-nd-4.0")
_METRICS = (  # metadata key, Hub metric type, pretty name, metric args
    ("accuracy", "accuracy", "Accuracy", None),
    ("macro_f1", "f1", "Macro F1", {"average": "macro"}),
    ("uar", "recall", "UAR (macro recall)", {"average": "macro"}),
    ("macro_precision", "precision", "Macro precision", {"average": "macro"}),
)
_PROTOCOL_NAMES = {"speaker_independent": "speaker-independent", "stratified": "stratified 75/25"}


# --------------------------------------------------------------------------------------------
# Model card
# --------------------------------------------------------------------------------------------
_CARD_TEMPLATE = """---
{{ card_data }}
---

# {{ title }}

Speech emotion recognition: {{ kind_words }} that labels a speech clip with one of
{{ labels | length }} emotions: {{ labels | join(", ") }}.
Trained with `ser`; model version `{{ version }}`{% if created %} on {{ created }}{% endif %}.

## Results

Two evaluation protocols, always reported together. The **speaker-independent** one is the honest
estimate for a voice the model has never heard; the stratified clip split lets the same actors
appear in training and test and therefore reads higher.{% if degraded %} The speaker-independent folds' models
were also tested on a degraded copy of each test clip ({{ degraded | join(", ") }}; never trained on):
how much a worse channel costs.{% endif %}

| protocol | accuracy | macro F1 | UAR | macro precision | test clips |
|---|---|---|---|---|---|
{% for p in protocols -%}
| {{ p.name }} | {{ p.accuracy }} | {{ p.macro_f1 }} | {{ p.uar }} | {{ p.macro_precision }} | {{ p.n_test }} |
{% endfor %}
{% for p in protocols %}
- **{{ p.name }}**: {{ p.description }}
{%- endfor %}
{% if confusion %}

Confusion matrix ({{ confusion.protocol }}; rows = true label, columns = predicted):

| true / predicted | {{ confusion.labels | join(" | ") }} |
|---|{% for _ in confusion.labels %}---|{% endfor %}
{% for row in confusion.rows -%}
| **{{ row.label }}** | {{ row.counts | join(" | ") }} |
{% endfor %}
{% endif %}

## Labels

{% for label in labels -%}
{{ loop.index0 }}. `{{ label }}`
{% endfor %}

## Preprocessing

- Audio: decoded, down-mixed to mono, resampled to {{ sample_rate }} Hz, leading/trailing silence trimmed
  (`ser.audio.load_audio`); the recognizer does this itself, so any sample rate and WAV/FLAC/MP3 input works.
{% for line in preprocessing -%}
- {{ line }}
{% endfor %}

## Training data

{% for line in data_lines -%}
- {{ line }}
{% endfor %}
Licence: **{{ licence_words }}**. The training data's licence binds the model: non-commercial use only,
with attribution{% if share_alike %}; share-alike{% endif %}{% if no_derivatives %}; TESS is licensed without
derivatives, so check its terms before redistributing anything derived from it{% endif %}.
{% if citations %}

Cite the corpora:
{% for c in citations %}
- {{ c }}
{%- endfor %}
{% endif %}

{% if studies %}
## Beyond the training data

{{ studies }}
{% endif %}

## Intended use and limitations

- Intended for research, teaching and demos of speech emotion recognition on short clips (2-5 s) of a
  single speaker.
- Trained on **acted** emotions in **English**: professional actors saying two fixed sentences
  (RAVDESS) or one carrier phrase (TESS). Spontaneous, everyday emotion is subtler and mixed; expect
  much lower accuracy on it, and on other languages and accents.
- **Domain shift**: studio recordings. Telephone bandwidth (8 kHz), compression, background noise,
  far-field microphones and music all move the input away from the training data.
- **calm vs neutral**: RAVDESS's calm is a low-arousal neutral, so the two are near neighbours and
  often confused (as are sad and calm); read them as one region, not two distinct states.
{%- if confused %}
- Most confused pairs in the speaker-independent evaluation: {{ confused | join("; ") }}.
{%- endif %}
- Do not use it to make decisions about people (hiring, surveillance, health, policing); an
  acoustic label is not a person's inner state.

## How to use

With `ser` (pip-install the project, then):

```python
from ser.recognizer import Recognizer

recognizer = Recognizer.from_pretrained("{{ repo_id }}", revision="{{ version }}")
result = recognizer.predict("clip.wav")  # a path, bytes, or (sample_rate, array)
print(result.label, result.confidence, result.probabilities)
```

From the command line: `python train.py pull {{ repo_id }} --revision {{ version }}`.

Through a running `ser` Gradio app (local, or a Space serving this model) with `gradio_client`:

```python
from gradio_client import Client, handle_file

client = Client("http://127.0.0.1:7860/")  # or the Space id
print(client.predict(handle_file("clip.wav"), api_name="/predict"))
```

## Files and security

| file | what |
|---|---|
{% for f in files -%}
| `{{ f.name }}` | {{ f.what }} |
{% endfor %}
`metadata.json` records the sha256 of every other file; `ser` refuses a file that does not match.
Nothing is unpickled from a Hub repo: `ser` reads {{ safe_file_words }}. The seed-compatible
pickles are downloaded and used only with `--trust-remote-pickle` (they can run arbitrary code).
"""


def _fmt(value) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "n/a"


def _corpora(data: Mapping) -> list[str]:
    corpora = data.get("corpora") or []
    if isinstance(corpora, Mapping):
        return [str(k) for k in corpora]
    if isinstance(corpora, str):
        return [corpora]
    return [str(c.get("name", c)) if isinstance(c, Mapping) else str(c) for c in corpora]


def _hub_licence(text: str) -> str:
    """``"CC BY-NC-SA 4.0"`` -> ``"cc-by-nc-sa-4.0"``, ``"CC0 1.0 (...)"`` -> ``"cc0-1.0"`` (Hub ids);
    ``"other"`` when the text names no licence the Hub knows by id."""
    t = str(text).strip().lower()
    if re.match(r"cc[\s-]*0[\s-]+1\.0", t):
        return "cc0-1.0"
    m = re.match(r"cc[\s-]+(by(?:[\s-]+(?:nc|sa|nd))*)[\s-]+(\d\.\d)", t)
    if m:
        return "cc-" + "-".join(m.group(1).replace("-", " ").split()) + "-" + m.group(2)
    return t if re.fullmatch(r"[a-z0-9][a-z0-9.-]*", t) else "other"


def _licences(data: Mapping, corpora: list[str]) -> dict[str, str]:
    """``{corpus: licence as written}`` from the metadata, else from what ``ser`` knows."""
    given = data.get("licences") or data.get("licenses") or {}
    if isinstance(given, str):
        given = {", ".join(corpora) or "data": given}
    elif not isinstance(given, Mapping):
        given = {c: v for c, v in zip(corpora, given)}
    out = {str(c): str(v) for c, v in given.items() if v}
    if not out:
        out = {c: corpus_licence(c) for c in corpora if corpus_licence(c)}
    return out


def _strictest(licences: Mapping[str, str]) -> str | None:
    """The Hub id of the licence that binds a model trained on all these corpora."""
    ids = {_hub_licence(v) for v in licences.values()}
    binding = ids - {"cc0-1.0"}  # public domain adds no obligation
    if not binding:
        return "cc0-1.0" if ids else None
    if len(binding) == 1:
        return binding.pop()
    if binding <= set(_LICENCE_ORDER):
        return max(binding, key=_LICENCE_ORDER.index)
    return "other"


def _lines(mapping: Mapping, *, skip: tuple[str, ...] = ()) -> list[str]:
    out = []
    for key, value in mapping.items():
        if key in skip:
            continue
        if isinstance(value, Mapping):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        elif isinstance(value, (list, tuple)):
            value = ", ".join(str(v) for v in value)
        out.append(f"{key.replace('_', ' ')}: {value}")
    return out


_KIND_WORDS = {
    "mlp": "a scikit-learn MLP on handcrafted acoustic features (MFCC, chroma, mel, contrast, pitch)",
    "cnn": "a Keras CNN on 128x128 log-mel spectrogram windows",
    "smile": "a regularised logistic regression on openSMILE's ComParE_2016 and eGeMAPSv02 functionals",
}
_MEMBER_NAMES = {"mlp": "the MLP", "cnn": "the CNN", "smile": "the openSMILE model"}


def _kind_words(kind: str, metadata: Mapping) -> str:
    """What the model is, for the card's first sentence (an ensemble names its members)."""
    if kind == "ensemble":
        members = list(((metadata.get("params") or {}).get("members") or {}))
        named = [_MEMBER_NAMES.get(m, m) for m in members] or ["models"]
        listed = named[0] if len(named) == 1 else f"{', '.join(named[:-1])} and {named[-1]}"
        return f"an ensemble of {listed}"
    return _KIND_WORDS.get(kind, f"a {kind} model")


def build_card(metadata: Mapping, *, repo_id: str | None = None, studies: str | None = None) -> ModelCard:
    """The model card (``README.md``) of a saved model, from its ``metadata.json``.

    The YAML header carries what the Hub indexes: ``library_name``, ``pipeline_tag``, tags,
    ``datasets``, the licence bound by the training data, and the metrics of both protocols as
    ``model-index`` eval results (one result per protocol, so the Hub shows them side by side).

    Parameters
    ----------
    metadata : mapping
        The parsed ``metadata.json`` (``model``, ``version``, ``metrics``, ``data``,
        ``preprocessing``, ``params``, ``files``). Missing keys leave their section short.
    repo_id : str, optional
        Used in the usage examples and as the model name; defaults to ``ser-<model>``.
    studies : str, optional
        Markdown for the "Beyond the training data" section (cross-corpus, robustness,
        calibration); default :func:`ser.evaluation_reports.card_section` of ``metadata``, which is
        empty for a model the stored studies do not describe. ``""`` leaves the section out.
    """
    kind = str(metadata.get("model") or "model")
    version = str(metadata.get("version") or "unversioned")
    model_name = repo_id.split("/")[-1] if repo_id else f"ser-{kind}"
    data = metadata.get("data") or {}
    corpora = _corpora(data)
    dataset_ids = [c.lower() for c in corpora]
    dataset_names = ", ".join(corpus_name(c) for c in corpora) or "unknown data"
    licences = _licences(data, corpora)
    licence = _strictest(licences)
    metrics = metadata.get("metrics") or {}

    labels: list[str] = []
    protocols, eval_results = [], []
    for key in ("speaker_independent", "stratified"):
        m = metrics.get(key)
        if not isinstance(m, Mapping):
            continue
        labels = labels or list(m.get("labels") or [])
        name = _PROTOCOL_NAMES[key]
        protocols.append({"name": name, "description": m.get("protocol") or name, "n_test": m.get("n_test", "n/a"),
                          **{k: _fmt(m.get(k)) for k, *_ in _METRICS}})
        for metric_key, metric_type, pretty, args in _METRICS:
            if isinstance(m.get(metric_key), (int, float)):
                eval_results.append(EvalResult(
                    task_type="audio-classification", task_name="Speech emotion recognition",
                    dataset_type="+".join(dataset_ids) or "unknown", dataset_name=f"{dataset_names} ({name})",
                    dataset_config=key, dataset_split="test", metric_type=metric_type,
                    metric_value=round(float(m[metric_key]), 4), metric_name=f"{pretty} ({name})", metric_args=args,
                ))
    labels = labels or list((metadata.get("params") or {}).get("labels") or [])
    # Degraded test audio: table rows only (the model-index keeps one result per protocol).
    degraded = [c for c, m in (metadata.get("robustness") or {}).items() if isinstance(m, Mapping)]
    for c in degraded:
        m = metadata["robustness"][c]
        name = f"{_PROTOCOL_NAMES['speaker_independent']}, {c} test audio"
        protocols.append({"name": name, "n_test": m.get("n_test", "n/a"),
                          "description": f"the speaker-independent folds' models on a {c} copy of each test clip",
                          **{k: _fmt(m.get(k)) for k, *_ in _METRICS}})

    confused = [f"{p['pair'][0]} / {p['pair'][1]} ({p['count']} clips)"
                for p in (metrics.get("speaker_independent") or {}).get("error_analysis") or []
                if isinstance(p, Mapping) and len(p.get("pair") or []) == 2][:3]
    confusion = None
    for key in ("speaker_independent", "stratified"):
        m = metrics.get(key) or {}
        if m.get("confusion") and m.get("labels"):
            confusion = {"protocol": _PROTOCOL_NAMES[key], "labels": list(m["labels"]),
                         "rows": [{"label": lab, "counts": row} for lab, row in zip(m["labels"], m["confusion"])]}
            break

    card_data = ModelCardData(
        language="en",
        license=licence,  # the strictest binds; the card's text names each corpus' licence
        library_name={"mlp": "sklearn", "cnn": "keras"}.get(kind, "ser"),
        pipeline_tag="audio-classification",
        tags=["audio-classification", "speech-emotion-recognition", "ser", kind,
              *(["skops"] if kind == "mlp" else []), *dataset_ids],
        datasets=dataset_ids or None,
        metrics=sorted({t for _, t, _, _ in _METRICS}),
        model_name=model_name,
        eval_results=eval_results or None,
    )

    preprocessing = metadata.get("preprocessing") or {}
    audio = preprocessing.get("audio") if isinstance(preprocessing.get("audio"), Mapping) else preprocessing
    sample_rate = audio.get("sr") or audio.get("sample_rate") or 16000
    clips, speakers = data.get("clips"), data.get("speakers")
    per_corpus = data.get("corpora") if isinstance(data.get("corpora"), Mapping) else {}
    data_lines = ["Corpora: " + (", ".join(f"{corpus_name(c)} ({n} clips)"
                                           for c, n in per_corpus.items()) if per_corpus else dataset_names)]
    if clips is not None:
        data_lines.append(f"Clips: {clips}" + (f" from {speakers} speakers" if speakers is not None else ""))
    # "source" is a local path: it stays out of a public card.
    data_lines += _lines(data, skip=("corpora", "clips", "speakers", "licences", "licenses", "source"))
    params = metadata.get("params") or {}
    if params:
        data_lines += [f"Training {line}" for line in _lines(params)]
    citations = []
    if "ravdess" in dataset_ids:
        citations.append("Livingstone SR, Russo FA (2018). The Ryerson Audio-Visual Database of Emotional Speech and "
                         "Song (RAVDESS). PLoS ONE 13(5): e0196391. https://doi.org/10.1371/journal.pone.0196391")
    if "tess" in dataset_ids:
        citations.append("Dupuis K, Pichora-Fuller MK (2010). Toronto Emotional Speech Set (TESS). University of "
                         "Toronto. https://doi.org/10.5683/SP2/E8H2MF")
    files = [{"name": "config.json", "what": "constructor arguments: labels, feature or spectrogram settings"},
             {"name": "metadata.json", "what": "version, metrics of both protocols, data, sha256 of every file"}]
    for name in sorted(metadata.get("files") or {}):
        if name == "config.json":
            continue
        what = {"model.skops": "the scikit-learn pipeline (StandardScaler + MLPClassifier), skops format",
                "model.keras": "the Keras CNN, native `.keras` format"}.get(
            name, "seed-compatible pickle (local use; refused from the Hub by default)"
            if is_unsafe(name) else "")
        files.append({"name": name, "what": what})
    kind_words = _kind_words(kind, metadata)
    if studies is None:
        studies = card_section(dict(metadata))
    card = ModelCard.from_template(
        card_data,
        template_str=_CARD_TEMPLATE,
        title=f"{model_name}: speech emotion recognition ({kind.upper()}, {version})",
        kind_words=kind_words, version=version, created=metadata.get("created"), labels=labels,
        protocols=protocols, degraded=degraded, confusion=confusion, confused=confused, sample_rate=sample_rate,
        preprocessing=_lines(preprocessing), data_lines=data_lines, citations=citations,
        licence_words="; ".join(f"{corpus_name(c)}: {v}" for c, v in licences.items())
        or "not recorded in the metadata",
        share_alike=licence is not None and "-sa-" in licence,
        no_derivatives=any("-nd-" in _hub_licence(v) for v in licences.values()),
        repo_id=repo_id or f"<user>/{model_name}", files=files, studies=studies,
        safe_file_words={"mlp": "`model.skops` with an explicit list of trusted types",
                         "cnn": "`model.keras` with `safe_mode=True`"}.get(
            kind, "`model.skops` (trusted types listed) and `model.keras` (`safe_mode=True`)"),
    )
    return ModelCard(re.sub(r"\n{3,}", "\n\n", str(card)))  # the template's blocks leave blank runs


def refresh_card(folder: str | Path) -> bool:
    """Rewrite a saved model's ``README.md`` from its ``metadata.json`` (the card is not a verified
    file, so the model's version and hashes stay); return whether the text changed."""
    folder = Path(folder)
    metadata = json.loads((folder / "metadata.json").read_text(encoding="utf-8"))
    text = str(build_card(metadata))
    path = folder / "README.md"
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    path.write_text(text, encoding="utf-8")
    return True
