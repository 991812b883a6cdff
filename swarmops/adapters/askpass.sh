#!/bin/sh
# GIT_ASKPASS helper: the token is read from the operator's file, never passed on a command line.
case "$1" in
  Username*) printf '%s\n' "${SWARMOPS_TOKEN_USER:-x-access-token}" ;;
  *) head -n1 "$SWARMOPS_TOKEN_FILE" | tr -d '\r\n'; printf '\n' ;;
esac
