"""Packaging promises: Python >= 3.9 syntax, standard library only, typed."""

from __future__ import annotations

import ast
import os
import sys
import unittest

PKG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "opensandbox")
SOURCES = sorted(os.path.join(PKG, f) for f in os.listdir(PKG) if f.endswith(".py"))


class PackagingTests(unittest.TestCase):
    def test_sources_parse_as_python_3_9(self) -> None:
        for path in SOURCES:
            with self.subTest(path=os.path.basename(path)), open(path, encoding="utf-8") as f:
                ast.parse(f.read(), filename=path, feature_version=(3, 9))

    def test_every_module_postpones_annotations(self) -> None:
        # `list[str]` / `X | None` in annotations must never be evaluated on 3.9.
        for path in SOURCES:
            with open(path, encoding="utf-8") as f:
                text = f.read()
            if "->" in text or ": " in text:
                with self.subTest(path=os.path.basename(path)):
                    if os.path.basename(path) != "__init__.py":
                        self.assertIn("from __future__ import annotations", text)

    @unittest.skipUnless(hasattr(sys, "stdlib_module_names"), "needs Python >= 3.10 to list the stdlib")
    def test_only_the_standard_library_is_imported(self) -> None:
        for path in SOURCES:
            with open(path, encoding="utf-8") as f:
                tree = ast.parse(f.read())
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                for name in names:
                    top = name.split(".")[0]
                    with self.subTest(path=os.path.basename(path), module=name):
                        self.assertIn(top, sys.stdlib_module_names | {"__future__"})  # type: ignore[attr-defined]

    def test_py_typed_marker_is_shipped(self) -> None:
        self.assertTrue(os.path.isfile(os.path.join(PKG, "py.typed")))


if __name__ == "__main__":
    unittest.main()
