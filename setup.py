"""The C search loop of the explicit engine (gmemcheck/checker/_core.c, issue 14).

Everything else about the package is in pyproject.toml. The extension is optional: on a
machine without a C compiler the install still succeeds and the search runs in Python
(gmemcheck/checker/accel.py says which loop is in use).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("gmemcheck.checker._core", ["gmemcheck/checker/_core.c"],
                             optional=True, extra_compile_args=["-O2"])])
