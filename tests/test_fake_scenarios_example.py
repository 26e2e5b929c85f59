"""
The scenario guide's sample (examples/test_queue_board.py, which
docs/fake-scenarios.rst includes), run as part of txami's suite: the
documented example is proved to pass against this version of the fake PBX.
"""

from tests.test_integration import load_example

_sample = load_example("test_queue_board")

# trial collects the TestCase classes found in this module.
QueueBoardTests = _sample.QueueBoardTests
