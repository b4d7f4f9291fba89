//! healthcheck: aggregated readiness for Kubernetes pods, on one mio loop.
