# The images GoReleaser builds (.goreleaser.yaml, dockers_v2) from the
# release's own binaries: its build context holds this file, image/,
# build/busybox/ (scripts/busybox) and linux/<arch>/s3-asset-manager. Nothing
# is compiled or run here, so the binary the tests run in the image is the one
# that ships. The tests build the same context and targets and run the images
# with podman (image_test.go).
#
# Two targets: `image` (tags vX.Y.Z, vX.Y, vX) is scratch plus the binary, for
# the docker action, Concourse and docker run, which start the binary
# directly; `shell` (tags ...-shell) adds a static busybox as `sh`, for GitLab
# CI, whose docker executor starts every job container with `sh -c` and feeds
# the job script to the shell.
FROM scratch AS image
ARG TARGETPLATFORM
# The command follows the program's name: check, upload, download and prune are symbolic links
# (image/bin), so `run: path: check` in Concourse and `docker run IMAGE check`
# both work.
COPY image/bin/ /usr/local/bin/
# scratch has no /tmp. Git keeps no empty directory, so image/tmp/tmp holds an
# empty .keep; copying its parent applies the mode to the directory too.
COPY --chmod=1777 image/tmp/ /
COPY --chmod=0755 ${TARGETPLATFORM}/s3-asset-manager /usr/local/bin/s3-asset-manager
# CA roots are compiled into the binary (x509roots/fallback); AWS_CA_BUNDLE
# adds a private CA.
# The original image's default package directory (a Concourse task input
# named packages). GIT_REPO_PATH's ./repo is the binary's own default: set
# here it would be a variable of every container, and win over the docker
# action's default, the workspace root (an environment variable wins over a
# default).
ENV PATH=/usr/local/bin PACKAGE_DIRECTORY=./packages
# No USER: GitHub docker actions run as the image's default user (root) and
# need to write the runner-owned workspace. No WORKDIR: the runner sets it.
# Concourse's `run: path: check` executes the path directly and ignores
# ENTRYPOINT, so both `docker run IMAGE check` and Concourse tasks work.
ENTRYPOINT ["/usr/local/bin/s3-asset-manager"]

FROM image AS shell
ARG TARGETPLATFORM
# One file: Debian's busybox-static runs its applets (grep, mkdir, date, cat,
# ...) from the shell without a link each, so only sh is linked. On PATH, and
# at /usr/local/bin/sh, one of the paths GitLab's shell detection tries.
COPY image/shell/ /usr/local/bin/
COPY --chmod=0755 build/busybox/${TARGETPLATFORM}/busybox /usr/local/bin/busybox
COPY --chmod=0644 build/busybox/copyright /usr/local/share/doc/busybox/copyright

# A build without --target (the self-test's `docker build .`) gets the image
# without a shell.
FROM image
