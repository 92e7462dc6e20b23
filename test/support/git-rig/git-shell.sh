#!/bin/sh
# The forced command of every rig key: $1 the repository the key was added to (owner/name),
# $2 rw or ro. Serves git-upload-pack for that repository, and git-receive-pack when rw;
# refuses anything else.
repo="$1"; mode="$2"
case "$SSH_ORIGINAL_COMMAND" in
  "git-upload-pack '/$repo.git'"|"git-upload-pack '$repo.git'")
    exec git-upload-pack "/srv/git/$repo.git" ;;
  "git-receive-pack '/$repo.git'"|"git-receive-pack '$repo.git'")
    if [ "$mode" != rw ]; then echo "rig: this deploy key is read-only" >&2; exit 1; fi
    exec git-receive-pack "/srv/git/$repo.git" ;;
  *)
    echo "rig: this key may only reach $repo (asked: $SSH_ORIGINAL_COMMAND)" >&2; exit 1 ;;
esac
