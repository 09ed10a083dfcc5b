package dev.kiln.cli;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.zip.GZIPInputStream;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/**
 * Boots an image as the root file system of a QEMU microVM (virtio disk, serial console, as a
 * Firecracker guest sees it) and waits for a line on the console. The disk is attached with
 * -snapshot, so vetting never changes the image.
 */
@Command(name = "boot", mixinStandardHelpOptions = true,
        description = {"Boots IMAGE as the root file system of a QEMU microVM and waits for TEXT on the serial console.",
            "Exits 0 when TEXT appears, 3 when the guest stops or the time runs out first. The image is not modified."})
final class BootCommand implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Parameters(index = "0", paramLabel = "IMAGE", description = "An ext4 image (.gz is decompressed first).")
    Path image;

    @Option(names = "--kernel", paramLabel = "FILE", required = true, description = "The guest kernel (bzImage/vmlinuz).")
    Path kernel;

    @Option(names = "--initrd", paramLabel = "FILE", description = "An initramfs, when the kernel needs modules for virtio or ext4.")
    Path initrd;

    @Option(names = "--expect", paramLabel = "TEXT", required = true, description = "Text the guest must print.")
    String expect;

    @Option(names = "--timeout", paramLabel = "SECONDS", defaultValue = "120", description = "Default: ${DEFAULT-VALUE}.")
    int timeout;

    @Option(names = "--append", paramLabel = "ARGS", description = "Extra kernel command line arguments.")
    String append = "";

    @Option(names = "--memory", paramLabel = "MIB", defaultValue = "512", description = "Guest memory (default: ${DEFAULT-VALUE}).")
    int memory;

    @Option(names = "--kvm", description = "Use KVM acceleration (default: software emulation, which works everywhere).")
    boolean kvm;

    @Option(names = "--qemu", paramLabel = "PATH", defaultValue = "qemu-system-x86_64",
            description = "The QEMU binary (default: ${DEFAULT-VALUE}).")
    String qemu;

    @Option(names = {"-v", "--verbose"}, description = "Copy the guest console to stderr.")
    boolean verbose;

    @Option(names = "--stacktrace", hidden = true) boolean stacktrace;

    @Override
    public Integer call() throws Exception {
        for (Path p : initrd == null ? List.of(image, kernel) : List.of(image, kernel, initrd)) {
            if (!Files.isRegularFile(p)) {
                throw new java.nio.file.NoSuchFileException(p.toString());
            }
        }
        Path disk = image;
        Path tmp = null;
        if (image.getFileName().toString().endsWith(".gz")) {
            tmp = Files.createTempFile("kiln-boot-", ".ext4");
            try (InputStream in = new GZIPInputStream(Files.newInputStream(image), 1 << 16);
                    OutputStream out = Files.newOutputStream(tmp)) {
                in.transferTo(out);
            }
            disk = tmp;
        }
        try {
            return boot(disk);
        } finally {
            if (tmp != null) {
                Files.deleteIfExists(tmp);
            }
        }
    }

    private int boot(Path disk) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(qemu, "-m", Integer.toString(memory), "-nographic", "-no-reboot",
                "-nodefaults", "-serial", "stdio", "-kernel", kernel.toString(),
                "-append", ("console=ttyS0 root=/dev/vda rw panic=-1 " + append).trim(),
                "-drive", "file=" + disk + ",format=raw,if=virtio,snapshot=on"));
        if (initrd != null) {
            cmd.addAll(List.of("-initrd", initrd.toString()));
        }
        if (kvm) {
            cmd.add("-enable-kvm");
        }
        Process p;
        try {
            p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        } catch (IOException e) {
            throw new Errors.UsageException(qemu + ": cannot run QEMU (" + e.getMessage()
                    + "); install qemu-system-x86 or give --qemu PATH");
        }
        p.getOutputStream().close();
        PrintWriter err = spec.commandLine().getErr();
        CompletableFuture<Boolean> seen = CompletableFuture.supplyAsync(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
                String line;
                while ((line = r.readLine()) != null) {
                    if (verbose) {
                        err.println(line);
                        err.flush();
                    }
                    if (line.contains(expect)) {
                        return true;
                    }
                }
            } catch (IOException e) {
                // the guest went away
            }
            return false;
        });
        boolean found;
        try {
            found = seen.get(timeout, TimeUnit.SECONDS);
        } catch (java.util.concurrent.TimeoutException e) {
            found = false;
        } finally {
            p.destroy();
            if (!p.waitFor(10, TimeUnit.SECONDS)) {
                p.destroyForcibly();
            }
        }
        if (found) {
            err.println("kiln: " + image + " booted: the guest printed '" + expect + "'");
            return Kiln.OK;
        }
        err.println("error: " + image + ": the guest did not print '" + expect + "' within " + timeout
                + " s; run with --verbose to see its console");
        return Kiln.INVALID_INPUT;
    }
}
