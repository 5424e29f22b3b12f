# syntax=docker/dockerfile:1

# Builds the production usher binary: one static executable for every subcommand
# (api, worker, migrate, apikey). The `nodev` build tag leaves out `usher dev` and the
# Temporal server it embeds.
FROM golang:1.26 AS build
WORKDIR /src
ENV CGO_ENABLED=0
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -tags nodev -ldflags="-s -w" -o /out/usher ./cmd/usher

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/usher /usher
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/usher"]
CMD ["api"]
