package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.ext4.Ext4Reader;
import dev.kiln.ext4.ExternalTools;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** --script runs chrooted in the assembled root (root only here; CI runs as root). */
class ScriptIT {
    @TempDir Path tmp;

    @Test
    void scriptChangesTheRootBeforeTheImageIsWritten() throws Exception {
        if (!ExternalTools.isRoot()) {
            Assumptions.abort("--script is tested as root (chroot); CI runs as root");
        }
        Path busybox = ExternalTools.require("busybox");
        Path base = tmp.resolve("base");
        Files.createDirectories(base.resolve("bin"));
        Files.createDirectories(base.resolve("etc"));
        Files.copy(busybox, base.resolve("bin/busybox"));
        Files.setPosixFilePermissions(base.resolve("bin/busybox"), java.nio.file.attribute.PosixFilePermissions.fromString("rwxr-xr-x"));
        for (String tool : List.of("sh", "echo", "chmod", "rm", "mkdir", "chown", "cat")) {
            Files.createSymbolicLink(base.resolve("bin/" + tool), Path.of("busybox"));
        }
        Files.writeString(base.resolve("etc/motd"), "old\n");
        Files.writeString(base.resolve("etc/owned"), "owned by 1234\n");
        var own = ExternalTools.run(List.of("chown", "1234:5678", base.resolve("etc/owned").toString()));
        assertEquals(0, own.exit(), own.out());
        Path script = tmp.resolve("setup.sh");
        Files.writeString(script, "set -e\necho made-by-script > /etc/from-script\nchmod 600 /etc/from-script\n"
                + "rm /etc/motd\nmkdir -p /opt/app\necho \"uid=$(cat /etc/owned)\"\n");
        Path out = tmp.resolve("out/rootfs.ext4");
        Files.createDirectories(out.getParent());
        var r = CliRunner.run("build", "--image", "dir:" + base, "--script", script.toString(), "-o", out.toString(), "-q",
                "--size", "64M");
        assertEquals(0, r.exit(), r.err());
        ExternalTools.assertFsckClean(out);
        try (Ext4Reader rd = Ext4Reader.open(out)) {
            assertEquals("made-by-script\n", new String(rd.open("/etc/from-script").readAllBytes(), StandardCharsets.UTF_8));
            assertEquals(0600, rd.stat("/etc/from-script", false).mode());
            assertEquals(0, rd.lookupPath("/etc/motd", false));
            assertTrue(rd.stat("/opt/app", false).isDirectory());
            assertEquals(1234, rd.stat("/etc/owned", false).uid());
            assertEquals(0, rd.lookupPath("/.kiln-script", false));
        }
        try (var s = Files.list(out.getParent())) {
            assertTrue(s.noneMatch(p -> p.getFileName().toString().startsWith(".kiln-stage")), "staging removed");
        }
        Files.writeString(script, "exit 7\n");
        var fail = CliRunner.run("build", "--image", "dir:" + base, "--script", script.toString(), "-o",
                tmp.resolve("out/failed.ext4").toString(), "-q", "--size", "64M");
        assertEquals(3, fail.exit());
        assertTrue(fail.err().contains("exited with status 7"), fail.err());
        assertTrue(!Files.exists(tmp.resolve("out/failed.ext4")));
    }

    @Test
    void withoutRootTheScriptRunsInAUserNamespace() throws Exception {
        if (!ExternalTools.isRoot()) {
            Assumptions.abort("drops to an unprivileged user with setpriv, which needs root");
        }
        Path busybox = ExternalTools.require("busybox");
        ExternalTools.require("setpriv");
        Path jar = Path.of("target/kiln.jar").toAbsolutePath();
        assertTrue(Files.exists(jar), jar.toString());
        // A world-writable work area the unprivileged user can use.
        Path work = Files.createTempDirectory(Path.of("/tmp"), "kiln-userns-");
        try {
            Path base = Files.createDirectories(work.resolve("base/bin"));
            Files.createDirectories(work.resolve("base/etc"));
            Files.copy(busybox, base.resolve("busybox"));
            for (String tool : List.of("sh", "echo", "chmod", "id")) {
                Files.createSymbolicLink(base.resolve(tool), Path.of("busybox"));
            }
            var mk = ExternalTools.run(List.of("mknod", work.resolve("base/etc/null").toString(), "c", "1", "3"));
            assertEquals(0, mk.exit(), mk.out());
            Path script = work.resolve("setup.sh");
            Files.writeString(script, "echo \"uid-in-script=$(id -u)\"\necho made > /etc/new\nchmod 640 /etc/new\n");
            Files.createDirectories(work.resolve("out"));
            assertEquals(0, ExternalTools.run(List.of("chmod", "-R", "a+rwX", work.toString())).exit());
            var r = ExternalTools.run(List.of("setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
                    "java", "-Duser.home=" + work, "-jar", jar.toString(), "build", "--image", "dir:" + work.resolve("base"),
                    "--script", script.toString(), "-o", work.resolve("out/r.ext4").toString(), "--size", "32M"));
            if (r.out().contains("unshare") && r.exit() != 0) {
                Assumptions.abort("unprivileged user namespaces are off here: " + r.out());
            }
            assertEquals(0, r.exit(), r.out());
            assertTrue(r.out().contains("uid-in-script=0"), r.out());
            try (dev.kiln.ext4.Ext4Reader rd = dev.kiln.ext4.Ext4Reader.open(work.resolve("out/r.ext4"))) {
                assertEquals(0, rd.stat("/etc/new", false).uid(), "files the script makes belong to root");
                assertEquals(0640, rd.stat("/etc/new", false).mode());
                var nul = rd.stat("/etc/null", false);
                assertEquals(dev.kiln.ext4.FileType.CHAR_DEVICE, nul.type(), "device nodes survive an unprivileged stage");
                assertEquals(3, nul.minor());
            }
        } finally {
            ExternalTools.run(List.of("rm", "-rf", work.toString()));
        }
    }
}
