#!/usr/bin/env python3
"""docs/cli.md and the `oc` binary agree.

1. Every `oc <verb ...>` written in docs/cli.md (in code spans and code
   blocks) names a real verb: `oc <verb ...> --help` exits 0 and prints that
   verb's own usage line, and every `--flag` written after it on the same
   line is a flag of that verb (or a global flag).
2. Every verb the binary has is documented in docs/cli.md.
"""
import argparse
import re
import subprocess
import sys

GLOBAL_FLAGS = {"--api-url", "--api-key", "--json", "--verbose", "-v", "--help", "-h", "--version"}


def oc_help(oc, words):
    r = subprocess.run([oc, *words, "--help"], capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout


def subcommands(help_text):
    """{name or alias: primary name} of the Subcommands section (CLI11
    shows aliases after the name: `  list, ls    List sandboxes`)."""
    names, in_section = {}, False
    for line in help_text.splitlines():
        if line.startswith("Subcommands:"):
            in_section = True
            continue
        if in_section:
            m = re.match(r"^  ([^\s,]+(?:, [^\s,]+)*)\s", line)
            if m:
                spelled = m.group(1).split(", ")
                for name in spelled:
                    names[name] = spelled[0]
            elif line.strip() == "" and names:
                in_section = False
    return names


def flags_of(help_text):
    found = set()
    for line in help_text.splitlines():
        for flag in re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", line.split("  ")[1] if line.startswith("  ") and len(line.split("  ")) > 1 else ""):
            found.add(flag)
    return found


class Verbs:
    """Memoised view of the verb tree of the binary."""

    def __init__(self, oc):
        self.oc = oc
        self.cache = {}

    def help(self, words):
        key = tuple(words)
        if key not in self.cache:
            self.cache[key] = oc_help(self.oc, list(words))
        return self.cache[key]

    def children(self, words):
        """Primary names of the verbs below `words`."""
        return list(dict.fromkeys(subcommands(self.help(words)[1]).values()))

    def primary(self, words, name):
        """The primary name of `name` (a verb or an alias) below `words`, or None."""
        return subcommands(self.help(words)[1]).get(name)

    def all_leaves(self, words=()):
        kids = self.children(words)
        if not kids:
            return [list(words)]
        out = [] if not words else []
        for kid in kids:
            out += self.all_leaves((*words, kid))
        return out


def doc_command_lines(text):
    """Yield (line_no, tokens after `oc`) for every oc invocation in code."""
    in_block = False
    for no, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            in_block = not in_block
            continue
        snippets = [line] if in_block else re.findall(r"`([^`]+)`", line)
        for snippet in snippets:
            for m in re.finditer(r"(?:^|[\s(|;&$=])oc\s+([^|;&)`#]*)", snippet):
                yield no, m.group(1).split()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--oc", required=True)
    parser.add_argument("--doc", required=True)
    args = parser.parse_args()
    with open(args.doc) as f:
        text = f.read()

    verbs = Verbs(args.oc)
    failures = []
    documented = set()
    checked = 0
    for no, tokens in doc_command_lines(text):
        if not tokens or not re.fullmatch(r"[a-z][a-z-]*", tokens[0]):
            continue  # `oc [GLOBAL FLAGS] ...`, `oc <verb> --help`, `oc --json ...`
        words = []
        while tokens and verbs.primary(words, tokens[0]):
            words.append(verbs.primary(words, tokens.pop(0)))
        if not words:
            failures.append(f"cli.md:{no}: `oc {tokens[0]}` is not a verb of oc")
            continue
        code, out = verbs.help(words)
        usage = "Usage: oc " + " ".join(words)
        if code != 0 or usage not in out:
            failures.append(f"cli.md:{no}: `oc {' '.join(words)} --help` failed (exit {code})")
            continue
        checked += 1
        documented.add(tuple(words))
        known = flags_of(out) | GLOBAL_FLAGS
        for tok in tokens:
            if tok == "--":
                break  # the rest is the sandbox command (oc exec)
            flag = tok.split("=", 1)[0]
            if flag.startswith("-") and re.fullmatch(r"--?[A-Za-z][\w-]*", flag) and flag not in known:
                failures.append(f"cli.md:{no}: `oc {' '.join(words)}` has no flag {flag}")

    for leaf in verbs.all_leaves():
        if tuple(leaf) not in documented:
            failures.append(f"verb `oc {' '.join(leaf)}` exists but docs/cli.md does not show it")

    if failures:
        print("\n".join(failures))
        return 1
    print(f"docs/cli.md: {checked} oc invocations checked; all {len(verbs.all_leaves())} verbs documented")
    return 0


if __name__ == "__main__":
    sys.exit(main())
