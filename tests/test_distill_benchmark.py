"""benchmarks/distill_speed.py at tiny shapes: it runs both settings on real SST-2 rows and prints its gate line.

The speed goal itself is met by the real-size run (README), never asserted here."""
from __future__ import annotations

import re
import subprocess
import sys

from builders import ROOT


def test_distill_speed_quick_run_prints_the_gate_and_a_profile(glue_dir, tmp_path, minilm_hf_dir):
    out = tmp_path / "result.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "distill_speed.py"), "--quick",
                           "--glue_dir", str(glue_dir), "--json", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert re.search(r"^distill_epoch_speedup: \d+\.\d\dx$", proc.stdout, re.M)
    assert re.search(r"^prediction_stage_examples_per_s: \d+\.\d$", proc.stdout, re.M)
    import json
    result = json.loads(out.read_text())
    assert result["rows"] == 96 and set(result["median_epoch_seconds"]) == {"plain", "fast"}
    # Length-grouped batches carry less padding than random ones on the same rows.
    assert result["padding"]["fast"] < result["padding"]["plain"]
    assert set(result["profile_seconds"]["fast"]) == {"teacher", "student forward + losses", "backward", "optimizer"}
