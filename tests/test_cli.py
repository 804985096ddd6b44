"""The ``ser`` command (ser/cli.py): every command's help, the seed's ``python train.py mlp`` form,
one-line errors with exit code 2, ``ser report``; and how it is installed (pyproject.toml's console
script, ``python -m ser``, ``pip install .``)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from ser import cli
from ser.reports import END, START, STUDIES_END, STUDIES_START

REPO = Path(__file__).resolve().parents[1]
COMMANDS = (["train"], ["train", "mlp"], ["train", "cnn"], ["train", "ensemble"], ["predict"], ["enroll"], ["push"],
            ["pull"], ["report"])


def _run(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("command", [[], *COMMANDS], ids=lambda c: " ".join(c) or "ser")
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main([*command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: ser {' '.join(command)}".rstrip()) and "-h, --help" in out


def test_every_subcommand_is_listed_in_the_top_level_help(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for name in ("train", "predict", "enroll", "push", "pull", "report"):
        assert f"    {name} " in out, name


def _parsed(argv: list[str], monkeypatch) -> dict:
    """What ``main(argv)`` hands to the command's handler (nothing is trained)."""
    seen = {}

    def handler(args):
        seen.update(vars(args))
        return 0

    for name in ("_cmd_mlp", "_cmd_deep"):
        monkeypatch.setattr(cli, name, handler)
    assert cli.main(argv) == 0
    return {k: v for k, v in seen.items() if k != "handler"}


@pytest.mark.parametrize("rest", [
    ["mlp", "--data", "corpus", "--no-search", "--hidden", "64", "32", "--alpha", "0.1", "--no-save", "--jobs", "1"],
    ["cnn", "--data", "corpus", "--epochs", "2", "--batch-size", "16", "--speakers", "01", "02"],
    ["ensemble", "--data", "corpus", "--cnn", "models/cnn", "--no-augment"],
])
def test_seed_form_parses_exactly_like_ser_train(rest, monkeypatch):
    seed_form = _parsed(rest, monkeypatch)  # python train.py mlp ...
    assert seed_form == _parsed(["train", *rest], monkeypatch)
    assert seed_form["command"] == "train" and seed_form["kind"] == rest[0] and seed_form["data"] == "corpus"


def test_train_py_is_one_line_over_the_same_cli():
    code = [line for line in (REPO / "train.py").read_text().splitlines()
            if line.strip() and not line.lstrip().startswith(("#", '"""', "import", "from"))]
    assert code == ['if __name__ == "__main__":', "    sys.exit(main())"]
    a, b = _run("train.py", "mlp", "--help"), _run("-m", "ser", "train", "mlp", "--help")
    assert a.returncode == b.returncode == 0
    assert a.stdout == b.stdout and "--no-search" in a.stdout


def test_python_m_ser_is_the_ser_command():
    out = _run("-m", "ser", "--help")
    assert out.returncode == 0 and out.stdout.startswith("usage: ser ")
    bad = _run("-m", "ser", "no-such-command")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


@pytest.mark.parametrize("argv, message", [
    (["train", "mlp", "--data", "/nonexistent/corpus", "--no-save"], "/nonexistent/corpus"),
    (["predict", "x.wav", "--model", "no-such-model", "--no-progress"], "No model at no-such-model"),
    (["report", "--readme", "/nonexistent/README.md"], "No README at /nonexistent/README.md"),
    (["predict", "x.wav", "--profile", "/nonexistent/me.json", "--no-progress"],
     "Cannot read the speaker profile /nonexistent/me.json"),
    (["enroll", "a.wav", "b.wav", "--model", "mlp", "--out", "/tmp/never.json"], "mlp model (v"),
])
def test_errors_exit_2_with_one_line(argv, message, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err, err


def test_a_bad_setting_is_an_error_naming_it(monkeypatch, capsys):
    monkeypatch.setenv("SER_UNCERTAIN_BELOW", "2")
    assert cli.main(["predict", str(REPO / "examples" / "level.wav"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "SER_UNCERTAIN_BELOW" in err


def test_report_rewrites_a_copy_of_the_readme_and_the_model_cards(tmp_path, capsys):
    models = tmp_path / "models"  # the bundled models' metadata, without their cards
    for kind in ("mlp", "cnn", "smile", "ensemble"):
        (models / kind).mkdir(parents=True)
        shutil.copy(REPO / "models" / kind / "metadata.json", models / kind)
    pristine = tmp_path / "pristine.md"
    shutil.copy(REPO / "README.md", pristine)
    assert cli.main(["report", "--readme", str(pristine), "--models-dir", str(models)]) == 0
    assert capsys.readouterr().err.count("(model card) updated") == 4
    assert "## Results" in (models / "smile" / "README.md").read_text(encoding="utf-8")
    expected = pristine.read_text(encoding="utf-8")

    stale = tmp_path / "README.md"
    head, rest = expected.split(START, 1)
    _, tail = rest.split(END, 1)
    tail = tail.split(STUDIES_START, 1)[0] + f"{STUDIES_START}\nold numbers\n{STUDIES_END}" + \
        tail.split(STUDIES_END, 1)[1]
    stale.write_text(f"{head}{START}\n| old | table |\n{END}{tail}", encoding="utf-8")
    assert cli.main(["report", "--readme", str(stale), "--models-dir", str(models)]) == 0
    assert capsys.readouterr().err.strip() == f"{stale} updated"  # the cards were already current
    assert stale.read_text(encoding="utf-8") == expected  # both blocks back, every other line untouched
    assert cli.main(["report", "--readme", str(stale), "--models-dir", str(models)]) == 0
    assert capsys.readouterr().err.strip() == f"{stale} already up to date"


def test_report_refuses_a_file_without_the_marked_blocks(tmp_path, capsys):
    other = tmp_path / "notes.md"
    other.write_text("no tables here\n")
    assert cli.main(["report", "--readme", str(other)]) == 2
    assert "results:start" in capsys.readouterr().err and other.read_text() == "no tables here\n"


# -- installation --------------------------------------------------------------------------------
def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def test_pyproject_declares_the_ser_console_script_and_every_subpackage():
    project = _pyproject()["project"]
    assert project["scripts"] == {"ser": "ser.cli:main"}
    found = _pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]
    assert found == ["ser", "ser.*"]


def test_pyproject_dependencies_admit_the_pinned_requirements():
    pins = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            pins[req.name.lower()] = next(iter(req.specifier)).version
    ranges = {Requirement(d).name.lower(): Requirement(d) for d in _pyproject()["project"]["dependencies"]}
    assert sorted(ranges) == sorted(pins)
    for name, version in pins.items():
        assert ranges[name].specifier.contains(version), (name, version, str(ranges[name].specifier))


@pytest.mark.slow
def test_pip_install_gives_a_working_ser_command(tmp_path):
    """``pip install .`` (without dependencies, which are installed here) of a copy of the project."""
    src = tmp_path / "src"
    shutil.copytree(REPO / "ser", src / "ser", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    site = tmp_path / "site"
    pip = _run("-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--target", str(site),
               str(src), cwd=tmp_path)
    assert pip.returncode == 0, pip.stderr
    ours = {p.relative_to(REPO).as_posix() for p in (REPO / "ser").rglob("*.py")}
    installed = {p.relative_to(site).as_posix() for p in (site / "ser").rglob("*.py")}
    assert ours <= installed, sorted(ours - installed)
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = subprocess.run([str(site / "bin" / "ser"), "predict", "--help"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.startswith("usage: ser predict"), out.stderr
    where = subprocess.run([sys.executable, "-c", "import ser; print(ser.__file__)"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=60)
    assert where.stdout.strip() == str(site / "ser" / "__init__.py")


AUG, DEG = ("pitch+2", "stretch1.1", "noise20dB"), ("degraded1", "degraded2")


@pytest.mark.parametrize("kind, flags, variants, conditions", [
    ("smile", [], (), ()),
    ("smile", ["--degraded-copies", "--test-conditions", "telephone"], DEG, ("telephone",)),
    ("cnn", [], AUG, ()),
    ("cnn", ["--degraded-copies", "--test-conditions", "telephone", "white10dB"], AUG + DEG, ("telephone", "white10dB")),
    ("cnn", ["--no-augment", "--degraded-copies"], DEG, ()),
    ("mlp", [], AUG, ()),
    ("mlp", ["--degraded-copies", "--test-conditions", "white10dB"], AUG + DEG, ("white10dB",)),
])
def test_training_takes_the_robust_recipe_and_test_conditions_only_when_asked(kind, flags, variants, conditions,
                                                                              monkeypatch):
    seen = {}

    def fake_train(clips, **kwargs):
        seen.update(kwargs)
        raise SystemExit(0)  # stop before saving anything

    monkeypatch.setattr(cli, f"train_{kind}", fake_train)
    monkeypatch.setattr(cli, "_load_clips", lambda args: [])
    with pytest.raises(SystemExit):
        cli.main(["train", kind, "--no-save", *flags])
    assert tuple(seen["variants"]) == variants and tuple(seen["test_conditions"]) == conditions


def test_an_unknown_test_condition_is_refused_with_the_known_ones(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["train", "smile", "--no-save", "--test-conditions", "underwater"])
    assert e.value.code == 2 and "telephone" in capsys.readouterr().err
