#!/usr/bin/env python3
"""What one redis-server holds about budgets and grants, as JSON (for
scripts/hotkey.sh's checks): read with redis-cli from the stored layout
(src/store/redis.rs; prefix `ft`), summed over every shard and day.

  log_entries, log_milli   the grant log lists (`ft:{s<k>}:grants:<day>`):
                           entries and the sum of their value_milli
  max_grant_milli          the largest grant in them
  spent_n, spent_milli     the spend counters (`ft:{s<k>}:spent:<day>`,
                           fields n and v)
  pool_total_milli, pool_rem_milli
                           the day pools (`ft:{meta}:pool:<day>`, fields
                           total and rem)

Usage: budget_state.py REDIS_PORT
"""
import json
import subprocess
import sys


def cli(port, *args):
    out = subprocess.run(["redis-cli", "-p", port, "--raw", *args],
                         check=True, capture_output=True, text=True).stdout
    return [line for line in out.split("\n") if line]


def main():
    port = sys.argv[1]
    state = dict(log_entries=0, log_milli=0, max_grant_milli=0, spent_n=0,
                 spent_milli=0, pool_total_milli=0, pool_rem_milli=0)
    for key in cli(port, "--scan", "--pattern", "ft:{s*}:grants:*"):
        for entry in cli(port, "LRANGE", key, "0", "-1"):
            value = int(json.loads(entry)["value_milli"])
            state["log_entries"] += 1
            state["log_milli"] += value
            state["max_grant_milli"] = max(state["max_grant_milli"], value)
    for key in cli(port, "--scan", "--pattern", "ft:{s*}:spent:*"):
        v, n = cli(port, "HMGET", key, "v", "n")
        state["spent_milli"] += int(v)
        state["spent_n"] += int(n)
    for key in cli(port, "--scan", "--pattern", "ft:{meta}:pool:*"):
        total, rem = cli(port, "HMGET", key, "total", "rem")
        state["pool_total_milli"] += int(total)
        state["pool_rem_milli"] += int(rem)
    json.dump(state, sys.stdout)


if __name__ == "__main__":
    main()
