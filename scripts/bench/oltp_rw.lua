#!/usr/bin/env sysbench
-- sysbench's own oltp_read_write (packaged in /usr/share/sysbench, found on
-- sysbench's default package.path), plus two things scripts/bench.sh needs:
--
-- * It stops when the file named by BENCH_STOP_FILE exists: each thread checks
--   before each transaction and ends (that transaction not run, not counted),
--   so the run covers exactly "until the migration finished" and sysbench
--   still prints its cumulative report and --histogram. The transactions in
--   flight when the file appears finish and count, however long they take.
-- * It counts the errors it was told to ignore and retry
--   (--mysql-ignore-errors=1213,1205) by error number and prints one line per
--   thread and number at the end: "bench-error <errno> <count>".
--
-- Latency: with --rate, sysbench 1.0 queues events at the paced times and adds
-- each event's time in the queue to its latency (sb_timer_stop adds
-- queue_time), so the reported latency is counted from the intended start.

require("oltp_read_write")

local stop_file = os.getenv("BENCH_STOP_FILE")
local rw_event = event
local rw_before_restart = sysbench.hooks.before_restart_event
local rw_thread_done = thread_done
local errors = {}

function event(...)
   if stop_file ~= nil and stop_file ~= "" then
      local f = io.open(stop_file, "r")
      if f ~= nil then
         f:close()
         return true -- ends this thread's loop (see thread_run in sysbench)
      end
   end
   return rw_event(...)
end

function sysbench.hooks.before_restart_event(errdesc)
   local errno = errdesc.sql_errno or -1
   errors[errno] = (errors[errno] or 0) + 1
   if rw_before_restart ~= nil then
      rw_before_restart(errdesc)
   end
end

function thread_done(...)
   for errno, n in pairs(errors) do
      io.stdout:write(string.format("bench-error %d %d\n", errno, n))
   end
   io.stdout:flush()
   if rw_thread_done ~= nil then
      rw_thread_done(...)
   end
end
