#!/bin/sh
# Registries that need more: TLS with a self-signed CA given by --cert-dir,
# htpasswd (Basic) auth with credentials from `obuild login`, and a
# two-platform index pushed by skopeo (platform chosen, or an error listing
# the platforms).
. "$(dirname "$0")/lib.sh"

for tool in docker-registry htpasswd openssl; do
  command -v "$tool" >/dev/null || { skip "$tool not installed"; done_testing; }
done
sh "$FIXTURES/registry/mkcerts.sh" "$TESTDIR/certs"
mkdir -p "$TESTDIR/certdir" && cp "$TESTDIR/certs/ca.crt" "$TESTDIR/certdir/ca.crt"
chmod -R a+rX "$TESTDIR/certdir"
htpasswd -Bbn alice s3cret >"$TESTDIR/htpasswd" 2>/dev/null
start_registry "$(printf '  tls:\n    certificate: %s\n    key: %s' "$TESTDIR/certs/server.crt" "$TESTDIR/certs/server.key")" \
  "$(printf 'auth:\n  htpasswd:\n    realm: obuild-test\n    path: %s' "$TESTDIR/htpasswd")"
port=${R#*:}

python3 "$FIXTURES/make-multiplatform-layout.py" "$TESTDIR/multi" >"$TESTDIR/multi.digests"
amd=$(cut -d' ' -f1 "$TESTDIR/multi.digests"); arm=$(cut -d' ' -f2 "$TESTDIR/multi.digests")
check "skopeo pushes a two-platform index (TLS + htpasswd)" \
  skopeo copy -q --all --dest-cert-dir "$TESTDIR/certdir" --dest-creds alice:s3cret "oci:$TESTDIR/multi:multi" "docker://$R/multi:1"

# credential helpers (docker-credential-NAME get): one that knows this
# registry, one that fails
hdir=$TESTDIR/helpers; mkdir -p "$hdir"
{
  echo '#!/bin/sh'
  echo '[ "$1" = get ] || exit 2'
  echo 'read -r server'
  echo "if [ \"\$server\" = \"$R\" ]; then"
  echo '  printf "{\"ServerURL\":\"%s\",\"Username\":\"alice\",\"Secret\":\"s3cret\"}\n" "$server"'
  echo 'else'
  echo '  echo "credentials not found in native keychain"; exit 1'
  echo 'fi'
} >"$hdir/docker-credential-obtest"
printf '#!/bin/sh\necho "the keyring is locked"; exit 1\n' >"$hdir/docker-credential-broken"
chmod 755 "$hdir" "$hdir/docker-credential-obtest" "$hdir/docker-credential-broken"
export PATH="$hdir:$PATH"

for m in $MODES; do
  hauth=$(userdir "hauth-$m" "$m")/auth.json
  printf '{"credHelpers": {"%s": "obtest"}}' "$R" >"$hauth"; [ "$m" != root ] && chown "$T_USER" "$hauth"
  check "[$m] credentials from a credHelpers entry" \
    ob "$m" pull -q --cert-dir "$TESTDIR/certdir" --authfile "$hauth" "$R/multi:1"
  printf '{"credsStore": "obtest"}' >"$hauth"
  check "[$m] credentials from credsStore" \
    ob "$m" pull -q --cert-dir "$TESTDIR/certdir" --authfile "$hauth" "$R/multi:1"
  printf '{"credsStore": "broken"}' >"$hauth"
  check_fail 8 "credential helper .docker-credential-broken. failed for 127.0.0.1:[0-9]+: the keyring is locked" \
    "[$m] a failing helper: exit 8 with its message" \
    ob "$m" pull -q --cert-dir "$TESTDIR/certdir" --authfile "$hauth" "$R/multi:1"
  printf '{"credsStore": "nosuch"}' >"$hauth"
  check_fail 8 "docker-credential-nosuch. not found in PATH" "[$m] a missing helper: exit 8 naming it" \
    ob "$m" pull -q --cert-dir "$TESTDIR/certdir" --authfile "$hauth" "$R/multi:1"
done

for m in $MODES; do
  auth=$(userdir "auth-$m" "$m")/auth.json
  echo '{}' >"$auth"; [ "$m" != root ] && chown "$T_USER" "$auth"
  check_fail 8 "401|unauthorized|UNAUTHORIZED" "[$m] no credentials: exit 8" \
    ob "$m" pull --cert-dir "$TESTDIR/certdir" --authfile "$auth" "$R/multi:1"
  check_fail 8 "registry 127.0.0.1:[0-9]+: " "[$m] a TLS registry on 127.0.0.1 without --cert-dir (spoken to in plain HTTP): exit 8 naming it" \
    ob "$m" pull --authfile "$auth" "$R/multi:1"
  asu=$(command -v runuser >/dev/null && [ "$m" != root ] && [ "$(id -u)" -eq 0 ] && echo "runuser -u $T_USER --")
  check_fail 8 "login 127.0.0.1:[0-9]+ \\(nothing stored\\): registry 127.0.0.1:[0-9]+ refused the credentials of .alice. \\(HTTP 401\\)" \
    "[$m] obuild login with a wrong password: exit 8, refused by the registry" \
    sh -c "echo wrong | $asu '$OB' login -u alice --password-stdin --cert-dir '$TESTDIR/certdir' --authfile '$auth' '$R'"
  check_eq "[$m] ... and the auth file is unchanged" "$(cat "$auth")" "{}"
  check_fail 8 "cannot reach registry 127.0.0.1:1" "[$m] obuild login to an unreachable registry: exit 8" \
    sh -c "echo s3cret | $asu '$OB' login -u alice --password-stdin --authfile '$auth' 127.0.0.1:1"
  nc=$(userdir "nocheck-$m" "$m")/auth.json
  check "[$m] obuild login --no-check stores without trying (unreachable registry)" \
    sh -c "echo pw | $asu '$OB' login --no-check -u bob --password-stdin --authfile '$nc' 127.0.0.1:1"
  check "[$m] ... the entry is there" python3 -c "import json,base64,sys; a=json.load(open('$nc'))['auths']['127.0.0.1:1']['auth']; sys.exit(base64.b64decode(a)!=b'bob:pw')"
  check "[$m] obuild login checks and writes credentials" sh -c "echo s3cret | $asu '$OB' login -u alice --password-stdin --cert-dir '$TESTDIR/certdir' --authfile '$auth' '$R' 2>&1 | grep -q 'checked and stored'"
  check "[$m] ... readable as docker's auths" python3 -c "import json,base64,sys; a=json.load(open('$auth'))['auths']['$R']['auth']; sys.exit(base64.b64decode(a)!=b'alice:s3cret')"
  check_eq "[$m] pull over TLS with htpasswd: the host platform's image" \
    "$(ob "$m" pull -q --cert-dir "$TESTDIR/certdir" --authfile "$auth" "$R/multi:1")" "$amd"
  check_eq "[$m] --platform linux/arm64 picks the other one" \
    "$(ob "$m" pull -q --platform linux/arm64 --cert-dir "$TESTDIR/certdir" --authfile "$auth" "$R/multi:1")" "$arm"
  check_fail 8 "linux/s390x.*linux/amd64.*linux/arm64|available" "[$m] a missing platform lists those there are" \
    ob "$m" pull --platform linux/s390x --cert-dir "$TESTDIR/certdir" --authfile "$auth" "$R/multi:1"
  ctx=$TESTDIR/ctx-$m; mkdir -p "$ctx"
  printf 'FROM %s/multi:1\nLABEL x=y\n' "$R" >"$ctx/Dockerfile"; chmod -R a+rX "$ctx"
  check "[$m] FROM the TLS registry builds (--pull=always)" \
    ob "$m" build -q --pull=always --cert-dir "$TESTDIR/certdir" --authfile "$auth" -t frommulti "$ctx"
  check "[$m] push the result back with credentials" \
    ob "$m" push -q --cert-dir "$TESTDIR/certdir" --authfile "$auth" frommulti "$R/result/$m:1"
done
done_testing
