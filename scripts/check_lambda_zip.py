#!/usr/bin/env python3
"""Checks a Lambda deployment zip as the provided.al2023 runtime needs it.

    check_lambda_zip.py target/lambda/sfn-mackerel-consumer/bootstrap.zip --machine aarch64 \
        --max-bytes 5000000 --objdump aarch64-linux-gnu-objdump

The runtime starts a file named `bootstrap` at the zip's root, so the zip must
hold exactly that one entry, executable, built for the function's architecture
(the ELF header's e_machine), and needing no newer glibc than the runtime's
Amazon Linux 2023 has (2.34, https://docs.aws.amazon.com/linux/al2023/ug/core-glibc.html):
a binary linked against a newer one stops at start with "GLIBC_2.xx not found"
(aws/aws-lambda-rust-runtime#932, a `cargo lambda build --compiler cargo` on a
newer distribution). AWS documents the layout at
https://docs.aws.amazon.com/lambda/latest/dg/rust-package.html and the zip limits
at https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html; the
size bound is this project's own (the module uploads the zip directly).
Prints one line per check; exits 1 if any fails.
"""
from __future__ import annotations

import argparse
import os
import re
import stat
import subprocess
import tempfile
import sys
import zipfile

# The glibc of Amazon Linux 2023, on which the provided.al2023 runtime is built.
AL2023_GLIBC = (2, 34)

# e_machine values from the ELF specification (System V ABI, and its processor supplements).
ELF_MACHINES = {"x86_64": 62, "aarch64": 183}


def elf_machine(header: bytes) -> str:
    if header[:4] != b"\x7fELF":
        return "not an ELF file"
    if header[5] != 1:
        return "a big-endian ELF file"
    number = int.from_bytes(header[18:20], "little")
    names = {value: name for name, value in ELF_MACHINES.items()}
    return names.get(number, f"ELF machine {number}")


def glibc_versions_needed(binary: bytes, objdump: str) -> list[str]:
    """The GLIBC_* version names the binary requires (its "Version References"),
    or an empty list for a binary without dynamic section (a static one)."""
    with tempfile.NamedTemporaryFile() as copy:
        copy.write(binary)
        copy.flush()
        headers = subprocess.run(
            [objdump, "-p", copy.name], check=False, capture_output=True, text=True
        ).stdout
    return sorted(set(re.findall(r"\b(GLIBC_[A-Z0-9_.]+)", headers)))


def newest_glibc(names: list[str]) -> tuple[tuple[int, ...] | None, list[str]]:
    """The newest numbered version among `names`, and the names that are neither
    numbered nor GLIBC_PRIVATE (such as GLIBC_ABI_DT_RELR, glibc 2.36 and later)."""
    numbered, unknown = [], []
    for name in names:
        found = re.fullmatch(r"GLIBC_(\d+(?:\.\d+)+)", name)
        if found:
            numbered.append(tuple(int(part) for part in found.group(1).split(".")))
        elif name != "GLIBC_PRIVATE":
            unknown.append(name)
    return max(numbered, default=None), unknown


def checks(path: str, machine: str, max_bytes: int, objdump: str) -> list[tuple[bool, str]]:
    size = os.path.getsize(path)
    results = [(size <= max_bytes, f"zip is {size} B (at most {max_bytes} B)")]
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        results.append((names == ["bootstrap"], f"entries: {names} (exactly ['bootstrap'])"))
        if "bootstrap" not in names:
            return results
        entry = archive.getinfo("bootstrap")
        mode = entry.external_attr >> 16
        results.append(
            (bool(mode & stat.S_IXUSR), f"bootstrap mode {stat.filemode(mode)} (executable)")
        )
        binary = archive.read(entry)
        found = elf_machine(binary[:64])
        results.append((found == machine, f"bootstrap is {found} (want {machine})"))
        glibc, unknown = newest_glibc(glibc_versions_needed(binary, objdump))
        shown = "no glibc" if glibc is None else "glibc " + ".".join(map(str, glibc))
        if unknown:
            shown += f" and {', '.join(unknown)}"
        results.append(
            (
                (glibc is None or glibc <= AL2023_GLIBC) and not unknown,
                f"bootstrap needs {shown} (Amazon Linux 2023 has {'.'.join(map(str, AL2023_GLIBC))})",
            )
        )
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("zip")
    parser.add_argument("--machine", choices=sorted(ELF_MACHINES), required=True)
    parser.add_argument("--max-bytes", type=int, required=True)
    parser.add_argument("--objdump", default="objdump", help="an objdump that reads the binary's architecture")
    arguments = parser.parse_args()
    if not os.path.isfile(arguments.zip):
        print(f"{arguments.zip} does not exist: the build did not write it", file=sys.stderr)
        return 1
    results = checks(arguments.zip, arguments.machine, arguments.max_bytes, arguments.objdump)
    for passed, line in results:
        print(f"{'ok  ' if passed else 'FAIL'} {line}")
    return 0 if all(passed for passed, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
