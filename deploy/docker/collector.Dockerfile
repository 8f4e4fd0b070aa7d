# SPDX-License-Identifier: Apache-2.0
# wattlens-collector image. From the repository root, compiling inside the build stage (Debian 12
# packages only):
#   podman build --build-arg BINARIES=source \
#     --ignorefile deploy/docker/collector.Dockerfile.dockerignore \
#     -f deploy/docker/collector.Dockerfile -t wattlens/wattlens-collector:0.1.0 .
# (docker/BuildKit picks collector.Dockerfile.dockerignore up by itself and needs no --build-arg;
# buildah 1.28 skips the build-source stage unless BINARIES is given explicitly.)
# Or from a tree already built: a context holding bin/wattlens-collector (stripped of debug info)
# and the repository's data/, as tests/container/build_images.sh stages it:
#   podman build --build-arg BINARIES=prebuilt -f deploy/docker/collector.Dockerfile -t ... CONTEXT
# The runtime stage is debian:12-slim running as the unprivileged uid/gid 65532 the Deployment
# expects (runAsNonRoot, no capabilities). Runtime packages are checked against `ldd` of the built
# binary by tests/deploy/check_images.py and inside the image by tests/container/build_images.sh.
ARG BINARIES=source

FROM debian:12 AS build-source
WORKDIR /src
COPY scripts/install-deps.sh scripts/
RUN bash scripts/install-deps.sh && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
 && cmake --build /build --target wattlens-collector \
 && strip --strip-debug /build/bin/wattlens-collector

FROM scratch AS build-prebuilt
COPY bin/wattlens-collector /build/bin/wattlens-collector
COPY data /src/data

# The stage the runtime copies from; only the one BINARIES names is built.
FROM build-${BINARIES} AS build

FROM debian:12-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libabsl20220623 libspdlog1.10 libfmt9 libprometheus-cpp-core1.0 libprometheus-cpp-pull1.0 \
      libcivetweb1 libgrpc++1.51 libgrpc29 libprotobuf32 libssl3 libsqlite3-0 libcurl4 libsnappy1v5 \
      ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 65532 wattlens \
 && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /var/lib/wattlens --shell /usr/sbin/nologin wattlens \
 && install -d -o 65532 -g 65532 -m 0750 /var/lib/wattlens
COPY --from=build /build/bin/wattlens-collector /usr/bin/wattlens-collector
# Prices, grid intensity and carbon coefficients (docs/cost-carbon.md); the
# collector's default data directory.
COPY --from=build /src/data /usr/local/share/wattlens
USER 65532:65532
VOLUME /var/lib/wattlens
EXPOSE 9811 9812
ENTRYPOINT ["/usr/bin/wattlens-collector"]
