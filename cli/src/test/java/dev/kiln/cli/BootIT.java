package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.ext4.ExternalTools;
import dev.kiln.image.Build;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * kiln boot and build --boot-test with a real Linux kernel under QEMU (software emulation, the
 * microvm machine): a busybox image whose agent runs as /sbin/init, writable boots that must
 * leave a clean file system, and the ways a boot fails.
 */
class BootIT {
    @TempDir Path tmp;
    TestKernel kernel;
    Path base;

    @BeforeEach
    void setUp() throws Exception {
        ExternalTools.require("qemu-system-x86_64");
        Path busybox = ExternalTools.require("busybox");
        kernel = TestKernel.require();
        base = Files.createDirectories(tmp.resolve("base/bin"));
        Files.copy(busybox, base.resolve("busybox"));
        Files.setPosixFilePermissions(base.resolve("busybox"), PosixFilePermissions.fromString("rwxr-xr-x"));
        Files.createSymbolicLink(base.resolve("sh"), Path.of("busybox"));
        base = base.getParent();
    }

    private Path agent(String name, String body) throws Exception {
        Path a = tmp.resolve(name);
        Files.writeString(a, "#!/bin/sh\nPATH=/bin\nbusybox mount -t proc proc /proc\n" + body);
        return a;
    }

    private Path build(String name, Path agent, String... extra) {
        Path image = tmp.resolve(name);
        List<String> args = new ArrayList<>(List.of("build", "--image", "dir:" + base, "-o", image.toString(),
                "--size", "64M", "-q", "--no-checksum-file"));
        if (agent != null) {
            args.addAll(List.of("--agent", agent.toString(), "--agent-init", "pid1"));
        }
        args.addAll(List.of(extra));
        var b = CliRunner.run(args.toArray(String[]::new));
        assertEquals(0, b.exit(), b.err());
        return image;
    }

    private CliRunner.Run boot(Path image, String... extra) {
        List<String> args = new ArrayList<>(List.of("boot", image.toString()));
        args.addAll(List.of(kernel.args()));
        args.addAll(List.of(extra));
        return CliRunner.run(args.toArray(String[]::new));
    }

    @Test
    void busyboxImageBootsAndItsAgentRunsAsInit() throws Exception {
        Path agent = agent("agent", "busybox grep -q ' / ext4 rw' /proc/mounts && root=ext4-rw\n"
                + "echo \"KILN-AGENT-UP pid=$$ root=$root user=$(busybox id -u nex):$(busybox id -g nex)\"\n"
                + "while true; do busybox sleep 60; done\n");
        Path image = build("rootfs.ext4.gz", agent);
        String before = Build.sha256(image);
        var r = boot(image, "--expect", "KILN-AGENT-UP pid=1 root=ext4-rw user=1000:1000", "--timeout", "120");
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.err().contains("software emulation") || r.err().contains("KVM"), r.err());
        assertTrue(r.err().contains("Run /init as init process"), "the console is streamed to stderr");
        assertEquals(before, Build.sha256(image), "a boot without --writable never changes the image");
    }

    @Test
    void bootTestPublishesOnlyAnImageThatBoots() throws Exception {
        Path good = agent("good", "echo AGENT-READY\nwhile true; do busybox sleep 60; done\n");
        Path image = build("ok.ext4", good, "--boot-test", "--kernel", kernel.kernel().toString(),
                "--initrd", kernel.initrd().toString(), "--boot-expect", "AGENT-READY");
        assertTrue(Files.isRegularFile(image));

        Path bad = agent("bad", "echo starting\nexit 3\n");
        Path out = tmp.resolve("out");
        Files.createDirectories(out);
        var r = CliRunner.run("build", "--image", "dir:" + base, "--agent", bad.toString(), "--agent-init", "pid1",
                "-o", out.resolve("bad.ext4").toString(), "--size", "64M", "-q", "--boot-test", "--boot-expect", "AGENT-READY",
                "--kernel", kernel.kernel().toString(), "--initrd", kernel.initrd().toString());
        assertEquals(1, r.exit(), r.err());
        assertTrue(r.err().contains("panicked") && r.err().contains("was not written"), r.err());
        assertTrue(r.err().contains("Attempted to kill init"), "the console's last lines are shown: " + r.err());
        try (Stream<Path> s = Files.list(out)) {
            assertEquals(List.of(), s.toList(), "a failed boot test leaves nothing behind");
        }

        var usage = CliRunner.run("build", "--image", "dir:" + base, "--agent", good.toString(), "--agent-init", "pid1",
                "-o", out.resolve("x.ext4").toString(), "--size", "64M", "--boot-test", "--kernel", kernel.kernel().toString());
        assertEquals(2, usage.exit(), usage.err());
        assertTrue(usage.err().contains("--boot-expect"), usage.err());
    }

    @Test
    void writableBootKeepsWhatTheGuestWroteAndLeavesItClean() throws Exception {
        // A guest that unmounts cleanly (remount read-only) and powers off by itself.
        Path tidy = agent("tidy", "echo written-in-guest > /home/nex/proof\nbusybox mkdir -p /home/nex/d/e\n"
                + "busybox sync\nbusybox mount -o remount,ro / || echo REMOUNT-FAILED\nbusybox poweroff -f\n");
        Path image = build("tidy.ext4", tidy);
        var r = boot(image, "--writable", "--verify-after", "-q");
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.err().contains("the guest powered off") && r.err().contains("clean after the boot"), r.err());
        assertCleanWith(image, "/home/nex/proof", "written-in-guest\n");

        // A guest that never stops: after the expected text kiln shuts it down (SysRq sync,
        // remount read-only, power off), so nothing needs journal recovery.
        Path forever = agent("forever", "echo still-here > /home/nex/proof\necho GUEST-READY\n"
                + "while true; do busybox sleep 60; done\n");
        Path image2 = build("forever.ext4", forever);
        var r2 = boot(image2, "--writable", "--verify-after", "--expect", "GUEST-READY", "-q");
        assertEquals(0, r2.exit(), r2.err());
        assertFalse(r2.err().contains("warning"), r2.err());
        assertCleanWith(image2, "/home/nex/proof", "still-here\n");

        Path gz = build("published.ext4.gz", tidy);
        var g = boot(gz, "--writable");
        assertEquals(2, g.exit(), g.err());
        assertTrue(g.err().contains("a .gz cannot be written"), g.err());
    }

    private void assertCleanWith(Path image, String path, String content) throws Exception {
        ExternalTools.assertFsckClean(image);
        var h = ExternalTools.run(List.of("dumpe2fs", "-h", image.toString()));
        assertFalse(h.out().contains("needs_recovery"), "e2fsck -fn does not replay the journal, so check the flag: " + h.out());
        var out = new java.io.ByteArrayOutputStream();
        var old = ImageCommands.Cat.stdout;
        ImageCommands.Cat.stdout = out;
        try {
            var c = CliRunner.run("cat", image.toString(), path);
            assertEquals(0, c.exit(), c.err());
        } finally {
            ImageCommands.Cat.stdout = old;
        }
        assertEquals(content, out.toString(java.nio.charset.StandardCharsets.UTF_8));
    }

    @Test
    void aPromptWithoutNewlineIsMatchedAsItArrives() throws Exception {
        Path prompt = agent("prompt", "printf 'kiln-login: '\nwhile true; do busybox sleep 60; done\n");
        Path image = build("prompt.ext4", prompt);
        var r = boot(image, "--expect", "kiln-login: ", "--timeout", "60", "-q");
        assertEquals(0, r.exit(), "a prompt has no newline after it, and must still match: " + r.err());
    }

    @Test
    void aWritableBootThatTimesOutIsStillShutDownCleanly() throws Exception {
        Path busy = agent("busy", "echo written > /home/nex/proof\nbusybox sync\necho GUEST-UP\n"
                + "while true; do busybox sleep 60; done\n");
        Path image = build("busy.ext4", busy);
        var r = boot(image, "--writable", "--expect", "NEVER-PRINTED", "--timeout", "20", "-q");
        assertEquals(1, r.exit(), r.err());
        assertTrue(r.err().contains("did not print 'NEVER-PRINTED' within 20 s"), r.err());
        assertFalse(r.err().contains("may need journal recovery"), r.err());
        assertCleanWith(image, "/home/nex/proof", "written\n");
    }

    @Test
    void failedBootsExitOneWithTheReason() throws Exception {
        Path noInit = build("noinit.ext4", null);
        var r = boot(noInit, "--expect", "NEVER");
        assertEquals(1, r.exit(), r.err());
        assertTrue(r.err().contains("has no init to run"), r.err());

        Path panics = build("panics.ext4", agent("exits", "echo bye\nexit 3\n"));
        r = boot(panics, "--expect", "NEVER", "-q");
        assertEquals(1, r.exit(), r.err());
        assertTrue(r.err().contains("the guest kernel panicked") && r.err().contains("bye"), r.err());

        Path silent = build("silent.ext4", agent("silent", "while true; do busybox sleep 60; done\n"));
        r = boot(silent, "--expect", "NEVER", "--timeout", "8", "-q");
        assertEquals(1, r.exit(), r.err());
        assertTrue(r.err().contains("did not print 'NEVER' within 8 s"), r.err());

        Path quits = build("quits.ext4", agent("quits", "busybox poweroff -f\n"));
        r = boot(quits, "--expect", "NEVER", "-q");
        assertEquals(1, r.exit(), r.err());
        assertTrue(r.err().contains("the VM stopped before the guest printed 'NEVER'"), r.err());

        // The kernel echoes its command line; text found only there is not the guest speaking.
        r = boot(quits, "--expect", "root=/dev/vda", "-q");
        assertEquals(1, r.exit(), r.err());
    }
}
