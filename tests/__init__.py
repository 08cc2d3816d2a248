"""The test suite, laid out like the package (tests/server/ tests colorizer/server/, ...).

Every test folder is a package, so two folders may hold test files of the same name
(tests/video/test_video.py, tests/server/test_video.py) and helpers are imported by their
full name: ``from tests.support import CONSTANT_AB``.
"""
