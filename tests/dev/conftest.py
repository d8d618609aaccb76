"""Prints what tests/dev measured (time to ready, write -> SET, TERM -> all gone)."""


def pytest_terminal_summary(terminalreporter):
    from test_make_dev import REPORT

    if REPORT:
        terminalreporter.section("make dev (tests/dev)")
        for line in REPORT:
            terminalreporter.write_line(line)
