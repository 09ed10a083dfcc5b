package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.kiln.ext4.ExternalTools;
import dev.kiln.image.Build;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A kiln image boots a real Linux kernel under QEMU (software emulation): the kernel mounts it
 * read-write as root, runs the agent as /sbin/init, and the agent can write to it.
 */
class BootIT {
    @TempDir Path tmp;

    private static Path newest(String prefix) throws Exception {
        try (var s = Files.list(Path.of("/boot"))) {
            return s.filter(p -> p.getFileName().toString().startsWith(prefix)).sorted().reduce((a, b) -> b).orElse(null);
        } catch (java.nio.file.NoSuchFileException e) {
            return null;
        }
    }

    @Test
    void builtImageBootsAndRunsTheAgent() throws Exception {
        ExternalTools.require("qemu-system-x86_64");
        Path busybox = ExternalTools.require("busybox");
        Path kernel = newest("vmlinuz-");
        Path initrd = newest("initrd.img-");
        if (kernel == null || initrd == null) {
            String reason = "no kernel and initrd in /boot (apt-get install linux-image-cloud-amd64 initramfs-tools)";
            if ("true".equals(System.getenv("CI"))) {
                fail(reason);
            }
            Assumptions.abort(reason);
        }
        Path base = Files.createDirectories(tmp.resolve("base/bin"));
        Files.copy(busybox, base.resolve("busybox"));
        Files.setPosixFilePermissions(base.resolve("busybox"), PosixFilePermissions.fromString("rwxr-xr-x"));
        Files.createSymbolicLink(base.resolve("sh"), Path.of("busybox"));
        Path agent = tmp.resolve("agent");
        Files.writeString(agent, "#!/bin/sh\n"
                + "/bin/busybox mount -t proc proc /proc\n"
                + "echo written-in-guest > /home/nex/proof && /bin/busybox cat /home/nex/proof\n"
                + "/bin/busybox grep -q ' / ext4 rw' /proc/mounts && echo ROOT-IS-EXT4-RW\n"
                + "/bin/busybox id nex && echo KILN-AGENT-UP\n"
                + "/bin/busybox poweroff -f\n");
        Path image = tmp.resolve("rootfs.ext4.gz");
        var b = CliRunner.run("build", "--image", "dir:" + tmp.resolve("base"), "--agent", agent.toString(),
                "--agent-init", "pid1", "-o", image.toString(), "--size", "64M", "-q");
        assertEquals(0, b.exit(), b.err());
        String before = Build.sha256(image);

        for (String expect : List.of("written-in-guest", "ROOT-IS-EXT4-RW", "KILN-AGENT-UP")) {
            var r = CliRunner.run("boot", image.toString(), "--kernel", kernel.toString(), "--initrd", initrd.toString(),
                    "--expect", expect, "--timeout", "180");
            assertEquals(0, r.exit(), expect + ": " + r.err());
        }
        var never = CliRunner.run("boot", image.toString(), "--kernel", kernel.toString(), "--initrd", initrd.toString(),
                "--expect", "THIS-NEVER-APPEARS", "--timeout", "180");
        assertEquals(3, never.exit());
        assertTrue(never.err().contains("did not print 'THIS-NEVER-APPEARS'"), never.err());
        assertEquals(before, Build.sha256(image), "booting never changes the image");
    }
}
