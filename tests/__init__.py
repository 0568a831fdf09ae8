"""The test suite. `REPO` is the checkout the tests run from: the one constant every test module takes it from."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
