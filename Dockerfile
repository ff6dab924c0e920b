# Multi-stage build: a static rowsync binary on a distroless base, non-root.
# Not exercised by the test suite (no container engine on the dev machines).
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/rowsync ./cmd/rowsync

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/rowsync /usr/local/bin/rowsync
USER nonroot:nonroot
EXPOSE 9187
ENTRYPOINT ["/usr/local/bin/rowsync"]
CMD ["run", "-c", "/etc/rowsync/rowsync.yaml"]
