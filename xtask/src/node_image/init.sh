#!/bin/busybox sh
# /init of Hybrid's test node image (built by `cargo xtask node-image`).
#
# It keeps the guest side of hybrid_api::agent::GUEST_CONTRACT with nothing
# but busybox and a few kernel modules:
#   1. mount /proc, /sys, /dev; load the modules listed in /etc/modules
#      (dependencies first, as the image builder ordered them); bring up lo;
#   2. find the NoCloud seed: a FAT volume labelled CIDATA (or cidata) on a
#      virtio disk, else any /dev/vd* holding a meta-data file;
#   3. apply it: hostname from meta-data, the network from network-config,
#      root's authorized_keys from user-data;
#   4. when the seed has a bootstrap document (hybrid_api::bootstrap),
#      run this image's /usr/local/bin/hybrid-bootstrap with it: it adds
#      control_plane_vip to the interface and says what it received
#      (the document, its SHA-256, the token's length and form — never the
#      token), then deletes the secret; there is no kubeadm here;
#   5. write one JSON line to /dev/ttyS1 (the agent's report port):
#      {"hybrid_ready":{"instance_id":…,"hostname":…,"addresses":[…],
#      "bootstrap":{…}}} (bootstrap only with a document);
#   6. power off cleanly when the ACPI power button is pressed (QEMU's
#      system_powerdown): a watcher started before the report runs busybox
#      `poweroff`, and busybox init, PID 1 after /init, does it (and reaps
#      orphans meanwhile).
#
# ttyS0 is the console: progress goes there, never the seed's keys or the
# bootstrap token.
#
# The seed parser reads this YAML subset (what the agent writes), not YAML:
#   - block mappings indented with spaces, `key: value` and `key:` lines;
#   - block lists (`- value`, `- key: value` starting a mapping item) and
#     flow lists of scalars (`[a, b]`);
#   - scalars plain, "double" or 'single' quoted, without escapes;
#   - comments: lines starting with `#` and ` #…` after a value.
# It flattens a document into `path=value` lines (list items add `-` to the
# path), e.g. `ethernets.eth0.match.macaddress=52:54:00:12:34:56`.
# From network-config (version 2) it uses, for the first ethernet:
# match.macaddress, addresses, gateway4, routes (to 0.0.0.0/0 or default,
# via), nameservers.addresses and dhcp4. From meta-data: instance-id and
# local-hostname. From user-data: hostname (when meta-data has none) and
# every ssh_authorized_keys entry (top level and users[*]).
#
# Helper roles (the same file, run as another process than PID 1):
#   /init power-watch               the power button watcher
#   /init deconfig|bound|renew|…    udhcpc's event script
#   /usr/local/bin/hybrid-bootstrap DOCUMENT [SECRET]
#                                   (a link to /init) the bootstrap command

export PATH=/sbin:/usr/sbin:/bin:/usr/bin

log() {
    echo "hybrid-init: $*" >/dev/console
}

# Keeps only characters that are safe in a host name, address or id: the
# values end up in commands, files and the JSON report.
safe() {
    tr -cd 'A-Za-z0-9._:/@+-'
}

# --- Helper roles -----------------------------------------------------------

# udhcpc event script: busybox udhcpc passes the lease in the environment
# (ip, mask as a prefix length, router, dns).
dhcp_event() {
    case "$1" in
        deconfig)
            ip -4 addr flush dev "$interface"
            ip link set dev "$interface" up
            ;;
        bound|renew)
            ip -4 addr flush dev "$interface"
            ip addr add "$ip/${mask:-24}" dev "$interface"
            for r in $router; do
                ip route replace default via "$r" dev "$interface"
                break
            done
            if [ -n "$dns" ]; then
                : >/etc/resolv.conf
                for d in $dns; do
                    echo "nameserver $d" >>/etc/resolv.conf
                done
            fi
            log "dhcp: $interface has $ip/${mask:-24}"
            ;;
    esac
}

# Waits for one event from the ACPI power button's input device (the only
# events it sends are presses), then asks busybox init to power off: init
# runs the inittab's shutdown actions, ends every process and powers off.
# evdev delivers events only to readers that have the device open, so the
# device is opened first and /run/power-watch marks that it is.
power_watch() {
    for dev in /sys/class/input/event*; do
        if [ "$(cat "$dev/device/name" 2>/dev/null)" = "Power Button" ]; then
            exec 3<"/dev/input/${dev##*/}"
            : >/run/power-watch
            # struct input_event is 24 bytes on x86_64: one read, one event.
            dd bs=24 count=1 <&3 >/dev/null 2>&1
            log "power button pressed: shutting down"
            exec poweroff
        fi
    done
    log "no ACPI power button device: power off with QMP quit"
    : >/run/power-watch
}

# The test image's bootstrap command (the contract's COMMAND): prints the
# report's `bootstrap` object. A real image runs kubeadm here instead.
bootstrap_command() {
    doc=$1
    secret=$2
    if ! grep -q '"api_version":"hybrid.bootstrap/v1"' "$doc"; then
        log "bootstrap: $doc is not a hybrid.bootstrap/v1 document"
        echo '{"error":"unsupported api_version"}'
        return 1
    fi
    vip=$(sed -n 's/.*"control_plane_vip":"\([^"]*\)".*/\1/p' "$doc" | safe)
    vip_iface=$(ip -o -4 addr show | awk '$2 != "lo" { print $2; exit }' | safe)
    vip_added=""
    if [ -n "$vip" ] && [ -n "$vip_iface" ] && ip addr add "$vip/32" dev "$vip_iface"; then
        vip_added=$vip
        log "bootstrap: control-plane VIP $vip on $vip_iface"
    fi
    token_json='{"received":false}'
    if [ -n "$secret" ] && [ -f "$secret" ]; then
        token=$(sed -n 's/.*"bootstrap_token":"\([^"]*\)".*/\1/p' "$secret")
        form=false
        if echo "$token" | grep -Eq '^[a-z0-9]{6}\.[a-z0-9]{16}$'; then
            form=true
        fi
        token_json="{\"received\":true,\"length\":${#token},\"kubeadm_form\":$form}"
        token=""
        # Used: a real image deletes it once kubeadm has it.
        rm -f "$secret"
    fi
    sum=$(sha256sum "$doc" | awk '{ print $1 }' | safe)
    log "bootstrap: document $sum applied"
    printf '{"document_sha256":"%s","control_plane_vip":"%s","token":%s,"document":%s}\n' \
        "$sum" "$vip_added" "$token_json" "$(tr -d '\r\n' <"$doc")"
}

if [ "${0##*/}" = hybrid-bootstrap ]; then
    bootstrap_command "$@"
    exit $?
fi

if [ "$$" != 1 ]; then
    case "$1" in
        power-watch) power_watch ;;
        deconfig|bound|renew|leasefail|nak) dhcp_event "$1" ;;
    esac
    exit 0
fi

# --- PID 1 ------------------------------------------------------------------

/bin/busybox mkdir -p /proc /sys /dev /tmp /run /root /etc /mnt/seed /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
mkdir -p /usr/local/bin
ln -s /init /usr/local/bin/hybrid-bootstrap
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mkdir -p /dev/pts
mount -t devpts devpts /dev/pts
log "booting ($(uname -r))"

while read -r module; do
    [ -n "$module" ] || continue
    insmod "/lib/modules/$module.ko" || log "cannot load module $module"
done </etc/modules
ip link set dev lo up

# Flattens the YAML subset described at the top into path=value lines.
flatten() {
    awk '
    function unquote(s) {
        sub(/^[ \t]+/, "", s); sub(/[ \t]+$/, "", s)
        if (s ~ /^".*"$/ || s ~ /^\047.*\047$/) s = substr(s, 2, length(s) - 2)
        return s
    }
    function path(   p, i) {
        p = ""
        for (i = 1; i <= depth; i++) p = p (i > 1 ? "." : "") key[i]
        return p
    }
    function emit(k, v,   p, n, i, parts) {
        p = path(); p = p (p != "" && k != "" ? "." : "") k
        v = unquote(v)
        if (v ~ /^\[.*\]$/) {
            n = split(substr(v, 2, length(v) - 2), parts, ",")
            for (i = 1; i <= n; i++) if (unquote(parts[i]) != "") print p "=" unquote(parts[i])
        } else print p "=" v
    }
    {
        line = $0
        sub(/\r$/, "", line)
        if (line ~ /^[ \t]*#/) next
        sub(/[ \t]+#.*$/, "", line)
        if (line ~ /^[ \t]*$/) next
        match(line, /^ */); ind = RLENGTH
        text = substr(line, ind + 1)
        item = 0
        if (text ~ /^-( |$)/) {
            item = 1
            text = substr(text, 2)
            match(text, /^ */); text = substr(text, RLENGTH + 1)
        }
        # Close the mappings this line is not inside of. A dash may stand
        # in the column of the key above it ("key:" then "- item"): the
        # item is still inside that key, but closes the previous item.
        while (depth > 0 && (indent[depth] > ind || (indent[depth] == ind && (!item || key[depth] == "-")))) depth--
        col = ind
        if (item) {
            # A list item: mark it, and let keys on its line and below it
            # (indented deeper than the dash) belong to it.
            emit("-", "")
            depth++; key[depth] = "-"; indent[depth] = ind
            if (text == "") next
            if (text !~ /^[^ "\047]+:( |$)/) { depth--; emit("", text); next }
            col = length(line) - length(text)
        }
        if (text ~ /^[^ "\047]+:$/) {
            depth++; key[depth] = substr(text, 1, length(text) - 1); indent[depth] = col
            next
        }
        if (match(text, /^[^ "\047]+: /)) {
            emit(substr(text, 1, RLENGTH - 2), substr(text, RLENGTH + 1))
            next
        }
        emit("", text)
    }'
}

# The value of the first `path=value` line whose path matches $2 (a
# basic regular expression), from flattened file $1.
value() {
    sed -n "s/^$2=//p" "$1" | head -n 1
}

find_seed() {
    i=0
    while [ $i -lt 100 ]; do
        for dev in $(findfs LABEL=CIDATA 2>/dev/null) $(findfs LABEL=cidata 2>/dev/null) /dev/vd*; do
            [ -b "$dev" ] || continue
            if mount -t vfat -o ro "$dev" /mnt/seed 2>/dev/null; then
                if [ -f /mnt/seed/meta-data ]; then
                    log "seed found on $dev"
                    return 0
                fi
                umount /mnt/seed
            fi
        done
        # virtio disks appear asynchronously after virtio_blk is loaded.
        usleep 100000
        i=$((i + 1))
    done
    return 1
}

instance_id=""
host_name=""
if find_seed; then
    flatten </mnt/seed/meta-data >/tmp/meta-data.flat
    [ -f /mnt/seed/network-config ] && flatten </mnt/seed/network-config >/tmp/network-config.flat
    [ -f /mnt/seed/user-data ] && flatten </mnt/seed/user-data >/tmp/user-data.flat
    instance_id=$(value /tmp/meta-data.flat 'instance-id' | safe)
    host_name=$(value /tmp/meta-data.flat 'local-hostname' | safe)
    if [ -z "$host_name" ] && [ -f /tmp/user-data.flat ]; then
        host_name=$(value /tmp/user-data.flat 'hostname' | safe)
    fi
else
    log "no NoCloud seed (a FAT volume labelled CIDATA with meta-data) on any virtio disk"
fi
host_name=${host_name:-localhost}
hostname "$host_name"
echo "$host_name" >/etc/hostname
log "instance ${instance_id:-unknown}, hostname $host_name"

# --- Network (network-config version 2, first ethernet) ---------------------

iface=""
if [ -f /tmp/network-config.flat ]; then
    eth_id=$(sed -n 's/^ethernets\.\([^.=]*\)[.=].*/\1/p' /tmp/network-config.flat | head -n 1)
    eth=/tmp/eth.flat
    sed -n "s/^ethernets\.$eth_id\.//p" /tmp/network-config.flat >$eth
    mac=$(value $eth 'match\.macaddress' | safe | tr 'A-F' 'a-f')
    # The NIC shows up once virtio_net has probed it: wait a little.
    i=0
    while [ -z "$iface" ] && [ $i -lt 50 ]; do
        for dev in /sys/class/net/*; do
            name=${dev##*/}
            [ "$name" != lo ] || continue
            if [ -n "$mac" ]; then
                [ "$(cat "$dev/address")" = "$mac" ] && iface=$name
            elif [ "$name" = "$eth_id" ]; then
                iface=$name
            fi
        done
        [ -n "$iface" ] || usleep 100000
        i=$((i + 1))
    done
    if [ -z "$iface" ]; then
        log "no interface with MAC ${mac:-?} (ethernet $eth_id): network not configured"
    else
        ip link set dev "$iface" up
        if [ "$(value $eth 'dhcp4')" = true ]; then
            log "dhcp on $iface"
            # -b: go on in the background (renewing the lease) once bound,
            # or after the retries if no server answers.
            udhcpc -i "$iface" -s /init -t 8 -T 2 -b >/dev/null 2>&1
        fi
        for a in $(sed -n 's/^addresses=//p' $eth | safe); do
            ip addr add "$a" dev "$iface" && log "$iface has $a"
        done
        gw=$(value $eth 'gateway4' | safe)
        # routes: items of `to` and `via`; the default route is the one
        # whose `to` is 0.0.0.0/0 or default.
        gw_route=$(awk -F= '
            $1 == "routes.-" { to = ""; via = "" }
            $1 == "routes.-.to" { to = $2 }
            $1 == "routes.-.via" { via = $2 }
            (to == "0.0.0.0/0" || to == "default") && via != "" { print via; exit }
        ' $eth | safe)
        gw=${gw_route:-$gw}
        if [ -n "$gw" ]; then
            ip route replace default via "$gw" dev "$iface" && log "default route via $gw"
        fi
        dns=$(sed -n 's/^nameservers\.addresses=//p' $eth | safe)
        if [ -n "$dns" ]; then
            : >/etc/resolv.conf
            for d in $dns; do
                echo "nameserver $d" >>/etc/resolv.conf
            done
        fi
    fi
fi

# --- SSH keys (no sshd here: the file is what tests check) ------------------

if [ -f /tmp/user-data.flat ]; then
    mkdir -p /root/.ssh
    chmod 700 /root/.ssh
    sed -n 's/^\(.*\.\)\{0,1\}ssh_authorized_keys=\(..*\)$/\2/p' /tmp/user-data.flat >/root/.ssh/authorized_keys
    chmod 600 /root/.ssh/authorized_keys
    log "$(grep -c . /root/.ssh/authorized_keys) ssh key(s) installed"
fi
# --- Bootstrap (hybrid_api::bootstrap) ----------------------------------------

# What cloud-init's write_files would do, then its runcmd: the document
# and the secret go to /etc/hybrid, and the command runs with them.
bootstrap=""
if [ -f /mnt/seed/hybrid/bootstrap.json ]; then
    mkdir -p /etc/hybrid
    cp /mnt/seed/hybrid/bootstrap.json /etc/hybrid/bootstrap.json
    secret=""
    if [ -f /mnt/seed/hybrid/bootstrap-secret.json ]; then
        (umask 077 && cp /mnt/seed/hybrid/bootstrap-secret.json /etc/hybrid/bootstrap-secret.json)
        secret=/etc/hybrid/bootstrap-secret.json
    fi
    bootstrap=$(/usr/local/bin/hybrid-bootstrap /etc/hybrid/bootstrap.json $secret)
fi
umount /mnt/seed 2>/dev/null

# --- Power button -----------------------------------------------------------

# Listening before the report: the agent may send system_powerdown as soon
# as it has read it.
/init power-watch &
i=0
while [ ! -e /run/power-watch ] && [ $i -lt 50 ]; do
    usleep 20000
    i=$((i + 1))
done

# --- Report -----------------------------------------------------------------

addresses=""
if [ -n "$iface" ]; then
    for a in $(ip -o -4 addr show dev "$iface" | awk '{ print $4 }' | safe); do
        addresses="$addresses${addresses:+,}\"$a\""
    done
fi
report="{\"hybrid_ready\":{\"instance_id\":\"$instance_id\",\"hostname\":\"$host_name\",\"addresses\":[$addresses]${bootstrap:+,\"bootstrap\":$bootstrap}}}"
# Raw: no \r added before the newline, no echo of what the host might send.
stty -F /dev/ttyS1 raw -echo 2>/dev/null
printf '%s\n' "$report" >/dev/ttyS1
log "ready: $report"

# A TCP check besides ping: port 80 serves the report.
mkdir -p /www
printf '%s\n' "$report" >/www/index.html
httpd -p 80 -h /www

exec /bin/busybox init
