package dev.kiln.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.PrintWriter;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;

/**
 * Boots a kernel with an ext4 image as its root disk in a microVM and watches the serial
 * console: Firecracker when it is installed, otherwise QEMU's {@code microvm} machine
 * (virtio-mmio, the closest thing to Firecracker) or {@code q35}/{@code virt}. KVM when it
 * really works, software emulation (TCG) otherwise.
 */
final class Microvm {
    enum Vmm { FIRECRACKER, QEMU }

    enum Accel { KVM, TCG }

    /** How a boot ended. */
    enum Outcome {
        /** The expected text appeared (or, without one, the guest powered off by itself). */
        PASSED,
        /** The kernel panicked. */
        PANIC,
        /** The VM stopped (powered off, rebooted, crashed) before the expected text appeared. */
        STOPPED,
        /** The time ran out. */
        TIMEOUT
    }

    /** What to boot and how. */
    record Spec(Path kernel, Path initrd, Path disk, boolean writable, String expect, String append,
            int memMiB, int cpus, int timeoutSeconds) {}

    /** The result: how it ended, the console's last lines, how long it took. */
    record Result(Outcome outcome, List<String> tail, long millis, String detail) {}

    static final int TAIL_LINES = 30;

    private final Vmm vmm;
    private final Accel accel;
    private final String binary;
    private final String arch;

    Microvm(Vmm vmm, Accel accel, String binary, String arch) {
        this.vmm = vmm;
        this.accel = accel;
        this.binary = binary;
        this.arch = arch;
    }

    Vmm vmm() {
        return vmm;
    }

    Accel accel() {
        return accel;
    }

    String binary() {
        return binary;
    }

    /** The machine's architecture as QEMU names it (x86_64, aarch64). */
    static String hostArch() {
        String a = System.getProperty("os.arch", "amd64");
        return a.equals("aarch64") || a.equals("arm64") ? "aarch64" : "x86_64";
    }

    /**
     * Picks the VMM: the one forced, else Firecracker when it is on PATH (and KVM works, which it
     * needs), else QEMU.
     */
    static Microvm choose(String forcedVmm, String forcedAccel, String qemuBinary) {
        String arch = hostArch();
        Accel accel = forcedAccel == null || forcedAccel.equals("auto") ? (kvmWorks() ? Accel.KVM : Accel.TCG)
                : Accel.valueOf(forcedAccel.toUpperCase(Locale.ROOT));
        Vmm vmm;
        if (forcedVmm == null || forcedVmm.equals("auto")) {
            vmm = onPath("firecracker") != null && accel == Accel.KVM ? Vmm.FIRECRACKER : Vmm.QEMU;
        } else {
            vmm = Vmm.valueOf(forcedVmm.toUpperCase(Locale.ROOT));
        }
        if (vmm == Vmm.FIRECRACKER && accel != Accel.KVM) {
            throw new Errors.UsageException("firecracker: needs KVM, and KVM does not work on this machine"
                    + " (no kvm_intel/kvm_amd module or no access to /dev/kvm); use --vmm qemu");
        }
        String binary = vmm == Vmm.FIRECRACKER ? "firecracker"
                : qemuBinary != null ? qemuBinary : "qemu-system-" + arch;
        return new Microvm(vmm, accel, binary, arch);
    }

    /**
     * Whether KVM can run a stock guest. An openable /dev/kvm is not proof: some nested sandboxes
     * expose a /dev/kvm (kvm_pvm, for one) that only runs specially patched guests. A real
     * hypervisor module must be loaded.
     */
    static boolean kvmWorks() {
        Path dev = Path.of("/dev/kvm");
        if (!Files.isReadable(dev) || !Files.isWritable(dev)) {
            return false;
        }
        return Files.isDirectory(Path.of("/sys/module/kvm_intel")) || Files.isDirectory(Path.of("/sys/module/kvm_amd"))
                || (hostArch().equals("aarch64") && Files.isDirectory(Path.of("/sys/module/kvm")));
    }

    static Path onPath(String name) {
        String path = System.getenv("PATH");
        if (path == null) {
            return null;
        }
        for (String d : path.split(":")) {
            Path p = Path.of(d.isEmpty() ? "." : d, name);
            if (Files.isExecutable(p) && !Files.isDirectory(p)) {
                return p;
            }
        }
        return null;
    }

    /** The host's TSC frequency in kHz, which a TCG microvm guest needs (tsc_early_khz), or 0. */
    static long tscKhz() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                if (line.startsWith("cpu MHz")) {
                    return Math.round(Double.parseDouble(line.substring(line.indexOf(':') + 1).trim()) * 1000);
                }
            }
        } catch (IOException | NumberFormatException e) {
            // not Linux, or an unusual cpuinfo: let the guest calibrate
        }
        return 0;
    }

    /** The kernel command line: the console, the root disk, panic handling and the user's extras. */
    String cmdline(String append, String machine, long tscKhz, boolean sysrq) {
        StringBuilder b = new StringBuilder();
        b.append(arch.equals("aarch64") ? "console=ttyAMA0" : "console=ttyS0");
        b.append(" root=/dev/vda rw");
        if (vmm == Vmm.FIRECRACKER) {
            b.append(" reboot=k panic=1 pci=off");
        } else {
            b.append(" panic=-1");
            if (sysrq) {
                b.append(" sysrq_always_enabled");
            }
            if (machine.equals("microvm") && accel == Accel.TCG && tscKhz > 0
                    && (append == null || !append.contains("tsc_early_khz="))) {
                // Without it the guest hangs after "Marking TSC unstable" under TCG.
                b.append(" tsc_early_khz=").append(tscKhz);
            }
        }
        if (append != null && !append.isBlank()) {
            b.append(' ').append(append.trim());
        }
        return b.toString();
    }

    /** The QEMU machine: microvm on x86 when this QEMU has it, else q35; virt on arm64. */
    String qemuMachine() {
        if (arch.equals("aarch64")) {
            return "virt";
        }
        try {
            Process p = new ProcessBuilder(binary, "-machine", "help").redirectErrorStream(true).start();
            p.getOutputStream().close();
            String out;
            try {
                out = dev.kiln.image.Subprocess.drainAndWait(p, 10, binary + " -machine help");
            } catch (java.io.InterruptedIOException e) {
                Thread.currentThread().interrupt();
                return "q35";
            }
            for (String line : out.split("\n")) {
                if (line.startsWith("microvm ")) {
                    return "microvm";
                }
            }
            return "q35";
        } catch (IOException e) {
            throw new Errors.UsageException(binary + ": cannot run QEMU (" + e.getMessage()
                    + "); install qemu-system-" + arch.replace("_", "-").replace("x86-64", "x86")
                    + " or give --qemu PATH");
        }
    }

    List<String> qemuCommand(Spec s, String machine, long tscKhz) {
        List<String> cmd = new ArrayList<>(List.of(binary, "-M", machine, "-accel", accel == Accel.KVM ? "kvm" : "tcg"));
        if (accel == Accel.KVM) {
            cmd.addAll(List.of("-cpu", "host"));
        } else if (arch.equals("aarch64")) {
            cmd.addAll(List.of("-cpu", "max"));
        }
        cmd.addAll(List.of("-m", Integer.toString(s.memMiB()), "-smp", Integer.toString(s.cpus()),
                "-nographic", "-no-reboot", "-nodefaults",
                // mon:stdio: the console on stdin/stdout, and Ctrl-A b sends a serial break (SysRq).
                "-serial", "mon:stdio",
                "-kernel", s.kernel().toString(), "-append", cmdline(s.append(), machine, tscKhz, s.writable())));
        if (s.initrd() != null) {
            cmd.addAll(List.of("-initrd", s.initrd().toString()));
        }
        cmd.addAll(List.of("-drive", "id=root,file=" + s.disk().toString().replace(",", ",,") + ",format=raw,if=none"
                + (s.writable() ? "" : ",snapshot=on")));
        cmd.addAll(List.of("-device", machine.equals("q35") ? "virtio-blk-pci,drive=root" : "virtio-blk-device,drive=root"));
        return cmd;
    }

    /** Firecracker's configuration file (--config-file, no API socket): kernel, root drive, machine size. */
    String firecrackerConfig(Spec s, Path disk) {
        ObjectMapper m = new ObjectMapper();
        ObjectNode root = m.createObjectNode();
        ObjectNode boot = root.putObject("boot-source");
        boot.put("kernel_image_path", s.kernel().toAbsolutePath().toString());
        boot.put("boot_args", cmdline(s.append(), "firecracker", 0, false));
        if (s.initrd() != null) {
            boot.put("initrd_path", s.initrd().toAbsolutePath().toString());
        }
        ObjectNode drive = root.putArray("drives").addObject();
        drive.put("drive_id", "rootfs");
        drive.put("path_on_host", disk.toAbsolutePath().toString());
        drive.put("is_root_device", true);
        drive.put("is_read_only", false);
        ObjectNode machine = root.putObject("machine-config");
        machine.put("vcpu_count", s.cpus());
        machine.put("mem_size_mib", s.memMiB());
        try {
            return m.writerWithDefaultPrettyPrinter().writeValueAsString(root) + "\n";
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Firecracker on x86 boots an uncompressed ELF vmlinux, not a bzImage. */
    static boolean isBzImage(Path kernel) throws IOException {
        try (FileChannel ch = FileChannel.open(kernel, StandardOpenOption.READ)) {
            ByteBuffer b = ByteBuffer.allocate(4);
            return ch.read(b, 0x202) == 4 && new String(b.array(), StandardCharsets.ISO_8859_1).equals("HdrS");
        }
    }

    /**
     * Boots and watches the console until the expected text, a panic, the VM's end or the
     * timeout. Every console line goes to {@code console} as it arrives. A throw-away copy is
     * booted unless the spec is writable. With a writable disk the guest is given the rest of the
     * time to power off after the expected text, and is then asked to (SysRq over the serial
     * console: sync, remount read-only, power off), so its file system is left clean.
     */
    Result boot(Spec s, PrintWriter console) throws IOException, InterruptedException {
        List<Path> temps = new ArrayList<>();
        try {
            List<String> cmd;
            if (vmm == Vmm.FIRECRACKER) {
                if (arch.equals("x86_64") && isBzImage(s.kernel())) {
                    throw new Errors.UsageException(s.kernel() + ": firecracker boots an uncompressed vmlinux (ELF), "
                            + "this is a bzImage; give a vmlinux or use --vmm qemu");
                }
                Path disk = s.disk();
                if (!s.writable()) {
                    disk = Files.createTempFile("kiln-boot-", ".ext4");
                    temps.add(disk);
                    sparseCopy(s.disk(), disk);
                }
                Path config = Files.createTempFile("kiln-firecracker-", ".json");
                temps.add(config);
                Files.writeString(config, firecrackerConfig(s, disk));
                cmd = List.of(binary, "--no-api", "--config-file", config.toString());
            } else {
                String machine = qemuMachine();
                cmd = qemuCommand(s, machine, tscKhz());
            }
            return run(cmd, s, console);
        } finally {
            for (Path p : temps) {
                Files.deleteIfExists(p);
            }
        }
    }

    private Result run(List<String> cmd, Spec s, PrintWriter console) throws IOException, InterruptedException {
        long start = System.nanoTime();
        Process p;
        if (s.writable() && dev.kiln.image.UserNamespace.which("setsid") != null) {
            // A session of its own: Ctrl-C on the terminal reaches kiln, which shuts the guest down
            // cleanly, instead of killing QEMU with the guest's file system mounted.
            List<String> c = new ArrayList<>(List.of("setsid"));
            c.addAll(cmd);
            cmd = c;
        }
        try {
            p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        } catch (IOException e) {
            throw new Errors.UsageException(cmd.get(0) + ": cannot run it (" + e.getMessage() + "); install "
                    + (vmm == Vmm.FIRECRACKER ? "firecracker" : "qemu-system-x86") + " or choose another --vmm");
        }
        Watch watch = new Watch(s.expect());
        Thread reader = new Thread(() -> {
            // Read as it arrives, not by lines: a prompt ("login: ") has no newline after it.
            try (java.io.Reader r = new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8)) {
                char[] buf = new char[4096];
                StringBuilder line = new StringBuilder();
                int n;
                while ((n = r.read(buf)) > 0) {
                    if (console != null) {
                        console.write(buf, 0, n);
                        console.flush();
                    }
                    for (int i = 0; i < n; i++) {
                        if (buf[i] == '\n') {
                            watch.line(line.toString());
                            line.setLength(0);
                        } else {
                            line.append(buf[i]);
                        }
                    }
                    if (line.length() > 0) {
                        watch.partial(line.toString());
                    }
                }
                if (line.length() > 0) {
                    watch.line(line.toString());
                }
            } catch (IOException e) {
                // the VM went away
            } finally {
                watch.closed();
            }
        }, "kiln-console");
        reader.setDaemon(true);
        reader.start();
        long deadline = start + TimeUnit.SECONDS.toNanos(s.timeoutSeconds());
        OutputStream stdin = p.getOutputStream();
        Runnable stopOnExit = () -> {
            // Interrupted (Ctrl-C, SIGTERM): a writable guest is still shut down cleanly.
            if (s.writable() && p.isAlive()) {
                try {
                    shutDown(watch, stdin, System.nanoTime() + TimeUnit.SECONDS.toNanos(20));
                } catch (IOException | InterruptedException e) {
                    // the VM is ended below
                }
            }
            p.destroy();
        };
        dev.kiln.image.Build.trackCleanup(stopOnExit);
        Outcome outcome = Outcome.TIMEOUT;
        String detail = null;
        try {
            outcome = watch.await(deadline);
            if (s.writable() && !watch.stopped()) {
                // Leave the file system clean on every way out (the text came, the time ran out,
                // a panic left the VM up): let a guest that passed stop by itself, then ask it to.
                Outcome after = outcome == Outcome.PASSED
                        ? watch.awaitStop(Math.min(deadline, System.nanoTime() + TimeUnit.SECONDS.toNanos(5)))
                        : Outcome.TIMEOUT;
                if (after != Outcome.STOPPED) {
                    after = shutDown(watch, stdin, System.nanoTime() + TimeUnit.SECONDS.toNanos(30));
                }
                if (after != Outcome.STOPPED) {
                    detail = "the guest did not power off; the file system may need journal recovery";
                }
            }
        } finally {
            dev.kiln.image.Build.untrack(stopOnExit);
            try {
                stdin.close();
            } catch (IOException e) {
                // the VM already went away
            }
            p.destroy();
            if (!p.waitFor(10, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                p.waitFor(10, TimeUnit.SECONDS);
            }
        }
        reader.join(2000);
        long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
        return new Result(outcome, watch.tail(), millis, detail);
    }

    /**
     * Asks a running guest to stop with its file system clean: magic SysRq over the serial
     * console (QEMU's mon:stdio sends a break with Ctrl-A b): sync, remount read-only, power off.
     */
    private Outcome shutDown(Watch watch, OutputStream stdin, long deadline) throws IOException, InterruptedException {
        if (vmm != Vmm.QEMU) {
            return watch.stopped() ? Outcome.STOPPED : Outcome.TIMEOUT;
        }
        for (char key : new char[] {'s', 'u', 'o'}) {
            stdin.write(new byte[] {1, 'b'});
            stdin.flush();
            Thread.sleep(200);
            stdin.write(key);
            stdin.flush();
            Thread.sleep(key == 'o' ? 0 : 1500);
        }
        return watch.awaitStop(deadline);
    }

    /** Copies an image, leaving holes where it has zero blocks (images are mostly empty). */
    static void sparseCopy(Path from, Path to) throws IOException {
        try (FileChannel in = FileChannel.open(from, StandardOpenOption.READ);
                FileChannel out = FileChannel.open(to, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
            ByteBuffer buf = ByteBuffer.allocateDirect(1 << 20);
            long size = in.size();
            long pos = 0;
            byte[] block = new byte[4096];
            while (pos < size) {
                buf.clear();
                int n = in.read(buf, pos);
                if (n <= 0) {
                    break;
                }
                buf.flip();
                for (int off = 0; off < n; off += block.length) {
                    int len = Math.min(block.length, n - off);
                    buf.get(off, block, 0, len);
                    if (!isZero(block, len)) {
                        out.write(ByteBuffer.wrap(block, 0, len), pos + off);
                    }
                }
                pos += n;
            }
            if (out.size() < size) {
                out.write(ByteBuffer.wrap(new byte[1]), size - 1);
            }
        }
    }

    private static boolean isZero(byte[] b, int len) {
        for (int i = 0; i < len; i++) {
            if (b[i] != 0) {
                return false;
            }
        }
        return true;
    }

    /**
     * Reads the console line by line: the expected text (never in the kernel's echo of its own
     * command line), a kernel panic, the kernel's last words on power-off or reboot.
     */
    static final class Watch {
        private final String expect;
        private final Deque<String> tail = new ArrayDeque<>();
        /**
         * The lines up to the kernel's panic, kept when it panics: its cause (an init that is
         * missing or exited) comes just before, and the register dump and call trace after it can
         * be longer than the tail, depending on how far the guest gets before it is stopped.
         */
        private List<String> beforePanic;
        private Outcome outcome;
        private boolean stopped;

        Watch(String expect) {
            this.expect = expect == null || expect.isEmpty() ? null : expect;
        }

        synchronized void line(String raw) {
            String line = raw.replace("\r", "");
            tail.addLast(line);
            if (tail.size() > TAIL_LINES) {
                tail.removeFirst();
            }
            if (line.contains("Kernel panic - not syncing")) {
                if (outcome == null) {
                    outcome = Outcome.PANIC;
                    beforePanic = List.copyOf(tail);
                }
            } else if (line.contains("reboot: Power down") || line.contains("reboot: Restarting system")
                    || line.contains("reboot: System halted")) {
                stopped = true;
                if (outcome == null && expect == null) {
                    outcome = Outcome.PASSED;
                }
            } else if (expect != null && outcome == null && line.contains(expect) && !isCommandLineEcho(line)) {
                outcome = Outcome.PASSED;
            }
            notifyAll();
        }

        /** The line so far, before its newline: the expected text may be a prompt. */
        synchronized void partial(String raw) {
            String line = raw.replace("\r", "");
            if (expect != null && outcome == null && line.contains(expect) && !isCommandLineEcho(line)) {
                outcome = Outcome.PASSED;
                notifyAll();
            }
        }

        static boolean isCommandLineEcho(String line) {
            return line.contains("Command line: ") || line.contains("command line: ");
        }

        synchronized void closed() {
            stopped = true;
            notifyAll();
        }

        synchronized boolean stopped() {
            return stopped;
        }

        synchronized Outcome await(long deadline) throws InterruptedException {
            while (outcome == null && !stopped) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    return Outcome.TIMEOUT;
                }
                TimeUnit.NANOSECONDS.timedWait(this, left);
            }
            if (outcome != null) {
                return outcome;
            }
            return Outcome.STOPPED;
        }

        synchronized Outcome awaitStop(long deadline) throws InterruptedException {
            while (!stopped) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    return Outcome.TIMEOUT;
                }
                TimeUnit.NANOSECONDS.timedWait(this, left);
            }
            return Outcome.STOPPED;
        }

        /** The console's last lines; after a panic, the last lines up to it. */
        synchronized List<String> tail() {
            return beforePanic != null ? beforePanic : List.copyOf(tail);
        }
    }
}
