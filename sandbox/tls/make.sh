#!/usr/bin/env bash
# Generates the sandbox's own certificate authority and a server certificate for the loopback
# fakes that must speak https (the Azure fake: the SDK refuses bearer tokens over http).
# Sandbox only: the server key is committed on purpose and protects nothing.
#
#   sandbox/tls/make.sh [DIR]   writes ca.pem, server.pem and server-key.pem into DIR (default: this
#                               script's directory). The CA's key is thrown away: run it again for
#                               a new pair.
set -euo pipefail

dir="${1:-$(cd "$(dirname "$0")" && pwd)}"
days=36500
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cd "$dir"

# The authority: a P-256 key and a self-signed certificate that may only sign.
openssl ecparam -name prime256v1 -genkey -noout -out "$work/ca-key.pem"
openssl req -x509 -new -key "$work/ca-key.pem" -sha256 -days "$days" \
  -subj "/O=cml-runner sandbox/CN=cml-runner sandbox CA" \
  -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -addext "subjectKeyIdentifier=hash" \
  -out ca.pem

# The server: 127.0.0.1 and localhost, for TLS servers only.
openssl ecparam -name prime256v1 -genkey -noout -out server-key.pem
openssl req -new -key server-key.pem -subj "/O=cml-runner sandbox/CN=127.0.0.1" -out "$work/server.csr"
cat > "$work/server.ext" <<'EXT'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost
authorityKeyIdentifier=keyid
EXT
openssl x509 -req -in "$work/server.csr" -CA ca.pem -CAkey "$work/ca-key.pem" \
  -CAcreateserial -CAserial "$work/ca.srl" -sha256 -days "$days" -extfile "$work/server.ext" -out server.pem

chmod 0644 ca.pem server.pem server-key.pem
openssl verify -CAfile ca.pem server.pem
