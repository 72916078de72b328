#!/bin/sh
# Starts Orthanc with /etc/flip-orthanc/orthanc.json, whose ${ORTHANC_PASSWORD} Orthanc fills in from the
# environment: the password is read here from ORTHANC_PASSWORD_FILE, so it never sits in compose's environment.
set -eu
if [ -z "${ORTHANC_PASSWORD_FILE:-}" ] || [ ! -r "$ORTHANC_PASSWORD_FILE" ]; then
  echo "flip-orthanc: set ORTHANC_PASSWORD_FILE to a file that uid $(id -u) can read, holding the password of the Orthanc user \"flip\"" >&2
  exit 2
fi
ORTHANC_PASSWORD=$(cat "$ORTHANC_PASSWORD_FILE")
case "$ORTHANC_PASSWORD" in
  "" | *[!A-Za-z0-9._~-]*)
    echo "flip-orthanc: the password in $ORTHANC_PASSWORD_FILE must be letters, digits, . _ ~ or - (openssl rand -hex 24)" >&2
    exit 2 ;;
esac
export ORTHANC_PASSWORD
exec Orthanc "$@" /etc/flip-orthanc/orthanc.json
