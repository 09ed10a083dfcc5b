package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.ext4.ExternalTools;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Images that cannot boot to their agent are refused before they are published, with the fix. */
class BootCheckIT {
    @TempDir Path tmp;

    /** A dynamically linked program of the host (coreutils' true). */
    private static Path dynamicTrue() throws Exception {
        Path t = Path.of("/bin/true").toRealPath();
        var r = ExternalTools.run(List.of("readelf", "-l", t.toString()));
        assertTrue(r.out().contains("Requesting program interpreter"), "/bin/true is dynamically linked here");
        return t;
    }

    private Path busyboxBase(String... initNames) throws Exception {
        Path base = Files.createDirectories(tmp.resolve("base"));
        Files.createDirectories(base.resolve("bin"));
        Files.createDirectories(base.resolve("sbin"));
        Files.createDirectories(base.resolve("etc"));
        Files.copy(ExternalTools.require("busybox"), base.resolve("bin/busybox"));
        Files.setPosixFilePermissions(base.resolve("bin/busybox"), PosixFilePermissions.fromString("rwxr-xr-x"));
        Files.createSymbolicLink(base.resolve("bin/sh"), Path.of("busybox"));
        for (String n : initNames) {
            Files.createSymbolicLink(base.resolve(n.substring(1)), Path.of("../bin/busybox"));
        }
        return base;
    }

    @Test
    void aDynamicallyLinkedAgentOnScratchIsRefusedNamingItsLoader() throws Exception {
        ExternalTools.require("readelf");
        Path out = tmp.resolve("r.ext4");
        var r = CliRunner.run("build", "--image", "scratch", "--agent", dynamicTrue().toString(), "--agent-init", "pid1",
                "-o", out.toString());
        assertEquals(3, r.exit(), r.err());
        assertTrue(r.err().contains("/sbin/init: init (/sbin/init) is dynamically linked, but its loader "
                + "/lib64/ld-linux-x86-64.so.2 is not in the image"), r.err());
        assertTrue(r.err().contains("--host-libs"), "the fix is named: " + r.err());
        assertFalse(Files.exists(out), "nothing published");
        assertFalse(Files.exists(tmp.resolve("r.ext4.sha256")));
    }

    @Test
    void hostLibsMakesTheReadmeAgentBootable() throws Exception {
        Path out = tmp.resolve("r.ext4");
        Path agent = Path.of("../examples/agent.sh").toAbsolutePath().normalize();
        var r = CliRunner.run("build", "--image", "scratch", "--agent", agent.toString(), "--agent-init", "pid1",
                "--host-libs", "-o", out.toString(), "-q");
        assertEquals(0, r.exit(), r.err());
        ExternalTools.assertFsckClean(out);
        var v = CliRunner.run("verify", "--boot", out.toString());
        assertEquals(0, v.exit(), v.out() + v.err());
        assertTrue(v.out().contains("clean, bootable"), v.out());
        String libs = ExternalTools.debugfs(out, "ls -p /lib/x86_64-linux-gnu");
        assertTrue(libs.contains("/libc.so.6/"), libs);
    }

    @Test
    void aBaseWithoutInitIsRefusedWithTheInitToLink() throws Exception {
        Path base = busyboxBase("/sbin/openrc-run", "/sbin/openrc-init");
        Path agent = tmp.resolve("agent");
        Files.writeString(agent, "#!/bin/sh\nexec sleep 1000\n");
        Path out = tmp.resolve("r.ext4");
        var r = CliRunner.run("build", "--image", "dir:" + base, "--agent", agent.toString(), "-o", out.toString());
        assertEquals(3, r.exit(), r.err());
        assertTrue(r.err().contains("/sbin/init: the image has no init"), r.err());
        assertTrue(r.err().contains("add --init /sbin/openrc-init"), r.err());
        assertFalse(Files.exists(out));

        var fixed = CliRunner.run("build", "--image", "dir:" + base, "--agent", agent.toString(), "--init",
                "/sbin/openrc-init", "-o", out.toString());
        assertEquals(0, fixed.exit(), fixed.err());
        for (String svc : List.of("boot/devfs", "boot/procfs", "boot/sysfs", "default/agetty.ttyS0")) {
            assertTrue(fixed.err().contains("warning: /etc/runlevels/" + svc + ": points to "), "dangling runlevel link "
                    + svc + " named: " + fixed.err());
        }
        ExternalTools.assertFsckClean(out);
        var v = CliRunner.run("verify", "--boot", out.toString());
        assertEquals(0, v.exit(), v.out());
        assertTrue(v.out().contains("bootable with warnings"), v.out());
    }

    @Test
    void anAgentForAnotherArchitectureIsRefused() throws Exception {
        Path busybox = ExternalTools.require("busybox");
        String other = dev.kiln.image.OciSource.Platform.host().arch().equals("arm64") ? "amd64" : "arm64";
        Path out = tmp.resolve("r.ext4");
        var r = CliRunner.run("build", "--image", "scratch", "--platform", "linux/" + other, "--agent", busybox.toString(),
                "--agent-init", "pid1", "-o", out.toString());
        assertEquals(3, r.exit(), r.err());
        assertTrue(r.err().contains("is built for " + dev.kiln.image.OciSource.Platform.host().arch()
                + " but the image is for " + other), r.err());
        var ok = CliRunner.run("build", "--image", "scratch", "--agent", busybox.toString(), "--agent-init", "pid1", "-o",
                out.toString(), "-q");
        assertEquals(0, ok.exit(), "a static agent needs nothing: " + ok.err());
    }

    @Test
    void aScriptAgentWhoseInterpreterIsMissingIsRefused() throws Exception {
        Path base = busyboxBase("/sbin/init", "/sbin/openrc-run");
        Path agent = tmp.resolve("agent.py");
        Files.writeString(agent, "#!/usr/bin/env python3\nprint('hi')\n");
        Path out = tmp.resolve("r.ext4");
        var r = CliRunner.run("build", "--image", "dir:" + base, "--agent", agent.toString(), "-o", out.toString());
        assertEquals(3, r.exit(), r.err());
        assertTrue(r.err().contains("the agent (/usr/local/bin/agent) is a script for /usr/bin/env, which is not in the image"),
                r.err());
        Files.createDirectories(base.resolve("usr/bin"));
        Files.createSymbolicLink(base.resolve("usr/bin/env"), Path.of("../../bin/busybox"));
        var r2 = CliRunner.run("build", "--image", "dir:" + base, "--agent", agent.toString(), "-o", out.toString());
        assertEquals(3, r2.exit(), r2.err());
        assertTrue(r2.err().contains("runs python3 through env, but no python3 is in"), r2.err());
    }

    @Test
    void verifyBootAgreesOnImagesMadeByMkfs() throws Exception {
        ExternalTools.require("mkfs.ext4");
        ExternalTools.require("readelf");
        Path good = busyboxBase("/sbin/init");
        Path goodImg = tmp.resolve("good.ext4");
        var m = ExternalTools.run(List.of("mkfs.ext4", "-q", "-F", "-d", good.toString(), goodImg.toString(), "32M"));
        assertEquals(0, m.exit(), m.out());
        var v = CliRunner.run("verify", "--boot", goodImg.toString());
        assertEquals(0, v.exit(), v.out() + v.err());

        Path bad = Files.createDirectories(tmp.resolve("bad/sbin"));
        Files.copy(dynamicTrue(), bad.resolve("init"));
        Path badImg = tmp.resolve("bad.ext4");
        m = ExternalTools.run(List.of("mkfs.ext4", "-q", "-F", "-d", bad.getParent().toString(), badImg.toString(), "32M"));
        assertEquals(0, m.exit(), m.out());
        var vb = CliRunner.run("verify", "--boot", badImg.toString());
        assertEquals(3, vb.exit(), vb.out());
        assertTrue(vb.out().contains("its loader /lib64/ld-linux-x86-64.so.2 is not in the image"), vb.out());
        assertTrue(vb.err().contains("cannot boot"), vb.err());
    }
}
