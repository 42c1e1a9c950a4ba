#!/usr/bin/env python3
"""Module dependency cycles inside each crate of the workspace (its library,
or its binary where it has no library).

An edge A -> B means: source file A names an item defined in file B (a
`use` or a path in code, resolved through re-exports to the file that
defines the item), or names it through B's re-export (`crate::client::X`
where client/mod.rs re-exports X: A depends on the facade too; the crate
root's re-exports are not counted). Module declarations (`mod x;`), re-exports of a
module's own submodules (`pub use x::Y;` in their parent) and
`#[cfg(test)]` modules are not edges: a parent file declaring and
re-exporting its children is structure, not use. Comments, doc links and
string literals are ignored.

Usage: scripts/module-cycles.py [-v] [--allow FILE] [CRATE_DIR ...]
(default: every crate of the workspace). Prints each crate's cycles
(strongly connected components of more than one file, with the edges inside
them) and exits 1 if there is any that FILE does not allow; `-v` also
prints every crate's edge count. Each line of FILE is
`CRATE_DIR: FILE FILE ... # why` (files relative to the crate), allowing the
cycle of exactly those files; an allowed cycle that is gone is reported so
that its line can go too.
"""

import os
import re
import sys

ITEM = re.compile(
    r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:unsafe\s+|async\s+|const\s+|extern\s+\"C\"\s+)*"
    r"(struct|enum|trait|fn|type|const|static|union|mod|macro_rules!)\s+(\w+)",
    re.M,
)
# `$crate::...` in a macro names a path at the expansion site: not an edge.
PATH = re.compile(r"(?<![\w:$])((?:crate|super|self)(?:\s*::\s*\w+)+)")
USE = re.compile(r"(?<![\w:])(pub(?:\([^)]*\))?\s+)?use\s+([^;]+);")
MOD_DECL = re.compile(r"^\s*(?:#\[[^\]]*\]\s*)*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", re.M)


def strip(src):
    """Source without comments, string and char literals, and #[cfg(test)] modules."""
    out, i, n = [], 0, len(src)
    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            i = n if j < 0 else j
        elif src.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if src.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif src.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif c == "r" and re.match(r'r#*"', src[i:i + 10]) and not (i and (src[i - 1].isalnum() or src[i - 1] == "_")):
            hashes = re.match(r'r(#*)"', src[i:]).group(1)
            end = src.find('"' + hashes, i + 2 + len(hashes))
            out.append('""')
            i = n if end < 0 else end + 1 + len(hashes)
        elif c == '"':
            j = i + 1
            while j < n and src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            out.append('""')
            i = j + 1
        elif c == "'" and re.match(r"'(\\.[^']*|[^\\'])'", src[i:i + 12]):
            m = re.match(r"'(\\.[^']*|[^\\'])'", src[i:])
            out.append("' '")
            i += m.end()
        else:
            out.append(c)
            i += 1
    code = "".join(out)
    # Drop #[cfg(test)] items with a body in braces (test modules, test-only fns).
    while True:
        m = re.search(r"#\[cfg\(test\)\]\s*(?:#\[[^\]]*\]\s*)*[^;{]*\{", code)
        if not m:
            return code
        depth, j = 1, m.end()
        while j < len(code) and depth:
            depth += {"{": 1, "}": -1}.get(code[j], 0)
            j += 1
        code = code[: m.start()] + code[j:]


def expand_use(tree):
    """`a::{b, c::{d as e}}` -> [['a','b'], ['a','c','d']] (globs end in '*')."""
    tree = re.sub(r"\s+", "", tree)

    def split_top(s):
        parts, depth, cur = [], 0, ""
        for ch in s:
            if ch == "," and depth == 0:
                parts.append(cur)
                cur = ""
                continue
            depth += {"{": 1, "}": -1}.get(ch, 0)
            cur += ch
        if cur:
            parts.append(cur)
        return parts

    def go(prefix, s):
        if "{" in s and (s.find("{") < s.find("as") or "as" not in s):
            head, body = s.split("{", 1)
            body = body[: body.rfind("}")]
            head = [p for p in head.split("::") if p]
            res = []
            for part in split_top(body):
                res += go(prefix + head, part)
            return res
        s = re.sub(r"as\w+$", "", s) if "as" in s and re.search(r"\bas\b", s.replace("::", " ")) else s
        segs = [p for p in s.split("::") if p]
        segs = [re.sub(r"^(\w+)as\w+$", r"\1", p) for p in segs]
        if segs and segs[-1] == "self":
            segs = segs[:-1]
        return [prefix + segs]

    return [p for p in go([], tree) if p]


class Crate:
    def __init__(self, root):
        self.root = root
        src = os.path.join(root, "src")
        lib = os.path.join(src, "lib.rs")
        if not os.path.exists(lib):
            lib = os.path.join(src, "main.rs")
        self.files = {}  # module path (tuple) -> file
        self.walk((), lib)
        self.code = {m: strip(open(f).read()) for m, f in self.files.items()}
        self.items = {m: {g[1] for g in ITEM.findall(c)} for m, c in self.code.items()}
        self.uses = {}  # module -> {name: path list}, plus '*' -> [paths]
        for m, c in self.code.items():
            binds = {"*": []}
            for _, tree in USE.findall(c):
                for segs in expand_use(tree):
                    if segs[-1] == "*":
                        binds["*"].append(segs[:-1])
                    else:
                        binds[segs[-1]] = segs
                for alias in re.findall(r"(\w+)\s*::\s*(\w+)\s+as\s+(\w+)", tree):
                    pass
                for orig, alias in re.findall(r"([\w:]+)\s+as\s+(\w+)", re.sub(r"\s+", " ", tree)):
                    binds[alias] = [p for p in orig.split("::") if p]
            self.uses[m] = binds

    def walk(self, mod, path):
        if not os.path.exists(path):
            return
        self.files[mod] = path
        code = strip(open(path).read())
        base = os.path.dirname(path)
        name = os.path.basename(path)
        if name not in ("lib.rs", "mod.rs", "main.rs"):
            base = os.path.join(base, name[:-3])
        for child in MOD_DECL.findall(code):
            for cand in (os.path.join(base, child + ".rs"), os.path.join(base, child, "mod.rs")):
                if os.path.exists(cand):
                    self.walk(mod + (child,), cand)
                    break

    def start(self, seg, frm):
        if seg == "crate":
            return ()
        if seg == "self":
            return frm
        if seg == "super":
            return frm[:-1]
        if frm + (seg,) in self.files:
            return frm + (seg,)
        return None

    def resolve(self, segs, frm, seen=None, via=None):
        """The module (file) defining what `segs`, written in `frm`, names;
        modules other than the crate root that re-export it on the way are
        added to `via`."""
        seen = seen if seen is not None else set()
        via = via if via is not None else set()
        key = (tuple(segs), frm)
        if key in seen:
            return None
        seen.add(key)
        cur = self.start(segs[0], frm)
        if cur is None:
            # A name bound by a `use` of this module.
            b = self.uses.get(frm, {}).get(segs[0])
            if b and b != segs[:1]:
                return self.resolve(b + segs[1:], frm, seen, via)
            return None
        for i, seg in enumerate(segs[1:], 1):
            if seg in ("super",):
                cur = cur[:-1]
                continue
            if cur + (seg,) in self.files:
                cur = cur + (seg,)
                continue
            if seg in self.items.get(cur, ()):
                return cur
            b = self.uses.get(cur, {}).get(seg)
            if b:
                r = self.resolve(b + segs[i + 1 :], cur, seen, via)
                if r is not None:
                    if cur != ():
                        via.add(cur)
                    return r
            for g in self.uses.get(cur, {}).get("*", []):
                r = self.resolve(g + segs[i:], cur, seen, via)
                if r is not None:
                    if cur != ():
                        via.add(cur)
                    return r
            return cur
        return cur

    def edges(self):
        e = {}
        for m, code in self.code.items():
            out = set()
            refs = []
            for vis, tree in USE.findall(code):
                for segs in expand_use(tree):
                    if segs[-1] == "*":
                        segs = segs[:-1]
                    via = set()
                    target = self.resolve(segs, m, via=via)
                    # A parent re-exporting its own submodules: structure.
                    reexport = vis and target is not None and target[: len(m)] == m
                    if not reexport:
                        refs.append(target)
                        refs += via
            body = USE.sub("", code)
            for p in PATH.findall(body):
                via = set()
                refs.append(self.resolve(re.sub(r"\s+", "", p).split("::"), m, via=via))
                refs += via
            for t in refs:
                if t is not None and t != m and t != ():
                    out.add(t)
            e[m] = out
        return e


def sccs(graph):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(comp)

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            visit(v)
    return out


def workspace_crates(top):
    members = re.search(r"members\s*=\s*\[(.*?)\]", open(os.path.join(top, "Cargo.toml")).read(), re.S)
    return [os.path.join(top, m) for m in re.findall(r'"([^"]+)"', members.group(1))]


def read_allowed(path):
    allowed = set()
    for line in open(path):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        crate, files = line.split(":", 1)
        allowed.add((crate.strip(), frozenset(files.split())))
    return allowed


def main(argv):
    verbose = "-v" in argv
    args = [a for a in argv if a != "-v"]
    allowed = set()
    if "--allow" in args:
        i = args.index("--allow")
        allowed = read_allowed(args[i + 1])
        del args[i : i + 2]
    top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    crates = args or workspace_crates(top)
    seen = set()
    bad = 0
    for c in crates:
        if not any(os.path.exists(os.path.join(c, "src", f)) for f in ("lib.rs", "main.rs")):
            continue
        crate = Crate(c)
        g = crate.edges()
        name = os.path.relpath(c, top)
        rel = lambda m: os.path.relpath(crate.files[m], c)
        cycles = [s for s in sccs(g) if len(s) > 1]
        if verbose:
            print(f"{name}: {len(g)} files, {sum(len(v) for v in g.values())} edges, {len(cycles)} cycles")
        for comp in cycles:
            members = set(comp)
            key = (name, frozenset(rel(m) for m in comp))
            if key in allowed:
                seen.add(key)
                if verbose:
                    print(f"{name}: allowed cycle of {len(comp)} files: {' '.join(sorted(key[1]))}")
                continue
            bad += 1
            print(f"{name}: cycle of {len(comp)} files:")
            for m in sorted(comp):
                for t in sorted(g[m] & members):
                    print(f"  {rel(m)} -> {rel(t)}")
    checked = {os.path.relpath(c, top) for c in crates}
    for crate, files in sorted(allowed - seen, key=lambda k: (k[0], sorted(k[1]))):
        if crate in checked:
            print(f"{crate}: the allowed cycle {' '.join(sorted(files))} is gone: drop its line")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
