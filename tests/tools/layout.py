#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""The wings' rules (lib/README.md), checked.

  layout.py [ROOT [OBJDIR]]

1. Every #include "..." line in lib/ and cmd/ names a header its folder may
   include (ALLOWED below, the table of lib/README.md).
2. No circle between wings: the graph of wing -> included wing has none.
3. No circle between files: with OBJDIR (a build, e.g. build/), each
   library object's undefined symbols are matched to the object defining
   them; no two files call each other, directly or round a ring.

Prints one line per problem and exits 1 if there is any; exit 0 says what
was checked.
"""
import os
import re
import subprocess
import sys

ROOT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                       os.path.join(os.path.dirname(__file__), '..', '..'))
OBJDIR = sys.argv[2] if len(sys.argv) > 2 else None

# What a folder may include, besides its own files and the C library:
# headers by their path under lib/ (or the repository for ../..), or a
# whole wing as "wing/".
API = ['nshm.h']
ALLOWED = {
    'util':     API,
    'doorbell': API + ['util/'],
    'endpoint': API + ['util/', 'doorbell/doorbell.h', 'proto/layout.h',
                       'kmod/nshm_uapi.h'],
    'proto':    API + ['util/', 'doorbell/doorbell.h', 'endpoint/endpoint.h'],
    'tree':     API + ['util/', 'doorbell/doorbell.h', 'endpoint/endpoint.h',
                       'proto/proto.h', 'proto/layout.h'],
    # The programs: the public API, and of the wings only these.
    'cmd':      API + ['util/util.h', 'tree/tree.h', 'proto/layout.h'],
    # nshm-put's fan-out: the sender without a region (tx_open_sink).
    'cmd/fanout.c': ['proto/proto.h'],
    # nshm-server: no libnshm internals (its link says so too).
    'server':   API + ['cmd/cli.h', 'util/util.h', 'doorbell/ivproto.h',
                       'proto/layout.h'],
}
# proto/layout.h is the wire format's description: a leaf that includes
# nothing of lib/ but nshm.h, so those who only need the layout include it
# without depending on the engine. It is a node of its own in the graph.
LEAVES = {'proto/layout.h': 'layout', 'nshm.h': 'api',
          'kmod/nshm_uapi.h': 'kmod'}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def folder_of(rel):
    """The folder (wing) a file belongs to, from its path in the tree."""
    parts = rel.split('/')
    if parts[0] == 'lib':
        return parts[1] if len(parts) > 2 else 'api'
    if parts[0] == 'cmd':
        return 'server' if len(parts) > 2 and parts[1] == 'server' else 'cmd'
    return None


def resolve(src_rel, name):
    """The included file's path relative to lib/ (or ROOT for kmod/, cmd/),
    as the compiler finds it with -Ilib: the includer's folder first."""
    here = os.path.normpath(os.path.join(os.path.dirname(src_rel), name))
    if os.path.exists(os.path.join(ROOT, here)):
        path = here
    else:
        path = os.path.normpath(os.path.join('lib', name))
    if path.startswith('lib/'):
        return path[4:]
    return path


def node_of(header):
    if header in LEAVES:
        return LEAVES[header]
    top = header.split('/')[0]
    return top if '/' in header else 'api'


def allowed(folder, src_rel, header):
    own = os.path.dirname(src_rel)
    if own.startswith('lib/'):
        own = own[4:]
    if os.path.dirname(header) == own:
        return True              # its own folder's files
    if folder == 'cmd' and header.startswith('cmd/') and header.count('/') == 1:
        return True
    for a in ALLOWED[folder] + ALLOWED.get(src_rel, []):
        if header == a or (a.endswith('/') and header.startswith(a)):
            return True
    return False


def sources():
    for top in ('lib', 'cmd'):
        for d, _, files in os.walk(os.path.join(ROOT, top)):
            for f in sorted(files):
                if f.endswith(('.c', '.h')):
                    yield os.path.relpath(os.path.join(d, f), ROOT)


def circles(graph):
    """Strongly connected components of more than one node (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
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
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def check_includes(problems):
    wings, n = {}, 0
    for rel in sources():
        folder = folder_of(rel)
        with open(os.path.join(ROOT, rel), encoding='utf-8') as f:
            for lineno, line in enumerate(f, 1):
                m = INCLUDE.match(line)
                if not m:
                    continue
                n += 1
                header = resolve(rel, m.group(1))
                if folder == 'api':
                    problems.append(f'{rel}:{lineno}: the public header includes "{m.group(1)}"')
                    continue
                if not allowed(folder, rel, header):
                    problems.append(f'{rel}:{lineno}: {folder}/ may not include "{m.group(1)}" '
                                    f'(lib/README.md: what each wing may include)')
                node = node_of(header)
                src_node = LEAVES.get(rel[4:] if rel.startswith('lib/') else rel, folder)
                if node != src_node:
                    wings.setdefault(src_node, set()).add(node)
    for leaf, name in LEAVES.items():
        if name in wings and wings[name] - {'api'}:
            problems.append(f'{leaf}: a leaf includes {sorted(wings[name])}')
    for c in circles(wings):
        problems.append('a circle between wings: ' + ' <-> '.join(c))
    return n, wings


def check_objects(problems):
    objs = []
    for d, _, files in os.walk(os.path.join(OBJDIR, 'lib')):
        for f in sorted(files):
            if not f.endswith('.o'):
                continue
            rel = os.path.relpath(os.path.join(d, f), os.path.join(OBJDIR, 'lib'))
            if os.path.exists(os.path.join(ROOT, 'lib', rel[:-2] + '.c')):
                objs.append(rel)          # not a stale object of a moved file
    defs, undef = {}, {}
    for o in objs:
        out = subprocess.run(['nm', os.path.join(OBJDIR, 'lib', o)], check=True,
                             capture_output=True, text=True).stdout
        undef[o] = set()
        for line in out.splitlines():
            p = line.split()
            if len(p) == 3 and p[1] in 'TDBR':
                defs[p[2]] = o
            elif len(p) == 2 and p[0] == 'U':
                undef[o].add(p[1])
    calls = {o: {defs[s] for s in undef[o] if s in defs and defs[s] != o} for o in objs}
    for c in circles(calls):
        problems.append('a circle between files: ' +
                        ' <-> '.join(x[:-2] + '.c' for x in c))
    return len(objs)


def main():
    problems = []
    n, wings = check_includes(problems)
    nobj = check_objects(problems) if OBJDIR else 0
    for p in problems:
        print(p)
    if problems:
        return 1
    order = ' '.join(f'{w}->{",".join(sorted(wings[w]))}' for w in sorted(wings))
    print(f'layout: {n} include lines follow lib/README.md; no circle between wings '
          f'({order})' + (f'; none between the {nobj} library files' if nobj else ''))
    return 0


if __name__ == '__main__':
    sys.exit(main())
