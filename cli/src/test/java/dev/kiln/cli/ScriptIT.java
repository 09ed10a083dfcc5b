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
}
