#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Judge one guest run of `make check`.

Reads RUN_DIR/{results.log,console.log,status} as written by vm.sh and prints
one line per test with its verdict, then a last line "N passed, N failed,
N skipped" for this run. Counts:

* every top-level KTAP result of the kselftests in results.log (XFAIL is a
  pass: the test states a known upstream behaviour and checks it; SKIP is
  not a pass), and any test of the plan that never reported, as failed;
* every KUnit test case in the console (the leaf results), and one failure
  if a required suite did not run at all;
* the guest's exit status (timeout, crash before the script ended); a guest
  that died before its first test is reported as an infrastructure error
  (INFRA, with the kernel report vm.sh quotes), and counted as failed;
* the kernel log: any WARN, BUG, Oops, KASAN, UBSAN, lockdep, hung-task,
  soft-lockup, RCU-stall, list-corruption, debugobjects or kmemleak report
  fails the run, even when every test passed.
"""
import re
import sys
from pathlib import Path

SPLAT = re.compile(
    r"WARNING:|\bBUG[: ]|kernel BUG|Oops|general protection fault|KASAN|UBSAN"
    # lockdep's reports start with "WARNING:"; these name the common ones
    # again in case the WARNING line is lost.
    r"|possible circular locking|possible recursive locking|inconsistent lock state"
    r"|DEBUG_LOCKS_WARN_ON|blocked for more than|soft lockup|hard LOCKUP"
    r"|Kernel panic|detected stall|Call Trace:|list_(add|del) corruption|ODEBUG"
    r"|unreferenced object")
KTAP_RESULT = re.compile(r"^(not )?ok (\d+)\s*(?:-\s*)?(.*?)(?:\s+#\s*(\w+)(.*))?$")
TIMESTAMP = re.compile(r"^\[\s*\d+\.\d+\]\s?")


def parse_ktap(lines, indent):
    """Return (plan, results) for the KTAP results at exactly `indent`.

    Several scripts may print their own plan at the same level; the plan
    returned is their sum."""
    plan, results = None, []
    prefix = " " * indent
    for line in lines:
        if not line.startswith(prefix) or line[indent:indent + 1] == " ":
            continue
        body = line[indent:]
        m = re.match(r"^1\.\.(\d+)", body)
        if m:
            # One plan per script run at this level: they add up.
            plan = (plan or 0) + int(m.group(1))
            continue
        m = KTAP_RESULT.match(body)
        if m:
            directive = (m.group(4) or "").upper()
            results.append((not m.group(1), m.group(3), directive))
    return plan, results


def main():
    run = Path(sys.argv[1])
    required_suites = sys.argv[2:]
    passed = failed = skipped = 0

    def verdict(ok, name, directive=""):
        nonlocal passed, failed, skipped
        if directive == "SKIP":
            skipped += 1
            print(f"  SKIP  {name}")
        elif ok:
            passed += 1
            print(f"  PASS  {name}" + (" (XFAIL: known upstream behaviour)" if directive == "XFAIL" else ""))
        else:
            failed += 1
            print(f"  FAIL  {name}")

    results = (run / "results.log").read_text(errors="replace").splitlines() \
        if (run / "results.log").exists() else []
    console = [TIMESTAMP.sub("", l) for l in
               (run / "console.log").read_text(errors="replace").splitlines()] \
        if (run / "console.log").exists() else []
    status = (run / "status").read_text().strip() if (run / "status").exists() else "missing"

    # kselftests
    plan, tests = parse_ktap(results, 0)
    for ok, name, directive in tests:
        verdict(ok, f"kselftest: {name}", directive)
    for i in range(len(tests), plan or 0):
        verdict(False, f"kselftest #{i + 1}: never reported (plan {plan})")
    if plan is None:
        verdict(False, "kselftest: no KTAP plan in the results")

    # KUnit: leaf results are indented once below the top-level suite list.
    suites, suite = {}, None
    for line in console:
        m = re.match(r"^    # Subtest: (\S+)", line)
        if m:
            suite = m.group(1)
            suites.setdefault(suite, 0)
            continue
        m = KTAP_RESULT.match(line[4:]) if line.startswith("    ") and not line.startswith("     ") else None
        if m and suite:
            suites[suite] += 1
            verdict(not m.group(1), f"kunit {suite}: {m.group(3)}", (m.group(4) or "").upper())
    for s in required_suites:
        if not suites.get(s):
            verdict(False, f"kunit suite {s}: did not run")

    if status.startswith("infra"):
        # vm.sh: the guest died before its first test. Still a failure (no
        # retry), but of the infrastructure, not of a test.
        failed += 1
        print(f"  INFRA {status.removeprefix('infra: ')}")
    else:
        verdict(status == "exit 0", f"guest run finished ({status})")

    splats = [l for l in console if SPLAT.search(l)]
    splats += [l for l in results if "unreferenced object" in l]
    if splats:
        print("  kernel log splats:")
        for l in splats[:40]:
            print(f"    {l}")
    verdict(not splats, f"kernel log free of WARN/BUG/Oops/KASAN/UBSAN/lockdep/hung-task/kmemleak reports ({len(splats)} lines)")

    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 0 if failed == 0 and skipped == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
