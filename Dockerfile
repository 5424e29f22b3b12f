# syntax=docker/dockerfile:1

# The production image: one static usher binary that serves every subcommand (api, worker,
# migrate, apikey create). The `nodev` build tag leaves out `usher dev` and the Temporal
# server it embeds, which production never runs.
#
#   docker build -t usher .
#   docker run --rm usher migrate      # or api, worker, apikey create --name …

FROM golang:1.26 AS build
WORKDIR /src
# Static binary for distroless/static. GOTOOLCHAIN=auto fetches the toolchain go.mod asks
# for (go 1.26.8) should the image's Go be an older 1.26 patch.
ENV CGO_ENABLED=0 GOTOOLCHAIN=auto
COPY . .
# Only the modules the nodev build imports are downloaded; the caches survive rebuilds.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -tags nodev -ldflags="-s -w" -o /out/usher ./cmd/usher

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/usher /usher
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/usher"]
# Without arguments the container serves the API; pass worker, migrate or apikey to run
# another subcommand.
CMD ["api"]
