package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.ext4.Ext4Reader;
import dev.kiln.ext4.ExternalTools;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** kiln build --agent from an Alpine-like base tree, end to end through the command line. */
class NexBuildIT {
    @TempDir Path tmp;

    private Path alpineLikeBase() throws Exception {
        Path b = tmp.resolve("base");
        for (String d : List.of("bin", "sbin", "etc/init.d", "etc/runlevels/boot", "etc/runlevels/default", "home", "root",
                "tmp", "usr/bin")) {
            Files.createDirectories(b.resolve(d));
        }
        Files.writeString(b.resolve("sbin/openrc-run"), "#!/bin/sh\n");
        for (String s : List.of("devfs", "procfs", "sysfs", "agetty")) {
            Files.writeString(b.resolve("etc/init.d/" + s), "#!/sbin/openrc-run\n");
        }
        Files.writeString(b.resolve("etc/passwd"), "root:x:0:0:root:/root:/bin/ash\n");
        Files.writeString(b.resolve("etc/group"), "root:x:0:root\n");
        Files.writeString(b.resolve("etc/shadow"), "root:*::0:::::\n");
        Files.writeString(b.resolve("etc/securetty"), "console\n");
        Files.writeString(b.resolve("etc/motd"), "Welcome to Alpine!\n");
        Path tar = tmp.resolve("base.tar.gz");
        var r = ExternalTools.run(List.of("tar", "--numeric-owner", "--owner=0", "--group=0", "-czf", tar.toString(), "-C",
                b.toString(), "."));
        assertEquals(0, r.exit(), r.out());
        return tar;
    }

    private static String text(Ext4Reader r, String p) throws Exception {
        return new String(r.open(p).readAllBytes(), StandardCharsets.UTF_8);
    }

    @Test
    void agentBuildMatchesWhatNexRootfsMade() throws Exception {
        Path base = alpineLikeBase();
        Path agent = tmp.resolve("nex-agent");
        Files.write(agent, new byte[200_000]);
        Files.writeString(tmp.resolve("extra.conf"), "key=value\n");
        Path out = tmp.resolve("rootfs.ext4.gz");
        var r = CliRunner.run("build", "--image", "tar:" + base, "--agent", agent.toString(), "-o", out.toString(),
                "--add", tmp.resolve("extra.conf") + ":/etc/nex/extra.conf:0600:1000:1000", "--size", "auto",
                "--free", "32M", "--json", "-q", "--no-boot-check"); // a stand-in base and agent: not bootable
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("\"output\""), r.out());
        Path img = tmp.resolve("rootfs.ext4");
        var gunzip = ExternalTools.run(List.of("sh", "-c", "gunzip -c '" + out + "' > '" + img + "'"));
        assertEquals(0, gunzip.exit(), gunzip.out());
        ExternalTools.assertFsckClean(img);
        try (Ext4Reader rd = Ext4Reader.open(img)) {
            assertEquals(200_000, rd.stat("/usr/local/bin/agent", java.nio.file.LinkOption.NOFOLLOW_LINKS).size());
            assertEquals("/etc/init.d/agent", rd.readLink(rd.resolve("/etc/runlevels/boot/agent", false)));
            assertTrue(text(rd, "/etc/passwd").contains("nex:x:1000:1000:nex:/home/nex:/bin/sh"));
            assertTrue(text(rd, "/etc/shadow").startsWith("root:*::0:::::\n"), "root stays locked");
            assertEquals("console\nttyS0\n", text(rd, "/etc/securetty"));
            assertEquals("Welcome to Alpine!\n", text(rd, "/etc/motd"));
            var extra = rd.stat("/etc/nex/extra.conf", java.nio.file.LinkOption.NOFOLLOW_LINKS);
            assertEquals(0600, extra.mode());
            assertEquals(1000, extra.uid());
            long free = rd.freeBlocksCount() * rd.blockSize();
            assertTrue(free >= 32L << 20, "--size auto leaves the headroom asked for: " + free);
        }
    }

    @Test
    void withoutImageTheAgentBuildUsesNexsBase() {
        // Offline: --pull never with an empty cache shows which base it wanted, without the network.
        var r = CliRunner.run("build", "--agent", "/bin/true", "-o", tmp.resolve("x.ext4").toString(), "--pull", "never",
                "--cache", tmp.resolve("cache").toString());
        assertEquals(4, r.exit(), r.err());
        assertTrue(r.err().contains("docker.io/synadia/nex-rootfs:alpine: not in the cache"), r.err());
        var none = CliRunner.run("build", "-o", tmp.resolve("x.ext4").toString());
        assertEquals(2, none.exit());
        assertTrue(none.err().contains("--image is required"), none.err());
    }

    @Test
    void baseWithoutOpenRcExitsThree() throws Exception {
        Path bare = Files.createDirectories(tmp.resolve("bare/etc"));
        Files.writeString(bare.resolve("hostname"), "x\n");
        Path agent = tmp.resolve("agent");
        Files.writeString(agent, "agent");
        var r = CliRunner.run("build", "--image", "dir:" + tmp.resolve("bare"), "--agent", agent.toString(), "-o",
                tmp.resolve("y.ext4").toString());
        assertEquals(3, r.exit());
        assertTrue(r.err().contains("no OpenRC") && r.err().contains("--agent-init pid1"), r.err());
        assertTrue(!Files.exists(tmp.resolve("y.ext4")));
        var pid1 = CliRunner.run("build", "--image", "dir:" + tmp.resolve("bare"), "--agent", agent.toString(),
                "--agent-init", "pid1", "-o", tmp.resolve("y.ext4").toString(), "-q");
        assertEquals(3, pid1.exit(), "a text file cannot be PID 1: " + pid1.err());
        assertTrue(pid1.err().contains("/sbin/init: init is neither an ELF executable nor a #! script"), pid1.err());
        assertTrue(!Files.exists(tmp.resolve("y.ext4")));
        var unchecked = CliRunner.run("build", "--image", "dir:" + tmp.resolve("bare"), "--agent", agent.toString(),
                "--agent-init", "pid1", "--no-boot-check", "-o", tmp.resolve("y.ext4").toString(), "-q");
        assertEquals(0, unchecked.exit(), unchecked.err());
    }
}
