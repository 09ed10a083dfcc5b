#!/bin/sh
# Builds a minimal OpenRC root for the boot test: Debian's openrc (from .deb files), busybox,
# agetty and the host's shared libraries, plus devfs/procfs/sysfs services as Alpine has them,
# and a check service that reports the agent's log on the console and powers off.
# Usage: openrc-base.sh DEBDIR ROOT
set -eu
debs="$1"
R="$2"
mkdir -p "$R"
for d in "$debs"/openrc_*.deb "$debs"/libeinfo1_*.deb "$debs"/librc1_*.deb; do dpkg-deb -x "$d" "$R"; done
mkdir -p "$R/bin" "$R/sbin" "$R/lib64" "$R/lib/x86_64-linux-gnu/security" "$R/etc/init.d" "$R/etc/conf.d" \
  "$R/etc/runlevels/boot" "$R/etc/runlevels/default" "$R/etc/pam.d" "$R/proc" "$R/sys" "$R/dev" "$R/run" \
  "$R/tmp" "$R/root" "$R/home" "$R/var"
ln -sfn ../run "$R/var/run"
cp /bin/busybox "$R/bin/"
for a in $(/bin/busybox --list); do [ -e "$R/bin/$a" ] || ln -s busybox "$R/bin/$a"; done
cp /sbin/agetty "$R/sbin/"
cp -L /lib64/ld-linux-x86-64.so.2 "$R/lib64/"
cp /lib/x86_64-linux-gnu/security/pam_permit.so "$R/lib/x86_64-linux-gnu/security/"
# The shared libraries of every binary, to a fixed point.
for pass in 1 2 3; do
  for f in $(find "$R" -type f \( -perm -u+x -o -name '*.so*' \)); do
    LD_LIBRARY_PATH="$R/lib/x86_64-linux-gnu" ldd "$f" 2>/dev/null | awk '/=> \// {print $3}'
  done | sort -u | while read -r l; do
    b=$(basename "$l")
    [ -e "$R/lib/x86_64-linux-gnu/$b" ] || cp -L "$l" "$R/lib/x86_64-linux-gnu/"
  done
done
ln -sfn /sbin/openrc-init "$R/sbin/init"
touch "$R/etc/insserv.conf"
printf 'auth sufficient pam_permit.so\naccount sufficient pam_permit.so\npassword sufficient pam_permit.so\nsession optional pam_permit.so\n' > "$R/etc/pam.d/other"
for s in procfs:proc:/proc sysfs:sysfs:/sys devfs:devtmpfs:/dev; do
  n=${s%%:*}; rest=${s#*:}; t=${rest%%:*}; m=${rest#*:}
  printf '#!/sbin/openrc-run\ndescription="mount %s"\nstart() {\n  ebegin "Mounting %s"\n  grep -q " %s " /proc/mounts 2>/dev/null || mount -t %s %s %s\n  eend 0\n}\n' \
    "$m" "$m" "$m" "$t" "$t" "$m" > "$R/etc/init.d/$n"
  chmod 755 "$R/etc/init.d/$n"
done
cat > "$R/etc/init.d/kilncheck" <<'CHECK'
#!/sbin/openrc-run
depend() { after agent agetty.ttyS0; }
start() {
  for i in $(seq 1 60); do [ -s /home/nex/nex.log ] && break; sleep 1; done
  getty=no; ps | grep -q '[a]getty' && getty=running
  echo "KILNCHECK agent=[$(cat /home/nex/nex.log 2>&1)] status=[$(rc-service agent status 2>&1 | tail -1)] agetty=$getty" > /dev/console
  poweroff -f
}
CHECK
chmod 755 "$R/etc/init.d/kilncheck"
ln -sfn /etc/init.d/kilncheck "$R/etc/runlevels/default/kilncheck"
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$R/etc/passwd"
printf 'root:x:0:\n' > "$R/etc/group"
printf 'root:*::0:::::\n' > "$R/etc/shadow"
printf 'console\n' > "$R/etc/securetty"
