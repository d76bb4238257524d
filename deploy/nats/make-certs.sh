#!/usr/bin/env bash
# Certificates for NATS over mutual TLS (issue 15): a cluster CA, the NATS server's
# certificate and one client certificate per cluster member, made with openssl.
#
#   deploy/nats/make-certs.sh [out-dir] [member ...]
#
# out-dir defaults to deploy/nats/certs (gitignored); members default to clusterlog-1,
# clusterlog-2 and clusterlog-3 (the users of nats-server.conf). Writes:
#   ca.pem, ca.key              the cluster CA (keep ca.key off the NATS and member hosts)
#   server.pem, server.key      the NATS server's, for the names in NATS_TLS_SANS
#   <member>.pem, <member>.key  each member's client certificate (clientAuth only)
# Keys are mode 0600 (the agent refuses a key others can read). An existing CA is reused,
# so running it again with a new member name adds that member; existing certificates are
# kept (delete one to make it anew, e.g. to rotate it).
#
# NATS_TLS_SANS: the server certificate's names, default
#   "DNS:nats,DNS:localhost,IP:127.0.0.1" (compose's service name and this host; nats.js
#   names a loopback server "localhost"). Add the address members on other hosts use,
#   e.g. NATS_TLS_SANS="DNS:nats,DNS:localhost,IP:127.0.0.1,DNS:nats.storage.example".
# NATS_TLS_DAYS: validity in days (default 825).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/certs}"
shift || true
members=("$@")
[ ${#members[@]} -gt 0 ] || members=(clusterlog-1 clusterlog-2 clusterlog-3)
sans="${NATS_TLS_SANS:-DNS:nats,DNS:localhost,IP:127.0.0.1}"
days="${NATS_TLS_DAYS:-825}"

command -v openssl >/dev/null || { echo "make-certs.sh: openssl not found" >&2; exit 1; }
mkdir -p "$out"
chmod 700 "$out"
cd "$out"
umask 077

for name in "${members[@]}"; do
  case "$name" in
    *[!A-Za-z0-9_.-]* | "" | ca | server) echo "make-certs.sh: bad member name '$name'" >&2; exit 2 ;;
  esac
done

if [ ! -f ca.pem ] || [ ! -f ca.key ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days "$days" -sha256 \
    -keyout ca.key -out ca.pem -subj "/CN=mirrorplane NATS CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    2>/dev/null
  echo "made the CA: $out/ca.pem"
fi

# $1 name, $2 extensions: one certificate signed by the CA, unless it exists.
issue() {
  local name="$1" ext="$2"
  if [ -f "$name.pem" ] && [ -f "$name.key" ]; then
    echo "kept $out/$name.pem"
    return
  fi
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$name.key" -out "$name.csr" \
    -subj "/CN=$name" 2>/dev/null
  printf '%s\n' "$ext" >"$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial \
    -days "$days" -sha256 -out "$name.pem" -extfile "$name.ext" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
  echo "made $out/$name.pem"
}

issue server "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=$sans"
for name in "${members[@]}"; do
  issue "$name" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
done
chmod 600 ./*.key
chmod 644 ./*.pem
