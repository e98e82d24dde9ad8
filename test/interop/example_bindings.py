"""What the Python interop clients share: the committed gen-py bindings of examples/thrift on
the import path (without writing __pycache__ into the tree), and one line per passed check."""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "thrift", "gen-py"))


def check(name, condition):
    if not condition:
        raise AssertionError(name)
    print("passed:", name)
