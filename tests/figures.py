"""A pytest plugin: the figures that tests print (lines starting with "[name]") are shown together
at the end of the run, passed or failed, so a CI log holds every measured figure without `-s`."""

FIGURES = []


def pytest_runtest_logreport(report):
    if report.when != "call":
        return
    for line in report.capstdout.splitlines():
        if line.startswith("["):
            FIGURES.append((report.nodeid.split("::")[-1], line))


def pytest_terminal_summary(terminalreporter):
    if FIGURES:
        terminalreporter.section("figures")
        for _, line in FIGURES:
            terminalreporter.write_line(line)
