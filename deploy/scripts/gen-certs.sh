#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# mTLS material for clusters without cert-manager: a CA, a collector server certificate, an agent
# client certificate and a reader (CLI) client certificate (ECDSA P-256), the first two written as
# the Secrets the manifests mount:
#   wattlens-collector-tls, wattlens-agent-tls (tls.crt, tls.key, ca.crt) in namespace wattlens.
# The CA key stays in the output directory, off the cluster; keep it safe to renew leaves.
#
#   deploy/scripts/gen-certs.sh [-n NAMESPACE] [-d DAYS] [-o DIR] [--apply]
#     -o DIR   where keys, certificates and secrets.yaml go (default: ./wattlens-certs)
#     --apply  kubectl apply -f DIR/secrets.yaml (otherwise only written)
# Renewal: run again with the same -o DIR before the leaves expire (default 90 days); the CA (3 years)
# is reused when DIR/ca.key exists. Needs openssl; --apply needs kubectl with access to the cluster.
set -euo pipefail
ns=wattlens days=90 out=./wattlens-certs apply=0
while [ $# -gt 0 ]; do
  case "$1" in
    -n) ns=$2; shift 2 ;;
    -d) days=$2; shift 2 ;;
    -o) out=$2; shift 2 ;;
    --apply) apply=1; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "gen-certs.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$out"
chmod 700 "$out"
cd "$out"
umask 077

if [ ! -s ca.key ]; then
  openssl ecparam -name prime256v1 -genkey -noout -out ca.key
  openssl req -x509 -new -key ca.key -sha256 -days 1095 -subj "/CN=wattlens-ca" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.crt
fi

leaf() {  # name extended-key-usage subjectAltName
  openssl ecparam -name prime256v1 -genkey -noout -out "$1.key"
  openssl req -new -key "$1.key" -subj "/CN=$1" -out "$1.csr"
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=%s\nsubjectAltName=%s\n' \
    "$2" "$3" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 \
    -days "$days" -extfile "$1.ext" -out "$1.crt" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
svc=wattlens-collector
leaf wattlens-collector serverAuth \
  "DNS:$svc,DNS:$svc.$ns,DNS:$svc.$ns.svc,DNS:$svc.$ns.svc.cluster.local"
leaf wattlens-agent clientAuth "URI:spiffe://wattlens/agent"
# The `wattlens` CLI's certificate: may query, never upload (the collector tells the two roles
# apart by these URIs). It stays in DIR, not in the cluster: wattlens --tls-cert-file DIR/wattlens-reader.crt ...
leaf wattlens-reader clientAuth "URI:spiffe://wattlens/reader"

b64() { base64 -w0 <"$1"; }
secret() {  # secret-name file-prefix
  cat <<YAML
---
apiVersion: v1
kind: Secret
type: kubernetes.io/tls
metadata:
  name: $1
  namespace: $ns
  labels:
    app.kubernetes.io/part-of: wattlens
data:
  tls.crt: $(b64 "$2.crt")
  tls.key: $(b64 "$2.key")
  ca.crt: $(b64 ca.crt)
YAML
}
{ secret wattlens-collector-tls wattlens-collector; secret wattlens-agent-tls wattlens-agent; } >secrets.yaml
echo "gen-certs.sh: wrote $(pwd)/secrets.yaml (collector valid for DNS $svc.$ns.svc, $days days)"
if [ "$apply" = 1 ]; then kubectl apply -f secrets.yaml; fi
