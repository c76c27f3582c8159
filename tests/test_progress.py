"""Progress off a terminal: whole lines a log can hold."""
import io

from dflite.progress import bar


def test_off_a_terminal_a_bar_prints_whole_lines_with_the_count():
    stream = io.StringIO()
    for _ in bar(range(3), desc="lottery runs", stream=stream):
        pass
    for _ in bar(range(2), desc="cnn5, seed 0", stream=stream):  # a description with commas
        pass
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    # a line when a bar starts and one when it ends (the closing redraw's repeat dropped), within 20 s
    assert [line.split(" so far")[0].rsplit(", ", 1)[0] for line in lines] == [
        "lottery runs: 0/3 (0 %)", "lottery runs: 3/3 (100 %)", "cnn5, seed 0: 0/2 (0 %)", "cnn5, seed 0: 2/2 (100 %)"]


def test_a_disabled_bar_prints_nothing():
    stream = io.StringIO()
    for _ in bar(range(3), desc="runs", disable=True, stream=stream):
        pass
    assert stream.getvalue() == ""
