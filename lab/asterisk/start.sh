#!/bin/sh
# Lab only: the Asterisk container's entrypoint (docker-compose.yml). Asterisk's .conf files cannot read the
# environment, so this writes /etc/asterisk from the project's drop-in files (asterisk/, mounted at
# /active-call/asterisk) and the lab's own (lab/asterisk, at /lab), putting the secrets from .env in, and then
# runs Asterisk in the foreground. AST_ETC and LAB_RENDER_ONLY=1 let the test run it without Asterisk.
set -eu
: "${ACTIVE_CALL_ARI_PASSWORD:?set ACTIVE_CALL_ARI_PASSWORD in .env (see .env.example)}"
: "${LAB_SIP_PASSWORD:?set LAB_SIP_PASSWORD in .env (see .env.example)}"
ETC="${AST_ETC:-/etc/asterisk}"
DROPIN="${ACTIVE_CALL_ASTERISK_DIR:-/active-call/asterisk}"
LAB="${LAB_ASTERISK_DIR:-/lab}"
CERTS="${LAB_CERTS_DIR:-/certs}"

# sed replacement text: escape \ & and the delimiter | so any password survives.
escape() { printf '%s' "$1" | sed -e 's/[\\&|]/\\&/g'; }
ari=$(escape "$ACTIVE_CALL_ARI_PASSWORD")
sip=$(escape "$LAB_SIP_PASSWORD")

mkdir -p "$ETC/keys"
cp "$DROPIN/extensions.conf" "$DROPIN/modules.conf" "$ETC/"
# ari.conf: the drop-in's placeholder password becomes the controller's (the only "password =" line in it).
sed -e "s|^password = change-me\$|password = $ari|" "$DROPIN/ari.conf" > "$ETC/ari.conf"
grep -q "^password = change-me\$" "$ETC/ari.conf" && { echo "start.sh: ari.conf password not replaced" >&2; exit 1; }
sed -e "s|@LAB_SIP_PASSWORD@|$sip|g" "$LAB/pjsip.conf" > "$ETC/pjsip.conf"
cp "$LAB/http.conf" "$LAB/rtp.conf" "$ETC/"
if [ -f "$CERTS/lab.crt" ]; then cp "$CERTS/lab.crt" "$CERTS/lab.key" "$ETC/keys/"; fi

[ "${LAB_RENDER_ONLY:-0}" = 1 ] && exit 0
[ -f "$ETC/keys/lab.crt" ] || { echo "start.sh: no certificate in $CERTS (the certs service writes it)" >&2; exit 1; }
# Drop root once the files are written, when the image has the asterisk user.
if id asterisk >/dev/null 2>&1; then exec asterisk -f -U asterisk -G asterisk -vvv; fi
exec asterisk -f -vvv
