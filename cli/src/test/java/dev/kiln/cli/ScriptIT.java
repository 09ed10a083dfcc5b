package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.ext4.Ext4Reader;
import dev.kiln.ext4.ExternalTools;
import dev.kiln.ext4.FileStat;
import dev.kiln.ext4.FileType;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * --script as a build step: namespaces, mounts that never reach the image, ordering, failure,
 * interrupts, and the rootless path with and without a subordinate id range (run as users the
 * test makes, since CI runs as root).
 */
class ScriptIT {
    private Path work;

    @BeforeEach
    void setUp() throws Exception {
        TestKernel.need(ExternalTools.isRoot(), "the script tests make their bases (devices, owners, capabilities) as root");
        ExternalTools.require("busybox");
        ExternalTools.require("unshare");
        work = Unprivileged.workDir();
    }

    @AfterEach
    void tearDown() throws Exception {
        if (work != null) {
            ExternalTools.run(List.of("rm", "-rf", work.toString()));
        }
    }

    /** A busybox base with what a user namespace cannot hold: a device, a foreign owner, a capability, a trusted xattr. */
    private Path base() throws Exception {
        Path base = work.resolve("base");
        Files.createDirectories(base.resolve("bin"));
        Files.createDirectories(base.resolve("etc"));
        Files.createDirectories(base.resolve("dev"));
        Files.copy(ExternalTools.require("busybox"), base.resolve("bin/busybox"));
        Files.setPosixFilePermissions(base.resolve("bin/busybox"), PosixFilePermissions.fromString("rwxr-xr-x"));
        for (String tool : List.of("sh", "echo", "cat", "id", "chown", "chmod", "mkdir", "touch", "sleep", "env", "sort",
                "ls", "grep", "rm", "stat", "wc")) {
            Files.createSymbolicLink(base.resolve("bin/" + tool), Path.of("busybox"));
        }
        Files.writeString(base.resolve("etc/hosts"), "127.0.0.1 base-hosts\n");
        Files.writeString(base.resolve("etc/far"), "owned outside any id map\n");
        ok(List.of("chown", "300000:300000", base.resolve("etc/far").toString()));
        ok(List.of("mknod", "-m", "666", base.resolve("dev/null").toString(), "c", "1", "3"));
        ok(List.of("setcap", "cap_net_raw+ep", base.resolve("bin/busybox").toString()));
        ok(List.of("setfattr", "-n", "trusted.kiln", "-v", "kept", base.resolve("etc/hosts").toString()));
        ok(List.of("chmod", "-R", "a+rX", work.toString()));
        return base;
    }

    /** The base as a tarball with every xattr, which an unprivileged build can read (dir: needs root for trusted.*). */
    private Path baseTar() throws Exception {
        Path base = base();
        Path tar = work.resolve("base.tar");
        ok(List.of("tar", "-C", base.toString(), "--numeric-owner", "--xattrs", "--xattrs-include=*", "-cf", tar.toString(),
                "."));
        ok(List.of("chmod", "a+r", tar.toString()));
        return tar;
    }

    private static void ok(List<String> cmd) throws Exception {
        var r = ExternalTools.run(cmd);
        assertEquals(0, r.exit(), cmd + ": " + r.out());
    }

    private Path script(String name, String text) throws Exception {
        Path s = work.resolve(name);
        Files.writeString(s, text);
        Files.setPosixFilePermissions(s, PosixFilePermissions.fromString("rw-r--r--"));
        return s;
    }

    private static String text(Ext4Reader r, String path) throws Exception {
        return new String(r.open(path).readAllBytes(), StandardCharsets.UTF_8);
    }

    private static void assertNoStaging(Path dir) throws Exception {
        assertNoStaging(dir, "");
    }

    private static void assertNoStaging(Path dir, String log) throws Exception {
        try (var s = Files.list(dir)) {
            List<String> left = s.map(p -> p.getFileName().toString()).filter(n -> n.startsWith(".")).toList();
            assertTrue(left.isEmpty(), "no staging or temporary files in " + dir + ": " + left + "\n" + log);
        }
        String mounts = Files.readString(Path.of("/proc/self/mounts"));
        assertFalse(mounts.contains(".kiln-stage"), mounts);
    }

    @Test
    void scriptsRunInOrderWithMountsThatNeverReachTheImage() throws Exception {
        Path base = base();
        String hostResolv = Files.readString(Path.of("/etc/resolv.conf"));
        Path first = script("first.sh", "set -e\n"
                + "test -r /proc/self/status && echo proc-ok\n"
                + "echo x > /dev/null && echo dev-ok\n"
                + "ls /dev/pts/ptmx >/dev/null && test -d /dev/shm && echo pts-ok\n"
                + "touch /sys/kiln 2>/dev/null && echo sys-writable || echo sys-ro\n"
                + "cat /etc/resolv.conf > /etc/seen-resolv\n"
                + "echo 'nameserver 192.0.2.99' > /etc/resolv.conf\n"
                + "echo 'written by the script' > /etc/hosts\n"
                + "env | sort | grep -v '^PWD=\\|^SHLVL=' > /etc/seen-env\n"
                + "echo first > /etc/order\n");
        Path second = script("second.sh", "set -e\ngrep -q first /etc/order\necho second >> /etc/order\n");
        Path out = work.resolve("out/rootfs.ext4");
        Files.createDirectories(out.getParent());
        var r = CliRunner.run("build", "--image", "dir:" + base, "--script", first.toString(), "--script",
                second.toString(), "--env", "FOO=bar baz", "-o", out.toString(), "--size", "64M");
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.err().contains("[first.sh] proc-ok"), "the script's output is streamed with its name: " + r.err());
        assertTrue(r.err().contains("[first.sh] dev-ok") && r.err().contains("[first.sh] pts-ok"), r.err());
        assertTrue(r.err().contains("[first.sh] sys-ro"), r.err());
        ExternalTools.assertFsckClean(out);
        try (Ext4Reader rd = Ext4Reader.open(out)) {
            assertEquals("first\nsecond\n", text(rd, "/etc/order"), "scripts run in order");
            assertEquals(hostResolv, text(rd, "/etc/seen-resolv"), "the script resolves names as the host does");
            assertEquals(0, rd.lookupPath("/etc/resolv.conf", false), "the base had no resolv.conf: the image has none");
            assertEquals("127.0.0.1 base-hosts\n", text(rd, "/etc/hosts"), "hosts is what the base had");
            assertArrayEquals("kept".getBytes(StandardCharsets.UTF_8), rd.xattrs(rd.resolve("/etc/hosts", false))
                    .get("trusted.kiln"));
            assertEquals("FOO=bar baz\nHOME=/root\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
                    + "TERM=dumb\n", text(rd, "/etc/seen-env"), "a clean, documented environment");
            for (String gone : List.of("/proc", "/sys", "/dev/pts", "/dev/shm", "/dev/zero", "/dev/.kiln-script-0")) {
                assertEquals(0, rd.lookupPath(gone, false), gone + " was mounted or made for the script only");
            }
            FileStat nul = rd.stat("/dev/null", java.nio.file.LinkOption.NOFOLLOW_LINKS);
            assertEquals(FileType.CHAR_DEVICE, nul.type());
            assertEquals(3, nul.minor());
        }
        assertNoStaging(out.getParent());
    }

    @Test
    void aBaseResolvConfIsGivenBackExactly() throws Exception {
        Path base = base();
        Files.createSymbolicLink(base.resolve("etc/resolv.conf"), Path.of("../run/resolv.conf"));
        Path s = script("s.sh", "cat /etc/resolv.conf > /etc/seen\nrm -f /etc/resolv.conf 2>/dev/null; echo done\n");
        Path out = work.resolve("r.ext4");
        var r = CliRunner.run("build", "--image", "dir:" + base, "--script", s.toString(), "-o", out.toString(),
                "--size", "64M", "-q");
        assertEquals(0, r.exit(), r.err());
        try (Ext4Reader rd = Ext4Reader.open(out)) {
            assertEquals(Files.readString(Path.of("/etc/resolv.conf")), text(rd, "/etc/seen"));
            assertEquals(FileType.SYMLINK, rd.stat("/etc/resolv.conf", java.nio.file.LinkOption.NOFOLLOW_LINKS).type(), "the base's symlink is back");
            assertEquals("../run/resolv.conf", rd.readLink(rd.resolve("/etc/resolv.conf", false)));
        }
    }

    @Test
    void aFailingScriptShowsItsStatusAndLastLinesAndPublishesNothing() throws Exception {
        Path base = base();
        Path s = script("broken.sh", "echo step one\necho 'E: Unable to locate package nosuch' >&2\nexit 7\n");
        Path out = work.resolve("out/failed.ext4");
        Files.createDirectories(out.getParent());
        var r = CliRunner.run("build", "--image", "dir:" + base, "--script", s.toString(), "-o", out.toString(),
                "--size", "64M", "-q");
        assertEquals(3, r.exit(), r.err());
        assertTrue(r.err().contains("broken.sh: exited with status 7"), r.err());
        assertTrue(r.err().contains("Unable to locate package nosuch"), "the last lines are repeated: " + r.err());
        assertFalse(Files.exists(out));
        assertNoStaging(out.getParent());
    }

    @Test
    void aHangingScriptIsStoppedAtItsDeadline() throws Exception {
        Path base = base();
        Path s = script("hang.sh", "echo before-the-hang\nsleep 600\n");
        Path out = work.resolve("out/hang.ext4");
        Files.createDirectories(out.getParent());
        long t0 = System.nanoTime();
        var r = CliRunner.run("build", "--image", "dir:" + base, "--script", s.toString(), "--script-timeout", "3", "-o",
                out.toString(), "--size", "64M", "-q");
        assertEquals(3, r.exit(), r.err());
        assertTrue(r.err().contains("still running after 3 s; stopped"), r.err());
        assertTrue(r.err().contains("before-the-hang"), "the last lines: " + r.err());
        assertTrue(System.nanoTime() - t0 < TimeUnit.SECONDS.toNanos(60));
        assertFalse(Files.exists(out));
        assertNoStaging(out.getParent());
        assertFalse(ExternalTools.run(List.of("ps", "-eo", "args")).out().contains("sleep 600"), "the script was ended");
    }

    @Test
    void rootlessScriptsGetIdsZeroTo65535AndTheImageEqualsTheRootBuild() throws Exception {
        ExternalTools.require("newuidmap");
        ExternalTools.require("setcap");
        Unprivileged user = Unprivileged.withRange();
        Path tar = baseTar();
        Path s = script("ids.sh", "set -e\n"
                + "echo \"uid=$(id -u)\"\n"
                + "cat /proc/self/uid_map\n"
                + "mkdir -p /var/lib/app\n"
                + "echo data > /var/lib/app/f\n"
                + "chown 42:43 /var/lib/app/f\n"
                + "chown 65534:65534 /var/lib/app\n"
                + "chmod 4755 /bin/busybox 2>/dev/null || true\n"
                + "touch /etc/new && chmod 2751 /etc/new\n");
        Path rootless = work.resolve("rootless.ext4");
        var r = user.run(work, "build", "--image", "tar:" + tar, "--script", s.toString(), "-o", rootless.toString(),
                "--size", "64M");
        assertEquals(0, r.exit(), r.out());
        assertTrue(r.out().contains("[ids.sh] uid=0"), r.out());
        assertTrue(r.out().matches("(?s).*\\[ids.sh\\] +1 +200000 +65535.*"), "ids 1-65535 through the subordinate range: "
                + r.out());
        assertFalse(r.out().contains("no subordinate id range"), r.out());
        ExternalTools.assertFsckClean(rootless);
        Path asRoot = work.resolve("root.ext4");
        var rr = CliRunner.run("build", "--image", "tar:" + tar, "--script", s.toString(), "-o", asRoot.toString(),
                "--size", "64M", "-q");
        assertEquals(0, rr.exit(), rr.err());
        try (Ext4Reader a = Ext4Reader.open(rootless); Ext4Reader b = Ext4Reader.open(asRoot)) {
            assertEquals(42, a.stat("/var/lib/app/f", java.nio.file.LinkOption.NOFOLLOW_LINKS).uid());
            assertEquals(43, a.stat("/var/lib/app/f", java.nio.file.LinkOption.NOFOLLOW_LINKS).gid());
            assertEquals(65534, a.stat("/var/lib/app", java.nio.file.LinkOption.NOFOLLOW_LINKS).uid());
            assertEquals(300000, a.stat("/etc/far", java.nio.file.LinkOption.NOFOLLOW_LINKS).uid(), "an owner outside the map comes back from the source");
            assertEquals(02751, a.stat("/etc/new", java.nio.file.LinkOption.NOFOLLOW_LINKS).mode());
            assertEquals(FileType.CHAR_DEVICE, a.stat("/dev/null", java.nio.file.LinkOption.NOFOLLOW_LINKS).type(), "device nodes come back from the source");
            assertArrayEquals("kept".getBytes(StandardCharsets.UTF_8), a.xattrs(a.resolve("/etc/hosts", false))
                    .get("trusted.kiln"), "trusted.* comes back from the source");
            SameTree.assertSameMetadata(b, a);
        }
    }

    @Test
    void withoutASubordinateRangeKilnSaysSoAndMapsOnlyRoot() throws Exception {
        Unprivileged user = Unprivileged.withoutRange();
        Path tar = baseTar();
        Path s = script("plain.sh", "set -e\necho \"uid=$(id -u)\"\necho made > /etc/made\n");
        Path out = work.resolve("single.ext4");
        var r = user.run(work, "build", "--image", "tar:" + tar, "--script", s.toString(), "-o", out.toString(),
                "--size", "64M");
        assertEquals(0, r.exit(), r.out());
        assertTrue(r.out().contains("kiln-it-nosub has no subordinate id range in /etc/subuid"), r.out());
        assertTrue(r.out().contains("usermod --add-subuids 100000-165535 --add-subgids 100000-165535 kiln-it-nosub"),
                "the command that adds one: " + r.out());
        assertTrue(r.out().contains("[plain.sh] uid=0"), r.out());
        ExternalTools.assertFsckClean(out);
        try (Ext4Reader rd = Ext4Reader.open(out)) {
            assertEquals("made\n", text(rd, "/etc/made"));
            assertEquals(0, rd.stat("/etc/made", java.nio.file.LinkOption.NOFOLLOW_LINKS).uid());
            assertEquals(300000, rd.stat("/etc/far", java.nio.file.LinkOption.NOFOLLOW_LINKS).uid());
            assertEquals(FileType.CHAR_DEVICE, rd.stat("/dev/null", java.nio.file.LinkOption.NOFOLLOW_LINKS).type());
        }
    }

    @Test
    void anInterruptDuringTheScriptLeavesNoStagingMountOrProcess() throws Exception {
        ExternalTools.require("newuidmap");
        Unprivileged user = Unprivileged.withRange();
        Path tar = baseTar();
        Path s = script("slow.sh", "set -e\nmkdir /var\nmkdir -m 700 /var/private\necho x > /var/private/f\n"
                + "chown -R 42:42 /var/private\necho SCRIPT-WAITING\nsleep 600\n");
        Path outDir = Files.createDirectories(work.resolve("out"));
        ok(List.of("chmod", "777", outDir.toString()));
        CountDownLatch waiting = new CountDownLatch(1);
        StringBuffer log = new StringBuffer();
        var started = user.start(work, line -> {
            log.append(line).append('\n');
            if (line.contains("SCRIPT-WAITING")) {
                waiting.countDown();
            }
        }, "build", "--image", "tar:" + tar, "--script", s.toString(), "-o", outDir.resolve("r.ext4").toString(),
                "--size", "64M");
        assertTrue(waiting.await(120, TimeUnit.SECONDS), "the script started: " + log);
        ok(List.of("kill", "-INT", Long.toString(started.process().pid())));
        assertTrue(started.process().waitFor(60, TimeUnit.SECONDS), log.toString());
        started.output().join(5000);
        assertEquals(130, started.process().exitValue(), log.toString());
        assertNoStaging(outDir, log.toString());
        try (var st = Files.list(outDir)) {
            assertEquals(0, st.count(), "nothing published");
        }
        var ps = ExternalTools.run(List.of("ps", "-eo", "pid,args"));
        assertFalse(ps.out().contains("sleep 600"), "the script's processes ended: " + ps.out());
    }
}
