# The image of a job that runs under `healthcheck run` (03-job-istio.yaml,
# 04-job-linkerd.yaml). The wrapper runs in the job's own container, so its
# binary is copied in from the healthcheck image: one static file, no shell,
# no libc, so any base works, scratch and distroless included.
#
#   docker build -f deploy/job-image.Dockerfile -t myrepo/db-migration-runner:0.1.0 .
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=myrepo/healthcheck:0.1.0 /app/healthcheck /app/healthcheck
COPY db-migration-runner /app/db-migration-runner
# The image stays mesh-agnostic: it runs the job directly, and the Job
# manifest wraps it (command: ["/app/healthcheck", "run", "--istio", "--",
# "/app/db-migration-runner"]). To wrap it in the image instead, for example
# when it runs where no manifest can set the command:
#   ENTRYPOINT ["/app/healthcheck", "run", "--istio", "--", "/app/db-migration-runner"]
ENTRYPOINT ["/app/db-migration-runner"]
