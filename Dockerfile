# fhirgate image: a static binary on distroless (no shell, no package
# manager, non-root). The configuration comes from the Helm chart's
# ConfigMap at /etc/fhirgate/config.
#
#   docker build --build-arg VERSION=$(git describe --always) -t fhirgate .
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/fhirgate/fhirgate/gateway/pipeline.Version=${VERSION}" \
      -o /out/fhirgate ./cmd/fhirgate

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/fhirgate /usr/local/bin/fhirgate
USER 65532:65532
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/fhirgate"]
CMD ["serve", "--config", "/etc/fhirgate/config/routes.yaml"]
