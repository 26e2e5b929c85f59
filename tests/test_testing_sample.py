"""
The testing guide's complete test (examples/test_voicemail.py, which
docs/testing.rst includes), run as part of txami's suite: the documented
example is proved to pass, against this version of the fake server.
"""

from tests.test_integration import load_example

_sample = load_example("test_voicemail")

# trial collects the TestCase classes found in this module.
NewVoicemailsTests = _sample.NewVoicemailsTests
OverTCPTests = _sample.OverTCPTests
