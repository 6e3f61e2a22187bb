"""Every command example of README.md and docs/*.md works as written, from another directory.

The documents are found when the tests run (README.md, then every docs/*.md) and read as they
are then, so a new guide, or a guide's new example, is covered without editing this file. A
command is a line of a shell block (```bash) or inline code in the prose (`marketdata ...`).

Run, in each document's order, as the installed console script, with the current directory a
temporary folder outside the project, on one candle database and one Dagster instance:

- the `marketdata ...` lines of shell blocks, inline code written to be pasted (starting with
  `.venv/bin/`), and `$(marketdata ...)` substitutions (`psql "$(... db url)"` runs in bash,
  fed a query). Each document starts from a fresh shell: no API key, so a fetching command
  starts its own simulator, as the guides say, until the document exports a key. Each command
  must exit 0, leave no `.marketdata/` where it ran, and do what the guides say it does
  (`_check_outcome`). Placeholders are filled in `_argv` and nowhere else. `marketdata
  simulator` is started, asked for a bar and stopped. The same command in the same environment
  runs once (operations.md repeats a backfill of the README).
- the `marketdata` commands a `make` line runs (`make -n`), once per line: `make demo` starts
  the README (the state the guides assume) and is not repeated by api-keys.md.
- setup lines (`export`, `mkdir`, `cp`, `cd`, `source`), as a shell would; an exported key,
  machine or path is replaced by the test's own (`stand_ins`).

Checked, not run (the reason is the command's kind; any other shell line fails the tests):

- `make TARGET [VAR=value]`: TARGET exists and its dry run (`make -n`) uses the values shown.
  `make test`, `make bench` and `make venv` run the suite, the benchmarks or an install.
- long-running servers (`LONG_RUNNING`: `marketdata dev`, which e2e/test_dev.py runs): their
  options parse.
- `python -m bench...`: the benchmarks take up to 13 minutes; the module exists and its parser
  accepts the options shown (`--help`).
- `dagster ...`: one of the process commands the e2e deployment starts (test_deployment.py).
- other inline `marketdata ...` code names a command in the prose: the command and each option
  it shows must exist.

Every SQL block runs against the schema and the rows the commands stored, except the
partitioned table of deployment.md, which test_guides.py creates on an empty database.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import re
import runpy
import shlex
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import httpx
import psycopg
import pytest

from marketdata_pipeline.cli import cli
from marketdata_pipeline.lib.postgres.embedded import sqlalchemy_url
from marketdata_pipeline.lib.symbols import parse_symbols
from marketdata_pipeline_tests.e2e.conftest import (
    BIN,
    CODE_SERVER_COMMAND,
    DAEMON_COMMAND,
    DEFAULT_PORTS,
    HEALTH_CHECK_COMMAND,
    REPO,
    WEBSERVER_COMMAND,
    free_port,
    fresh_database,
    without_project_variables,
)

SHELL_LANGUAGES = ("bash", "sh", "shell", "console")
SETUP_WORDS = ("export", "mkdir", "cp", "cd", "source")
FENCE = re.compile(r"^\s*```(\S*)")
INLINE_CODE = re.compile(r"`([^`]+)`")
#: The deployment guide's partitioned table needs an empty database: test_guides.py runs it.
PARTITIONED_MARKER = "test_guides.py::test_partitioned_candle_table_from_the_guide"
#: Commands that do not return by themselves: their options are checked, they are not run
#: here. `make dev` / `marketdata dev` is started and stopped by e2e/test_dev.py.
LONG_RUNNING = {("marketdata", "dev"): "a server until Ctrl-C; e2e/test_dev.py runs it"}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
COMMAND_TIMEOUT = 300


# -- reading the documents -----------------------------------------------------------------


def documents() -> list[Path]:
    """README.md and every guide in docs/, in reading order."""
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def _name(path: Path) -> str:
    """A document's path in the project (`docs/operations.md`), for test ids and messages."""
    return str(path.relative_to(REPO))


@dataclass(frozen=True)
class Example:
    """One command of a document: a shell-block line (comment removed) or inline code."""

    doc: str
    line: int
    text: str
    in_block: bool

    def __str__(self) -> str:
        return f"{self.doc}:{self.line}: {self.text}"

    @property
    def words(self) -> list[str]:
        """The command's words; leading `VAR=value` assignments and `.venv/bin/` dropped."""
        try:
            words = shlex.split(self.text)
        except ValueError:
            words = self.text.split()
        while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", words[0]):
            words.pop(0)
        if words:
            words[0] = words[0].removeprefix(".venv/bin/")
        return words

    @property
    def kind(self) -> str:
        """marketdata, substitution (`$(marketdata ...)`), make, bench, dagster, setup, other."""
        if "$(" in self.text and "marketdata " in self.text:
            return "substitution"
        words = self.words
        if len(words) < 2 and not (words and words[0] in SETUP_WORDS):
            return "other"
        first = words[0]
        if first == "marketdata":
            return "marketdata"
        if first == "make":
            return "make"
        if re.fullmatch(r"python(3(\.\d+)?)?", first) and words[1] == "-m":
            return "bench" if words[2].split(".")[0] == "bench" else "other"
        if first.startswith("dagster"):
            return "dagster"
        if first in SETUP_WORDS:
            return "setup"
        return "other"

    @property
    def runs(self) -> bool:
        """Run, not only checked: a shell-block line, or inline code written to be pasted (with
        its path, or a command substitution)."""
        return self.in_block or self.text.startswith(".venv/bin/") or self.kind == "substitution"


def examples(path: Path) -> list[Example]:
    """Every command of a document, in order: shell-block lines and command-like inline code."""
    found: list[Example] = []
    fence: str | None = None  # the language of the open fenced block
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        opening = FENCE.match(raw)
        if opening:
            fence = opening.group(1) if fence is None else None
            continue
        if fence is not None:
            if fence in SHELL_LANGUAGES:
                line = raw.split(" #", 1)[0].strip()
                if line and not line.startswith("#"):
                    found.append(Example(_name(path), number, line, in_block=True))
            continue
        for code in INLINE_CODE.findall(raw):
            example = Example(_name(path), number, code.strip(), in_block=False)
            if example.kind in ("marketdata", "substitution", "make", "bench"):
                found.append(example)
    return found


def sql_blocks(path: Path) -> list[tuple[str, str]]:
    """(line before, body) of every ```sql block of a document."""
    pattern = re.compile(r"^([^\n]*)\n\s*```sql\n(.*?)\n\s*```", re.S | re.M)
    return [(m.group(1).strip(), m.group(2)) for m in pattern.finditer(path.read_text())]


def _argv(example: Example) -> list[str]:
    """The arguments of a documented command, its placeholders filled, minimally:
    an optional part `[--asset stock_daily_candles]` is given (brackets dropped), and `...`
    standing for "more of the same" is dropped."""
    words = [w.strip("[]") for w in example.words]
    return [w for w in words if w and w != "..."]


# -- the Makefile, click and the benchmarks' parsers ----------------------------------------


def makefile_targets() -> set[str]:
    """The targets the Makefile defines."""
    return set(re.findall(r"^([a-z][a-z-]*):", (REPO / "Makefile").read_text(), re.M))


def make_dry_run(words: list[str]) -> list[str]:
    """The commands `make` would run for a documented `make ...` line (`make -n`)."""
    done = subprocess.run(
        ["make", "-n", "--no-print-directory", "-C", str(REPO), *words[1:]],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def click_command(words: list[str]) -> tuple[click.Command, list[str]]:
    """The `marketdata` (sub)command named by `words` and the words after its name."""
    command: click.Command = cli
    rest = words[1:]
    while isinstance(command, click.Group) and rest and rest[0] in command.commands:
        command, rest = command.commands[rest[0]], rest[1:]
    return command, rest


def assert_options_exist(example: Example) -> None:
    """The command a document names exists, with every `--option` it shows."""
    command, rest = click_command(example.words)
    assert command is not cli, f"{example}: no such marketdata command"
    known = {o for p in command.params for o in getattr(p, "opts", ())} | {"--help", "-h"}
    shown = {w.strip("[]").split("=")[0] for w in rest if w.strip("[]").startswith("-")}
    assert shown <= known, f"{example}: {sorted(shown - known)} are not options of the command"


def bench_help(module: str, args: list[str]) -> str:
    """`python -m module *args --help` in this process: its help text (exit 0 asserted).

    The options before `--help` are parsed first, so a wrong value (`--only nosuch`) fails.
    """
    assert importlib.util.find_spec(module), f"python -m {module}: no such module"
    out = io.StringIO()
    saved = sys.argv
    sys.argv = [module, *args, "--help"]
    try:
        with (
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(out),
            warnings.catch_warnings(),
        ):
            warnings.simplefilter("ignore")  # runpy: "found in sys.modules" for a re-run
            runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        assert exc.code in (0, None), f"python -m {module} {' '.join(args)}:\n{out.getvalue()}"
    else:
        raise AssertionError(f"python -m {module} {' '.join(args)} --help did not stop")
    finally:
        sys.argv = saved
    return out.getvalue()


def bench_modules(words: list[str]) -> list[str]:
    """The module(s) of `python -m MODULE`: `bench.<name>` means each benchmark module."""
    module = words[2]
    if module == "bench.<name>":
        from bench.__main__ import BENCHMARKS

        return [f"bench.{name}" for name in BENCHMARKS]
    return [module]


# -- static checks ---------------------------------------------------------------------------


def _doc_ids() -> list[str]:
    """The documents' names, one test per document."""
    return [_name(p) for p in documents()]


def test_the_documents_are_found_and_have_examples():
    names = _doc_ids()
    assert names[0] == "README.md" and "docs/operations.md" in names
    assert any(e.runs and e.kind == "marketdata" for e in examples(REPO / "README.md"))


@pytest.mark.parametrize("doc", _doc_ids())
def test_every_shell_line_is_run_or_checked(doc):
    processes = {
        t.format(**DEFAULT_PORTS)
        for t in (CODE_SERVER_COMMAND, HEALTH_CHECK_COMMAND, WEBSERVER_COMMAND, DAEMON_COMMAND)
    }
    for example in examples(REPO / doc):
        if example.kind == "dagster":
            assert example.text in processes, f"{example}: not a command the e2e deployment runs"
        elif example.in_block:
            assert example.kind != "other", (
                f"{example}: this test neither runs nor checks it; run it here or list why not"
            )


@pytest.mark.parametrize("doc", _doc_ids())
def test_make_lines_name_targets_that_use_their_variables(doc):
    targets = makefile_targets()
    for example in examples(REPO / doc):
        if example.kind != "make":
            continue
        words = _argv(example)
        assert words[1] in targets, f"{example}: no such Makefile target"
        commands = make_dry_run(words)
        for assignment in words[2:]:
            name, _, value = assignment.partition("=")
            assert value and any(value in c for c in commands), (
                f"{example}: `make {words[1]}` does not use {name} (runs {commands})"
            )


@pytest.mark.parametrize("doc", _doc_ids())
def test_benchmark_commands_name_modules_and_options_that_exist(doc):
    for example in examples(REPO / doc):
        if example.kind != "bench":
            continue
        words = _argv(example)
        for module in bench_modules(words):
            text = bench_help(module, words[3:])
            for option in (w for w in words[3:] if w.startswith("--")):
                assert option in text, f"{example}: {module} has no option {option}"


@pytest.mark.parametrize("doc", _doc_ids())
def test_marketdata_commands_in_the_prose_exist_with_their_options(doc):
    for example in examples(REPO / doc):
        if example.kind == "marketdata":
            assert_options_exist(example)
            if tuple(example.words[:2]) in LONG_RUNNING:
                command, rest = click_command(_argv(example))
                command.make_context(example.words[1], rest)  # its values parse too


# -- running them ----------------------------------------------------------------------------


@dataclass
class Shell:
    """A user's shell following one document: its environment and current directory."""

    env: dict[str, str]
    cwd: Path
    stand_ins: dict[str, dict[str, str]]

    def expand(self, word: str) -> str:
        """`$VAR` and `${VAR}` replaced from this shell's environment."""
        return re.sub(
            r"\$\{?(\w+)\}?", lambda m: self.env.get(m.group(1), m.group(0)), word
        ).strip()

    def setup(self, example: Example) -> None:
        """`export`, `mkdir -p`, `cp`, `cd`, `source` as the shell would do them."""
        word, *args = example.words
        if word == "export":
            for assignment in args:
                name, _, value = assignment.partition("=")
                self.env.update(self.stand_ins.get(name, {name: self.expand(value)}))
        elif word == "mkdir":
            for arg in (a for a in args if not a.startswith("-")):
                (self.cwd / self.expand(arg)).mkdir(parents=True, exist_ok=True)
        elif word == "cp":
            source, target = (self.expand(a) for a in args[-2:])
            # The guides copy the project's files, from the project root.
            found = self.cwd / source if (self.cwd / source).exists() else REPO / source
            shutil.copy(found, self.cwd / target)
        elif word == "cd":
            self.cwd = (self.cwd / self.expand(args[0])).resolve()
            assert not self.cwd.is_relative_to(REPO), f"{example}: cd into the project"
        elif word == "source":
            assert args[0] == ".venv/bin/activate", example
            assert (BIN / "activate").is_file()

    def run(self, argv: list[str], example: Example) -> subprocess.CompletedProcess:
        """The console script with this shell's environment and directory; exit 0 asserted."""
        done = subprocess.run(
            [str(BIN / "marketdata"), *argv[1:]],
            env=self.env,
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
        )
        assert done.returncode == 0, (
            f"{example}\nexit {done.returncode}\n{done.stdout}\n{done.stderr}"
        )
        assert not (self.cwd / ".marketdata").exists(), f"{example}: made .marketdata in {self.cwd}"
        return done


@dataclass(frozen=True)
class Store:
    """Reads of the candle database and the Dagster instance's, for the outcome checks."""

    candles_url: str
    dagster_url: str

    def one(self, url: str, statement: str, params: tuple = ()) -> tuple:
        """The first row of a query."""
        with psycopg.connect(url) as conn:
            return conn.execute(statement, params).fetchone()

    def tracked(self, symbol: str, asset_class: str) -> bool | None:
        """Whether the symbol is active; None when it was never tracked."""
        row = self.one(
            self.candles_url,
            "SELECT active FROM marketdata.tracked_symbols WHERE symbol = %s AND asset_class = %s",
            (symbol, asset_class),
        )
        return row[0] if row else None

    def rows(self, table: str, symbol: str | None = None, start=None, end=None) -> int:
        """Stored candles of a table, of one symbol and days start..end when given."""
        return self.one(
            self.candles_url,
            f"SELECT count(*) FROM marketdata.{table} WHERE (%s::text IS NULL OR symbol = %s)"
            " AND day BETWEEN coalesce(%s::date, '-infinity') AND coalesce(%s::date, 'infinity')",
            (symbol, symbol, start, end),
        )[0]

    def sources(self, table: str, start: str, end: str) -> set[str]:
        """The kinds of source (`simulator`, `polygon`) of a table's rows on days start..end."""
        with psycopg.connect(self.candles_url) as conn:
            return {
                r[0]
                for r in conn.execute(
                    f"SELECT DISTINCT split_part(source, ':', 1) FROM marketdata.{table}"
                    " WHERE day BETWEEN %s AND %s",
                    (start, end),
                )
            }

    def columns(self, table: str) -> set[str]:
        """The column names of a table of the marketdata schema."""
        with psycopg.connect(self.candles_url) as conn:
            return {
                r[0]
                for r in conn.execute(
                    "SELECT column_name FROM information_schema.columns"
                    " WHERE table_schema = 'marketdata' AND table_name = %s",
                    (table,),
                )
            }

    def cli_runs(self) -> list[str]:
        """Statuses of the runs the command line launched, oldest first."""
        with psycopg.connect(self.dagster_url) as conn:
            if conn.execute("SELECT to_regclass('runs')").fetchone()[0] is None:
                return []  # no Dagster command has run yet
            return [
                r[0]
                for r in conn.execute(
                    "SELECT r.status FROM runs r JOIN run_tags t ON t.run_id = r.run_id"
                    " WHERE t.key = 'marketdata/trigger' AND t.value = 'cli-backfill'"
                    " ORDER BY r.id"
                )
            ]


CANDLE_TABLES = {"stock": "stock_daily_candles", "crypto": "crypto_daily_candles"}


def _option(argv: list[str], name: str) -> list[str]:
    """The values after `name` up to the next option (`--symbols AAPL MSFT`)."""
    if name not in argv:
        return []
    values = []
    for word in argv[argv.index(name) + 1 :]:
        if word.startswith("--"):
            break
        values.extend(v for v in word.split(",") if v)
    return values


# One branch per documented command, read top to bottom like the guides: C901 waived for now.
def _check_outcome(  # noqa: C901
    argv: list[str], done: subprocess.CompletedProcess, store: Store, before: dict, shell: Shell
) -> None:
    """What the guides say each command does, beyond exiting 0."""
    where = " ".join(argv)
    sub = argv[1:3] if argv[1] in ("symbols", "db") else argv[1:2]
    if sub == ["symbols", "add"] and "--market" in argv:
        # A tracking rule, stored with its types (whole-market.md).
        types = sorted(argv[i + 1] for i, w in enumerate(argv) if w == "--type")
        assert store.one(
            store.candles_url,
            "SELECT count(*) FROM marketdata.tracking_rules WHERE active AND market = %s"
            " AND types = %s",
            (_option(argv, "--market")[0], types),
        ) == (1,), f"{where}: no such active rule"
    elif sub == ["symbols", "add"]:
        names = [
            w
            for w in argv[3:]
            if not w.startswith("--") and w not in _option(argv, "--asset-class")
        ]
        for s in parse_symbols(names, (_option(argv, "--asset-class") or [None])[0]):
            assert store.tracked(s.symbol, s.asset_class.value) is True, f"{where}: {s} not active"
    elif sub == ["symbols", "remove"]:
        for name in (w for w in argv[3:] if not w.startswith("--")):
            [s] = parse_symbols([name])
            assert store.tracked(s.symbol, s.asset_class.value) is False, f"{where}: still active"
            # It stops being fetched and keeps its history.
            key = s.symbol if s.asset_class.value == "stock" else f"X:{s.symbol}"
            rows = store.rows(CANDLE_TABLES[s.asset_class.value], s.symbol)
            assert rows == before.get(key, 0), f"{where}: its history changed"
    elif sub == ["symbols", "list"] and "--json" in argv:
        listed = json.loads(done.stdout)
        # Every column but the symbol sensor's cursor.
        columns = store.columns("tracked_symbols") - {"change_seq"}
        assert listed and set(listed[0]) == columns, where
    elif sub == ["db", "url"]:
        url = done.stdout.strip()
        assert url.startswith("postgresql://"), f"{where}: {url!r}"
        if "--reveal" in argv:
            assert url == shell.env["MARKETDATA_DATABASE_URL"], where
        assert store.one(url, "SELECT 1") == (1,)
    elif sub == ["backfill"]:
        keyless = not any(shell.env.get(v) for v in ("POLYGON_API_KEY", "MASSIVE_API_KEY"))
        # Without a key the simulator serves the data, and says so on stderr; a dry run sends
        # nothing, so it starts none.
        dry_run = "--dry-run" in argv
        assert not keyless or dry_run or "SIMULATOR" in done.stderr, f"{where}: {done.stderr}"
        assert not dry_run or "SIMULATOR" not in done.stderr, f"{where}: {done.stderr}"
        assert "plan" in done.stdout, f"{where}: no request plan printed"
        tables = [before["cli_runs"], store.cli_runs()]
        if "--dry-run" in argv:
            assert tables[1] == tables[0], f"{where}: the dry run launched a run"
            assert all(store.rows(t) == before[t] for t in CANDLE_TABLES.values()), where
            return
        # One run, or one per asset class: each recorded in the instance, each a success.
        new = tables[1][len(tables[0]) :]
        assert new and set(new) == {"SUCCESS"}, f"{where}: runs {tables}"
        start, end = _option(argv, "--start")[0], _option(argv, "--end")[0]
        assets = _option(argv, "--asset") or list(CANDLE_TABLES.values())
        for table in assets:
            assert store.rows(table, None, start, end) > 0, f"{where}: no rows in {table}"
            if keyless:
                assert store.sources(table, start, end) == {"simulator"}, where
        for name in _option(argv, "--symbols"):
            table = assets[0] if "--asset" in argv else CANDLE_TABLES["stock"]
            if name.startswith("X:"):
                table, name = CANDLE_TABLES["crypto"], name[2:]
            assert store.rows(table, name, start, end) > 0, f"{where}: no rows for {name}"
    elif sub == ["coverage"]:
        assert "stored" in done.stdout, f"{where}: no counts per state"
        for out in _option(argv, "--out"):
            picture = shell.cwd / out  # a relative path is the caller's directory's
            assert picture.read_bytes()[:8] == PNG_MAGIC, f"{where}: no PNG at {picture}"
    elif sub == ["demo"]:
        from marketdata_pipeline.cli import DEMO_CRYPTO, DEMO_STOCKS

        new = store.cli_runs()[len(before["cli_runs"]) :]
        assert new and set(new) == {"SUCCESS"}, f"{where}: runs {new}"
        for table, names in (
            ("stock_daily_candles", DEMO_STOCKS),
            ("crypto_daily_candles", DEMO_CRYPTO),
        ):
            for name in names:
                assert store.rows(table, name) > 0 and name in done.stdout, f"{where}: {name}"


def _snapshot(store: Store) -> dict:
    """The counts a command's outcome is compared with."""
    with psycopg.connect(store.candles_url) as conn:
        per_symbol = dict(
            conn.execute(
                "SELECT symbol, count(*) FROM marketdata.stock_daily_candles GROUP BY 1"
                " UNION ALL SELECT 'X:' || symbol, count(*)"
                " FROM marketdata.crypto_daily_candles GROUP BY 1"
            ).fetchall()
        )
    snapshot = {"cli_runs": store.cli_runs(), **per_symbol}
    for table in CANDLE_TABLES.values():
        snapshot[table] = store.rows(table)
    return snapshot


def _run_simulator(argv: list[str], shell: Shell) -> None:
    """`marketdata simulator --port N`: it serves a bar, says its data is simulated, stops."""
    port = free_port()  # the guide's port may be taken on this machine
    argv = [str(BIN / "marketdata"), *argv[1:]]
    if "--port" in argv:
        argv[argv.index("--port") + 1] = str(port)
    process = subprocess.Popen(
        argv,
        env=shell.env,
        cwd=shell.cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                bars = httpx.get(
                    f"http://127.0.0.1:{port}/v2/aggs/ticker/AAPL/range/1/day/2024-01-02/2024-01-05",
                    headers={"Authorization": "Bearer simulator-key"},
                    timeout=5,
                )
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stdout.read()
                assert time.monotonic() < deadline, "the simulator did not answer"
                time.sleep(0.2)
        assert bars.status_code == 200 and bars.json()["resultsCount"] == 4
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=15)
    assert "ALL DATA IS SIMULATED" in output
    assert not (shell.cwd / ".marketdata").exists(), "marketdata simulator made .marketdata"


def _psql_path(env: dict[str, str]) -> str:
    """PATH with a psql: the system's, else the one that comes with pgserver."""
    import pgserver

    return f"{env.get('PATH', '')}{os.pathsep}{Path(pgserver.__file__).parent / 'pginstall/bin'}"


def _run_substitution(example: Example, shell: Shell) -> None:
    """`psql "$(.venv/bin/marketdata db url)"` in bash, fed a query of the store's tables."""
    line = example.text.replace(".venv/bin/marketdata", str(BIN / "marketdata"))
    done = subprocess.run(
        ["bash", "-c", line],
        input="SELECT count(*) FROM marketdata.tracked_symbols;\n",
        env={**shell.env, "PATH": _psql_path(shell.env)},
        cwd=shell.cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and "count" in done.stdout, f"{example}\n{done.stdout}{done.stderr}"
    assert not (shell.cwd / ".marketdata").exists(), example


@contextlib.contextmanager
def _timed(what: str) -> Iterator[None]:
    """Print how long a command took (shown with -s, or in a failure's report)."""
    began = time.perf_counter()
    yield
    print(f"{time.perf_counter() - began:6.1f} s  {what}", flush=True)


@pytest.fixture
def small_market(simulator_server):
    """The session's simulator serving a market of 200 stocks (the named ones among them).

    The guides' tracking rule (`symbols add --market stocks`) makes every later stock backfill
    fetch the simulator's whole market: 200 tickers instead of 2,000 keep operations.md's
    six-month backfill a few seconds long instead of half a minute."""
    before = simulator_server.configure()
    simulator_server.configure(stock_universe_size=200)
    yield simulator_server
    simulator_server.configure(stock_universe_size=before.stock_universe_size)


@pytest.mark.e2e
@pytest.mark.timeout(900)
def test_every_documented_command_runs_from_another_directory(  # noqa: C901
    pg_server, database_url, small_market, tmp_path
):
    simulator_server = small_market
    storage_url = fresh_database(pg_server, "docs_examples_dagster")
    store = Store(database_url, storage_url)
    # A user's shell: no key and no settings, but the project's store is this test's database
    # and Dagster instance (the embedded defaults would be the developer's own store), under a
    # home of their own; nothing the commands do may depend on the directory they run from.
    fresh = without_project_variables()
    fresh.update(
        MARKETDATA_HOME=str(tmp_path / "project_home"),
        MARKETDATA_DATABASE_URL=database_url,
        MARKETDATA_DAGSTER_STORAGE_URL=sqlalchemy_url(storage_url),
        PYTHONWARNINGS="ignore",
    )
    simulator = {
        "POLYGON_API_KEY": simulator_server.api_key,
        "POLYGON_BASE_URL": simulator_server.base_url,
        # The key's stand-in serves simulated prices, and the store records them as such.
        "MARKETDATA_SIMULATED": "1",
    }
    stand_ins = {
        "POLYGON_API_KEY": simulator,
        "MASSIVE_API_KEY": simulator,
        "DAGSTER_HOME": {"DAGSTER_HOME": str(tmp_path / "srv" / "dagster_home")},
        "MARKETDATA_DATABASE_URL": {"MARKETDATA_DATABASE_URL": database_url},
        "MARKETDATA_DAGSTER_STORAGE_URL": {
            "MARKETDATA_DAGSTER_STORAGE_URL": sqlalchemy_url(storage_url)
        },
    }
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert not elsewhere.is_relative_to(REPO)
    ran: set[tuple] = set()  # (command, environment, directory) of every command run
    made: set[tuple[str, ...]] = set()  # the make lines whose commands ran
    for path in documents():
        shell = Shell(env=dict(fresh), cwd=elsewhere, stand_ins=stand_ins)
        for example in examples(path):
            if not example.runs:
                continue
            if example.kind == "setup":
                shell.setup(example)
                continue
            if example.kind == "substitution":
                with _timed(str(example)):
                    _run_substitution(example, shell)
                continue
            if example.kind == "make":
                # What the target runs from the project root; its `marketdata` commands run here,
                # the first time a document shows the line (`make demo` in api-keys.md is the
                # README's quick start with the user's key: 5 requests a minute, a minute more).
                if tuple(_argv(example)) in made:
                    continue
                made.add(tuple(_argv(example)))
                commands = [c.split() for c in make_dry_run(_argv(example))]
                argvs = [["marketdata", *c[1:]] for c in commands if c[0].endswith("/marketdata")]
            elif example.kind == "marketdata":
                argvs = [_argv(example)]
            else:
                continue  # checked by the static tests above
            for argv in argvs:
                # The same command in the same environment, already run for an earlier example
                # (operations.md repeats README's backfill), is not run twice.
                key = (tuple(argv), tuple(sorted(shell.env.items())), shell.cwd)
                if tuple(argv[:2]) in LONG_RUNNING or key in ran:
                    continue
                ran.add(key)
                with _timed(f"{example}  ->  {' '.join(argv)}"):
                    if argv[1] == "simulator":
                        _run_simulator(argv, shell)
                    else:
                        before = _snapshot(store)
                        done = shell.run(argv, example)
                        _check_outcome(argv, done, store, before, shell)
    assert any(k[0][1] == "backfill" and "--dry-run" not in k[0] for k in ran)

    # The SQL the documents show runs against the schema, with the data the commands stored.
    with psycopg.connect(database_url) as conn:
        for path in documents():
            for before, body in sql_blocks(path):
                if PARTITIONED_MARKER in before:
                    continue
                with conn.transaction(force_rollback=True):
                    conn.execute(body)
    assert store.rows("crypto_daily_candles") > 0
