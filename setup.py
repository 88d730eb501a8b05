"""The optional C fast path (bulkctl/_native.c); everything else is in pyproject.toml.

`optional=True`: where no C compiler is available the install still succeeds, and bulkctl
runs the same checks in Python (slower; `bulkctl --version` says which).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "bulkctl._native",
            ["bulkctl/_native.c"],
            optional=True,
            extra_compile_args=["-O2", "-std=c11", "-Wall", "-Wextra", "-Wno-unused-parameter"],
        )
    ]
)
