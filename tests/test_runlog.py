"""runlog.py: train_log.jsonl plus VisualDL scalars, and the training-curve PNG (plot_curves, plot_log.py)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib.image
import pytest

from tinybert import errors
import plot_log
from tinybert.training import runlog


def vdl_scalars(logging_dir: Path, newest: bool = False) -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag of the (single, or with newest the latest) VisualDL record file in logging_dir, as
    (step, value) pairs."""
    from visualdl import LogReader

    files = sorted(logging_dir.glob("vdlrecords*"), key=lambda p: p.stat().st_mtime)
    if newest:
        files = files[-1:]
    assert len(files) == 1, files
    reader = LogReader(file_path=str(files[0]))
    return {tag: [(item.id, item.value) for item in reader.get_data("scalar", tag)]
            for tag in reader.get_tags().get("scalar", [])}


def step(s: int, loss: float, **terms: float) -> dict:
    return {"step": s, "epoch": s / 10, "loss": loss, "lr": 1e-4, "examples_per_s": 50.0, **terms}


def test_runlog_writes_jsonl_and_visualdl_scalars(tmp_path):
    log = runlog.RunLog(tmp_path / "train_log.jsonl", tmp_path / "visualdl")
    log.write({"event": "start", "total_steps": 4, "args": {"lr": 1e-4}, "reference_metrics": {"acc": 0.93}})
    log.write(step(2, 1.5, loss_emb=0.25, loss_hidden=0.75))
    log.write({"event": "checkpoint", "step": 2, "seconds": 0.5})
    log.write({"step": 2, "eval": {"acc": 0.5, "f1": float("nan"), "note": "x"}, "best_metric": 0.5,
               "best_step": 2})
    log.write({"event": "stop", "reason": "non-finite loss", "step": 3, "loss": "nan"})
    log.close()

    lines = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert [r.get("event") for r in lines] == ["start", None, "checkpoint", None, "stop"]
    assert all(isinstance(r["time"], float) for r in lines)
    assert lines[1] == {"time": lines[1]["time"], **step(2, 1.5, loss_emb=0.25, loss_hidden=0.75)}

    got = vdl_scalars(tmp_path / "visualdl")
    # epoch is not a tag (it is the x-axis in other units); NaN, strings and events are left out
    assert set(got) == {"reference/acc", "train/loss", "train/lr", "train/examples_per_s", "train/loss_emb",
                        "train/loss_hidden", "eval/acc"}
    assert got["reference/acc"] == [(0, pytest.approx(0.93))]
    assert got["train/loss"] == [(2, 1.5)]
    assert got["train/loss_hidden"] == [(2, 0.75)]
    assert got["train/lr"] == [(2, pytest.approx(1e-4))]
    assert got["eval/acc"] == [(2, 0.5)]


def test_resumed_run_appends_to_the_same_record_file(tmp_path):
    first = runlog.RunLog(tmp_path / "train_log.jsonl", tmp_path / "visualdl")
    first.write(step(2, 1.5))
    # not closed: a crash; the flush after each write kept the record
    second = runlog.RunLog(tmp_path / "train_log.jsonl", tmp_path / "visualdl", append=True)
    second.write({"event": "resume", "step": 2})
    second.write(step(4, 1.0))
    second.close()
    first.close()
    assert vdl_scalars(tmp_path / "visualdl")["train/loss"] == [(2, 1.5), (4, 1.0)]
    assert len((tmp_path / "train_log.jsonl").read_text().splitlines()) == 3


def test_a_fresh_run_in_a_used_logging_dir_starts_a_record_file_of_its_own(tmp_path):
    """A new run (not --resume) in a --logging_dir that holds an old run's records must not extend that
    run's curves: VisualDL shows the newest file, which is then the new run's alone."""
    import time

    old = runlog.RunLog(tmp_path / "old.jsonl", tmp_path / "visualdl")
    old.write(step(2, 9.0))
    old.close()
    time.sleep(1.1)  # record files are named by the second they were made
    new = runlog.RunLog(tmp_path / "new.jsonl", tmp_path / "visualdl")
    new.write(step(2, 1.0))
    new.close()
    assert len(list((tmp_path / "visualdl").glob("*vdlrecords*"))) == 2
    assert vdl_scalars(tmp_path / "visualdl", newest=True)["train/loss"] == [(2, 1.0)]


def test_runlog_without_visualdl_dir_or_on_other_ranks(tmp_path):
    log = runlog.RunLog(tmp_path / "a.jsonl", None)
    log.write(step(1, 2.0))
    log.close()
    assert json.loads((tmp_path / "a.jsonl").read_text())["loss"] == 2.0
    assert list(tmp_path.iterdir()) == [tmp_path / "a.jsonl"]

    quiet = runlog.RunLog(tmp_path / "b.jsonl", tmp_path / "visualdl", enabled=False)
    quiet.write(step(1, 2.0))
    quiet.close()
    assert not (tmp_path / "b.jsonl").exists() and not (tmp_path / "visualdl").exists()


def test_missing_visualdl_is_a_user_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "visualdl", None)  # makes `import visualdl` raise ImportError
    with pytest.raises(errors.UserError, match=r"pip install visualdl.*--logging_dir none"):
        runlog.RunLog(tmp_path / "train_log.jsonl", tmp_path / "visualdl")
    runlog.RunLog(tmp_path / "train_log.jsonl", None).write(step(1, 1.0))  # no VisualDL needed without it


# ------------------------------------------------------------------------------------------ curves

def write_log(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"time": 0.0, **r}) + "\n" for r in records))
    return path


def intermediate_log(folder: Path) -> Path:
    records = [{"event": "start", "total_steps": 30}]
    records += [step(s, 10 / s, loss_emb=0.1 / s, loss_hidden=5 / s, loss_attn=4.9 / s) for s in range(10, 40, 10)]
    return write_log(folder / "train_log.jsonl", records)


def prediction_log(folder: Path) -> Path:
    """A run interrupted after step 20 and resumed from its step-10 checkpoint: steps 20 and 30 are
    logged again, and the second start record carries other reference metrics."""
    records = [{"event": "start", "reference_metrics": {"acc": 0.9}},
               step(10, 2.0, loss_pred=1.5, loss_hard=0.5), {"step": 10, "eval": {"acc": 0.6, "f1": 0.5}},
               step(20, 1.8, loss_pred=1.3, loss_hard=0.5), {"event": "stop", "reason": "interrupted", "step": 20},
               {"event": "start", "reference_metrics": {"acc": 0.93}},
               step(20, 1.2, loss_pred=0.9, loss_hard=0.3), {"step": 20, "eval": {"acc": 0.8, "f1": 0.7}},
               step(30, 1.0, loss_pred=0.8, loss_hard=0.2), {"step": 30, "eval": {"acc": 0.85, "f1": 0.8}}]
    return write_log(folder / "train_log.jsonl", records)


def test_read_curves_keeps_the_last_value_per_step(tmp_path):
    curves = runlog.read_curves(prediction_log(tmp_path / "student"))
    assert curves.name == "student"
    assert curves.series(curves.train, "loss") == ([10, 20, 30], [2.0, 1.2, 1.0])
    assert curves.series(curves.eval, "acc") == ([10, 20, 30], [0.6, 0.8, 0.85])
    assert curves.reference == {"acc": 0.93}
    assert not curves.is_intermediate()
    assert runlog.read_curves(intermediate_log(tmp_path / "inter")).is_intermediate()


def png_shape(path: Path) -> tuple[int, ...]:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return matplotlib.image.imread(path).shape


def test_plot_curves_draws_one_panel_per_stage_with_data(tmp_path):
    inter, student = intermediate_log(tmp_path / "inter"), prediction_log(tmp_path / "student")
    out = runlog.plot_curves([inter.parent, student], tmp_path / "plots" / "curves.png", title="both stages")
    assert out == tmp_path / "plots" / "curves.png"
    assert out.stat().st_size > 20_000
    height, width, channels = png_shape(out)
    # 5.2 inches per panel at 110 dpi: three panels (intermediate, prediction, dev metrics)
    assert (height, width) == (440, round(3 * 5.2 * 110)) and channels in (3, 4)
    assert list((tmp_path / "plots").iterdir()) == [out]  # no temporary file left

    alone = runlog.plot_curves([inter], tmp_path / "inter.png")  # no evaluations, no prediction stage
    assert png_shape(alone)[:2] == (440, round(5.2 * 110))


@pytest.mark.parametrize("content, line, problem", [
    ('{"step": 1, "loss": 1.0}\n\n{"step": 2, "loss"\n', 3, "not a JSON line"),
    ('{"step": 1, "loss": 1.0}\n[1, 2]\n', 2, "expected a JSON object"),
])
def test_bad_log_line_is_a_data_error_with_its_line(tmp_path, content, line, problem):
    path = tmp_path / "train_log.jsonl"
    path.write_text(content)
    with pytest.raises(errors.DataError, match=problem) as e:
        runlog.plot_curves([tmp_path], tmp_path / "c.png")
    assert (e.value.path, e.value.line) == (str(path), line)
    assert not (tmp_path / "c.png").exists()


def test_missing_or_empty_log_is_a_user_error(tmp_path):
    with pytest.raises(errors.DataError, match="no such file") as e:
        runlog.plot_curves([tmp_path / "nowhere"], tmp_path / "c.png")
    assert e.value.path == str(tmp_path / "nowhere")
    write_log(tmp_path / "run" / "train_log.jsonl", [{"event": "start"}])
    with pytest.raises(errors.UserError, match="no logged steps"):
        runlog.plot_curves([tmp_path / "run"], tmp_path / "c.png")


def test_curves_read_at_a_glance(tmp_path):
    """The total loss is never hidden under a term equal to it, loss axes are linear over a narrow range,
    dev metrics are lines with marked points on an axis from 0, the teacher's line is black and labelled."""
    import matplotlib.pyplot as plt

    pure = [{"event": "start", "reference_metrics": {"acc": 0.9}}]  # alpha 0: loss is loss_pred
    pure += [step(s, 0.7 - s / 1000, loss_pred=0.7 - s / 1000) for s in (10, 20, 30)]
    pure += [{"step": 30, "eval": {"acc": 0.84}}]  # one evaluation
    run = runlog.read_curves(write_log(tmp_path / "pure" / "train_log.jsonl", pure))
    assert runlog.loss_lines(run, ("loss", *runlog.PREDICTION_TERMS)) == [("loss", "loss = loss_pred")]
    both = runlog.read_curves(prediction_log(tmp_path / "both"))
    assert runlog.loss_lines(both, ("loss", *runlog.PREDICTION_TERMS)) == [
        ("loss", "loss"), ("loss_pred", "loss_pred"), ("loss_hard", "loss_hard")]
    assert not runlog.use_log_scale([0.692, 0.671, 0.65]) and runlog.use_log_scale([0.01, 5.0])
    assert runlog.metric_limits([0.84, 0.9])[0] == 0 and runlog.metric_limits([-0.1, 0.3])[0] == -1

    fig = runlog.curves_figure([run])
    losses, metrics = fig.axes
    assert losses.get_yscale() == "linear"
    assert [line.get_label() for line in losses.get_lines()] == ["loss = loss_pred"]
    student, teacher = metrics.get_lines()
    assert student.get_marker() == "o" and list(student.get_xdata()) == [30]
    assert teacher.get_label() == "teacher acc 0.9000" and teacher.get_color() == runlog.TEACHER_COLOR
    assert student.get_color() != teacher.get_color()
    assert metrics.get_ylim()[0] == 0
    plt.close(fig)

    fig = runlog.curves_figure([runlog.read_curves(intermediate_log(tmp_path / "inter"))])
    colours = [line.get_color() for line in fig.axes[0].get_lines()]
    assert len(set(colours)) == len(colours) == 4  # loss and its three terms
    assert fig.axes[0].get_yscale() == "log"  # 0.0025 .. 1: the terms span decades
    plt.close(fig)


def test_plot_log_script_end_to_end(tmp_path, capsys):
    inter, student = intermediate_log(tmp_path / "inter"), prediction_log(tmp_path / "student")
    out = tmp_path / "curves.png"
    plot_log.main([str(inter.parent), str(student), "--output", str(out), "--title", "demo"])
    assert capsys.readouterr().out.strip() == f"curves: {out}"
    assert png_shape(out)[1] == round(3 * 5.2 * 110)

    (tmp_path / "bad.jsonl").write_text("not json\n")
    with pytest.raises(SystemExit) as e:
        plot_log.main([str(tmp_path / "bad.jsonl"), "--output", str(tmp_path / "x.png")])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / 'bad.jsonl'}:1: not a JSON line") and err.count("\n") == 1
