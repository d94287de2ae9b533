# gslb: authoritative DNS with GSLB steering. Small image, non-root user; the server
# binds port 53 through the CAP_NET_BIND_SERVICE file capability on the interpreter,
# never by running as root.
#
#   docker build -t gslb .
#   docker run --rm -p 5300:53/udp -p 5300:53/tcp gslb serve --zones /etc/gslb/zones --listen 0.0.0.0:53
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gslb ./gslb
RUN pip install --no-cache-dir --root-user-action=ignore --prefix=/install .

FROM python:3.11-slim-bookworm
RUN apt-get update \
    && apt-get install -y --no-install-recommends libcap2-bin \
    && setcap cap_net_bind_service=+ep "$(readlink -f /usr/local/bin/python3)" \
    && apt-get purge -y libcap2-bin && apt-get autoremove -y \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10053 --home-dir /var/lib/gslb --create-home gslb
COPY --from=build /install /usr/local
COPY zones /etc/gslb/zones
USER gslb
WORKDIR /var/lib/gslb
ENV GSLB_ZONES=/etc/gslb/zones \
    GSLB_LOG_FORMAT=json \
    PYTHONUNBUFFERED=1
EXPOSE 53/udp 53/tcp 9153/tcp
ENTRYPOINT ["gslb"]
CMD ["serve", "--listen", "0.0.0.0:53", "--metrics", "0.0.0.0:9153"]
