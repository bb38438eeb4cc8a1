# pubsubd in a container: HTTP and WebSocket on port 8080, no D-Bus.
#
#   docker build -t pubsub .
#   docker run --rm -p 8080:8080 pubsub
#
# The build runs the same commands as the README's quick start.
FROM debian:12

ENV DEBIAN_FRONTEND=noninteractive \
    LANG=C.UTF-8

WORKDIR /src
COPY . .

# A build/ directory copied from the host belongs to another machine's paths;
# start from a clean one.
RUN rm -rf build \
 && .ci/install-deps \
 && meson setup build \
 && meson compile -C build \
 && meson install -C build \
 && useradd --system --no-create-home --shell /usr/sbin/nologin pubsub

USER pubsub
EXPOSE 8080
# GET /health needs no API key even when one is set.
HEALTHCHECK --interval=30s --timeout=3s \
  CMD curl -fsS http://127.0.0.1:8080/health || exit 1
CMD ["pubsubd", "--listen", "0.0.0.0:8080", "--bus", "none"]
