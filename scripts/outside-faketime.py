#!/usr/bin/env python3
"""Runs a compiler outside the moved clock of scripts/clock-check.sh.

rustc, clippy-driver and rustdoc allocate with jemalloc, whose initialisation
deadlocks inside libfaketime's constructor; they only build, they decide no
dates, so they run with the real clock. Every other variable is kept (a shell
wrapper would drop the ones with '-' in their names, such as cargo's
CARGO_BIN_EXE_<name>). Used as RUSTC_WRAPPER, and as RUSTDOC through a link
named `rustdoc` (then the real rustdoc is CLOCK_CHECK_RUSTDOC).
"""
import os
import sys

CLOCK_VARIABLES = ("LD_PRELOAD", "FAKETIME", "FAKETIME_DONT_FAKE_MONOTONIC")
environment = {k: v for k, v in os.environ.items() if k not in CLOCK_VARIABLES}
command = sys.argv[1:]
if os.path.basename(sys.argv[0]) == "rustdoc":
    command = [os.environ["CLOCK_CHECK_RUSTDOC"], *command]
os.execvpe(command[0], command, environment)
