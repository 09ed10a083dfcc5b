package dev.kiln.cli;

import dev.kiln.ext4.Ext4Reader;
import dev.kiln.ext4.Ext4Verifier;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.zip.GZIPInputStream;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/**
 * Boots an image as the root file system of a microVM and waits for a line on the serial
 * console: the check that vets a rootfs before it is published.
 */
@Command(name = "boot",
        description = {"Boots IMAGE as the root disk of a microVM (firecracker, else QEMU microvm) and watches the serial console.",
            "Exits 0 when the guest prints TEXT (without --expect: when it powers off by itself), 1 on timeout, "
                + "kernel panic or a VM that stops first. The image is not modified unless --writable is given."})
final class BootCommand extends StandardOptions implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Parameters(index = "0", paramLabel = "IMAGE", description = "An ext4 image (a .gz is decompressed to a temporary copy).")
    Path image;

    @Mixin VmOptions vm;

    @Option(names = "--expect", paramLabel = "TEXT",
            description = "Text the guest must print (never matched in the kernel's echo of its command line).")
    String expect;

    @Option(names = "--writable", description = "Boot the image itself, so what the guest writes stays (default: a throw-away copy).")
    boolean writable;

    @Option(names = "--verify-after", description = "With --writable: check the file system after the guest stopped "
            + "(as kiln verify, including a journal left needing recovery).")
    boolean verifyAfter;

    @Option(names = "--log", paramLabel = "FILE", description = "Write the guest console to FILE instead of stderr.")
    Path log;

    @Option(names = {"-q", "--quiet"}, description = "Do not show the guest console.")
    boolean quiet;

    @Option(names = "--stacktrace", hidden = true) boolean stacktrace;

    /** The VM options shared by kiln boot and kiln build --boot-test. */
    static final class VmOptions {
        @Option(names = "--kernel", paramLabel = "FILE", description = "The guest kernel (bzImage for QEMU, vmlinux for firecracker).")
        Path kernel;

        @Option(names = "--initrd", paramLabel = "FILE", description = "An initramfs, when the kernel needs modules for virtio or ext4.")
        Path initrd;

        @Option(names = "--timeout", paramLabel = "SECONDS", defaultValue = "120", description = "Default: ${DEFAULT-VALUE}.")
        int timeout;

        @Option(names = "--append", paramLabel = "ARGS", description = "Extra kernel command line arguments.")
        String append = "";

        @Option(names = {"--mem", "--memory"}, paramLabel = "MIB", defaultValue = "512", description = "Guest memory in MiB (default: ${DEFAULT-VALUE}).")
        int mem;

        @Option(names = "--cpus", paramLabel = "N", defaultValue = "1", description = "Guest CPUs (default: ${DEFAULT-VALUE}).")
        int cpus;

        @Option(names = "--vmm", paramLabel = "VMM", defaultValue = "auto",
                description = "The VM monitor: ${COMPLETION-CANDIDATES} (default: firecracker when it is on PATH and KVM works, else QEMU).")
        Choices.Vmm vmm;

        @Option(names = "--accel", paramLabel = "ACCEL", defaultValue = "auto",
                description = "KVM or software emulation: ${COMPLETION-CANDIDATES} (default: KVM when a real kvm_intel/kvm_amd module is loaded).")
        Choices.Accel accel;

        @Option(names = "--qemu", paramLabel = "PATH", description = "The QEMU binary (default: qemu-system-<arch>).")
        String qemu;

        void check(CommandSpec spec) {
            if (kernel == null) {
                throw new picocli.CommandLine.ParameterException(spec.commandLine(), "Missing required option: '--kernel=FILE'");
            }
            if (timeout <= 0 || mem < 64 || cpus < 1) {
                throw new Errors.UsageException("--timeout must be positive, --mem at least 64 (MiB), --cpus at least 1");
            }
        }

        /** The kernel, and the initramfs when one is given. */
        List<Path> bootFiles() {
            return initrd == null ? List.of(kernel) : List.of(kernel, initrd);
        }

        Microvm microvm() {
            return Microvm.choose(vmm.name(), accel.name(), qemu);
        }

        Microvm.Spec spec(Path disk, boolean writable, String expect) {
            return new Microvm.Spec(kernel, initrd, disk, writable, expect, append, mem, cpus, timeout);
        }
    }

    @Override
    public Integer call() throws Exception {
        vm.check(spec);
        List<Path> files = new java.util.ArrayList<>(List.of(image));
        files.addAll(vm.bootFiles());
        for (Path p : files) {
            if (!Files.isRegularFile(p)) {
                throw new java.nio.file.NoSuchFileException(p.toString());
            }
        }
        boolean gz = image.getFileName().toString().endsWith(".gz");
        if (writable && gz) {
            throw new Errors.UsageException(image + ": --writable boots the image itself, and a .gz cannot be written; "
                    + "decompress it first (gunzip -k)");
        }
        if (verifyAfter && !writable) {
            throw new Errors.UsageException("--verify-after checks what a --writable boot left; add --writable");
        }
        PrintWriter err = spec.commandLine().getErr();
        Microvm m = vm.microvm();
        Path disk = image;
        Path tmp = null;
        if (gz) {
            tmp = Files.createTempFile("kiln-boot-", ".ext4");
            try (InputStream in = new GZIPInputStream(Files.newInputStream(image), 1 << 16);
                    OutputStream out = Files.newOutputStream(tmp)) {
                in.transferTo(out);
            }
            disk = tmp;
        }
        try (PrintWriter logFile = log == null ? null
                : new PrintWriter(Files.newBufferedWriter(log, StandardCharsets.UTF_8), true)) {
            PrintWriter console = logFile != null ? logFile : quiet ? null : err;
            err.println("kiln: booting " + image + " (" + describe(m) + ")");
            err.flush();
            Microvm.Result r = m.boot(vm.spec(disk, writable, expect), console);
            String failed = report(err, image.toString(), r, expect, vm.timeout, console == err);
            int code = Kiln.OK;
            if (failed != null) {
                err.println("error: " + failed);
                code = Kiln.INTERNAL;
            } else if (r.detail() != null) {
                err.println("warning: " + image + ": " + r.detail());
            }
            if (verifyAfter) {
                code = Math.max(code, verify(err));
            }
            return code;
        } finally {
            if (tmp != null) {
                Files.deleteIfExists(tmp);
            }
        }
    }

    static String describe(Microvm m) {
        return (m.vmm() == Microvm.Vmm.FIRECRACKER ? "firecracker" : m.binary()) + ", "
                + (m.accel() == Microvm.Accel.KVM ? "KVM" : "software emulation");
    }

    /**
     * Prints the verdict (and, on failure, the console's last lines when they were not shown);
     * returns null when the boot passed, else the error message.
     */
    static String report(PrintWriter err, String what, Microvm.Result r, String expect, int timeout, boolean shown) {
        String seconds = String.format(java.util.Locale.ROOT, "%.1f s", r.millis() / 1000.0);
        String why = switch (r.outcome()) {
            case PASSED -> null;
            case PANIC -> r.tail().stream().anyMatch(l -> l.contains("No working init found") || l.contains("no init at "))
                    ? "the guest kernel panicked: the image has no init to run (/sbin/init)" : "the guest kernel panicked";
            case STOPPED -> "the VM stopped" + (expect != null ? " before the guest printed '" + expect + "'" : " without powering off cleanly");
            case TIMEOUT -> expect != null ? "the guest did not print '" + expect + "' within " + timeout + " s"
                    : "the guest did not power off within " + timeout + " s";
        };
        if (why == null) {
            err.println("kiln: " + what + " booted in " + seconds + (expect != null ? ": the guest printed '" + expect + "'"
                    : ": the guest powered off"));
            err.flush();
            return null;
        }
        if (!shown && !r.tail().isEmpty()) {
            err.println("kiln: the console's last lines:");
            for (String l : r.tail()) {
                err.println("  | " + l);
            }
            err.flush();
        }
        String hint = r.outcome() == Microvm.Outcome.PANIC ? "; check the image's init (see the console's last lines)"
                : "; see the console's last lines (--timeout to wait longer)";
        return what + ": " + why + hint;
    }

    private int verify(PrintWriter err) throws IOException {
        try (Ext4Reader r = Ext4Reader.open(image)) {
            List<Ext4Verifier.Problem> problems = Ext4Verifier.verify(r);
            if (problems.isEmpty()) {
                err.println("kiln: " + image + ": clean after the boot");
                return Kiln.OK;
            }
            for (Ext4Verifier.Problem p : problems.subList(0, Math.min(problems.size(), 20))) {
                err.println("  " + p);
            }
            err.println("error: " + image + ": " + problems.size() + " problems after the boot; "
                    + "the guest must unmount (or remount read-only) before it powers off");
            return Kiln.INVALID_INPUT;
        }
    }
}
