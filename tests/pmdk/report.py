#!/usr/bin/env python3
"""Compares the verdicts of scripts/pmdk-tests.sh's modes and prints the summary table.

Reads target/pmdk/results/: MODE.log (RUNTESTS.py's output for modes a, b, c, memcheck-a and
memcheck) and examples/MODE/NAME.{status,stdout,stderr}. Mode a (libpmem2 alone) is the
reference for b and c; memcheck (ours preloaded under valgrind) is judged against memcheck-a
(libpmem2 alone under valgrind). Exits 1 when a verdict differs from the reference and
tests/pmdk/differences.txt does not list that difference, or when an entry of that list is no
longer seen.
"""

import argparse
import difflib
import os
import re
import sys

ANSI = re.compile(r'\x1b\[[0-9;]*m')
SETUP = re.compile(r'^(\S+/TEST\d+): SETUP\t\((.*)\)$')
VERDICT = re.compile(r'^(\S+/TEST\d+): (PASS|FAILED|SKIP)(.*)$')
TEST_NUMBER = re.compile(r'/TEST(\d+)$')


def read_table(path):
    """Lines "KEY REST..." of a list file, comments and blank lines left out."""
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith('#'):
                rows.append(line.split(None, 1) + [''] * (1 - line.count(' ')))
    return rows


LOG_DUMP = re.compile(r'^Last \d+ lines of (\S+) below')


def evidence(block):
    """The telling lines of a failed test's output: the test's own error log (errN.log, or the
    testN.log its stderr went to), what
    valgrind reported (memcheckN.log, when it counted errors), and RUNTESTS.py's failure text
    (a match file's mismatch, the exit status)."""
    sections = {}
    name = None
    after = []
    for line in block:
        m = LOG_DUMP.match(line)
        if m:
            name = os.path.basename(m.group(1))
            sections[name] = []
        elif VERDICT.match(line):
            name = None
        elif name is not None:
            sections[name].append(line)
        else:
            after.append(line)
    picked = []
    for name, lines in sections.items():
        if name.startswith('err') or re.match(r'test\d+\.log$', name):
            picked += lines  # the test's errors; a stderr_file (e.g. pmem2_perror's)
        elif name.startswith('memcheck') and any(
                re.search(r'ERROR SUMMARY: [1-9]', x) for x in lines):
            errors = []
            for x in lines:
                if 'HEAP SUMMARY' in x or 'ERROR SUMMARY' in x:
                    break
                if re.match(r'==\d+==\s+\S', x) and not re.search(
                        r'Memcheck, a|Copyright|Using Valgrind|Command:|Parent PID', x):
                    errors.append(x)
            picked += errors[:14]
    picked += [x for x in after if x.strip()]
    return picked[:30]


def parse_log(path):
    """{(test, granularity): verdict} and {(test, granularity): evidence} of one mode.

    verdict is PASS, FAIL or "SKIP: reason"; a skip is keyed by granularity "*".
    """
    verdicts, blocks = {}, {}
    if not os.path.exists(path):
        return verdicts, {}
    context = {}
    block = []       # the lines since the last SETUP
    failed = None    # the key of a failure whose trailing lines are still being read
    with open(path, errors='replace') as f:
        for raw in f:
            line = ANSI.sub('', raw.rstrip('\n'))
            m = SETUP.match(line)
            if m:
                context[m.group(1)] = m.group(2).split('/')[-1]
                block = []
                failed = None
                continue
            m = VERDICT.match(line)
            if m:
                test, verdict, rest = m.groups()
                failed = None
                if verdict == 'SKIP':
                    verdicts[(test, '*')] = 'SKIP: ' + rest.lstrip(': ').strip()
                    continue
                if verdict == 'FAILED':
                    found = re.search(r'\((.*)\)', rest)
                    granularity = (found.group(1).split('/')[-1] if found
                                   else context.get(test, '?'))
                else:
                    granularity = context.get(test, '?')
                key = (test, granularity)
                verdicts[key] = 'PASS' if verdict == 'PASS' else 'FAIL'
                if verdict == 'FAILED':
                    failed = key
                    blocks[key] = block + [line]
                continue
            if failed is not None:
                blocks[failed].append(line)
            else:
                block.append(line)
    return verdicts, {key: evidence(lines) for key, lines in blocks.items()}


def windows_only_tests(tests_dir, group):
    """The TESTn classes of a group's TESTS.py decorated @t.windows_only: RUNTESTS.py
    disables them on Linux without a word."""
    found = set()
    decorators = []
    with open(os.path.join(tests_dir, group, 'TESTS.py')) as f:
        for line in f:
            line = line.strip()
            if line.startswith('@'):
                decorators.append(line)
                continue
            m = re.match(r'class (TEST\d+)\(', line)
            if m and any('windows_only' in d for d in decorators):
                found.add('{}/{}'.format(group, m.group(1)))
            if line:
                decorators = []
    return found


def all_tests(tests_dir, group):
    """Every TESTn class of a group's TESTS.py (commented-out ones are not)."""
    with open(os.path.join(tests_dir, group, 'TESTS.py')) as f:
        return {'{}/{}'.format(group, m.group(1))
                for m in re.finditer(r'^class (TEST\d+)\(', f.read(), re.M)}


def test_order(test):
    group, _, number = test.partition('/TEST')
    return (group, int(number) if number.isdigit() else -1)


def cell(verdicts, test, granularities):
    """One table cell: the verdict, or per granularity where they differ."""
    skip = verdicts.get((test, '*'))
    if skip:
        return 'SKIP'
    found = [(g, verdicts.get((test, g), 'missing')) for g in granularities]
    if not found:
        return 'missing'
    if len({v for _, v in found}) == 1:
        return found[0][1]
    return ' '.join('{}:{}'.format(g, v) for g, v in found)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--results', required=True)
    parser.add_argument('--differences', required=True)
    parser.add_argument('--not-run', required=True)
    parser.add_argument('--in-vm', required=True,
                        help='the Device DAX tests tests/devdax-vm runs in its guest')
    parser.add_argument('--mode-c-groups', default='')
    parser.add_argument('--memcheck-groups', default='')
    parser.add_argument('--mode-c-examples', default='')
    parser.add_argument('--examples-cases', required=True)
    parser.add_argument('--tests-dir', required=True, help="PMDK's src/test")
    parser.add_argument('--groups', required=True, help='the groups run in mode a')
    args = parser.parse_args()

    mode_c_groups = set(args.mode_c_groups.split())
    memcheck_groups = set(args.memcheck_groups.split())
    mode_c_examples = set(args.mode_c_examples.split())

    deliberate = {}
    for test, rest in read_table(args.differences):
        modes, _, reason = rest.partition(' ')
        deliberate[test] = (set(modes.split(',')), reason.strip())
    seen_deliberate = set()
    not_run = {test: reason for test, reason in read_table(args.not_run)}
    in_vm = {test for test, _ in read_table(args.in_vm)}
    seen_in_vm = set()

    logs = {}
    for mode in ('a', 'b', 'c', 'memcheck-a', 'memcheck'):
        logs[mode] = parse_log(os.path.join(args.results, mode + '.log'))
    reference = logs['a'][0]

    rows = []        # (test, a, b, c, memcheck, result)
    problems = []    # (test, text)
    passed = failed = 0

    tests = sorted({t for t, _ in reference}, key=test_order)
    for test in tests:
        group = test.split('/')[0]
        granularities = sorted(g for t, g in reference if t == test and g != '*')
        skip = reference.get((test, '*'))
        if skip:
            reason = skip[len('SKIP: '):]
            if test in in_vm:
                seen_in_vm.add(test)
                reason = 'not run here ({}): runs in the VM, tests/devdax-vm ({})'.format(
                    reason, args.in_vm)
            else:
                reason = 'not run: ' + reason
            rows.append((test, '-', '-', '-', '-', reason))
            for mode in ('b', 'c'):
                if mode == 'c' and group not in mode_c_groups:
                    continue
                if logs[mode][0].get((test, '*')) is None:
                    problems.append((test, 'skipped with libpmem2 ({}) but not in '
                                     'mode {}'.format(reason, mode)))
            continue

        allowed, reason = deliberate.get(test, (set(), ''))
        differing = []
        evidence = []

        def judge(mode, ref_verdicts, verdicts, details):
            for g in sorted(g for t, g in ref_verdicts if t == test):
                want = ref_verdicts.get((test, g), 'missing')
                got = verdicts.get((test, g), 'missing')
                if want != got:
                    differing.append(mode)
                    lines = details.get((test, g), [])
                    evidence.append('mode {} [{}]: {} where the reference gives {}{}'
                                    .format(mode, g, got, want,
                                            ''.join('\n      | ' + x for x in lines)))
                    return

        judge('b', reference, *logs['b'])
        c_cell = '-'
        if group in mode_c_groups:
            judge('c', reference, *logs['c'])
            c_cell = cell(logs['c'][0], test, granularities)
        m_cell = '-'
        if group in memcheck_groups:
            judge('memcheck', logs['memcheck-a'][0], *logs['memcheck'])
            # RUNTESTS.py may pick another granularity for a test that runs in any one
            m_granularities = sorted(g for t, g in logs['memcheck-a'][0] if t == test)
            m_cell = cell(logs['memcheck'][0], test, m_granularities)
            ref_m = cell(logs['memcheck-a'][0], test, m_granularities)
            if ref_m != 'PASS':
                m_cell += ' (libpmem2: {})'.format(ref_m)

        unexpected = [m for m in differing if m not in allowed]
        if differing and not unexpected:
            result = 'deliberate: ' + reason
            seen_deliberate.add(test)
            passed += 1
        elif unexpected:
            result = 'DIFFERS in ' + ', '.join(unexpected)
            problems.append((test, '\n'.join(evidence)))
            failed += 1
        else:
            result = 'same'
            passed += 1
        if differing:
            seen_deliberate.add(test)
        rows.append((test, cell(reference, test, granularities),
                     cell(logs['b'][0], test, granularities), c_cell, m_cell, result))

    for test, reason in not_run.items():
        rows.append((test, '-', '-', '-', '-', 'not run: ' + reason))

    # Every test of the groups must have run in mode a, or be accounted for.
    seen = {t for t, _ in reference} | set(not_run)
    for group in args.groups.split():
        windows_only = windows_only_tests(args.tests_dir, group)
        for test in sorted(all_tests(args.tests_dir, group) - seen, key=test_order):
            if test in windows_only:
                rows.append((test, '-', '-', '-', '-', 'not run: Windows only (@t.windows_only)'))
            else:
                problems.append((test, 'did not run with libpmem2 alone (mode a), and '
                                 '{} does not say why'.format(args.not_run)))
                failed += 1
    rows.sort(key=lambda row: test_order(row[0]))

    # The example programs.
    examples_dir = os.path.join(args.results, 'examples')
    for name, rest in read_table(args.examples_cases):
        test = 'example/' + name
        program = rest.split()[1]

        def outcome(mode):
            base = os.path.join(examples_dir, mode, name)
            parts = []
            for suffix in ('status', 'stdout', 'stderr'):
                with open('{}.{}'.format(base, suffix), errors='replace') as f:
                    parts.append(f.read())
            return parts

        want = outcome('a')
        modes = ['b'] + (['c'] if program in mode_c_examples else [])
        allowed, reason = deliberate.get(test, (set(), ''))
        cells = {'a': 'exit ' + want[0].strip()}
        unexpected = []
        evidence = []
        for mode in modes:
            got = outcome(mode)
            what = [label for label, w, g in zip(('exit status', 'stdout', 'stderr'), want, got)
                    if w != g]
            cells[mode] = 'same' if not what else 'differs: ' + ', '.join(what)
            if not what:
                continue
            seen_deliberate.add(test)
            if mode in allowed and what == ['stderr']:
                continue
            unexpected.append(mode)
            for label, w, g in zip(('exit status', 'stdout', 'stderr'), want, got):
                if w != g:
                    diff = difflib.unified_diff(w.splitlines(), g.splitlines(),
                                                'mode a ' + label, 'mode {} {}'.format(mode, label),
                                                lineterm='', n=2)
                    evidence.append('mode {}: {} differs\n'.format(mode, label) + '\n'.join(
                        '      | ' + x for x in list(diff)[:30]))
        if unexpected:
            result = 'DIFFERS in ' + ', '.join(unexpected)
            problems.append((test, '\n'.join(evidence)))
            failed += 1
        elif test in seen_deliberate:
            result = 'deliberate: ' + reason
            passed += 1
        else:
            result = 'same'
            passed += 1
        rows.append((test, cells['a'], cells.get('b', '-'), cells.get('c', '-'), '-', result))

    for test in sorted(in_vm - seen_in_vm, key=test_order):
        problems.append((test, 'listed in {} as run in the VM, but RUNTESTS.py did not skip '
                         'it here: remove the entry'.format(args.in_vm)))
        failed += 1

    for test in sorted(set(deliberate) - seen_deliberate):
        problems.append((test, 'listed in {} as a deliberate difference, but ours gives the '
                         'same verdict as libpmem2: remove the entry'.format(args.differences)))
        failed += 1

    # The table.
    header = ('test', 'a: libpmem2', 'b: ours preloaded', 'c: ours alone', 'memcheck (ours)',
              'result')
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(5)]
    widths = [min(w, 24) for w in widths]
    widths[0] = max(len(r[0]) for r in rows + [header])

    def fmt(row):
        return '  '.join(c.ljust(w) for c, w in zip(row[:5], widths)) + '  ' + row[5]

    print()
    print('PMDK 1.12.1 tests and examples: libpmem2 alone (a), ours LD_PRELOADed (b), ours '
          'alone as libpmem2.so.1 (c), valgrind memcheck with ours preloaded')
    print(fmt(header))
    print(fmt(tuple('-' * w for w in widths) + ('-' * 6,)))
    for row in rows:
        print(fmt(row))

    if problems:
        print()
        print('Verdicts that differ from libpmem2\'s (not listed in {}):'
              .format(args.differences))
        for test, text in problems:
            print('- {}:'.format(test))
            for item in text.split('\n'):
                print('    ' + item if not item.startswith('      |') else item)
    print()
    print('pmdk-tests: {} passed, {} failed'.format(passed, failed))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
