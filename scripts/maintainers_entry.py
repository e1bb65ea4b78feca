#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Insert or update this project's entry in a kernel MAINTAINERS file.

maintainers_entry.py MAINTAINERS ENTRY PATH...

ENTRY holds the entry's title and fields; its F: lines are replaced by one per
PATH (directories get a trailing slash), sorted. The entry goes where the
title sorts among the existing entries. Used by scripts/tree.sh so that every
commit that adds files also covers them in MAINTAINERS.
"""
import os
import sys


def main():
    maint, entry_file, paths = sys.argv[1], sys.argv[2], sys.argv[3:]
    entry = [l for l in open(entry_file).read().splitlines() if l.strip()]
    title = entry[0]
    fields = [l for l in entry[1:] if not l.startswith("F:")]
    files = sorted({p.rstrip("/") + ("/" if os.path.isdir(p) else "") for p in paths}
                   | {l.split("\t", 1)[1] for l in entry[1:] if l.startswith("F:")})
    block = [title] + fields + [f"F:\t{f}" for f in files]

    lines = open(maint).read().split("\n")
    # Drop an existing copy of the entry.
    if title in lines:
        i = lines.index(title)
        j = i
        while j < len(lines) and lines[j] != "":
            j += 1
        del lines[i:j + 1]
    # Entries start after the "Maintainers List" header; each is a title line
    # after a blank line. The file is not strictly sorted, so go after the
    # entry whose title is the greatest one below ours.
    start = next(i for i, l in enumerate(lines) if l.startswith("3C59X NETWORK DRIVER"))
    titles = [i for i in range(start, len(lines))
              if lines[i - 1] == "" and lines[i][:1].isalnum()]
    before = max((i for i in titles if lines[i] < title), key=lambda i: lines[i], default=start)
    at = before
    while at < len(lines) and lines[at] != "":
        at += 1
    at += 1
    lines[at:at] = block + [""]
    open(maint, "w").write("\n".join(lines))


if __name__ == "__main__":
    main()
