package dev.kiln.image;

import dev.kiln.ext4.Ext4Writer;
import dev.kiln.ext4.Metadata;
import java.io.IOException;
import java.time.Instant;

/**
 * {@code --init PATH}: makes {@code /sbin/init} a symlink to an init the image already has,
 * e.g. {@code /sbin/openrc-init} on a Debian base where OpenRC was installed without sysvinit.
 */
public final class InitLink implements Source {
    private final String target;
    private final Instant time;

    public InitLink(String target, Instant time) {
        if (!target.startsWith("/")) {
            throw new IllegalArgumentException("--init: give an absolute path in the image, e.g. /sbin/openrc-init: "
                    + target);
        }
        this.target = target;
        this.time = time;
    }

    @Override
    public String describe() {
        return BootCheck.INIT + " -> " + target;
    }

    @Override
    public void applyTo(Ext4Writer w) throws IOException {
        if (!w.exists(target)) {
            throw new InvalidSourceException("--init " + target + ": the image has no " + target
                    + "; give the path of an init the image has (e.g. /sbin/openrc-init, /bin/busybox)");
        }
        if (target.equals(BootCheck.INIT)) {
            return;
        }
        if (w.exists(BootCheck.INIT)) {
            w.remove(BootCheck.INIT);
        }
        if (!w.exists("/sbin")) {
            w.directory("/sbin", Metadata.of(0755, time));
        }
        w.symlink(BootCheck.INIT, Metadata.of(0777, time), target);
    }
}
