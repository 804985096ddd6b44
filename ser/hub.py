"""Model cards and Hugging Face Hub transfer: push a saved model folder, pull one back.

A pushed repo mirrors one saved version folder (see ``DEVELOPERS.md``): ``config.json``, the model
file, the seed-compatible files, ``metadata.json`` (with the sha256 of every other file) and a
``README.md`` model card built from the metadata. :func:`push` makes one ``upload_folder`` commit
and tags it with the metadata's ``version``; :func:`pull` downloads a revision (branch, tag or
commit) with ``snapshot_download`` and checks every file against the sha256 in ``metadata.json``.

Security: nothing from a remote repo is unpickled. :func:`pull` does not even download pickle-like
files (:data:`UNSAFE_PATTERNS`) unless ``trust_remote_pickle=True``; the MLP is read from
``model.skops`` with the explicit :data:`TRUSTED_SKOPS_TYPES`, the CNN from ``model.keras`` with
``safe_mode=True``.

Every failure a user can fix (no token, missing repo or revision, unreachable Hub, tampered file)
raises :class:`~ser.errors.ModelError` with a one-line message saying what to do.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from .artifacts import UNSAFE_PATTERNS, is_unsafe, read_metadata, sha256_file
from .errors import ModelError
from .mlp import TRUSTED_SKOPS_TYPES, load_pipeline

if TYPE_CHECKING:  # importing huggingface_hub costs start-up time: done lazily in functions
    from huggingface_hub import HfApi, ModelCard

__all__ = [
    "TRUSTED_SKOPS_TYPES",
    "UNSAFE_PATTERNS",
    "add_cli",
    "build_card",
    "pull",
    "pull_or_fallback",
    "push",
    "repo_from_env",
]

#: Files of a repo that are not listed in ``metadata.json`` but belong there.
_UNLISTED = ("metadata.json", "README.md")
#: The model file of each kind, loadable without unpickling.
_SAFE_MODEL_FILES = ("model.skops", "model.keras")

#: Hub licence ids of the corpora ``ser`` reads, used when the metadata names none.
_CORPUS_LICENCES = {"ravdess": "cc-by-nc-sa-4.0", "tess": "cc-by-nc-nd-4.0"}
#: Most restrictive last: a model trained on several corpora is bound by the strictest licence.
_LICENCE_ORDER = ("cc-by-4.0", "cc-by-sa-4.0", "cc-by-nc-4.0", "cc-by-nc-sa-4.0", "cc-by-nc-nd-4.0")
_CORPUS_NAMES = {"ravdess": "RAVDESS", "tess": "TESS", "emodb": "EMO-DB", "emo-db": "EMO-DB", "cremad": "CREMA-D",
                 "crema-d": "CREMA-D", "savee": "SAVEE"}
_METRICS = (  # metadata key, Hub metric type, pretty name, metric args
    ("accuracy", "accuracy", "Accuracy", None),
    ("macro_f1", "f1", "Macro F1", {"average": "macro"}),
    ("uar", "recall", "UAR (macro recall)", {"average": "macro"}),
    ("macro_precision", "precision", "Macro precision", {"average": "macro"}),
)
_PROTOCOL_NAMES = {"speaker_independent": "speaker-independent", "stratified": "stratified 75/25"}
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


# --------------------------------------------------------------------------------------------
# Model card
# --------------------------------------------------------------------------------------------
_CARD_TEMPLATE = """---
{{ card_data }}
---

# {{ title }}

Speech emotion recognition: a {{ kind_words }} that labels a speech clip with one of
{{ labels | length }} emotions: {{ labels | join(", ") }}.
Trained with `ser`; model version `{{ version }}`{% if created %} on {{ created }}{% endif %}.

## Results

Two evaluation protocols, always reported together. The **speaker-independent** one is the honest
estimate for a voice the model has never heard; the stratified clip split lets the same actors
appear in training and test and therefore reads higher.

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
        out = {c: _CORPUS_LICENCES[c.lower()] for c in corpora if c.lower() in _CORPUS_LICENCES}
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
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    kind = str(metadata.get("model") or "model")
    version = str(metadata.get("version") or "unversioned")
    model_name = repo_id.split("/")[-1] if repo_id else f"ser-{kind}"
    data = metadata.get("data") or {}
    corpora = _corpora(data)
    dataset_ids = [c.lower() for c in corpora]
    dataset_names = ", ".join(_CORPUS_NAMES.get(c.lower(), c) for c in corpora) or "unknown data"
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
    data_lines = ["Corpora: " + (", ".join(f"{_CORPUS_NAMES.get(c.lower(), c)} ({n} clips)"
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
    kind_words = {"mlp": "scikit-learn MLP on handcrafted acoustic features (MFCC, chroma, mel, contrast, pitch)",
                  "cnn": "Keras CNN on 128x128 log-mel spectrogram windows",
                  "ensemble": "ensemble of the MLP and the CNN"}.get(kind, f"{kind} model")
    if studies is None:
        from .evaluation_reports import card_section

        studies = card_section(dict(metadata))
    card = ModelCard.from_template(
        card_data,
        template_str=_CARD_TEMPLATE,
        title=f"{model_name}: speech emotion recognition ({kind.upper()}, {version})",
        kind_words=kind_words, version=version, created=metadata.get("created"), labels=labels,
        protocols=protocols, confusion=confusion, confused=confused, sample_rate=sample_rate,
        preprocessing=_lines(preprocessing), data_lines=data_lines, citations=citations,
        licence_words="; ".join(f"{_CORPUS_NAMES.get(c.lower(), c)}: {v}" for c, v in licences.items())
        or "not recorded in the metadata",
        share_alike=licence is not None and "-sa-" in licence,
        no_derivatives=any("-nd-" in _hub_licence(v) for v in licences.values()),
        repo_id=repo_id or f"<user>/{model_name}", files=files, studies=studies,
        safe_file_words={"mlp": "`model.skops` with an explicit list of trusted types",
                         "cnn": "`model.keras` with `safe_mode=True`"}.get(
            kind, "`model.skops` (trusted types listed) and `model.keras` (`safe_mode=True`)"),
    )
    return ModelCard(re.sub(r"\n{3,}", "\n\n", str(card)))  # the template's blocks leave blank runs


# --------------------------------------------------------------------------------------------
# Files and checks
# --------------------------------------------------------------------------------------------
def _mismatches(folder: Path, files: Mapping[str, str], names) -> list[str]:
    """Descriptions of the files among ``names`` that are missing or do not match their sha256."""
    bad = []
    for name in names:
        path = folder / name
        if not path.is_file():
            bad.append(f"{name} is missing")
        elif (actual := sha256_file(path)) != files[name]:
            bad.append(f"{name} has sha256 {actual[:12]}..., metadata.json records {files[name][:12]}...")
    return bad


# --------------------------------------------------------------------------------------------
# Hub errors -> ModelError
# --------------------------------------------------------------------------------------------
def _endpoint(endpoint: str | None) -> str:
    from huggingface_hub import constants

    return (endpoint or constants.ENDPOINT).rstrip("/")


def _server_says(err) -> str:
    text = getattr(err, "server_message", None) or ""
    text = " ".join(str(text).split())
    return f" (the Hub says: {text})" if text else ""


def _refs_words(api: HfApi, repo_id: str) -> str | None:
    """``"tags: v1, v2; branches: main"`` if the repo is readable, else None."""
    try:
        refs = api.list_repo_refs(repo_id)
    except Exception:  # a probe for a better message: any failure means "cannot tell"
        return None
    tags = ", ".join(r.name for r in refs.tags) or "none"
    return f"tags: {tags}; branches: {', '.join(r.name for r in refs.branches) or 'none'}"


@contextlib.contextmanager
def _hub_errors(doing: str, repo_id: str, *, endpoint: str | None, token=None,
                revision: str | None = None) -> Iterator[None]:
    """Turn ``huggingface_hub`` and network errors raised while ``doing`` into one-line ModelErrors."""
    import httpx2
    from huggingface_hub import HfApi
    from huggingface_hub import errors as hf

    where = _endpoint(endpoint)
    rev = f"@{revision}" if revision else ""

    def unreachable(err) -> ModelError:
        cached = ", and no copy is cached" if doing == "pulling" else ""
        return ModelError(f"Cannot reach the Hub at {where} while {doing} {repo_id}{rev}{cached} "
                          f"({type(err).__name__}): check the network, HF_ENDPOINT / --endpoint, or use a local model.")

    def no_revision(err) -> ModelError:
        refs = _refs_words(HfApi(endpoint=endpoint, token=token), repo_id)
        return ModelError(f"Revision {revision!r} was not found in {repo_id} on {where}"
                          + (f" ({refs})" if refs else "") + ": pass an existing tag, branch or full commit id.")

    try:
        yield
    except ModelError:
        raise
    except hf.RevisionNotFoundError as err:
        raise no_revision(err) from err
    except hf.GatedRepoError as err:
        raise ModelError(f"{repo_id} on {where} is gated: request access on its page, then log in "
                         "(HF_TOKEN or `hf auth login`).") from err
    except hf.RepositoryNotFoundError as err:
        # Some servers answer "repo not found" for a missing revision: tell them apart.
        if revision and _refs_words(HfApi(endpoint=endpoint, token=token), repo_id) is not None:
            raise no_revision(err) from err
        raise ModelError(f"Repository {repo_id} was not found on {where}: check the id (namespace/name); if it is "
                         "private, your token (HF_TOKEN or `hf auth login`) must be allowed to read it.") from err
    except hf.RemoteEntryNotFoundError as err:
        raise ModelError(f"A file is missing from {repo_id}{rev} on {where}{_server_says(err)}.") from err
    except hf.OfflineModeIsEnabled as err:
        raise ModelError(f"HF_HUB_OFFLINE is set and {repo_id}{rev} is not in the local cache: unset it to "
                         "download, or use a local model.") from err
    except hf.LocalEntryNotFoundError as err:
        cause = err.__cause__
        if isinstance(cause, hf.OfflineModeIsEnabled):
            raise ModelError(f"HF_HUB_OFFLINE is set and {repo_id}{rev} is not in the local cache: unset it to "
                             "download, or use a local model.") from err
        if isinstance(cause, hf.HfHubHTTPError) and cause.response is not None and cause.response.status_code == 404:
            raise no_revision(err) from err  # a full commit id that the repo does not have
        raise unreachable(cause or err) from err
    except hf.HfHubHTTPError as err:
        status = err.response.status_code if err.response is not None else None
        if status == 401:
            raise ModelError(f"The Hub at {where} refused the token (401) while {doing} {repo_id}: set a valid "
                             f"HF_TOKEN or run `hf auth login`{_server_says(err)}.") from err
        if status == 403:
            raise ModelError(f"Your token may not write to {repo_id.split('/')[0]} on {where} (403): use a token with "
                             f"write access to that namespace{_server_says(err)}.") from err
        raise ModelError(f"The Hub at {where} answered {status} while {doing} {repo_id}{rev}{_server_says(err)}.") \
            from err
    except (httpx2.TransportError, ConnectionError, TimeoutError) as err:
        raise unreachable(err) from err


# --------------------------------------------------------------------------------------------
# Push and pull
# --------------------------------------------------------------------------------------------
def _check_repo_id(repo_id: str) -> None:
    if not isinstance(repo_id, str) or not _REPO_ID.match(repo_id):
        raise ModelError(f"Invalid repo id {repo_id!r}: expected 'namespace/name', e.g. 'alice/ser-mlp'.")


def push(folder: str | os.PathLike, repo_id: str, *, private: bool = False, token: str | None = None,
         endpoint: str | None = None, commit_message: str | None = None) -> dict:
    """Push a saved model folder to a Hub model repo: one commit, tagged with its version.

    The files listed in ``metadata.json`` (after checking their sha256), ``metadata.json`` and a
    fresh ``README.md`` card (:func:`build_card`) go up in one ``upload_folder`` commit; the
    ``versions/`` history stays local, each pushed version becomes a tag instead.

    Parameters
    ----------
    folder : path
        ``models/<kind>`` (its top level is the newest version) or one ``versions/<version>`` folder.
    repo_id : str
        ``namespace/name``; created if missing (``exist_ok``).
    private : bool
        Create the repo private. An existing public repo is refused rather than published to.
    token : str, optional
        Defaults to ``HF_TOKEN`` or the saved login (``hf auth login``).

    Returns
    -------
    dict
        ``repo_id``, ``repo_url``, ``commit_url``, ``commit_oid``, ``tag``, ``tag_created``,
        ``tag_commit`` (where the tag points), ``private``, ``files`` (uploaded names).
    """
    from huggingface_hub import HfApi, get_token
    from huggingface_hub.errors import HfHubHTTPError

    _check_repo_id(repo_id)
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelError(f"Model folder {folder} does not exist: pass a folder saved by ser, e.g. models/mlp.")
    metadata = read_metadata(folder)
    files = metadata["files"]
    bad = _mismatches(folder, files, files)
    if bad:
        raise ModelError(f"Refusing to push {folder}: {'; '.join(bad)}.")
    version = str(metadata.get("version") or "")
    if not re.fullmatch(r"[\w.+-]+", version):
        raise ModelError(f"metadata.json of {folder} has no usable 'version' ({version!r}) to tag the push with.")
    token = token or get_token()
    if not token:
        raise ModelError("No Hugging Face token: set HF_TOKEN or run `hf auth login` (a token with write access) "
                         "before pushing.")
    api = HfApi(endpoint=endpoint, token=token, library_name="ser")
    where = _endpoint(endpoint)

    with _hub_errors("pushing to", repo_id, endpoint=endpoint, token=token):
        repo_url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        is_private = bool(api.model_info(repo_id, revision="main").private)
        if private and not is_private:
            raise ModelError(f"{repo_id} already exists on {where} and is public: make it private first "
                             "(repo settings) or push to another repo; nothing was uploaded.")
        with tempfile.TemporaryDirectory(prefix="ser-push-") as tmp:
            staging = Path(tmp)
            for name in [*files, "metadata.json"]:
                (staging / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(folder / name, staging / name)
            build_card(metadata, repo_id=repo_id).save(staging / "README.md")
            commit = api.upload_folder(
                repo_id=repo_id, folder_path=staging, repo_type="model",
                commit_message=commit_message or f"Upload {metadata.get('model', 'model')} {version}",
                commit_description=f"Pushed by ser from {folder.name}; version {version}.",
            )
        tag_created = True
        try:
            api.create_tag(repo_id, tag=version, revision=commit.oid, tag_message=f"ser model {version}")
        except HfHubHTTPError as err:  # 409: the version was pushed before; the tag stays where it is
            if err.response is None or err.response.status_code != 409:
                raise
            tag_created = False
        tag_commit = commit.oid
        if not tag_created:
            tag_commit = next((t.target_commit for t in api.list_repo_refs(repo_id).tags if t.name == version), None)
    return {
        "repo_id": repo_id, "repo_url": str(repo_url), "commit_url": commit.commit_url, "commit_oid": commit.oid,
        "tag": version, "tag_created": tag_created, "tag_commit": tag_commit, "private": is_private,
        "files": sorted([*files, "metadata.json", "README.md"]),
    }


def pull(repo_id: str, *, revision: str | None = None, cache_dir: str | os.PathLike | None = None,
         local_dir: str | os.PathLike | None = None, endpoint: str | None = None, token: str | None = None,
         trust_remote_pickle: bool = False) -> Path:
    """Download a model repo at ``revision`` and check every file against ``metadata.json``.

    Pickle-like files (:data:`UNSAFE_PATTERNS`) are not downloaded unless ``trust_remote_pickle``
    (a warning says why). A file whose sha256 does not match is downloaded once more (a damaged
    cache heals), then refused. When the Hub cannot be reached, a copy of the same revision
    already in the cache is used, as ``huggingface_hub`` does.

    Parameters
    ----------
    repo_id : str
        ``namespace/name``.
    revision : str, optional
        Branch, tag (a pushed version, e.g. ``v20250101T120000Z``) or full commit id; ``main`` by default.
    cache_dir, local_dir : path, optional
        The Hugging Face cache (default ``HF_HOME``'s) or a plain folder to download into.
    trust_remote_pickle : bool
        Also download the seed-compatible pickles. Loading a pickle runs code chosen by whoever
        wrote the repo: only for repos you trust.

    Returns
    -------
    Path
        The folder holding the verified files (a cache snapshot or ``local_dir``).
    """
    from huggingface_hub import hf_hub_download, snapshot_download

    _check_repo_id(repo_id)
    where = f"{repo_id}@{revision or 'main'}"
    if trust_remote_pickle:
        warnings.warn(f"--trust-remote-pickle: downloading pickle files from {repo_id}; loading a pickle runs "
                      "arbitrary code chosen by the repo's author. Use it only for repos you trust.",
                      UserWarning, stacklevel=2)
    common = dict(repo_type="model", cache_dir=cache_dir, local_dir=local_dir, endpoint=endpoint, token=token,
                  library_name="ser")
    with _hub_errors("pulling", repo_id, endpoint=endpoint, token=token, revision=revision):
        path = Path(snapshot_download(repo_id, revision=revision,
                                      ignore_patterns=None if trust_remote_pickle else list(UNSAFE_PATTERNS),
                                      **common))
    metadata = read_metadata(path)
    files = metadata["files"]
    wanted = [n for n in files if trust_remote_pickle or not is_unsafe(n)]
    if _mismatches(path, files, wanted):  # once more, from the Hub, in case the local copy was damaged
        commit = path.name if path.parent.name == "snapshots" else revision
        with contextlib.suppress(Exception):
            for name in wanted:
                if (path / name).is_file() and sha256_file(path / name) != files[name]:
                    hf_hub_download(repo_id, name, revision=commit, force_download=True, **common)
    bad = _mismatches(path, files, wanted)
    if bad:
        raise ModelError(f"Refusing {where}: {'; '.join(bad)} (the file was altered or damaged).")
    model_files = [n for n in wanted if Path(n).name in _SAFE_MODEL_FILES]  # nested in an ensemble too
    if not model_files:
        unsafe = sorted(n for n in files if is_unsafe(n))
        if unsafe and not trust_remote_pickle:
            raise ModelError(f"{where} holds its model only as pickle files ({', '.join(unsafe)}), which can run "
                             "arbitrary code when loaded: pass --trust-remote-pickle only if you trust its author.")
        if not unsafe:
            raise ModelError(f"{where} has no model file ({' or '.join(_SAFE_MODEL_FILES)}) in metadata.json.")
    for name in model_files:
        if name.endswith(".skops"):
            load_pipeline(path / name)  # refuses types outside TRUSTED_SKOPS_TYPES
    return path


def pull_or_fallback(repo_id: str, fallback: str | os.PathLike, *, revision: str | None = None,
                     **kwargs) -> tuple[Path, str]:
    """:func:`pull`, or the bundled ``fallback`` folder when that fails: ``(folder, message)``.

    For the app's start-up (``SER_MODEL_REPO``) and its Models tab: the message says which model
    is served and, on failure, why the Hub model is not.
    """
    try:
        path = pull(repo_id, revision=revision, **kwargs)
    except ModelError as err:
        return Path(fallback), (f"Could not load {repo_id}@{revision or 'main'} from the Hub: {err} "
                                f"Serving the bundled model ({fallback}) instead.")
    return path, f"Serving {repo_id}@{revision or 'main'} from the Hub ({path})."


def repo_from_env(environ: Mapping[str, str] | None = None) -> tuple[str, str | None] | None:
    """``(repo_id, revision)`` from ``SER_MODEL_REPO`` (``user/name`` or ``user/name@revision``) and
    ``SER_MODEL_REVISION``; None when unset."""
    env = os.environ if environ is None else environ
    value = (env.get("SER_MODEL_REPO") or "").strip()
    if not value:
        return None
    repo_id, _, revision = value.partition("@")
    revision = revision or (env.get("SER_MODEL_REVISION") or "").strip() or None
    _check_repo_id(repo_id)
    return repo_id, revision


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------
def add_cli(subparsers: argparse._SubParsersAction) -> None:
    """Register ``push`` and ``pull``; each sets ``handler(args) -> exit code`` (0 ok, 1 error)."""
    p = subparsers.add_parser("push", help="push a saved model folder to a Hugging Face Hub model repo",
                              description="Push a saved model folder (e.g. models/mlp) to a Hub model repo: one "
                                          "commit with a model card, tagged with the model version. The token "
                                          "comes from HF_TOKEN or `hf auth login`.")
    p.add_argument("folder", help="model folder, e.g. models/mlp (or a kind, looked up in --models-dir)")
    p.add_argument("--repo", required=True, help="Hub repo id, namespace/name")
    p.add_argument("--private", action="store_true", help="create the repo private")
    p.add_argument("--message", default=None, help="commit message")
    p.add_argument("--endpoint", default=None, help="Hub URL (default: HF_ENDPOINT or huggingface.co)")
    p.add_argument("--models-dir", default=None,
                   help="where a bare kind (mlp, cnn) is looked up (default $SER_MODELS_DIR or ./models)")
    p.set_defaults(handler=_cmd_push)

    q = subparsers.add_parser("pull", help="download a model from a Hugging Face Hub repo and verify it",
                              description="Download a ser model repo at a revision, check every file against "
                                          "the sha256 in its metadata.json, and print the folder.")
    q.add_argument("repo", help="Hub repo id, namespace/name")
    q.add_argument("--revision", default=None, help="tag (model version), branch or commit (default: main)")
    q.add_argument("--endpoint", default=None, help="Hub URL (default: HF_ENDPOINT or huggingface.co)")
    q.add_argument("--models-dir", default=None,
                   help="download into <models-dir>/hub/<namespace>--<name> (default $SER_MODELS_DIR or ./models)")
    q.add_argument("--cache", action="store_true", help="keep the files in the Hugging Face cache only")
    q.add_argument("--trust-remote-pickle", action="store_true",
                   help="also download the seed-compatible pickles (they can run arbitrary code when loaded)")
    q.set_defaults(handler=_cmd_pull)


def _models_dir(args: argparse.Namespace) -> Path:
    return Path(args.models_dir or os.environ.get("SER_MODELS_DIR") or "models")


def _cmd_push(args: argparse.Namespace) -> int:
    folder = Path(args.folder)
    if not folder.exists() and (_models_dir(args) / args.folder).is_dir():
        folder = _models_dir(args) / args.folder
    try:
        info = push(folder, args.repo, private=args.private, endpoint=args.endpoint, commit_message=args.message)
    except ModelError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    tag = f"tag {info['tag']}" + ("" if info["tag_created"] else f" (already existed, at {info['tag_commit']})")
    print(f"pushed {folder} to {info['repo_id']} ({'private' if info['private'] else 'public'}): "
          f"{info['commit_url']}, {tag}")
    return 0


def _cmd_pull(args: argparse.Namespace) -> int:
    local_dir = None
    if not args.cache:
        local_dir = _models_dir(args) / "hub" / args.repo.replace("/", "--")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            path = pull(args.repo, revision=args.revision, local_dir=local_dir, endpoint=args.endpoint,
                        trust_remote_pickle=args.trust_remote_pickle)
        for w in caught:
            print(f"warning: {w.message}", file=sys.stderr)
        version = json.loads((path / "metadata.json").read_text(encoding="utf-8")).get("version")
    except ModelError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"pulled {args.repo}@{args.revision or 'main'} (version {version}) into {path}")
    return 0
