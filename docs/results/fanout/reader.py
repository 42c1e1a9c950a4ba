import os, subprocess, sys, time
bin_, proxy, at_ns, ranks, node = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
time.sleep(max(0.0, (at_ns - time.time_ns()) / 1e9))
procs = [(r, subprocess.Popen([bin_, "resolve", "--timing", proxy, "-o", "/dev/null"],
                              stderr=subprocess.PIPE, text=True)) for r in range(ranks)]
for r, p in procs:
    err = p.communicate()[1]
    end = time.time_ns()
    if p.returncode != 0:
        sys.exit(f"{node} rank {r}: resolve failed: {err}")
    us = next((l.split()[1] for l in err.splitlines() if l.startswith("resolve_us")), "nan")
    print(node, r, at_ns, end, us, flush=True)
