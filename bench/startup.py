"""How long the ``gpshub`` command takes to start, measured on real processes.

Each figure is taken over ``--runs`` runs (median and max of the wall-clock time, and
the median CPU time the process used meanwhile):

- the import time of ``hub`` and of ``hub.cli`` (in a fresh interpreter, timed inside it);
- launching ``gpshub --help``, ``gpshub --version`` and ``gpshub plugins`` until they exit;
- launching ``gpshub serve`` on a new temporary data directory and a free loopback port
  until ``/readyz`` first answers 200 (polled every 5 ms), then the same on a data
  directory started once before (a restart: nothing to migrate).

The command is the venv's installed ``gpshub`` entry point (next to ``sys.executable``).
``--against OTHER/bin/gpshub`` measures another installation too (an older checkout's
venv, say), run for run in turn with this one: on a shared machine the time a start
takes follows the load, so only figures taken together compare.  The time a fixed loop
takes is printed for the same reason.  ``--installed`` measures, the same way, gpshub as
a user installs it: the checkout's packages built and installed (not editable) with
their runtime dependencies only, into a temporary venv (``uv sync --no-dev
--no-editable``).  The development venv has more to import: httpx loads its command
line (click, pygments) when click is installed, which schemathesis brings.

Bytecode is cached in a temporary folder (``PYTHONPYCACHEPREFIX``), warmed by one untimed
run of each, as an installed wheel has it compiled; ``--no-bytecode`` measures with
``PYTHONDONTWRITEBYTECODE=1`` (every module compiled at every start) instead. Figures
are printed, never asserted.

    .venv/bin/python bench/startup.py
    .venv/bin/python bench/startup.py --runs 11 --only serve
    .venv/bin/python bench/startup.py --against ../main/.venv/bin/gpshub
    .venv/bin/python bench/startup.py --installed --only serve
"""

from __future__ import annotations

import argparse
import http.client
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

POLL_S = 0.005
TIMEOUT_S = 60.0

Sample = tuple[float, float | None]
"""Wall-clock seconds, and the CPU seconds the process used meanwhile (if known)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def import_time(env: dict[str, str], gpshub: Path, module: str, cwd: Path) -> Sample:
    """``import module`` in a fresh interpreter of ``gpshub``'s venv, started in ``cwd``
    (not here: ./hub would shadow the installed package), timed inside it."""
    code = (
        "import time; w, c = time.perf_counter(), time.process_time(); "
        f"import {module}; print(time.perf_counter() - w, time.process_time() - c)"
    )
    done = subprocess.run(
        [str(gpshub.with_name("python")), "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=cwd,
    )
    wall, cpu = map(float, done.stdout.split())
    return wall, cpu


def command_time(env: dict[str, str], gpshub: Path, *args: str) -> Sample:
    """From launching ``gpshub args`` to its exit (which must be 0)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([str(gpshub), *args], env=env, stdout=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def cpu_so_far(pid: int) -> float | None:
    """The CPU time (user and system) process ``pid`` has used, where /proc says it."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def readyz(port: int) -> int | None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/readyz")
        return conn.getresponse().status
    except OSError:
        return None
    finally:
        conn.close()


def serve_time(env: dict[str, str], gpshub: Path, data_dir: Path) -> Sample:
    """From launching ``gpshub serve`` to the first 200 from ``/readyz``."""
    port = free_port()
    args = [str(gpshub), "--data-dir", str(data_dir), "serve", "--port", str(port)]
    start = time.perf_counter()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while time.perf_counter() - start < TIMEOUT_S:
            if readyz(port) == 200:
                return time.perf_counter() - start, cpu_so_far(proc.pid)
            if proc.poll() is not None:
                raise SystemExit(f"gpshub serve exited with {proc.returncode}")
            time.sleep(POLL_S)
        raise SystemExit(f"gpshub serve was not ready within {TIMEOUT_S:.0f} s")
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM: the hub exits 0 once its signal handler runs, or dies of the signal if
    it comes before (readiness may be answered a moment earlier)."""
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    if proc.returncode not in (0, -signal.SIGTERM):
        sys.stderr.write(err.decode(errors="replace")[-2000:])


def reference_ms() -> float:
    """Milliseconds a fixed pure-Python loop takes here now (the best of three)."""
    code = "import time; t = time.perf_counter(); sum(range(20_000_000)); print(time.perf_counter() - t)"
    runs = [
        float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout)
        for _ in range(3)
    ]
    return min(runs) * 1000


def report(label: str, measure: Callable[[Path], Sample], targets: list[Path], runs: int) -> None:
    """``runs`` samples of ``measure`` for each target, the targets taking turns."""
    samples: dict[Path, list[Sample]] = {t: [] for t in targets}
    for _ in range(runs):
        for target in targets:
            samples[target].append(measure(target))
    for target in targets:
        walls = [wall for wall, _ in samples[target]]
        cpus = [cpu for _, cpu in samples[target] if cpu is not None]
        cpu = f"   CPU median {statistics.median(cpus) * 1000:6.0f} ms" if cpus else ""
        which = f"  [{target}]" if len(targets) > 1 else ""
        print(
            f"{label:<40} median {statistics.median(walls) * 1000:6.0f} ms"
            f"   max {max(walls) * 1000:6.0f} ms{cpu}{which}"
        )


def install(venv: Path) -> Path:
    """The checkout's packages and their runtime dependencies, built and installed (not
    editable) into ``venv``, as ``uv.lock`` pins them; its ``gpshub``."""
    root = Path(__file__).resolve().parent.parent
    uv = shutil.which("uv") or str(root / ".tools" / "bin" / "uv")
    command = [uv, "sync", "--all-packages", "--no-dev", "--no-editable", "--locked", "-q"]
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv)}
    subprocess.run(command, cwd=root, env=env, check=True)
    return venv / "bin" / "gpshub"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="runs of each (default 7)")
    parser.add_argument(
        "--no-bytecode", action="store_true", help="no cached bytecode: compile every module"
    )
    parser.add_argument("--only", metavar="TEXT", help="only the figures whose label has TEXT")
    parser.add_argument(
        "--against", metavar="GPSHUB", help="another installation's gpshub, measured in turn"
    )
    parser.add_argument(
        "--installed",
        action="store_true",
        help="also gpshub installed as a user has it (runtime dependencies, not editable)",
    )
    args = parser.parse_args()
    targets = [Path(sys.executable).parent / "gpshub"]
    if args.against:
        targets.append(Path(args.against).absolute())
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        if args.installed:
            targets.append(install(tmp / "installed"))
        env = {**os.environ, "GPSHUB_LOG_LEVEL": "WARNING"}
        for var in ("GPSHUB_SECRET_KEY", "GPSHUB_CONFIG", "GPSHUB_DATA_DIR", "GPSHUB_PORT"):
            env.pop(var, None)
        if args.no_bytecode:
            env["PYTHONDONTWRITEBYTECODE"] = "1"
            print("no cached bytecode (PYTHONDONTWRITEBYTECODE=1)")
        else:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
            for i, target in enumerate(targets):  # compiles what serve and --help import
                serve_time(env, target, tmp / f"warm-up-{i}")
                command_time(env, target, "--help")
            print("bytecode cached (one untimed warm-up run)")
        print(f"{os.cpu_count()} CPUs, {args.runs} runs each, {', '.join(map(str, targets))}")
        print(f"the machine's speed meanwhile: a fixed loop takes {reference_ms():.0f} ms")

        new_dirs = (tmp / f"data-{i}" for i in range(args.runs * len(targets)))
        restarted = {t: tmp / f"again-{i}" for i, t in enumerate(targets)}
        figures: list[tuple[str, Callable[[Path], Sample]]] = [
            ("import hub", lambda t: import_time(env, t, "hub", tmp)),
            ("import hub.cli", lambda t: import_time(env, t, "hub.cli", tmp)),
            ("gpshub --help", lambda t: command_time(env, t, "--help")),
            ("gpshub --version", lambda t: command_time(env, t, "--version")),
            ("gpshub plugins", lambda t: command_time(env, t, "plugins")),
            ("gpshub serve → /readyz (new data dir)", lambda t: serve_time(env, t, next(new_dirs))),
            ("gpshub serve → /readyz (restart)", lambda t: serve_time(env, t, restarted[t])),
        ]
        for label, measure in figures:
            if args.only is not None and args.only not in label:
                continue
            if label.endswith("(restart)"):
                for target, folder in restarted.items():
                    serve_time(env, target, folder)  # the first start, untimed: migrates
            report(label, measure, targets, args.runs)


if __name__ == "__main__":
    main()
