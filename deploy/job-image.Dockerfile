# The image of a job that runs under `healthcheck run` (03-job-istio.yaml,
# 04-job-linkerd.yaml). The wrapper runs in the job's own container, so its
# binary is copied in from the healthcheck image: one static file, no shell,
# no libc, so any base works, scratch and distroless included.
#
# Built from the directory that holds the job's program, db-migration-runner
# (this repository's root, as written here). The context's own .dockerignore
# does not apply: job-image.Dockerfile.dockerignore beside this file lets the
# program, and only it, in (Docker reads it by its name; Podman needs
# --ignorefile).
#
#   docker build -f deploy/job-image.Dockerfile -t myrepo/db-migration-runner:0.1.0 .
#   podman build --ignorefile deploy/job-image.Dockerfile.dockerignore \
#     -f deploy/job-image.Dockerfile -t myrepo/db-migration-runner:0.1.0 .
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=myrepo/healthcheck:0.1.0 /app/healthcheck /app/healthcheck
COPY db-migration-runner /app/db-migration-runner
# The image stays mesh-agnostic: it runs the job directly, and the Job
# manifest wraps it (command: ["/app/healthcheck", "run", "--istio", "--",
# "/app/db-migration-runner"]). To wrap it in the image instead, for example
# when it runs where no manifest can set the command:
#   ENTRYPOINT ["/app/healthcheck", "run", "--istio", "--", "/app/db-migration-runner"]
ENTRYPOINT ["/app/db-migration-runner"]
