# One static binary on scratch. Multi-arch through buildx: the build stage runs
# on the build machine's platform and cross-compiles for TARGETOS/TARGETARCH.

FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG VERSION=dev
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath -ldflags "-s -w -X github.com/nsmithuk/s3-asset-manager/internal/version.Version=${VERSION}" -o /out/s3-asset-manager .
# The command follows the program's name, so check and upload are links.
# Symbolic, not hard: COPY does not promise to keep hard links, and three
# copies of the binary would triple the image. scratch has no ln, so the
# links are made here and the directory copied whole.
RUN mkdir -p /out/bin /out/tmp \
 && mv /out/s3-asset-manager /out/bin/s3-asset-manager \
 && ln -s s3-asset-manager /out/bin/check \
 && ln -s s3-asset-manager /out/bin/upload \
 && chmod 1777 /out/tmp

FROM scratch
# CA roots are compiled into the binary too (x509roots/fallback); the file
# serves tools and SSL_CERT_FILE users that expect it.
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/bin/ /usr/local/bin/
# scratch has no /tmp; os.MkdirTemp needs one.
COPY --from=build /out/tmp /tmp
# The original image's defaults: Concourse task inputs named repo and packages.
ENV PATH=/usr/local/bin GIT_REPO_PATH=./repo PACKAGE_DIRECTORY=./packages
# No USER: GitHub docker actions run as the image's default user (root) and
# need to write the runner-owned workspace.
# Concourse's `run: path: check` executes the path directly and ignores
# ENTRYPOINT, so both `docker run IMAGE check` and Concourse tasks work.
ENTRYPOINT ["/usr/local/bin/s3-asset-manager"]
