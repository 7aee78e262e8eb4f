"""Chaos testing: real sites, a seeded nemesis, a recorded history and a checker of invariants.

    python -m tests.chaos --sites 4 --seconds 120 --seed 7

proxy.py     an asyncio TCP proxy per directed site-to-site link (blackhole, drop replies,
             delay, reset), so faults hit one direction at a time
sites.py     the cluster of real site processes, reaching each other through the proxies
nemesis.py   a fault schedule made from the seed alone, and the thread that applies it
workload.py  client threads (one user each) creating, uploading, voting, reading
history.py   the JSONL history: invoke / ok / fail / info for every client operation
observe.py   after healing: wait for quiet, read every site's views and stored logs
replay.py    an event's stored logs replayed site by site
invariants.py       the invariants of DESIGN.md over logs and views (and KNOWN_BUGS)
history_checks.py   the invariants tying the clients' history to the logs
checker.py   all of them over one run: `python -m tests.chaos.checker RUN_DIR`
run.py       one run from start to verdict; __main__.py is its command line

test_checker.py     planted violations, each caught      test_proxy.py   the link faults
test_chaos_short.py one short seeded run (CI)             test_found_bugs.py  bugs found (xfail)
"""
