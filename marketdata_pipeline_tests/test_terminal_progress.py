"""The fetch's progress: one drawn bar in a terminal, the log's plain lines elsewhere.

A real Dagster run (`execute_in_process`, the console logger at INFO as `marketdata backfill`
sets it) in a child process whose stderr is a pseudo-terminal or a pipe.
"""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

RUN = """
import time
import dagster as dg
from marketdata_pipeline.lib.polygon.progress import Progress
from marketdata_pipeline.terminal_progress import terminal_progress

@dg.op
def fetch(context):
    progress = Progress(200, context.log, what="fetched grouped days")
    for day in range(200):
        time.sleep(0.002)
        progress.advance(detail=f"(day {day})")
    context.log.info("replaced 0 rows with 4200")

@dg.job
def backfill():
    fetch()

with dg.instance_for_test() as instance, terminal_progress():
    result = backfill.execute_in_process(
        run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
        instance=instance,
    )
    logged = [entry.user_message for entry in instance.all_logs(result.run_id)]
print("RUN-LOG-PROGRESS", sum("fetched grouped days" in m for m in logged))
"""


def run(stderr_kind: str) -> tuple[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = [sys.executable, "-c", RUN]
    if stderr_kind == "pipe":
        done = subprocess.run(args, env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout, done.stderr
    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen(args, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=child)
    os.close(child)
    chunks = []
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    out, _ = proc.communicate(timeout=120)
    os.close(main)
    assert proc.returncode == 0, b"".join(chunks)[-3000:]
    return out.decode(), b"".join(chunks).decode(errors="replace")


def test_a_terminal_gets_one_updating_bar_with_an_eta_and_the_other_lines(tmp_path):
    out, terminal = run("tty")
    # tqdm redraws one line with carriage returns: 0 to 200 with elapsed<remaining (ETA).
    assert "\r" in terminal and "fetched grouped days: 100%" in terminal
    assert "200/200 [" in terminal and "<" in terminal
    # The log's progress lines are left to the bar; other log lines still print.
    assert "fetched grouped days 20/200 (10%)" not in terminal
    assert "replaced 0 rows with 4200" in terminal
    # The run's own log (what the Dagster UI shows) keeps every progress line.
    assert "RUN-LOG-PROGRESS 40" in out


def test_elsewhere_the_progress_is_plain_periodic_lines():
    out, stderr = run("pipe")
    lines = [line for line in stderr.splitlines() if "fetched grouped days" in line]
    assert len(lines) == 40 and "\r" not in stderr
    assert "fetched grouped days 100/200 (50%) (day 99); elapsed" in stderr
    assert "RUN-LOG-PROGRESS 40" in out
