#!/bin/sh
# Lab only: the "certs" service of docker-compose.yml runs this once when the lab starts. It writes a
# self-signed certificate for the lab's secure WebSockets into $CERTS_DIR (the lab-certs volume), unless one is
# already there (delete the volume to make a new one: docker compose down -v):
#   lab.crt, lab.key  Asterisk's WSS on 8089 (http.conf tlscertfile / tlsprivatekey)
#   wss.pem           FreeSWITCH's WSS on 7443 (certificate and key in one file, in tls-cert-dir)
# LAB_HOST is the name or address the browser opens (it goes into the certificate's subjectAltName);
# localhost and 127.0.0.1 are always in it.
set -eu
DIR="${CERTS_DIR:-/certs}"
HOST="${LAB_HOST:-localhost}"
DAYS="${LAB_CERT_DAYS:-825}"

if [ -s "$DIR/lab.crt" ] && [ -s "$DIR/lab.key" ] && [ -s "$DIR/wss.pem" ]; then
  echo "make-certs: keeping the certificate in $DIR"
  exit 0
fi
mkdir -p "$DIR"

san="DNS:localhost,IP:127.0.0.1"
case "$HOST" in
  localhost|127.0.0.1) ;;                  # already in
  *[!0-9.]*) san="DNS:$HOST,$san" ;;       # a name
  *) san="IP:$HOST,$san" ;;                # a dotted IPv4 address
esac

openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days "$DAYS" \
  -subj "/CN=$HOST/O=active-call lab" \
  -addext "subjectAltName=$san" \
  -addext "basicConstraints=critical,CA:FALSE" \
  -addext "extendedKeyUsage=serverAuth" \
  -keyout "$DIR/lab.key" -out "$DIR/lab.crt" 2>/dev/null
cat "$DIR/lab.crt" "$DIR/lab.key" > "$DIR/wss.pem"
# Read by the freeswitch and asterisk users of their images; the lab's certificate guards nothing else.
chmod 644 "$DIR/lab.crt" "$DIR/lab.key" "$DIR/wss.pem"
echo "make-certs: wrote $DIR/lab.crt for $san (valid $DAYS days)"
