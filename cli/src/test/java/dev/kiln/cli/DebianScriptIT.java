package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.ext4.Ext4Reader;
import dev.kiln.ext4.ExternalTools;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/**
 * Nex's recipe on Debian, without root: a bookworm minbase tarball (no /etc/resolv.conf, as
 * images from registries have none), a --script that installs OpenRC from Debian's real
 * repository, --agent, and a boot until the agent's readiness line. The same build as root
 * must give the same owners, modes, devices and capabilities.
 */
class DebianScriptIT {
    /** Made by .ci/run: debootstrap --variant=minbase bookworm, without etc/resolv.conf, tarred with xattrs. */
    static final Path MINBASE = Path.of(System.getenv().getOrDefault("KILN_IT_MINBASE",
            "/var/cache/kiln-it/minbase-bookworm.tar"));

    /** As Nex's setup installs its packages; iputils-ping's postinst sets a file capability with setcap. */
    static final String SETUP = "set -e\n"
            + "export DEBIAN_FRONTEND=noninteractive\n"
            + "apt-get update\n"
            + "apt-get install -y openrc util-linux libcap2-bin iputils-ping\n"
            + "apt-get clean\n";

    private Path work;

    @AfterEach
    void tearDown() throws Exception {
        if (work != null) {
            ExternalTools.run(List.of("rm", "-rf", work.toString()));
        }
    }

    @Test
    void rootlessAptGetInstallBuildsTheSameImageAsRootAndBootsToTheAgent() throws Exception {
        TestKernel.need(Files.isRegularFile(MINBASE), MINBASE + " is missing (.ci/run makes it with debootstrap)");
        ExternalTools.require("qemu-system-x86_64");
        ExternalTools.require("newuidmap");
        Unprivileged user = Unprivileged.withRange();
        TestKernel tk = TestKernel.require();
        work = Unprivileged.workDir();
        Path script = work.resolve("setup.sh");
        Files.writeString(script, SETUP);
        Path agent = work.resolve("agent");
        Files.writeString(agent, "#!/bin/sh\necho \"AGENT-STARTED as $(id -un) uid $(id -u)\"\nwhile true; do sleep 60; done\n");
        ExternalTools.run(List.of("chmod", "-R", "a+rX", work.toString()));
        ExternalTools.run(List.of("chmod", "755", agent.toString()));

        Path rootless = work.resolve("rootless.ext4");
        var r = user.run(work, "build", "--image", "tar:" + MINBASE, "--script", script.toString(), "--agent",
                agent.toString(), "--init", "/sbin/openrc-init", "-o", rootless.toString(), "--size", "768M");
        assertEquals(0, r.exit(), tail(r.out()));
        assertFalse(r.out().contains("no subordinate id range"), r.out());
        assertTrue(r.out().contains("[setup.sh] Setting up openrc"), "apt-get ran in the script: " + tail(r.out()));
        ExternalTools.assertFsckClean(rootless);

        Path asRoot = work.resolve("root.ext4");
        var rr = CliRunner.run("build", "--image", "tar:" + MINBASE, "--script", script.toString(), "--agent",
                agent.toString(), "--init", "/sbin/openrc-init", "-o", asRoot.toString(), "--size", "768M", "-q");
        assertEquals(0, rr.exit(), tail(rr.err()));

        try (Ext4Reader a = Ext4Reader.open(rootless); Ext4Reader b = Ext4Reader.open(asRoot)) {
            String status = new String(a.open("/var/lib/dpkg/status").readAllBytes(), StandardCharsets.UTF_8);
            assertTrue(status.contains("Package: openrc\nStatus: install ok installed"), "dpkg lists openrc installed");
            assertEquals(0, a.lookupPath("/etc/resolv.conf", false), "resolv.conf as in the base: none");
            assertNotNull(a.xattrs(a.resolve("/bin/ping", true)).get("security.capability"),
                    "the capability iputils-ping's postinst set inside the namespace is in the image");
            assertEquals(04755, a.stat("/usr/bin/passwd").mode(), "setuid bits kept");
            assertEquals(42, a.stat("/etc/shadow").gid(), "group shadow owns /etc/shadow");
            SameTree.assertSameMetadata(b, a);
        }

        CommandLine cl = Kiln.commandLine();
        StringWriter err = new StringWriter();
        cl.setErr(new PrintWriter(err, true));
        cl.setOut(new PrintWriter(new StringWriter(), true));
        int code = cl.execute("boot", rootless.toString(), "--kernel", tk.kernel().toString(), "--initrd",
                tk.initrd().toString(), "--expect", dev.kiln.image.NexProfile.READY, "--timeout", "240");
        assertEquals(0, code, "boot console:\n" + tail(err.toString()));
        assertTrue(err.toString().contains("OpenRC"), tail(err.toString()));
    }

    private static String tail(String s) {
        return s.substring(Math.max(0, s.length() - 5000));
    }
}
