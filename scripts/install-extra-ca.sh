#!/bin/sh
# Trusts the extra CA certificates in the build context's extra-ca.pem (may be empty), before
# any apt or npm download: behind a TLS-intercepting proxy (corporate networks, CI) the
# registries are only reachable that way. Shared by the agent-image/ and bundle/ builds; the
# image pipeline (src/programs/images.ts) puts it in both contexts.
#
# Usage (in a Dockerfile): install-extra-ca.sh /tmp/bottle-extra-ca.pem
set -eu
pem="$1"
if [ -s "$pem" ]; then
  mkdir -p /usr/local/share/ca-certificates
  # One certificate per file, as update-ca-certificates expects; skip those the base image already trusts.
  known=/etc/ssl/certs/ca-certificates.crt
  [ -f "$known" ] || known=/dev/null
  awk 'FNR == 1 { extra = (FILENAME != ARGV[1]) }
       { sub(/\r$/, "") }
       /-----BEGIN CERTIFICATE-----/ { inblk = 1; blk = "" }
       inblk { blk = blk $0 "\n" }
       inblk && /-----END CERTIFICATE-----/ {
         inblk = 0
         if (extra) m++
         if (blk in seen) next
         seen[blk] = 1
         if (extra) { n++; f = sprintf("/usr/local/share/ca-certificates/bottle-extra-ca-%03d.crt", n); printf "%s", blk > f; close(f) }
       }
       END { if (m == 0) { print "extra-ca.pem is not empty but holds no PEM certificate" > "/dev/stderr"; exit 1 }
             printf "extra-ca.pem: %d certificate(s), %d new\n", m, n }' \
      "$known" "$pem"
  if ! ls /usr/local/share/ca-certificates/bottle-extra-ca-*.crt >/dev/null 2>&1; then
    :
  elif command -v update-ca-certificates >/dev/null 2>&1; then
    update-ca-certificates
  else
    # No ca-certificates package yet: let apt (https mirrors) trust the extra CAs until it is installed.
    cat /usr/local/share/ca-certificates/bottle-extra-ca-*.crt > /tmp/bottle-extra-ca-bundle.pem
    echo 'Acquire::https::CAInfo "/tmp/bottle-extra-ca-bundle.pem";' > /etc/apt/apt.conf.d/00bottle-extra-ca
  fi
fi
rm -f "$pem"
