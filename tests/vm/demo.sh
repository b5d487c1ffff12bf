#!/usr/bin/env bash
# The main job, shown on the real kernel in a VM: dmstats maps a file to a
# group of regions and starts dmfilemapd; the file grows and the regions and
# `dmstats report` follow. Needs tests/setup.sh once (it is run here).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bash "$here/../setup.sh" > /dev/null
VM_DEMO=1 exec bash "$here/run.sh" "$here/demo/main.sh"
