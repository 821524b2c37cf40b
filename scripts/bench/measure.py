#!/usr/bin/env python3
"""Measurements for scripts/bench.sh (Python 3 standard library only).

Subcommands (each prints or appends JSON; bench.sh never parses text itself):

  sample OUT --root PID...
      A CPU sample: /proc/stat's machine-wide counters, /proc/loadavg, and the
      CPU time (utime+stime+cutime+cstime, clock ticks) of every process that
      is a ROOT or descends from one (the benchmark itself and the servers).
  busy A B [--threshold F] [--steal F]
      From two samples: the share of the machine's CPU that other work used
      between them (machine busy time minus ours, over all CPUs' time), the
      steal share, and whether the run counts as disturbed ("busy").
  sysbench OUT_FILE
      sysbench's cumulative report and --histogram (plus the "bench-error"
      lines of scripts/bench/oltp_rw.lua): tps, latency p50/p99/max (ms),
      errors by kind.
  pgbench LOG_PREFIX --start T0 --end T1 [--out-file F]
      pgbench's per-transaction logs (-l, PostgreSQL 15 format): the
      transactions whose *scheduled* start lies in [T0, T1) (epoch seconds),
      with latency counted from that scheduled start (pgbench -R does so).
  record JSONL --db ... --phase ... --tool ... [...]
      Append one run's record (see `record --help`).

Latencies are reported in milliseconds, times in seconds, memory in KiB.
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import re
import sys


# --------------------------------------------------------------------------
# CPU samples and the "was the machine busy with other work" verdict
# --------------------------------------------------------------------------

def _read_proc_stat() -> dict:
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu "):
                v = [int(x) for x in line.split()[1:]]
                v += [0] * (8 - len(v))
                user, nice, system, idle, iowait, irq, softirq, steal = v[:8]
                total = user + nice + system + idle + iowait + irq + softirq + steal
                return {"total": total, "idle": idle + iowait, "steal": steal}
    raise SystemExit("no cpu line in /proc/stat")


def _processes() -> dict:
    """pid -> (ppid, starttime, cpu ticks incl. reaped children)."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                raw = f.read()
        except OSError:
            continue
        # comm may hold spaces and parentheses: split after the last ')'.
        rest = raw[raw.rfind(")") + 2:].split()
        # rest[0] is field 3 (state); utime is field 14 -> rest[11].
        try:
            ppid = int(rest[1])
            cpu = int(rest[11]) + int(rest[12]) + int(rest[13]) + int(rest[14])
            start = int(rest[19])
        except (IndexError, ValueError):
            continue
        out[int(d)] = (ppid, start, cpu)
    return out


def cmd_sample(args: argparse.Namespace) -> None:
    procs = _processes()
    roots = {int(r) for r in args.root if r and r.isdigit()}
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    ours: dict[str, list[int]] = {}
    stack = [r for r in roots if r in procs]
    seen = set()
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        _, start, cpu = procs[pid]
        ours[str(pid)] = [start, cpu]
        stack.extend(children.get(pid, []))
    with open("/proc/loadavg") as f:
        load1 = float(f.read().split()[0])
    sample = {"stat": _read_proc_stat(), "ours": ours, "load1": load1, "ncpu": os.cpu_count()}
    with open(args.out, "w") as f:
        json.dump(sample, f)


def busy_verdict(a: dict, b: dict, threshold: float, steal_limit: float) -> dict:
    total = b["stat"]["total"] - a["stat"]["total"]
    busy_ticks = total - (b["stat"]["idle"] - a["stat"]["idle"])
    steal = b["stat"]["steal"] - a["stat"]["steal"]
    ours = 0
    for pid, (start, cpu) in b["ours"].items():
        prev = a["ours"].get(pid)
        if prev is not None and prev[0] == start:
            ours += max(0, cpu - prev[1])
        else:
            ours += cpu  # born during the run
    foreign = max(0, busy_ticks - steal - ours)
    total = max(total, 1)
    foreign_share = foreign / total
    steal_share = steal / total
    return {
        "busy": foreign_share > threshold or steal_share > steal_limit,
        "foreign_cpu_share": round(foreign_share, 4),
        "steal_share": round(steal_share, 4),
        "ours_cpu_share": round(ours / total, 4),
        "load1_start": a.get("load1"),
        "load1_end": b.get("load1"),
    }


def cmd_busy(args: argparse.Namespace) -> None:
    with open(args.a) as f:
        a = json.load(f)
    with open(args.b) as f:
        b = json.load(f)
    print(json.dumps(busy_verdict(a, b, args.threshold, args.steal)))


# --------------------------------------------------------------------------
# Percentiles
# --------------------------------------------------------------------------

def percentile_sorted(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of an ascending list (None when empty)."""
    if not values:
        return None
    k = max(1, math.ceil(p / 100.0 * len(values)))
    return values[min(k, len(values)) - 1]


def percentile_hist(buckets: list[tuple[float, int]], p: float) -> float | None:
    """Nearest-rank percentile of (value, count) buckets sorted by value."""
    n = sum(c for _, c in buckets)
    if n == 0:
        return None
    k = max(1, math.ceil(p / 100.0 * n))
    seen = 0
    for value, count in buckets:
        seen += count
        if seen >= k:
            return value
    return buckets[-1][0]


# --------------------------------------------------------------------------
# sysbench
# --------------------------------------------------------------------------

MYSQL_ERROR_KINDS = {1213: "deadlocks", 1205: "lock_wait_timeouts"}


def parse_sysbench(text: str, ended_early: bool = False) -> dict:
    """sysbench 1.0's output with --histogram, plus oltp_rw.lua's bench-error lines. A FATAL
    line (an error not in --mysql-ignore-errors, e.g. a table missing for a moment) stops that
    thread or the whole run: each counts as an error, and so does a workload that ended before
    the stop file (ENDED_EARLY); without a cumulative report tps is None."""
    buckets: list[tuple[float, int]] = []
    for m in re.finditer(r"^\s*([0-9.]+)\s+\|\**\s+(\d+)\s*$", text, re.M):
        buckets.append((float(m.group(1)), int(m.group(2))))
    buckets.sort()

    def num(pattern: str) -> float | None:
        m = re.search(pattern, text, re.M)
        return float(m.group(1)) if m else None

    events = num(r"^\s*transactions:\s+(\d+)")
    total_time = num(r"^\s*total time:\s+([0-9.]+)s")
    lat_max = num(r"^\s*max:\s+([0-9.]+)")
    errors: dict[str, int] = {}
    for m in re.finditer(r"^bench-error (-?\d+) (\d+)$", text, re.M):
        kind = MYSQL_ERROR_KINDS.get(int(m.group(1)), f"error_{m.group(1)}")
        errors[kind] = errors.get(kind, 0) + int(m.group(2))
    fatal = re.findall(r"^(?:FATAL|ALERT): .*$", text, re.M)
    if fatal:
        errors["fatal"] = len(fatal)
    if ended_early:
        errors["workload_ended_early"] = 1
    return {
        "transactions": int(events) if events is not None else None,
        "seconds": total_time,
        "tps": (events / total_time) if events and total_time else None,
        "p50_ms": percentile_hist(buckets, 50),
        "p99_ms": percentile_hist(buckets, 99),
        "max_ms": lat_max,
        "errors": errors,
        "error_total": sum(errors.values()),
        "fatal": fatal[:5],
    }


def cmd_sysbench(args: argparse.Namespace) -> None:
    with open(args.file, errors="replace") as f:
        print(json.dumps(parse_sysbench(f.read(), args.ended_early)))


# --------------------------------------------------------------------------
# pgbench
# --------------------------------------------------------------------------

def parse_pgbench(lines, start: float, end: float) -> dict:
    """PostgreSQL 15 per-transaction log lines, with -R and --max-tries != 1:
    client_id transaction_no time script_no time_epoch time_us schedule_lag retries
    `time` (µs, from the scheduled start under -R) is a word for a failed
    transaction with --failures-detailed: serialization, deadlock or failed."""
    latencies: list[float] = []
    errors: dict[str, int] = {}
    retries_total = 0
    for line in lines:
        f = line.split()
        if len(f) < 6:
            continue
        try:
            done = int(f[4]) + int(f[5]) / 1e6
        except ValueError:
            continue
        retries = int(f[7]) if len(f) >= 8 and f[7].isdigit() else 0
        if f[2].isdigit():
            latency = int(f[2]) / 1e6
            scheduled = done - latency
        else:
            latency = None
            scheduled = done  # a failure: when it was reported
        if not (start <= scheduled < end):
            continue
        # Every retry is an error the application got (deadlock or
        # serialization failure) and pgbench retried.
        if retries:
            errors["retried_errors"] = errors.get("retried_errors", 0) + retries
            retries_total += retries
        if latency is None:
            kind = {"deadlock": "deadlocks", "serialization": "serialization_failures"}.get(
                f[2], f"failed_{f[2]}")
            errors[kind] = errors.get(kind, 0) + 1
            continue
        latencies.append(latency * 1000.0)
    latencies.sort()
    seconds = max(end - start, 1e-9)
    return {
        "transactions": len(latencies),
        "seconds": seconds,
        "tps": len(latencies) / seconds,
        "p50_ms": percentile_sorted(latencies, 50),
        "p99_ms": percentile_sorted(latencies, 99),
        "max_ms": latencies[-1] if latencies else None,
        "errors": errors,
        "error_total": sum(errors.values()),
    }


def cmd_pgbench(args: argparse.Namespace) -> None:
    files = sorted(glob.glob(glob.escape(args.prefix) + ".*"))
    lines: list[str] = []
    for path in files:
        with open(path, errors="replace") as f:
            lines.extend(f)
    result = parse_pgbench(lines, args.start, args.end)
    result["log_files"] = len(files)
    if args.out_file and os.path.exists(args.out_file):
        with open(args.out_file, errors="replace") as f:
            text = f.read()
        aborted = re.findall(r"^.*client \d+ aborted.*$", text, re.M)
        result["clients_aborted"] = len(aborted)
        result["fatal"] = aborted[:5]
        if aborted:
            result["errors"]["clients_aborted"] = len(aborted)
            result["error_total"] += len(aborted)
    print(json.dumps(result))


# --------------------------------------------------------------------------
# One run's record
# --------------------------------------------------------------------------

def peak_rss_kb(time_file: str | None) -> int | None:
    """Maximum resident set size from GNU time -v's report."""
    if not time_file or not os.path.exists(time_file):
        return None
    with open(time_file, errors="replace") as f:
        m = re.search(r"Maximum resident set size \(kbytes\):\s*(\d+)", f.read())
    return int(m.group(1)) if m else None


def shadowswap_summary(path: str | None) -> dict | None:
    """The JSON object shadowswap prints on stdout with --log-format json."""
    if not path or not os.path.exists(path):
        return None
    with open(path, errors="replace") as f:
        for line in reversed(f.read().splitlines()):
            line = line.strip()
            if line.startswith("{"):
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                if "swapped" in obj or "writes_blocked_ms" in obj:
                    return obj
    return None


def _load_json(path: str | None):
    if not path or not os.path.exists(path) or os.path.getsize(path) == 0:
        return None
    with open(path) as f:
        return json.load(f)


def cmd_record(args: argparse.Namespace) -> None:
    summary = shadowswap_summary(args.summary)
    workload = _load_json(args.workload)
    if args.ok and args.workload and (workload is None or workload.get("tps") is None):
        args.ok = 0
        args.error = "the workload reported nothing (see workload.out)"
    rec = {
        "db": args.db,
        "phase": args.phase,
        "tool": args.tool,
        "run": args.run,
        "attempt": args.attempt,
        "ok": args.ok,
        "error": args.error or None,
        "rows": args.rows,
        "wall_s": args.wall,
        "peak_rss_kb": peak_rss_kb(args.time_file),
        "writes_blocked_ms": summary.get("writes_blocked_ms") if summary else None,
        "shadowswap": summary,
        "workload": workload,
        "busy": _load_json(args.busy),
    }
    with open(args.jsonl, "a") as f:
        f.write(json.dumps(rec) + "\n")
    b = rec["busy"] or {}
    w = rec["workload"] or {}
    parts = [f"{args.db} {args.phase} {args.tool} run {args.run}"
             + (f" (attempt {args.attempt})" if args.attempt > 1 else "") + ":",
             "ok" if args.ok else f"FAILED ({args.error})"]
    if args.wall is not None:
        parts.append(f"{args.wall:.2f} s")
    if rec["peak_rss_kb"]:
        parts.append(f"RSS {rec['peak_rss_kb'] / 1024:.0f} MiB")
    if rec["writes_blocked_ms"] is not None:
        parts.append(f"writes blocked {rec['writes_blocked_ms']} ms")
    if w.get("tps") is not None:
        parts.append(f"workload {w['tps']:.0f} tps, p99 {fmt_ms(w.get('p99_ms'))}, "
                     f"max {fmt_ms(w.get('max_ms'))}, errors {w.get('error_total', 0)}")
    if b:
        parts.append(f"other work {b.get('foreign_cpu_share', 0) * 100:.0f}% CPU"
                     + (" -> BUSY" if b.get("busy") else ""))
    print(" ".join(parts), file=sys.stderr)


def fmt_ms(v) -> str:
    return "n/a" if v is None else f"{v:.1f} ms"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("sample")
    s.add_argument("out")
    s.add_argument("--root", action="append", default=[])
    s.set_defaults(fn=cmd_sample)

    s = sub.add_parser("busy")
    s.add_argument("a")
    s.add_argument("b")
    s.add_argument("--threshold", type=float, default=0.10,
                   help="largest share of the machine's CPU other work may use (default 0.10)")
    s.add_argument("--steal", type=float, default=0.05,
                   help="largest steal share (default 0.05)")
    s.set_defaults(fn=cmd_busy)

    s = sub.add_parser("sysbench")
    s.add_argument("file")
    s.add_argument("--ended-early", action="store_true",
                   help="sysbench had exited before it was told to stop")
    s.set_defaults(fn=cmd_sysbench)

    s = sub.add_parser("pgbench")
    s.add_argument("prefix")
    s.add_argument("--start", type=float, required=True)
    s.add_argument("--end", type=float, required=True)
    s.add_argument("--out-file")
    s.set_defaults(fn=cmd_pgbench)

    s = sub.add_parser("record")
    s.add_argument("jsonl")
    s.add_argument("--db", required=True)
    s.add_argument("--phase", required=True, choices=["idle", "load"])
    s.add_argument("--tool", required=True)
    s.add_argument("--run", type=int, required=True)
    s.add_argument("--attempt", type=int, default=1)
    s.add_argument("--ok", type=int, choices=[0, 1], required=True)
    s.add_argument("--error")
    s.add_argument("--rows", type=int)
    s.add_argument("--wall", type=float)
    s.add_argument("--time-file", help="GNU time -v output of the tool")
    s.add_argument("--summary", help="shadowswap's stdout (--log-format json)")
    s.add_argument("--workload", help="JSON from the sysbench/pgbench subcommand")
    s.add_argument("--busy", help="JSON from the busy subcommand")
    s.set_defaults(fn=cmd_record)

    args = p.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
