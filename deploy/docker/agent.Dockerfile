# SPDX-License-Identifier: Apache-2.0
# wattlens-agent image. From the repository root, compiling inside the build stage (Debian 12
# packages only):
#   podman build --build-arg BINARIES=source \
#     --ignorefile deploy/docker/agent.Dockerfile.dockerignore \
#     -f deploy/docker/agent.Dockerfile -t wattlens/wattlens-agent:0.1.0 .
# (docker/BuildKit picks agent.Dockerfile.dockerignore up by itself and needs no --build-arg;
# buildah 1.28 skips the build-source stage unless BINARIES is given explicitly.)
# Or from a tree already built, without compiling again: a context holding bin/wattlens-agent
# (stripped of debug info), as tests/container/build_images.sh stages it:
#   podman build --build-arg BINARIES=prebuilt -f deploy/docker/agent.Dockerfile -t ... CONTEXT
# Both paths end in the same runtime stage: debian:12-slim with only the shared libraries the
# binary links (tests/deploy/check_images.py maps `ldd` of the built binary to Debian packages and
# fails when one is missing or one is not needed; tests/container/build_images.sh runs `ldd` inside
# the image). The BPF objects are embedded in the binary (skeletons), so nothing else is copied.
ARG BINARIES=source

FROM debian:12 AS build-source
WORKDIR /src
COPY scripts/install-deps.sh scripts/
RUN bash scripts/install-deps.sh && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
 && cmake --build /build --target wattlens-agent \
 && strip --strip-debug /build/bin/wattlens-agent

FROM scratch AS build-prebuilt
COPY bin/wattlens-agent /build/bin/wattlens-agent

# The stage the runtime copies from; only the one BINARIES names is built.
FROM build-${BINARIES} AS build

FROM debian:12-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libabsl20220623 libbpf1 libelf1 zlib1g libspdlog1.10 libfmt9 \
      libprometheus-cpp-core1.0 libprometheus-cpp-pull1.0 libcivetweb1 \
      libgrpc++1.51 libgrpc29 libprotobuf32 libssl3 libc-ares2 libre2-9 libyaml-0-2 libcurl4 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /build/bin/wattlens-agent /usr/bin/wattlens-agent
# Runs as uid 0 with only CAP_BPF and CAP_PERFMON (the DaemonSet drops everything else): Kubernetes
# puts added capabilities in the effective set of uid 0 only.
USER 0
EXPOSE 9810
ENTRYPOINT ["/usr/bin/wattlens-agent"]
