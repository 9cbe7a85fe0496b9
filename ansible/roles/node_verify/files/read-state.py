# Runs node_verify's read-only commands on the node in one module call, instead of one SSH round
# trip and one Python start-up per command. Reads {name: shell command} as JSON on stdin and prints
# {name: {rc, stdout, stderr}} as JSON. Exits 1 when a read failed, with a line per failed read on
# stderr (the last one is what a failed run reports), so a missing binary fails like before.
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

TIMEOUT_S = 120


def run(command):
    try:
        done = subprocess.run(
            ["/bin/bash", "-c", "set -o pipefail\n" + command],
            capture_output=True, text=True, errors="replace", timeout=TIMEOUT_S, check=False,
        )
    except subprocess.TimeoutExpired:
        return {"rc": 124, "stdout": "", "stderr": "timed out after %d s" % TIMEOUT_S}
    return {"rc": done.returncode, "stdout": done.stdout, "stderr": done.stderr}


reads = json.load(sys.stdin)
# The reads are independent; a few at a time overlaps the slow Python start-ups (fail2ban, certbot).
with ThreadPoolExecutor(max_workers=4) as pool:
    results = dict(zip(reads, pool.map(run, reads.values())))
json.dump(results, sys.stdout)
failed = [name for name, r in results.items() if r["rc"] != 0]
for name in failed:
    last = (results[name]["stderr"].strip().splitlines() or [""])[-1]
    sys.stderr.write("read %r (%s) failed with exit code %d: %s\n" % (name, reads[name].split("\n")[0], results[name]["rc"], last))
sys.exit(1 if failed else 0)
