#!/usr/bin/env python3
"""Runs a compiler outside the moved clock of scripts/clock-check.sh.

rustc, clippy-driver and rustdoc allocate with jemalloc, whose initialisation
deadlocks inside libfaketime's constructor; they only build, they decide no
dates, so they run with the real clock. Every other variable is kept (a shell
wrapper would drop the ones with '-' in their names, such as cargo's
CARGO_BIN_EXE_<name>). Used as RUSTC_WRAPPER, and as RUSTC and RUSTDOC
through links named `rustc` and `rustdoc` (then the real compiler is
CLOCK_CHECK_RUSTC or CLOCK_CHECK_RUSTDOC): build scripts run `$RUSTC --version`
themselves, outside any wrapper, and would hang in the moved clock.
"""
import os
import sys

CLOCK_VARIABLES = ("LD_PRELOAD", "FAKETIME", "FAKETIME_DONT_FAKE_MONOTONIC")
environment = {k: v for k, v in os.environ.items() if k not in CLOCK_VARIABLES}
command = sys.argv[1:]
REAL_COMPILER = {"rustc": "CLOCK_CHECK_RUSTC", "rustdoc": "CLOCK_CHECK_RUSTDOC"}
named = REAL_COMPILER.get(os.path.basename(sys.argv[0]))
if named:
    command = [os.environ[named], *command]
os.execvpe(command[0], command, environment)
