"""Draw the training curves of one or more runs as a PNG.

    python plot_log.py OUTPUT_DIR [MORE_RUNS ...] --output curves.png [--title "SST-2 student"]

Each argument is a run folder (holding train_log.jsonl) or a train_log.jsonl file. Panels: the
intermediate-layer losses (total and per term), the prediction-stage / fine-tuning losses, and the dev
metrics (lines with their points, the axis from 0) with the teacher's reference metrics as black dotted
lines; loss axes are linear unless their values span a decade; a panel with no data is left out.
For live curves during training, open the VisualDL logs instead: visualdl --logdir OUTPUT_DIR/visualdl
"""
from __future__ import annotations

from tinybert import cli

import argparse
from pathlib import Path
from typing import Sequence

from tinybert.training import runlog


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=cli.HelpFormatter)
    p.add_argument("runs", nargs="+", help="Run folders or train_log.jsonl files.")
    p.add_argument("--output", default="curves.png", help="The PNG to write.")
    p.add_argument("--title", default=None, help="A title above the panels (default: none).")
    return p.parse_args(argv)


@cli.run_main
def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    out = runlog.plot_curves([Path(r) for r in args.runs], Path(args.output), args.title)
    print(f"curves: {out}")


if __name__ == "__main__":
    main()
