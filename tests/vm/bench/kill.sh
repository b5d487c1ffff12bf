# vm-timeout: 900
# Benchmark on the real kernel, reported not asserted (but for the bound):
#   tests/vm/run.sh tests/vm/bench/kill.sh
# The kill sweep at the size of issue 11's measurement: a file of 384
# extents, SIGKILL at 20 moments over an update creating its 384 regions
# and 20 over one deleting 383 of them; one BENCH line per moment (regions
# outside the group after the kill, after the next daemon's update), the
# message count and time of each update uninterrupted, and a summary.
KS_TAG=BENCH body_kill_sweep 20 3
