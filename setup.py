"""The native UDP fast path (gslb/server/native/*.c) as a C extension; everything else
is in pyproject.toml. Without a compiler the build fails loudly: install gcc and the
Python headers (tools/debian-deps does), or run the pure-Python fallback from a tree
without the built module."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "gslb.server._fastpath",
            sources=["gslb/server/native/answer.c", "gslb/server/native/loop.c",
                     "gslb/server/native/steer.c", "gslb/server/native/siphash.c"],
            depends=["gslb/server/native/native.h"],
            extra_compile_args=["-O2", "-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter",
                                "-Wno-missing-field-initializers"],
        )
    ]
)
