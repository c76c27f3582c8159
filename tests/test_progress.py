"""Progress off a terminal: whole lines a log can hold."""
import io

from dflite.progress import bar


def test_off_a_terminal_a_bar_prints_whole_lines_with_the_count():
    stream = io.StringIO()
    for _ in bar(range(3), desc="lottery runs", stream=stream):
        pass
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert lines[0].startswith("lottery runs: 0/3 (0 %)") and lines[-1].startswith("lottery runs: 3/3 (100 %)")
    assert len(lines) == len(set(line.split(",")[0] for line in lines))  # no count twice


def test_a_disabled_bar_prints_nothing():
    stream = io.StringIO()
    for _ in bar(range(3), desc="runs", disable=True, stream=stream):
        pass
    assert stream.getvalue() == ""
