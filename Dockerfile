# syntax=docker.io/docker/dockerfile:1
# The healthcheck image: one static binary on an empty (scratch) root.
#
#   docker build -t healthcheck:0.1.0 .
#   docker buildx build --platform linux/amd64,linux/arm64 -t healthcheck:0.1.0 .
#   podman build --format docker -t healthcheck:0.1.0 .
#   docker build --build-arg VARIANT=minimal -t healthcheck:0.1.0-minimal .
#
# VARIANT=tls (the default) ships the build with https:// and grpcs:// checks
# (at most 768 KiB); VARIANT=minimal ships `scripts/build-static --minimal`,
# TLS compiled out (at most 300 KiB), for pods that probe only plain HTTP, TCP
# and h2c gRPC (docs/size.md).
#
# Images are named in full (docker.io/library/...): podman's short-name
# policy refuses a bare `rust:` it cannot resolve without asking which
# registry is meant. podman builds the OCI image format by default, which
# has no HEALTHCHECK: podman drops it (with a warning) unless given
# `--format docker`.
#
# What this image ships is proved without Docker by tests/image.rs (run by
# .ci/run on the output of scripts/build-static, the command this file runs):
# the binary alone in an empty directory, run there with chroot as uid 65532
# and PID 1.

# The builder runs on the build machine's own platform and cross-compiles to
# the target's, so an arm64 image builds natively fast on an amd64 host (no
# QEMU). Pinned by version: scripts/build-static names the same toolchain
# (tests/image.rs checks that they agree).
#
# The toolchain: the pinned stable 1.95.0 with its unstable flags allowed
# (RUSTC_BOOTSTRAP=1) rather than a dated nightly. The shipped binary needs
# two of them, -Zbuild-std and -Cpanic=immediate-abort, which drop std's
# panic message and backtrace printer (more than half of a plain build's
# bytes). With the stable release they come from the very compiler the tests
# run with, in this one base image, with no second toolchain to download;
# the pin freezes them, as unstable flags may change from release to release.
FROM --platform=$BUILDPLATFORM docker.io/library/rust:1.95.0-slim-trixie AS build
ARG TARGETARCH
ARG VARIANT=tls
WORKDIR /src
# rust-src and the target's musl runtime, in a layer of their own so that a
# change to the sources does not download them again.
COPY scripts/build-static scripts/
RUN case "$TARGETARCH" in \
      amd64) echo x86_64-unknown-linux-musl ;; \
      arm64) echo aarch64-unknown-linux-musl ;; \
      *) echo "unsupported TARGETARCH: $TARGETARCH" >&2; exit 1 ;; \
    esac > /rust-target \
 && scripts/build-static --install-only "$(cat /rust-target)"
# The context holds only what .dockerignore lets through: Cargo.toml,
# Cargo.lock, src/, benches/ (cargo reads the [[bench]] targets' paths),
# tests/support/ (a workspace member), fuzz/Cargo.toml (a path
# dev-dependency's manifest) and scripts/build-static.
COPY . .
# The same command builds the same binary outside Docker:
# `scripts/build-static [TARGET]` (static-pie, stripped, --locked; the
# release profile is in Cargo.toml, the rest in the script). It prints the
# binary's path last.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target,sharing=private \
    case "$VARIANT" in \
      tls) variant= ;; \
      minimal) variant=--minimal ;; \
      *) echo "unknown VARIANT: $VARIANT (tls or minimal)" >&2; exit 1 ;; \
    esac \
 && binary=$(scripts/build-static $variant "$(cat /rust-target)") \
 && install -D -m 0755 "$binary" /out/app/healthcheck

# The image: nothing but the binary. No shell, no libc, no /etc, no /tmp.
# (`scratch` names no image, only the empty root: it has no registry.)
FROM scratch
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="healthcheck" \
      org.opencontainers.image.description="Aggregated readiness for Kubernetes pods with sidecars: one tiny static binary" \
      org.opencontainers.image.version="$VERSION" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0" \
      org.opencontainers.image.base.name="scratch"
# /app/healthcheck is the path the original image used, so manifests written
# for it (command: ["/app/healthcheck"]) keep working.
COPY --from=build /out/app/healthcheck /app/healthcheck
# The distroless "nonroot" uid/gid. Numeric, because there is no /etc/passwd
# to look a name up in; Kubernetes' runAsNonRoot can verify a numeric USER.
USER 65532:65532
EXPOSE 8081
ENTRYPOINT ["/app/healthcheck"]
# With no arguments the image serves /self and /all on 8081, /all checking the
# sidecar's own /self. Real deployments pass their checks as arguments, e.g.
#   docker run healthcheck:0.1.0 serve --port 8081 app=http://localhost:8080/health
CMD ["serve", "--port", "8081", "self=http://127.0.0.1:8081/self"]
# Docker's own health status, with `check` since the image has no curl or
# shell. It asks the sidecar's /self on the default port: override it (or
# disable it with --no-healthcheck) when you move the listener elsewhere.
# Kubernetes ignores HEALTHCHECK and uses the pod's probes instead. podman
# keeps it only when building with `--format docker` (the OCI image format
# has no HEALTHCHECK).
HEALTHCHECK --interval=10s --timeout=3s --start-period=2s --retries=3 \
  CMD ["/app/healthcheck", "check", "--timeout", "2s", "http://127.0.0.1:8081/self"]
