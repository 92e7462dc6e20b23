#!/bin/sh
# Creates the repositories named in $RIG_REPOS (owner/name, comma-separated), each a bare
# repository with one commit on main, starts the fake API, then runs sshd in the foreground.
set -eu
for repo in $(echo "${RIG_REPOS:-acme/widgets}" | tr ',' ' '); do
  dir="/srv/git/$repo.git"
  su git -c "set -eu; mkdir -p '$(dirname "$dir")'; git init -q --bare -b main '$dir'
    tmp=\$(mktemp -d); git -C \$tmp init -q -b main; git -C \$tmp -c user.name=rig -c user.email=rig@rig commit -q --allow-empty -m 'initial commit'
    git -C \$tmp push -q '$dir' main; rm -rf \$tmp"
done
node /opt/rig/api.mjs &
exec /usr/sbin/sshd -D -e
