# gslb: authoritative DNS with GSLB steering, the REST API (`gslb api`) and the native
# UDP fast path (a C extension compiled in the build stage; the final image has no
# compiler). Non-root (uid 10053), no file capability: nothing needs CAP_NET_BIND_SERVICE
# at exec time, so the image also starts with every capability dropped and
# no-new-privileges (Kubernetes, deploy/k8s/). Port 53 inside a container: Docker 20.10+
# opens the ports below 1024 to unprivileged users in the container's network namespace
# (sysctl net.ipv4.ip_unprivileged_port_start=0; docker-compose.yml sets it to 53
# explicitly); see docs/operator-guide.md, "Containers".
#
#   tools/docker-wheels          # optional: the dependencies as wheels in wheels/ (no PyPI needed in the build)
#   docker build -t gslb .
#   docker run --rm -p 5300:53/udp -p 5300:53/tcp gslb
#   dig @127.0.0.1 -p 5300 www.example.com      # the image's demo zones (zones/)
FROM python:3.11-bookworm AS build
WORKDIR /src
# wheels/ holds only its README unless tools/docker-wheels filled it: then the build needs
# no network (--no-index), otherwise pip reads PyPI.
COPY wheels /wheels
COPY pyproject.toml setup.py README.md ./
COPY gslb ./gslb
COPY api ./api
RUN set -e; \
    if ls /wheels/*.whl >/dev/null 2>&1; then from="--no-index --find-links /wheels"; else from=""; fi; \
    pip install --no-cache-dir --root-user-action=ignore --no-warn-script-location \
        $from --prefix=/install . ; \
    ls /install/lib/python3.11/site-packages/gslb/server/_fastpath*.so \
       /install/lib/python3.11/site-packages/gslb/steering/_geomap*.so; \
    find /install -name '*.pyi' -delete

FROM python:3.11-slim-bookworm
RUN useradd --system --uid 10053 --user-group --home-dir /var/lib/gslb --create-home gslb \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /install /usr/local
COPY zones /etc/gslb/zones
# The fast path really loads (a build that fell back to pure Python fails here), and the
# web console's files (package data) are in the image.
RUN python -c "import gslb.server._fastpath, gslb.steering._geomap, api.standalone; from api.console import files; assert 'index.html' in files()"
USER 10053:10053
WORKDIR /var/lib/gslb
ENV GSLB_ZONES=/etc/gslb/zones \
    GSLB_LOG_FORMAT=json \
    PYTHONUNBUFFERED=1
EXPOSE 53/udp 53/tcp 9153/tcp
ENTRYPOINT ["gslb"]
CMD ["serve", "--listen", "0.0.0.0:53", "--metrics", "0.0.0.0:9153"]
