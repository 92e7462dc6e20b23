#!/bin/sh
# Installs Debian packages in an image build, then removes what the build must not keep: apt's
# lists and caches, and the temporary apt trust setting install-extra-ca.sh may have left for a
# base image without ca-certificates. Shared by the agent-image/ and bundle/ builds.
#
# Usage (in a Dockerfile): apt-install.sh PACKAGE...
set -eu
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "$@"
rm -f /etc/apt/apt.conf.d/00bottle-extra-ca /tmp/bottle-extra-ca-bundle.pem
update-ca-certificates >/dev/null
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
