# Caddy with Portalgate, built the usual way for Caddy plugins.
#
#   docker build -f xcaddy.Dockerfile -t portalgate .
#   docker run -v $PWD/my.Caddyfile:/etc/caddy/Caddyfile -p 443:443 portalgate
#
# The image carries the demo Caddyfile, which binds loopback only: mount your
# own for anything reachable from outside the container.
#
# .ci/test runs the same `xcaddy build` directly (no Docker engine needed) and
# checks the binary lists Portalgate's modules.
ARG CADDY_VERSION=2.11.9

FROM caddy:${CADDY_VERSION}-builder AS builder
COPY . /src/portalgate
RUN xcaddy build v${CADDY_VERSION} \
	--with github.com/portalgate/portalgate/caddymodule \
	--replace github.com/portalgate/portalgate=/src/portalgate

FROM caddy:${CADDY_VERSION}
COPY --from=builder /usr/bin/caddy /usr/bin/caddy
COPY Caddyfile /etc/caddy/Caddyfile
