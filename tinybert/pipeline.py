"""The one stage runner of the multi-stage scripts (demo.py, ablation.py).

A stage is one of this repository's scripts with its argument list, the files it reads and the ones it
writes. Running it starts the script in a subprocess with this same Python, streams its output into
FOLDER/NAME.log (and to the console when verbose) and, when it fails, raises one UserError quoting the
script's own one-line error.

Once its outputs are complete a stage leaves a completion mark, FOLDER/NAME.done (JSON): its command line
(the settings) and the identity of each input (size and SHA-256 of every file). A rerun skips a stage whose
mark matches, and reruns one whose mark is missing or differs, saying which setting or input changed.
A training stage interrupted earlier continues from its last checkpoint (--resume).

    pipe = Pipeline(out / "stages", scripts_dir=ROOT, verbose=True)
    pipe.run(Stage("teacher", "finetune_teacher.py", [...], inputs=[train_tsv], outputs=[teacher / "best_model"],
                   resume_dir=teacher))
"""
from __future__ import annotations

import codecs
import hashlib
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Callable, Sequence, TextIO

from tinybert import errors
from tinybert.models import checkpoints

MARK_SUFFIX = ".done"
# Flags that choose where a stage runs, not what it computes: a shard on a CPU machine reuses the stages a
# GPU machine finished in the shared folder.
UNTRACKED_FLAGS = ("--device",)
_ERROR_PREFIXES = ("error:", "interrupted:")  # cli.run_main's one-line errors


@dataclass
class Stage:
    """One step of a pipeline. `script` is a script of this repository run with `argv`; None means the
    caller does the work in this process (Pipeline.run's `work`), and `argv` then lists its settings."""
    name: str
    script: str | None
    argv: Sequence[str] = ()
    inputs: Sequence[Path] = ()
    outputs: Sequence[Path] = ()
    resume_dir: Path | None = None  # a training folder: an interrupted try continues from its checkpoint
    description: str = ""

    def settings(self) -> list[str]:
        """The command line a mark records (where the stage ran is left out: UNTRACKED_FLAGS)."""
        argv = list(self.argv)
        for flag in UNTRACKED_FLAGS:
            while flag in argv:
                i = argv.index(flag)
                del argv[i:i + 2]
        return [self.script or self.name, *argv]


@dataclass
class Outcome:
    """What Pipeline.run did: action is skipped, ran, resumed or restarted; facts and seconds are the
    mark's (of this run, or of the earlier one when skipped); reason says why a marked stage ran again."""
    action: str
    facts: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    reason: str = ""


# ------------------------------------------------------------------------------------------ marks

def read_mark(path: Path) -> dict[str, Any] | None:
    return checkpoints.read_json(path, "stage completion mark") if path.exists() else None


def file_identity(path: Path) -> dict[str, Any]:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {"size": path.stat().st_size, "sha256": digest.hexdigest()}


def identity(path: Path) -> dict[str, Any]:
    """Size and content hash of a file, or of every file in a folder (by relative path)."""
    path = Path(path)
    if path.is_file():
        return file_identity(path)
    if path.is_dir():
        return {"files": {f.relative_to(path).as_posix(): file_identity(f)
                          for f in sorted(path.rglob("*")) if f.is_file()}}
    return {"missing": True}


def input_identities(paths: Sequence[Path]) -> dict[str, dict[str, Any]]:
    return {str(p): identity(Path(p)) for p in paths}


def options(argv: Sequence[str]) -> dict[str, str]:
    """--flag value pairs of a command line (a flag without value maps to ""); other words by position."""
    found: dict[str, str] = {}
    flag = None
    for i, word in enumerate(argv):
        if word.startswith("--"):
            flag = word
            found[flag] = ""
        elif flag is not None:
            found[flag] = f"{found[flag]} {word}".strip()
        else:
            found[f"argument {i}"] = word
    return found


def setting_changes(old: Sequence[str], new: Sequence[str]) -> list[str]:
    """What differs between two recorded command lines, flag by flag."""
    if old[:1] != new[:1]:
        return [f"script {old[0] if old else '?'} -> {new[0]}"]
    before, after = options(old[1:]), options(new[1:])
    said = []
    for key in dict.fromkeys([*before, *after]):
        if key not in before:
            said.append(f"{key} {after[key]}".rstrip() + " added")
        elif key not in after:
            said.append(f"{key} removed")
        elif before[key] != after[key]:
            said.append(f"{key} {before[key]} -> {after[key]}")
    return said


def input_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    said = []
    for path in dict.fromkeys([*old, *new]):
        if path not in old:
            said.append(f"new input {path}")
        elif path not in new:
            said.append(f"input {path} no longer used")
        elif old[path] != new[path]:
            was, now = old[path].get("files"), new[path].get("files")
            if was is not None and now is not None:  # a folder: name the files that changed
                files = sorted(f for f in {*was, *now} if was.get(f) != now.get(f))
                more = f" and {len(files) - 3} more" if len(files) > 3 else ""
                said.append(f"input {path} changed ({', '.join(files[:3])}{more})")
            else:
                said.append(f"input {path} changed")
    return said


def mark_changes(mark: dict[str, Any], stage: Stage, inputs: dict[str, Any]) -> list[str]:
    """Why a marked stage must run again; empty when its mark matches and its outputs are there."""
    if "settings" not in mark:
        return ["its mark was written by an older version (no settings recorded)"]
    said = setting_changes(mark["settings"], stage.settings()) + input_changes(mark.get("inputs", {}), inputs)
    said += [f"output {p} is missing" for p in stage.outputs if not Path(p).exists()]
    return said


# ------------------------------------------------------------------------------------------ running a script

def resume_flag(output_dir: Path) -> list[str]:
    """trainer.py's rules: --resume when a checkpoint is saved, a fresh start in a folder of an earlier try."""
    from tinybert.training import trainer  # paddle loads here, not for --help or a report

    if (output_dir / trainer.LAST_DIR).is_dir():
        return ["--resume"]
    return ["--overwrite_output_dir"] if output_dir.exists() else []


def show_command(script: str, argv: Sequence[str]) -> str:
    return " ".join(shlex.quote(a) for a in ["python", script, *argv])


def _pump(source: BinaryIO, sinks: Sequence[TextIO], lock: threading.Lock, tail: list[str] | None) -> None:
    """Copy a child's output stream to its log (and the console) as it comes, keeping a tail of it."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    while True:
        block = source.read(1 << 16)
        text = decoder.decode(block or b"", final=not block)
        if text:
            with lock:
                for sink in sinks:
                    sink.write(text)
                    sink.flush()
            if tail is not None:
                tail.append(text)
                if len(tail) > 256:  # the error line is at the end: keep the last few blocks only
                    del tail[:128]
        if not block:
            return


def last_error(stderr: str) -> str:
    """The one-line error a failed script printed (cli.run_main), else its last line of stderr."""
    lines = [ln.strip() for ln in stderr.replace("\r", "\n").splitlines() if ln.strip()]
    said = [ln for ln in lines if ln.startswith(_ERROR_PREFIXES)]
    return (said or lines or ["(no output)"])[-1]


def _wait(proc: subprocess.Popen) -> int:
    """The child's exit code. On Ctrl-C (or SIGTERM) here, the child, stopped too or told to stop now,
    gets to finish its own stopping (saving what it can) first."""
    try:
        return proc.wait()
    except KeyboardInterrupt:
        try:
            return proc.wait(timeout=5)  # a terminal's Ctrl-C reached the child as well
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)
            proc.wait()
        return 130


def run_script(script: Path, argv: Sequence[str], log_path: Path, verbose: bool) -> None:
    """`python SCRIPT ARGV` in a subprocess with this Python; its output goes to log_path (appended) and,
    verbose, to the console. A failure raises UserError (Interrupted for Ctrl-C) with its error line."""
    script = Path(script)
    command = show_command(script.name, argv)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"$ {command}\n")
        log.flush()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # output reaches the log as it is printed
        proc = subprocess.Popen([sys.executable, str(script), *argv], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env, bufsize=0)
        lock, tail = threading.Lock(), []
        pumps = [threading.Thread(target=_pump, args=(proc.stdout, [log, sys.stdout] if verbose else [log], lock,
                                                      None), daemon=True),
                 threading.Thread(target=_pump, args=(proc.stderr, [log, sys.stderr] if verbose else [log], lock,
                                                      tail), daemon=True)]
        for pump in pumps:
            pump.start()
        code = _wait(proc)
        for pump in pumps:
            pump.join()
    if code in (130, -signal.SIGINT):
        raise errors.Interrupted(f"during {script.name} (log: {log_path}); rerun the same command: finished "
                                 "stages are kept and this one continues from its last checkpoint")
    if code:
        raise errors.UserError(f"{script.name} failed ({last_error(''.join(tail))}); log: {log_path}; fix the "
                               "cause and rerun the same command to continue from there")


# ------------------------------------------------------------------------------------------ the runner

class Pipeline:
    """Runs stages, keeping each one's log and completion mark in `folder`. With `total`, stages are
    announced as [i/total]."""

    def __init__(self, folder: Path, scripts_dir: Path, verbose: bool = False, total: int | None = None):
        self.folder, self.scripts_dir, self.verbose = Path(folder), Path(scripts_dir), verbose
        self.total, self.index = total, 0

    def mark_path(self, name: str) -> Path:
        return self.folder / f"{name}{MARK_SUFFIX}"

    def log_path(self, name: str) -> Path:
        return self.folder / f"{name}.log"

    def mark(self, name: str) -> dict[str, Any] | None:
        return read_mark(self.mark_path(name))

    def is_done(self, stage: Stage) -> bool:
        """Whether `stage` has a mark that matches (run would skip it)."""
        mark = self.mark(stage.name)
        return mark is not None and not mark_changes(mark, stage, input_identities(stage.inputs))

    def _label(self, name: str) -> str:
        self.index += 1
        return f"[{self.index}/{self.total}] {name}" if self.total else name

    def run(self, stage: Stage, work: Callable[[], dict[str, Any]] | None = None) -> Outcome:
        """Run `stage` unless its mark matches. A script stage runs its script, then `work` (if given)
        returns facts read from its outputs; a stage without script is `work` itself. The mark, with the
        facts, is written once the declared outputs exist."""
        label, about = self._label(stage.name), f" ({stage.description})" if stage.description else ""
        inputs = input_identities(stage.inputs)
        mark_file = self.mark_path(stage.name)
        mark = read_mark(mark_file)
        changes = mark_changes(mark, stage, inputs) if mark is not None else []
        if mark is not None and not changes:
            print(f"{label}: done in an earlier run, skipped{about}", flush=True)
            return Outcome("skipped", mark.get("facts", {}), mark.get("seconds", 0.0))

        print(f"\n{label}: {stage.description or 'running'}", flush=True)
        reason = "; ".join(changes)
        stale = mark_file.with_name(mark_file.name + ".stale")
        if reason:
            print(f"    rerun: {reason}", flush=True)
            # A half-done rerun must not pass for the earlier run, yet must still be known to follow a finished
            # run of other settings (so a rerun after it failed restarts instead of resuming that run).
            mark_file.replace(stale)
        started = time.time()
        finished_before = mark is not None or stale.exists()
        action = self._run_script(stage, finished_before, reason) if stage.script is not None else "ran"
        facts = work() if work is not None else {}
        missing = [str(p) for p in stage.outputs if not Path(p).exists()]
        if missing:
            raise errors.UserError(f"stage {stage.name} finished without writing {', '.join(missing)}")
        seconds = round(time.time() - started, 1)
        checkpoints.write_json(mark_file, {"stage": stage.name, "settings": stage.settings(), "inputs": inputs,
                                           "outputs": [str(p) for p in stage.outputs], "seconds": seconds,
                                           "facts": facts})
        stale.unlink(missing_ok=True)
        print(f"    {stage.name} finished in {seconds:.0f} s", flush=True)
        return Outcome(action, facts, seconds, reason)

    def _run_script(self, stage: Stage, finished_before: bool, reason: str) -> str:
        """Run a script stage; returns ran, resumed or restarted."""
        how = []
        if stage.resume_dir is not None:
            # A stage that finished with other settings starts afresh; an interrupted try continues.
            restart = ["--overwrite_output_dir"] if stage.resume_dir.exists() else []
            how = restart if finished_before else resume_flag(stage.resume_dir)
        argv = [*stage.argv, *how]
        print(f"    $ {show_command(stage.script, argv)}", flush=True)
        log = self.log_path(stage.name)
        if reason:
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "a", encoding="utf-8") as f:
                f.write(f"rerun: {reason}\n")
        run_script(self.scripts_dir / stage.script, argv, log, self.verbose)
        return {"--resume": "resumed", "--overwrite_output_dir": "restarted"}.get(how[0] if how else "", "ran")
