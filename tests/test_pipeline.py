"""tinybert/pipeline.py: stages run as subprocesses with their logs, skipped when their completion mark
matches, rerun (saying why) when a setting or an input changed, and failing with the script's own error."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tinybert import errors, pipeline
from tinybert.pipeline import Pipeline, Stage
from tinybert.training import trainer

# A stand-in for one of the repository's scripts: copies --input to --output with --suffix appended, and
# keeps a record of each run (its arguments) in calls.jsonl beside the output.
COPY_SCRIPT = '''
import argparse, json, sys
from pathlib import Path
from tinybert import cli, errors

@cli.run_main
def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--input"); p.add_argument("--output"); p.add_argument("--suffix", default="")
    p.add_argument("--device", default="cpu"); p.add_argument("--fail", default=None)
    p.add_argument("--resume", action="store_true"); p.add_argument("--overwrite_output_dir", action="store_true")
    args = p.parse_args(argv)
    out = Path(args.output)
    with open(out.parent / "calls.jsonl", "a") as f:
        f.write(json.dumps(sys.argv[1:]) + "\\n")
    print("copying", args.input)
    if args.fail == "user":
        raise errors.UserError(f"{args.input}: the input is not usable")
    if args.fail == "bug":
        1 / 0
    if args.fail == "interrupt":
        raise errors.Interrupted("at step 3")
    if args.fail != "no_output":
        out.write_text(Path(args.input).read_text() + args.suffix)

if __name__ == "__main__":
    main()
'''


@pytest.fixture
def work(tmp_path) -> dict:
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "copy_step.py").write_text(COPY_SCRIPT)
    data = tmp_path / "data"
    data.mkdir()
    (data / "in.txt").write_text("hello")
    return {"scripts": scripts, "input": data / "in.txt", "output": data / "out.txt", "stages": tmp_path / "stages"}


def copy_stage(work: dict, *extra: str, resume_dir: Path | None = None) -> Stage:
    return Stage("copy", "copy_step.py", ["--input", str(work["input"]), "--output", str(work["output"]), *extra],
                 inputs=[work["input"]], outputs=[work["output"]], resume_dir=resume_dir, description="copy it")


def calls(work: dict) -> list[list[str]]:
    path = work["output"].parent / "calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def run(work: dict, stage: Stage, verbose: bool = False) -> pipeline.Outcome:
    return Pipeline(work["stages"], work["scripts"], verbose).run(stage)


def test_a_stage_runs_once_and_is_skipped_on_a_rerun(work, capsys):
    done = run(work, copy_stage(work, "--suffix", "!"))
    assert done.action == "ran" and work["output"].read_text() == "hello!"
    assert len(calls(work)) == 1
    log = (work["stages"] / "copy.log").read_text()
    assert "$ python copy_step.py --input" in log and "copying" in log  # the script's output went to its log
    assert "copying" not in capsys.readouterr().out  # ...and not to the console (not verbose)
    mark = json.loads((work["stages"] / "copy.done").read_text())
    assert mark["settings"][:2] == ["copy_step.py", "--input"] and mark["settings"][-2:] == ["--suffix", "!"]
    assert mark["inputs"][str(work["input"])]["size"] == 5

    again = run(work, copy_stage(work, "--suffix", "!"))
    assert again.action == "skipped" and again.seconds == mark["seconds"]
    assert len(calls(work)) == 1
    assert "copy: done in an earlier run, skipped (copy it)" in capsys.readouterr().out


def test_a_verbose_stage_shows_its_output_on_the_console_too(work, capsys):
    run(work, copy_stage(work), verbose=True)
    assert f"copying {work['input']}" in capsys.readouterr().out
    assert "copying" in (work["stages"] / "copy.log").read_text()


def test_a_changed_setting_reruns_the_stage_and_says_which(work, capsys):
    run(work, copy_stage(work, "--suffix", "!"))
    capsys.readouterr()
    done = run(work, copy_stage(work, "--suffix", "?"))
    assert done.action == "ran" and done.reason == "--suffix ! -> ?"
    assert work["output"].read_text() == "hello?" and len(calls(work)) == 2
    assert "rerun: --suffix ! -> ?" in capsys.readouterr().out
    assert "rerun: --suffix ! -> ?" in (work["stages"] / "copy.log").read_text()
    assert json.loads((work["stages"] / "copy.done").read_text())["settings"][-1] == "?"

    assert run(work, copy_stage(work)).reason == "--suffix removed"  # a flag dropped is a change too


def test_where_a_stage_runs_is_not_a_setting(work):
    run(work, copy_stage(work, "--device", "cpu"))
    assert run(work, copy_stage(work, "--device", "gpu")).action == "skipped"
    assert len(calls(work)) == 1


def test_a_changed_input_of_the_same_size_reruns_the_stage(work):
    run(work, copy_stage(work))
    work["input"].write_text("HELLO")  # same size, other content
    done = run(work, copy_stage(work))
    assert done.action == "ran" and done.reason == f"input {work['input']} changed"
    assert work["output"].read_text() == "HELLO" and len(calls(work)) == 2


def test_a_changed_file_in_an_input_folder_is_named(work):
    folder = work["input"].parent
    stage = Stage("copy", "copy_step.py", ["--input", str(work["input"]), "--output", str(work["output"])],
                  inputs=[folder / "sub"], outputs=[work["output"]])
    (folder / "sub").mkdir()
    (folder / "sub" / "a.bin").write_bytes(b"\0\1")
    (folder / "sub" / "b.bin").write_bytes(b"\0\2")
    run(work, stage)
    (folder / "sub" / "b.bin").write_bytes(b"\0\3")
    assert run(work, stage).reason == f"input {folder / 'sub'} changed (b.bin)"


def test_a_missing_output_reruns_the_stage(work):
    run(work, copy_stage(work))
    work["output"].unlink()
    done = run(work, copy_stage(work))
    assert done.reason == f"output {work['output']} is missing" and work["output"].exists()


@pytest.mark.parametrize("fail, said", [
    ("user", "(error: {input}: the input is not usable)"),
    ("bug", "(ZeroDivisionError: division by zero)"),
])
def test_a_failing_stage_raises_the_scripts_own_error_line(work, fail, said):
    with pytest.raises(errors.UserError) as e:
        run(work, copy_stage(work, "--fail", fail))
    message = str(e.value)
    assert message.startswith("copy_step.py failed " + said.format(input=work["input"]))
    assert str(work["stages"] / "copy.log") in message and "\n" not in message
    assert not (work["stages"] / "copy.done").exists()


def test_an_interrupted_stage_is_an_interruption(work):
    with pytest.raises(errors.Interrupted, match="during copy_step.py"):
        run(work, copy_stage(work, "--fail", "interrupt"))
    assert not (work["stages"] / "copy.done").exists()


def test_the_mark_is_written_only_after_the_outputs_exist(work, monkeypatch):
    with pytest.raises(errors.UserError, match=f"stage copy finished without writing {work['output']}"):
        run(work, copy_stage(work, "--fail", "no_output"))
    assert not (work["stages"] / "copy.done").exists()

    real_write, seen = pipeline.checkpoints.write_json, []

    def write_json(path, obj):
        seen.append((Path(path).name, work["output"].exists()))
        real_write(path, obj)

    monkeypatch.setattr(pipeline.checkpoints, "write_json", write_json)
    run(work, copy_stage(work))
    assert seen == [("copy.done", True)]


def test_a_rerun_after_a_failure_runs_again(work):
    with pytest.raises(errors.UserError):
        run(work, copy_stage(work, "--fail", "user"))
    assert run(work, copy_stage(work)).action == "ran"


def test_a_stage_resumes_from_its_checkpoint_else_starts_afresh(tmp_path):
    assert pipeline.resume_flag(tmp_path / "new") == []
    (tmp_path / "tried").mkdir()
    (tmp_path / "tried" / trainer.LOG_FILE).write_text("")
    assert pipeline.resume_flag(tmp_path / "tried") == ["--overwrite_output_dir"]
    (tmp_path / "tried" / trainer.LAST_DIR).mkdir()
    assert pipeline.resume_flag(tmp_path / "tried") == ["--resume"]


def test_a_training_stage_resumes_an_interrupted_try_but_restarts_a_finished_one(work):
    train_dir = work["output"].parent / "train"
    (train_dir / trainer.LAST_DIR).mkdir(parents=True)  # a checkpoint of an interrupted try
    done = run(work, copy_stage(work, resume_dir=train_dir))
    assert done.action == "resumed" and calls(work)[-1][-1] == "--resume"
    # Finished with other settings: its checkpoint is of that run, so the new settings start afresh.
    done = run(work, copy_stage(work, "--suffix", "!", resume_dir=train_dir))
    assert done.action == "restarted" and calls(work)[-1][-1] == "--overwrite_output_dir"
    # The resume flag is not a setting: the finished stage is skipped.
    assert run(work, copy_stage(work, "--suffix", "!", resume_dir=train_dir)).action == "skipped"


def test_a_rerun_that_failed_after_a_finished_run_restarts_next_time(work):
    """A finished stage rerun with other settings that fails before training starts anew must restart again
    (its folder still holds the earlier run's checkpoint, which --resume would refuse), not resume."""
    train_dir = work["output"].parent / "train"
    (train_dir / trainer.LAST_DIR).mkdir(parents=True)
    run(work, copy_stage(work, resume_dir=train_dir))  # resumed an interrupted try, then finished
    with pytest.raises(errors.UserError):
        run(work, copy_stage(work, "--suffix", "!", "--fail", "user", resume_dir=train_dir))
    assert calls(work)[-1][-1] == "--overwrite_output_dir"
    done = run(work, copy_stage(work, "--suffix", "!", resume_dir=train_dir))
    assert done.action == "restarted" and calls(work)[-1][-1] == "--overwrite_output_dir"
    assert not (work["stages"] / "copy.done.stale").exists()


def test_work_done_in_this_process_is_a_stage_too(work, capsys):
    count = []

    def write() -> dict:
        count.append(1)
        work["output"].write_text("made here")
        return {"rows": 3}

    pipe = Pipeline(work["stages"], work["scripts"], total=2)
    done = pipe.run(Stage("data", None, ["--rows", "3"], outputs=[work["output"]]), write)
    assert (done.action, done.facts, len(count)) == ("ran", {"rows": 3}, 1)
    again = Pipeline(work["stages"], work["scripts"], total=2)
    assert again.run(Stage("data", None, ["--rows", "3"], outputs=[work["output"]]), write).facts == {"rows": 3}
    assert len(count) == 1 and "[1/2] data: done in an earlier run, skipped" in capsys.readouterr().out
    done = again.run(Stage("data", None, ["--rows", "4"], outputs=[work["output"]]), write)
    assert done.reason == "--rows 3 -> 4" and len(count) == 2
