#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Which functions of two builds of one object differ in their code.

    objdiff.py REF.o NEW.o

Prints one line per function of .text whose machine code (with its
relocations) differs between the two objects, or that is in one of them
only: "changed NAME", "added NAME", "removed NAME". The comparison ignores
what moves when code elsewhere in the file changes: instruction addresses,
the addresses of jump and call targets (their symbol names are kept), and
offsets into string and data sections. A struct whose layout changed shows
up as changed offsets in every function that uses it.

scripts/bisect-check.sh uses it to show that a kernel without the feature
compiles the series' C files as pristine 7.3.4 with the standalone fixes
does, apart from the functions config/feature-off.allowed lists.
"""
import re
import subprocess
import sys

FUNC = re.compile(r"^[0-9a-f]+ <([^>]+)>:$")
INSN = re.compile(r"^\s*[0-9a-f]+:\t(.*)$")
RELOC = re.compile(r"^\s*[0-9a-f]+: (R_\S+)\t(.*)$")


def local_text_symbols(obj):
    """Address -> name of the functions in .text, for section-relative relocations."""
    out = subprocess.run(["nm", "--defined-only", obj], capture_output=True, text=True,
                         check=True).stdout
    syms = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "tT":
            syms[int(parts[0], 16)] = parts[2]
    return syms


def normalize_target(target, syms):
    # .text+0x1a0 -> the function at or below that offset
    m = re.match(r"^\.text\+0x([0-9a-f]+)$", target)
    if m:
        off = int(m.group(1), 16)
        below = [a for a in syms if a <= off]
        if below:
            a = max(below)
            return f"{syms[a]}+{off - a:#x}"
    # string literals, constants and data move with everything else
    target = re.sub(r"^(\.(rodata|data|bss)[\w.]*)[+-]0x[0-9a-f]+$", r"\1", target)
    # compiler-made local names: __func__.123, .Lfoo.4
    return re.sub(r"\.\d+\b", "", target)


def functions(obj):
    syms = local_text_symbols(obj)
    out = subprocess.run(["objdump", "-dr", "--no-show-raw-insn", "-j", ".text", obj],
                         capture_output=True, text=True, check=True).stdout
    funcs, name = {}, None
    for line in out.splitlines():
        m = FUNC.match(line)
        if m:
            name = re.sub(r"\.\d+$", "", m.group(1))
            funcs[name] = []
            continue
        if name is None:
            continue
        m = RELOC.match(line)
        if m:
            funcs[name].append(f"{m.group(1)} {normalize_target(m.group(2), syms)}")
            continue
        m = INSN.match(line)
        if m:
            insn = m.group(1)
            # "call 1a0 <foo+0x10>" -> "call <foo+0x10>"
            insn = re.sub(r"\b[0-9a-f]+ <", "<", insn)
            insn = re.sub(r"<([^>+]+)\.\d+", r"<\1", insn)
            funcs[name].append(insn)
    return funcs


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: objdiff.py REF.o NEW.o")
    ref, new = functions(sys.argv[1]), functions(sys.argv[2])
    for name in sorted(set(ref) | set(new)):
        if name not in new:
            print(f"removed {name}")
        elif name not in ref:
            print(f"added {name}")
        elif ref[name] != new[name]:
            print(f"changed {name}")


if __name__ == "__main__":
    main()
