"""The C extensions; everything else is in pyproject.toml. Without a compiler the build
fails loudly: install gcc and the Python headers (tools/debian-deps does).

- gslb.server._fastpath (gslb/server/native/*.c): the native UDP fast path. A tree
  without it built still runs, with the pure-Python UDP loop.
- gslb.steering._geomap (gslb/steering/native/*.c): the MaxMind DB search-tree walk and
  the rule maps of geo steering, which every steered record needs.
- gslb.load._zonelines (gslb/load/native/zonelines.c): the zone parser's loop over
  plain A, AAAA, NS, CNAME, PTR, MX and SOA lines. Without it they are read in Python."""

from setuptools import Extension, setup

FLAGS = ["-O2", "-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter",
         "-Wno-missing-field-initializers"]

setup(
    ext_modules=[
        Extension(
            "gslb.server._fastpath",
            sources=["gslb/server/native/answer.c", "gslb/server/native/loop.c",
                     "gslb/server/native/steer.c", "gslb/server/native/siphash.c",
                     "gslb/server/native/render.c", "gslb/server/native/denial.c",
                     "gslb/server/native/rrl.c",
                     "gslb/server/native/cookie.c"],
            depends=["gslb/server/native/native.h"],
            extra_compile_args=FLAGS,
        ),
        Extension(
            "gslb.steering._geomap",
            sources=["gslb/steering/native/mmdb.c", "gslb/steering/native/blocks.c",
                     "gslb/steering/native/tables.c", "gslb/steering/native/module.c"],
            depends=["gslb/steering/native/geomap.h"],
            extra_compile_args=FLAGS,
        ),
        Extension(
            "gslb.load._zonelines",
            sources=["gslb/load/native/zonelines.c"],
            extra_compile_args=FLAGS,
        ),
    ]
)
