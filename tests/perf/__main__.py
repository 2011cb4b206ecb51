"""``make bench``: run every benchmark script in tests/perf/ and write BENCHMARKS.md.

Each script is a module here without a ``test_`` prefix (so pytest never collects it) whose
``main()`` prints Markdown. They run one after another in fresh processes on this machine, and
BENCHMARKS.md records their output with the command that reproduces each figure.

    uv run python -m tests.perf [--only NAME ...] [--output BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
NOT_BENCHMARKS = {"__init__", "__main__", "hello_app"}
#: Scripts that need longer than ``--timeout`` at their default size (seconds).
LONG_RUNNING = {"shared_budget": 2 * 3600}


def scripts() -> list[str]:
    return sorted(
        p.stem
        for p in HERE.glob("*.py")
        if p.stem not in NOT_BENCHMARKS and not p.stem.startswith(("_", "test_"))
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None, help="run only these scripts")
    parser.add_argument("--output", default=str(ROOT / "BENCHMARKS.md"))
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per script")
    args = parser.parse_args()
    chosen = args.only or scripts()
    unknown = set(chosen) - set(scripts())
    if unknown:
        raise SystemExit(f"no such benchmark: {', '.join(sorted(unknown))}")

    load_before = os.getloadavg()[0]
    sections, failures = [], []
    for name in chosen:
        command = f"uv run python -m tests.perf.{name}"
        print(f"== {command}", flush=True)
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", f"tests.perf.{name}"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=max(args.timeout, LONG_RUNNING.get(name, 0)),
        )
        took = time.monotonic() - started
        if result.returncode != 0:
            failures.append(name)
            body = f"**Failed** (exit {result.returncode}):\n\n```\n{result.stderr[-3000:]}\n```"
        else:
            body = result.stdout.strip()
        sections.append(f"# `{name}`\n\nReproduce: `{command}` (took {took:.0f} s)\n\n{body}\n")
        print(body, flush=True)

    header = (
        "# Benchmarks\n\n"
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M UTC} by `make bench` on "
        f"{platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}. "
        f"Load average (1 min) {load_before:.1f} when it started and {os.getloadavg()[0]:.1f} "
        "when it ended: timings on a busy machine are slower than on an idle one. "
        "Every figure below comes from that one run; each section names the command that "
        "reproduces it alone.\n"
    )
    Path(args.output).write_text(header + "\n" + "\n".join(sections))
    print(f"\nWrote {args.output}")
    if failures:
        raise SystemExit(f"benchmarks failed: {', '.join(failures)}")


if __name__ == "__main__":
    main()
