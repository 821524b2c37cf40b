-- pgbench's built-in "TPC-B (sort of)" script (pgbench -b tpcb-like,
-- PostgreSQL 15), with one change: the account is drawn from
-- 1..:naccounts instead of 1..100000 * :scale, so that a table of any size
-- (scripts/bench.sh --rows N, N not a multiple of 100,000) is hit evenly.
-- For N = 100,000 * scale it is the built-in script exactly.
-- scripts/bench.sh passes -D naccounts=N -D scale=S.
\set aid random(1, :naccounts)
\set bid random(1, 1 * :scale)
\set tid random(1, 10 * :scale)
\set delta random(-5000, 5000)
BEGIN;
UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
UPDATE pgbench_tellers SET tbalance = tbalance + :delta WHERE tid = :tid;
UPDATE pgbench_branches SET bbalance = bbalance + :delta WHERE bid = :bid;
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (:tid, :bid, :aid, :delta, CURRENT_TIMESTAMP);
END;
