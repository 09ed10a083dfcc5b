package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** How kiln drives a VM monitor and reads a console, without booting anything. */
class MicrovmTest {
    @TempDir Path tmp;

    private static Microvm.Spec spec(Path disk, boolean writable, String expect) {
        return new Microvm.Spec(Path.of("/k/vmlinuz"), Path.of("/k/initrd"), disk, writable, expect, "quiet", 256, 2, 30);
    }

    @Test
    void qemuMicrovmUnderTcgGetsTheTscFrequencyAndASnapshotDisk() {
        Microvm m = new Microvm(Microvm.Vmm.QEMU, Microvm.Accel.TCG, "qemu-system-x86_64", "x86_64");
        List<String> cmd = m.qemuCommand(spec(Path.of("/i/a,b.ext4"), false, "X"), "microvm", 2_596_144);
        String line = String.join(" ", cmd);
        assertTrue(line.contains("-M microvm -accel tcg"), line);
        assertTrue(line.contains("-m 256 -smp 2"), line);
        assertTrue(line.contains("file=/i/a,,b.ext4,format=raw,if=none,snapshot=on"), "commas escaped, throw-away overlay: " + line);
        assertTrue(line.contains("virtio-blk-device,drive=root"), line);
        String append = cmd.get(cmd.indexOf("-append") + 1);
        assertEquals("console=ttyS0 root=/dev/vda rw panic=-1 tsc_early_khz=2596144 quiet", append);

        List<String> w = m.qemuCommand(spec(Path.of("/i/r.ext4"), true, null), "q35", 2_596_144);
        String wl = String.join(" ", w);
        assertFalse(wl.contains("snapshot"), "--writable boots the image itself");
        assertTrue(wl.contains("virtio-blk-pci,drive=root"), wl);
        assertFalse(wl.contains("tsc_early_khz"), "only microvm needs it");
        assertTrue(wl.contains("sysrq_always_enabled"), "a writable guest can be shut down cleanly over the console");
    }

    @Test
    void kvmUsesTheHostCpuAndTheUsersTscSettingWins() {
        Microvm kvm = new Microvm(Microvm.Vmm.QEMU, Microvm.Accel.KVM, "q", "x86_64");
        String line = String.join(" ", kvm.qemuCommand(spec(Path.of("/r"), false, "X"), "microvm", 1000));
        assertTrue(line.contains("-accel kvm -cpu host") && !line.contains("tsc_early_khz"), line);
        Microvm tcg = new Microvm(Microvm.Vmm.QEMU, Microvm.Accel.TCG, "q", "x86_64");
        assertEquals("console=ttyS0 root=/dev/vda rw panic=-1 tsc_early_khz=5", tcg.cmdline("tsc_early_khz=5", "microvm", 1000, false));
        Microvm arm = new Microvm(Microvm.Vmm.QEMU, Microvm.Accel.TCG, "q", "aarch64");
        assertTrue(arm.cmdline("", "virt", 1000, false).startsWith("console=ttyAMA0 "));
    }

    @Test
    void firecrackerNeedsKvm() {
        var e = assertThrows(Errors.UsageException.class, () -> Microvm.choose("firecracker", "tcg", null));
        assertTrue(e.getMessage().contains("--vmm qemu"), e.getMessage());
        assertEquals(Microvm.Vmm.QEMU, Microvm.choose("qemu", "tcg", null).vmm());
        assertEquals(Microvm.Vmm.QEMU, Microvm.choose("auto", "tcg", null).vmm(), "no KVM: QEMU even with firecracker installed");
    }

    @Test
    void firecrackerGetsAConfigFileAndBootsACopy() throws Exception {
        Path kernel = tmp.resolve("vmlinux");
        Files.write(kernel, new byte[4096]);
        Path image = tmp.resolve("rootfs.ext4");
        byte[] data = new byte[3 << 20];
        data[5] = 7;
        data[(2 << 20) + 9] = 9;
        Files.write(image, data);
        Path seen = tmp.resolve("seen.json");
        Path fake = tmp.resolve("firecracker");
        // Stands in for firecracker: keeps its config, checks its disk is a copy, prints a console.
        Files.writeString(fake, "#!/bin/sh\n[ \"$1\" = --no-api ] && [ \"$2\" = --config-file ] || exit 9\n"
                + "cp \"$3\" " + seen + "\n"
                + "disk=$(sed -n 's/.*\"path_on_host\" : \"\\(.*\\)\".*/\\1/p' \"$3\")\n"
                + "cmp -s \"$disk\" " + image + " && [ \"$disk\" != " + image + " ] && echo 'disk: a copy'\n"
                + "echo '[    0.0] Command line: console=ttyS0 READY-LINE'\necho READY-LINE\nsleep 30\n");
        Files.setPosixFilePermissions(fake, PosixFilePermissions.fromString("rwx------"));
        Microvm m = new Microvm(Microvm.Vmm.FIRECRACKER, Microvm.Accel.KVM, fake.toString(), "x86_64");
        StringWriter console = new StringWriter();
        var spec = new Microvm.Spec(kernel, null, image, false, "READY-LINE", "", 128, 1, 20);
        Microvm.Result r = m.boot(spec, new PrintWriter(console, true));
        // PASSED, not TIMEOUT: the stand-in sleeps beyond the 20 s limit, so kiln stopped it at the text.
        assertEquals(Microvm.Outcome.PASSED, r.outcome(), console.toString());
        assertTrue(console.toString().contains("disk: a copy"), console.toString());
        JsonNode cfg = new ObjectMapper().readTree(seen.toFile());
        assertEquals(kernel.toString(), cfg.at("/boot-source/kernel_image_path").asText());
        assertEquals("console=ttyS0 root=/dev/vda rw reboot=k panic=1 pci=off", cfg.at("/boot-source/boot_args").asText());
        assertTrue(cfg.at("/drives/0/is_root_device").asBoolean());
        assertEquals(128, cfg.at("/machine-config/mem_size_mib").asInt());
        assertFalse(Files.exists(Path.of(cfg.at("/drives/0/path_on_host").asText())), "the throw-away copy is removed");

        Path bz = tmp.resolve("bzImage");
        byte[] b = new byte[1024];
        System.arraycopy("HdrS".getBytes(), 0, b, 0x202, 4);
        Files.write(bz, b);
        var e = assertThrows(Errors.UsageException.class,
                () -> m.boot(new Microvm.Spec(bz, null, image, false, "X", "", 128, 1, 5), null));
        assertTrue(e.getMessage().contains("vmlinux"), e.getMessage());
    }

    @Test
    void sparseCopyKeepsTheBytesAndLeavesHoles() throws Exception {
        Path from = tmp.resolve("a");
        byte[] data = new byte[(4 << 20) + 100];
        data[0] = 1;
        data[data.length - 1] = 2;
        Files.write(from, data);
        Path to = Files.createFile(tmp.resolve("b"));
        Microvm.sparseCopy(from, to);
        assertEquals(-1, Files.mismatch(from, to));
    }

    @Test
    void consoleWatch() throws Exception {
        Microvm.Watch w = new Microvm.Watch("HELLO");
        w.line("[    0.000000] Command line: console=ttyS0 HELLO");
        w.line("[    0.1] Kernel command line: HELLO");
        assertEquals(Microvm.Outcome.TIMEOUT, w.await(System.nanoTime()), "the kernel's echo of its command line is not the guest");
        w.line("guest says HELLO\r");
        assertEquals(Microvm.Outcome.PASSED, w.await(System.nanoTime() + 1_000_000_000L));

        Microvm.Watch p = new Microvm.Watch("HELLO");
        p.line("[    1.3] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100");
        assertEquals(Microvm.Outcome.PANIC, p.await(System.nanoTime()));

        Microvm.Watch off = new Microvm.Watch(null);
        off.line("[    1.4] reboot: Power down");
        assertEquals(Microvm.Outcome.PASSED, off.await(System.nanoTime()), "without --expect, powering off is success");
        Microvm.Watch early = new Microvm.Watch("HELLO");
        early.line("[    1.4] reboot: Restarting system");
        assertEquals(Microvm.Outcome.STOPPED, early.await(System.nanoTime()));

        Microvm.Watch many = new Microvm.Watch("X");
        for (int i = 0; i < 100; i++) {
            many.line("line " + i);
        }
        assertEquals(Microvm.TAIL_LINES, many.tail().size());
        assertEquals("line 99", many.tail().get(Microvm.TAIL_LINES - 1));
    }

    @Test
    void aPanicsCauseStaysInTheTailHoweverLongTheDumpAfterIt() throws Exception {
        Microvm.Watch w = new Microvm.Watch("NEVER");
        w.line("kiln-initramfs: no init at /sbin/init in the root file system");
        w.line("[    1.7] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100");
        for (int i = 0; i < Microvm.TAIL_LINES + 10; i++) {
            w.line("[    1.7]  dump_stack_lvl+0x" + i);
        }
        w.line("[    1.8] ---[ end Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100 ]---");
        assertEquals(Microvm.Outcome.PANIC, w.await(System.nanoTime()));
        List<String> tail = w.tail();
        assertTrue(tail.get(0).contains("no init at"), tail.toString());
        assertTrue(tail.get(tail.size() - 1).contains("Kernel panic"), tail.toString());
        String why = BootCommand.report(new java.io.PrintWriter(java.io.Writer.nullWriter()), "x.ext4",
                new Microvm.Result(Microvm.Outcome.PANIC, tail, 1000, null), "NEVER", 60, true);
        assertTrue(why.contains("has no init to run"), why);
    }
}
