#!/usr/bin/env python3
"""The tables of scripts/bench.sh, from a results directory (Python 3 standard library only).

  report.py table DIR [--write-doc docs/benchmarks.md]
      Medians per database, phase and tool from DIR/runs.jsonl, printed as Markdown tables with
      the machine's facts (DIR/facts.tsv); with --write-doc also written into the file between
      the markers <!-- bench:results:begin --> and <!-- bench:results:end -->.
  report.py baseline-seconds DIR DB [--default S]
      How long the no-migration run under load lasts: the longest median idle wall time of the
      online tools on DB, rounded up, at least 10 s; S when DIR has no such runs.

Which run counts: for each (database, phase, tool, run) the last attempt (bench.sh redoes a run
during which the machine was busy with other work; a run kept busy is marked). Medians are over
the runs that succeeded.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys

BEGIN = "<!-- bench:results:begin -->"
END = "<!-- bench:results:end -->"

PEER = {"mariadb": "pt-osc", "postgres": "pg_repack"}
ONLINE = {"pt-osc", "pg_repack", "shadowswap", "shadowswap-no-checksum", "backfill"}
ORDER = ["limit", "limit-indexes-after", "native-inplace", "pt-osc", "pg_repack",
         "shadowswap", "shadowswap-no-checksum", "backfill", "baseline"]
LABEL = {
    "limit": "limit: INSERT … SELECT",
    "limit-indexes-after": "limit: INSERT … SELECT, indexes after",
    "native-inplace": "ALTER … FORCE, ALGORITHM=INPLACE",
    "pt-osc": "pt-online-schema-change",
    "pg_repack": "pg_repack",
    "shadowswap": "shadowswap (defaults)",
    "shadowswap-no-checksum": "shadowswap --no-checksum",
    "backfill": "staged: shadowswap backfill (after an instant ADD COLUMN)",
    "baseline": "no migration",
}
DB_TITLE = {"mariadb": "MariaDB", "postgres": "PostgreSQL"}


def load_runs(directory: str) -> list[dict]:
    path = os.path.join(directory, "runs.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        records = [json.loads(line) for line in f if line.strip()]
    last: dict[tuple, dict] = {}
    for r in records:
        key = (r["db"], r["phase"], r["tool"], r["run"])
        if key not in last or r.get("attempt", 1) >= last[key].get("attempt", 1):
            last[key] = r
    return list(last.values())


def load_facts(directory: str) -> list[tuple[str, str]]:
    path = os.path.join(directory, "facts.tsv")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [tuple(line.rstrip("\n").split("\t", 1)) for line in f if "\t" in line]


class Group:
    """The final runs of one (db, phase, tool)."""

    def __init__(self, runs: list[dict]):
        self.runs = runs
        self.ok = [r for r in runs if r.get("ok")]
        self.failed = len(runs) - len(self.ok)
        self.busy = sum(1 for r in runs if (r.get("busy") or {}).get("busy"))

    def median(self, get) -> float | None:
        vals = []
        for r in self.ok:
            try:
                v = get(r)
            except (KeyError, TypeError):
                v = None
            if v is not None:
                vals.append(v)
        return statistics.median(vals) if vals else None

    def wall(self):
        return self.median(lambda r: r["wall_s"])

    def rows_per_s(self):
        """Table rows over the median wall time (so that rows/s and wall s agree)."""
        wall = self.wall()
        return self.ok[0]["rows"] / wall if wall else None

    def workload(self, key):
        return self.median(lambda r: r["workload"][key])

    def errors_by_kind(self) -> dict[str, float]:
        kinds = set()
        for r in self.ok:
            kinds.update(((r.get("workload") or {}).get("errors") or {}).keys())
        return {k: self.median(lambda r, k=k: (r["workload"]["errors"] or {}).get(k, 0)) for k in sorted(kinds)}

    def marks(self, phase: str = "") -> list[str]:
        m = []
        prefix = f"{phase} " if phase else ""
        if self.failed:
            m.append(f"{prefix}{self.failed} of {len(self.runs)} failed")
        if self.busy:
            m.append(f"{prefix}{self.busy} of {len(self.runs)} busy")
        return m


def f_marks(marks: list[str]) -> str:
    return f" ({', '.join(marks)})" if marks else ""


def groups(runs: list[dict]) -> dict[tuple, Group]:
    by: dict[tuple, list[dict]] = {}
    for r in runs:
        by.setdefault((r["db"], r["phase"], r["tool"]), []).append(r)
    return {k: Group(sorted(v, key=lambda r: r["run"])) for k, v in by.items()}


# --------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------

def f_s(v) -> str:
    return "—" if v is None else (f"{v:.2f}" if v < 100 else f"{v:.0f}")


def f_rate(v) -> str:
    if v is None:
        return "—"
    if v >= 1e6:
        return f"{v / 1e6:.2f}M"
    if v >= 1e3:
        return f"{v / 1e3:.0f}k"
    return f"{v:.0f}"


def f_ratio(a, b) -> str:
    if a is None or b is None or b == 0:
        return "—"
    return f"{a / b:.2f}×"


def f_ms(v) -> str:
    if v is None:
        return "—"
    if v >= 100:
        return f"{v:,.0f}"
    return f"{v:.1f}"


def f_errors(g: Group | None) -> str:
    if g is None or not g.ok:
        return "—"
    kinds = {k: v for k, v in g.errors_by_kind().items() if v}
    total = g.workload("error_total")
    if not kinds:
        return f"{total:.0f}" if total is not None else "—"
    inner = ", ".join(f"{v:g} {k.replace('_', ' ')}" for k, v in kinds.items())
    return f"{total:g} ({inner})"


def table(headers: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def tool_label(tool: str, facts: dict) -> str:
    label = LABEL.get(tool, tool)
    version = {"pt-osc": facts.get("pt-online-schema-change", ""), "pg_repack": facts.get("pg_repack", "")}.get(tool)
    if version:
        label += " " + version.split()[-1]
    return label


def db_section(db: str, gs: dict[tuple, Group], facts: dict) -> str:
    idle = {t: g for (d, p, t), g in gs.items() if d == db and p == "idle"}
    load = {t: g for (d, p, t), g in gs.items() if d == db and p == "load"}
    if not idle and not load:
        return ""
    limit_rate = idle["limit"].rows_per_s() if "limit" in idle else None
    peer = PEER[db]
    peer_rate = idle[peer].rows_per_s() if peer in idle else None
    base = load.get("baseline")
    base_tps = base.workload("tps") if base else None
    base_p99 = base.workload("p99_ms") if base else None

    rows = []
    for tool in ORDER:
        gi, gl = idle.get(tool), load.get(tool)
        if gi is None and gl is None:
            continue
        rate = gi.rows_per_s() if gi else None
        tps = gl.workload("tps") if gl else None
        p99 = gl.workload("p99_ms") if gl else None
        if tool == "baseline":
            load_tps = f"{tps:.0f}" if tps is not None else "—"
            load_p99 = f_ms(p99)
        else:
            load_tps = "—" if tps is None else f"{tps:.0f} ({f_ratio(tps, base_tps)})"
            load_p99 = "—" if p99 is None else f"{f_ms(p99)} ({f_ratio(p99, base_p99)})"
        if tool.startswith("shadowswap"):
            wb_i = gi.median(lambda r: r["writes_blocked_ms"]) if gi else None
            wb_l = gl.median(lambda r: r["writes_blocked_ms"]) if gl else None
            blocked = f"{'—' if wb_i is None else f'{wb_i:.0f}'} / {'—' if wb_l is None else f'{wb_l:.0f}'} ms"
        elif tool in ONLINE:
            blocked = "n/a"
        else:
            blocked = "—"
        rss = None
        if tool in ONLINE:
            rss = (gi or gl).median(lambda r: r["peak_rss_kb"])
        marks = f_marks((gi.marks("idle") if gi else []) + (gl.marks("load") if gl else []))
        rows.append([
            tool_label(tool, facts) + marks,
            f_s(gi.wall()) if gi else "—",
            f_rate(rate),
            f_ratio(rate, limit_rate) if tool != "baseline" else "—",
            f_ratio(rate, peer_rate) if tool != "baseline" else "—",
            load_tps,
            load_p99,
            f_errors(gl) if gl else "—",
            blocked,
            "—" if rss is None else f"{rss / 1024:.0f} MiB",
        ])
    out = [f"### {DB_TITLE[db]}", ""]
    out.append(table(["tool", "wall s", "rows/s", "× limit", "× peer", "load: tps (× none)",
                      "load: p99 ms (× none)", "load: errors", "writes blocked at cut-over (idle / load)",
                      "peak RSS"], rows))
    ss, nc = idle.get("shadowswap"), idle.get("shadowswap-no-checksum")
    if ss and nc and ss.wall() and nc.wall():
        out += ["", f"The checksum's cost: shadowswap's wall time with it is {ss.wall() / nc.wall():.2f}× "
                    f"the time without it ({(ss.wall() - nc.wall()) / nc.wall() * 100:+.0f}%)."]
    if load:
        detail = []
        for tool in ORDER:
            g = load.get(tool)
            if g is None:
                continue
            share = g.median(lambda r: r["busy"]["foreign_cpu_share"])
            detail.append([
                tool_label(tool, facts) + f_marks(g.marks()),
                f_s(g.wall()),
                f_s(g.workload("tps")),
                f_ms(g.workload("p50_ms")),
                f_ms(g.workload("p99_ms")),
                f_ms(g.workload("max_ms")),
                f_errors(g),
                "—" if share is None else f"{share * 100:.0f}%",
            ])
        out += ["", f"Under load, during the migration ({DB_TITLE[db]}; latency in ms from each "
                    "transaction's intended start):", ""]
        out.append(table(["tool", "wall s", "tps", "p50", "p99", "max", "errors", "other work's CPU"], detail))
    failures = [r for g in list(idle.values()) + list(load.values()) for r in g.runs if not r.get("ok")]
    if failures:
        out += ["", "Failed runs:", ""]
        out += [f"- {r['phase']} {r['tool']} run {r['run']}: {r.get('error')}" for r in failures]
    return "\n".join(out)


def render(directory: str) -> str:
    runs = load_runs(directory)
    facts_list = load_facts(directory)
    facts = dict(facts_list)
    gs = groups(runs)
    parts = []
    if facts_list:
        parts.append("Measured " + facts.get("date", "?") + " with `" + facts.get("command", "?") + "`:")
        parts.append("")
        parts += [f"- {k}: {v}" for k, v in facts_list if k not in ("date", "command")]
        parts.append("")
    busy = sum(1 for g in gs.values() for r in g.runs if (r.get("busy") or {}).get("busy"))
    failed = sum(g.failed for g in gs.values())
    if busy or failed:
        parts += [f"**Not a clean run:** {busy} of {len(runs)} runs were kept although other work "
                  f"used the machine, {failed} failed (marked in the tables).", ""]
    for db in ("mariadb", "postgres"):
        s = db_section(db, gs, facts)
        if s:
            parts += [s, ""]
    if not runs:
        parts.append("(no runs recorded)")
    return "\n".join(parts).rstrip() + "\n"


def write_doc(path: str, body: str) -> None:
    text = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
    block = f"{BEGIN}\n{body}{END}"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        text = head + block + tail
    else:
        text = text.rstrip() + "\n\n## Results\n\n" + block + "\n"
    with open(path, "w") as f:
        f.write(text)


def cmd_table(args: argparse.Namespace) -> None:
    body = render(args.dir)
    sys.stdout.write("\n" + body)
    if args.write_doc:
        write_doc(args.write_doc, body)
        print(f"\n[bench] wrote the results into {args.write_doc}", file=sys.stderr)


def cmd_baseline_seconds(args: argparse.Namespace) -> None:
    gs = groups(load_runs(args.dir))
    walls = [g.wall() for (d, p, t), g in gs.items() if d == args.db and p == "idle" and t in ONLINE]
    walls = [w for w in walls if w is not None]
    print(max(10, math.ceil(max(walls))) if walls else args.default)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("table")
    s.add_argument("dir")
    s.add_argument("--write-doc", metavar="FILE")
    s.set_defaults(fn=cmd_table)
    s = sub.add_parser("baseline-seconds")
    s.add_argument("dir")
    s.add_argument("db")
    s.add_argument("--default", type=int, default=20)
    s.set_defaults(fn=cmd_baseline_seconds)
    args = p.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
