# One image holds the worker, the starter CLI and the agency simulator.
# The release Go (Makefile's RELEASE_GO): 1.26.8 has standard-library vulnerabilities fixed since.
FROM golang:1.26.11-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/ ./worker ./starter ./dev/agencysim/cmd/agencysim ./codec/cmd/codecserver

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/ /usr/local/bin/
USER 65532:65532
ENTRYPOINT ["worker"]
