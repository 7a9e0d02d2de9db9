# Caddy with Portalgate, built the usual way for Caddy plugins.
#
#   docker build -f xcaddy.Dockerfile -t portalgate .
#   docker run -p 8080-8083:8080-8083 portalgate
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
