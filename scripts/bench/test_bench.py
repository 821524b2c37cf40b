#!/usr/bin/env python3
"""Tests of scripts/bench's parsing, medians and tables: python3 scripts/bench/test_bench.py"""

import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True

import measure  # noqa: E402
import report  # noqa: E402

SYSBENCH_OUT = """\
Threads started!

[ 1s ] thds: 4 tps: 199.00 qps: 3980.00 (r/w/o: 2786.00/796.00/398.00) lat (ms,99%): 8.43 err/s: 0.00 reconn/s: 0.00
bench-error 1213 2
bench-error 1205 1
bench-error 1213 1
Latency histogram (values are in milliseconds)
       value  ------------- distribution ------------- count
       1.000 |****************************************  97
       2.000 |*                                         2
     500.000 |*                                         1

SQL statistics:
    transactions:                        100    (50.00 per sec.)
    ignored errors:                      4      (2.00 per sec.)

General statistics:
    total time:                          2.0000s
    total number of events:              100

Latency (ms):
         min:                                    0.90
         avg:                                    6.00
         max:                                  501.20
         99th percentile:                      500.00
"""


class SysbenchTest(unittest.TestCase):
    def test_report_histogram_and_errors(self):
        r = measure.parse_sysbench(SYSBENCH_OUT)
        self.assertEqual(r["transactions"], 100)
        self.assertAlmostEqual(r["tps"], 50.0)
        self.assertEqual(r["p50_ms"], 1.0)
        self.assertEqual(r["p99_ms"], 2.0)  # 99th of 100: the 99th value
        self.assertEqual(r["max_ms"], 501.2)
        self.assertEqual(r["errors"], {"deadlocks": 3, "lock_wait_timeouts": 1})
        self.assertEqual(r["error_total"], 4)

    def test_fatal_and_early_end_count(self):
        r = measure.parse_sysbench("FATAL: mysql_stmt_execute() returned error 1146\n", ended_early=True)
        self.assertIsNone(r["tps"])
        self.assertEqual(r["errors"], {"fatal": 1, "workload_ended_early": 1})


class PgbenchTest(unittest.TestCase):
    def test_window_by_scheduled_start(self):
        lines = [
            # client tx time(us) script epoch us lag retries
            "0 1 1000 0 100 500000 10 0",     # scheduled 100.499: before the window
            "0 2 2000 0 101 2000 10 0",       # scheduled 101.000: in
            "1 1 3000000 0 104 0 10 1",       # scheduled 101.000, done 104: in, 1 retry
            "1 2 deadlock 0 102 0 0 9",       # failed after retries, reported at 102: in
            "0 3 1000 0 103 1000 10 0",       # scheduled 103.000: at the end, out
        ]
        r = measure.parse_pgbench(lines, 101.0, 103.0)
        self.assertEqual(r["transactions"], 2)
        self.assertAlmostEqual(r["tps"], 1.0)
        self.assertAlmostEqual(r["max_ms"], 3000.0)
        self.assertEqual(r["errors"], {"retried_errors": 10, "deadlocks": 1})
        self.assertEqual(r["error_total"], 11)


class BusyTest(unittest.TestCase):
    def sample(self, total, idle, ours, steal=0):
        return {"stat": {"total": total, "idle": idle, "steal": steal}, "ours": ours, "load1": 0.5}

    def test_other_work_is_busy_minus_ours(self):
        a = self.sample(1000, 800, {"1": [5, 100]})
        b = self.sample(1200, 900, {"1": [5, 150], "2": [9, 30]})  # 2 born during the run
        v = measure.busy_verdict(a, b, 0.10, 0.05)
        # 100 busy ticks of 200; ours 50 + 30 -> other work 20 = 10%: not over the threshold.
        self.assertEqual(v["foreign_cpu_share"], 0.1)
        self.assertFalse(v["busy"])
        v = measure.busy_verdict(a, b, 0.05, 0.05)
        self.assertTrue(v["busy"])

    def test_reused_pid_counts_from_zero(self):
        a = self.sample(0, 0, {"7": [1, 500]})
        b = self.sample(100, 0, {"7": [2, 40]})
        self.assertEqual(measure.busy_verdict(a, b, 0.5, 0.5)["ours_cpu_share"], 0.4)


class ReportTest(unittest.TestCase):
    def test_medians_last_attempt_and_doc(self):
        d = tempfile.mkdtemp()
        recs = []

        def rec(tool, phase, run, wall, attempt=1, busy=False, tps=None, p99=None):
            recs.append({"db": "mariadb", "phase": phase, "tool": tool, "run": run, "attempt": attempt,
                         "ok": True, "rows": 1000, "wall_s": wall, "peak_rss_kb": 2048,
                         "writes_blocked_ms": 5 if tool.startswith("shadowswap") else None,
                         "workload": None if tps is None else {"tps": tps, "p50_ms": 1, "p99_ms": p99,
                                                               "max_ms": p99, "errors": {}, "error_total": 0},
                         "busy": {"busy": busy, "foreign_cpu_share": 0.5 if busy else 0.0}})

        rec("limit", "idle", 1, 1.0)
        rec("limit", "idle", 2, 3.0)
        rec("pt-osc", "idle", 1, 4.0)
        rec("shadowswap", "idle", 1, 9.0, busy=True)
        rec("shadowswap", "idle", 1, 2.0, attempt=2)  # the redo counts
        rec("baseline", "load", 1, 10.0, tps=200, p99=4.0)
        rec("shadowswap", "load", 1, 3.0, tps=190, p99=8.0)
        with open(os.path.join(d, "runs.jsonl"), "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in recs)
        out = report.render(d)
        self.assertIn("| limit: INSERT … SELECT | 2.00 | 500 | 1.00× | 2.00× |", out)
        self.assertIn("| shadowswap (defaults) | 2.00 | 500 | 1.00× | 2.00× | 190 (0.95×) | 8.0 (2.00×) | 0 | 5 / 5 ms | 2 MiB |", out)
        self.assertNotIn("Not a clean run", out)
        doc = os.path.join(d, "doc.md")
        with open(doc, "w") as f:
            f.write(f"# B\n\n{report.BEGIN}\nold\n{report.END}\n\ntail\n")
        report.write_doc(doc, out)
        text = open(doc).read()
        self.assertNotIn("old", text)
        self.assertIn("tail", text)
        self.assertIn("| shadowswap (defaults) |", text)


if __name__ == "__main__":
    unittest.main()
