# vm-timeout: 300
# SIGKILL at 20 moments spread over a large update growing a file to 128
# extents (128 regions created) and 20 over one shrinking it back to one
# (127 deleted): after each kill at most 32 regions of ours are outside the
# group and no descriptor names a missing region; a new daemon started on
# the group leaves none outside and the group equal to the file; a region
# made by hand over the same blocks stays. See body_kill_sweep in lib.sh.
body_kill_sweep 20 1
