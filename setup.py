"""The one thing pyproject.toml cannot say: the optional compiled line-protocol encoder.

``filamentctl.core._lineenc`` speeds up a backlog drain (docs/performance.md). It is optional:
where no C compiler or Python headers are (a bare Raspberry Pi OS without build-essential), the
install goes on without it and filamentctl uses the Python path, which writes the same bytes.
``-ffp-contract=off``: a fused multiply-add (GCC's default on aarch64) would round the derived
values differently from Python's arithmetic; the module must reproduce it bit for bit.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "filamentctl.core._lineenc",
            sources=["filamentctl/core/_lineenc.c"],
            extra_compile_args=["-ffp-contract=off", "-fno-fast-math"],
            optional=True,
        )
    ]
)
