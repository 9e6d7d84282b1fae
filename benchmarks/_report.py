"""Shared ending of the benchmark scripts: print the report, write it, and turn missed
targets into the exit status."""


def finish(lines, out, missed):
    """Print ``lines``, write them to ``out`` (if given), return 1 if ``missed`` else 0."""
    text = "\n".join(lines)
    print(text)
    if out:
        with open(out, "w") as handle:
            handle.write(text + "\n")
    return 1 if missed else 0
