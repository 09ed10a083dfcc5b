package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.kiln.ext4.ExternalTools;
import java.io.InputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * The whole Nex workflow in a VM: a base with OpenRC, kiln build --agent, and a Linux kernel
 * booting the image. OpenRC must start the agent through supervise-daemon as user nex, with
 * its output in /home/nex/nex.log, and agetty on ttyS0.
 */
class NexBootIT {
    /** Where .ci/run puts Debian's openrc, libeinfo1 and librc1 packages (apt-get download). */
    static final Path DEBS = Path.of(System.getenv().getOrDefault("KILN_IT_DEBS", "/var/cache/kiln-it/debs"));

    @TempDir Path tmp;

    private static void need(boolean ok, String reason) {
        if (ok) {
            return;
        }
        if ("true".equals(System.getenv("CI"))) {
            fail(reason);
        }
        ExternalTools.skip(reason);
    }

    @Test
    void openRcStartsTheAgentAsNex() throws Exception {
        ExternalTools.require("qemu-system-x86_64");
        ExternalTools.require("busybox");
        ExternalTools.require("agetty");
        ExternalTools.require("dpkg-deb");
        need(ExternalTools.isRoot(), "the OpenRC boot test builds its base as root");
        boolean debs;
        try (var s = Files.list(DEBS)) {
            debs = s.filter(p -> p.getFileName().toString().matches("(openrc|libeinfo1|librc1)_.*\\.deb")).count() == 3;
        } catch (java.nio.file.NoSuchFileException e) {
            debs = false;
        }
        need(debs, "no openrc/libeinfo1/librc1 .deb files in " + DEBS + " (.ci/run downloads them with apt-get download)");
        TestKernel tk = TestKernel.require();
        Path kernel = tk.kernel();
        Path initrd = tk.initrd();

        Path script = tmp.resolve("openrc-base.sh");
        try (InputStream in = NexBootIT.class.getResourceAsStream("/openrc-base.sh")) {
            Files.copy(in, script);
        }
        Files.setPosixFilePermissions(script, PosixFilePermissions.fromString("rwxr-xr-x"));
        Path base = tmp.resolve("base");
        var made = ExternalTools.run(List.of("sh", script.toString(), DEBS.toString(), base.toString()));
        assertEquals(0, made.exit(), made.out());

        Path agent = tmp.resolve("agent");
        Files.writeString(agent, "#!/bin/sh\necho \"AGENT-STARTED as $(id -un) uid $(id -u)\"\nwhile true; do sleep 60; done\n");
        Path image = tmp.resolve("rootfs.ext4");
        // --boot-test: published only once the booted image's service printed its readiness line.
        var b = CliRunner.run("build", "--image", "dir:" + base, "--agent", agent.toString(), "-o", image.toString(),
                "--size", "auto", "--free", "16M", "--boot-test", "--kernel", kernel.toString(), "--initrd", initrd.toString(),
                "--timeout", "240");
        assertEquals(0, b.exit(), b.err().substring(Math.max(0, b.err().length() - 4000)));
        assertTrue(b.err().contains("the guest printed '" + dev.kiln.image.NexProfile.READY + "'"), b.err());
        ExternalTools.assertFsckClean(image);

        CommandLine cl = Kiln.commandLine();
        StringWriter err = new StringWriter();
        cl.setErr(new PrintWriter(err, true));
        cl.setOut(new PrintWriter(new StringWriter(), true));
        int code = cl.execute("boot", image.toString(), "--kernel", kernel.toString(), "--initrd", initrd.toString(),
                "--expect", "KILNCHECK agent=[AGENT-STARTED as nex uid 1000] status=[ * status: started] agetty=running",
                "--timeout", "240");
        String console = err.toString();
        assertEquals(0, code, "boot console:\n" + console.substring(Math.max(0, console.length() - 4000)));
        assertTrue(console.contains("Starting agent"), console);
    }
}
